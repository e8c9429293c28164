"""The benchmark's generated file, at small scale: every object parses, and the fast
decoder gives exactly what the PyYAML reference gives."""

from __future__ import annotations

import pytest

from bench.manifest import generate
from discovery import yaml_decode
from discovery.manifest import _convert, parse_manifest_text
from discovery.model import EndpointSlice, Service


@pytest.mark.parametrize("kubectl", [False, True])
def test_generated_services_and_slices(kubectl: bool) -> None:
    text = generate(300, kubectl=kubectl)
    objects, errors = parse_manifest_text(text, "big.yaml")
    assert errors == []
    services = [o for o in objects if isinstance(o, Service)]
    slices = [o for o in objects if isinstance(o, EndpointSlice)]
    assert len(services) == len(slices) == 300
    assert services[299].cluster_ips == ("10.96.1.43",)
    assert slices[299].service_name == "svc-299"
    assert [e.addresses for e in slices[299].endpoints] == [("10.244.1.43",), ("10.245.1.43",)]
    if kubectl:
        assert services[0].meta.uid == "6c3f1f0e-8a51-4c8e-9d7e-000000000000"
    if yaml_decode.fast_available():
        fast = yaml_decode.decode_fast(text)
        assert fast is not None
        assert _convert(fast, "big.yaml") == _convert(yaml_decode.decode_exact(text), "big.yaml")
