"""Ingresses the annotations refuse (snippets, GRPC backends, values ingress-nginx
rejects) are left out of the table with the reason in their report; the version served
before keeps serving, in the translator and through the L7 dataplane (real sockets)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from discovery.snapshot import Snapshot
from ingress.dataplane import IngressDataplane
from proxy.app.options import Options
from tests.ingress.l7kit import HOST, Backend, LoopThread, get, port_info
from tests.ingress.nginxkit import ann, ing, name, path, snapshot, translate

SNIPPET = ann(configuration_snippet="more_set_headers 'X: y';")


def test_a_refused_ingress_is_not_served_and_says_why() -> None:
    """annotations.md "annotations-risk-level" / allow-snippet-annotations false (the
    default): an Ingress with a snippet is rejected; so is backend-protocol GRPC, which
    seaway cannot speak yet."""
    t = translate(
        ing("snip", "a.test", path("/"), annotations=SNIPPET),
        ing("grpc", "b.test", path("/"), annotations=ann(backend_protocol="GRPC")),
        ing("ok", "c.test", path("/")),
    )
    assert name(t.ask("a.test", "/")) == "404"
    assert name(t.ask("b.test", "/")) == "404"
    assert name(t.ask("c.test", "/")) == "web"
    (snip,) = (r for r in t.translation.reports if r.name == "snip")
    assert len(snip.warnings) == 1
    assert snip.warnings[0].startswith("Ingress default/snip: refused (metadata.annotations")
    assert "configuration-snippet" in snip.warnings[0] and "not served" in snip.warnings[0]
    (grpc,) = (r for r in t.translation.reports if r.name == "grpc")
    assert len(grpc.warnings) == 1
    assert "backend-protocol GRPC needs HTTP/2 to the pod" in grpc.warnings[0]
    assert "not served rather than served wrongly" in grpc.warnings[0]
    assert set(t.translation.served) == {("default", "ok")}
    t = translate(ing("grpcs", "b.test", path("/"), annotations=ann(backend_protocol="grpcs")))
    assert name(t.ask("b.test", "/")) == "404"
    (grpcs,) = t.translation.reports
    assert "backend-protocol GRPCS needs HTTP/2" in grpcs.warnings[0]


def test_the_last_good_version_keeps_serving() -> None:
    """nginx keeps its last good configuration when a change would break it (the
    controller's validation refuses the new Ingress): the previous version serves on."""
    good = ing("web", "a.test", path("/old"), uid="u1", version="7")
    first = translate(good)
    assert name(first.ask("a.test", "/old")) == "web"
    bad = ing("web", "a.test", path("/new"), annotations=SNIPPET, uid="u1", version="8")
    second = translate(bad, last_good=first.translation.served)
    assert name(second.ask("a.test", "/old")) == "web"
    assert name(second.ask("a.test", "/new")) == "404"
    (warning,) = second.warnings()
    assert "configuration-snippet" in warning
    assert warning.endswith("the last version served (resourceVersion 7) keeps serving")
    # It stays the last good one until a good version replaces it.
    third = translate(bad, last_good=second.translation.served)
    assert name(third.ask("a.test", "/old")) == "web"
    fixed = ing("web", "a.test", path("/new"), uid="u1", version="9")
    fourth = translate(fixed, last_good=third.translation.served)
    assert (name(fourth.ask("a.test", "/new")), name(fourth.ask("a.test", "/old"))) == (
        "web",
        "404",
    )


def test_a_recreated_object_does_not_inherit_the_old_one() -> None:
    """Deleted and created again (another uid): there is no last good version of it."""
    first = translate(ing("web", "a.test", path("/"), uid="u1"))
    again = translate(ing("web", "a.test", path("/"), annotations=SNIPPET, uid="u2"),
                      last_good=first.translation.served)
    assert name(again.ask("a.test", "/")) == "404"
    assert again.warnings()[0].endswith("not served")


@pytest.fixture(scope="module")
def backend(lt: LoopThread) -> Iterator[Backend]:
    b = lt.run(Backend("one").start())
    yield b
    lt.run(b.close())


def site(annotations: dict[str, str], backend: Backend, generation: int) -> Snapshot:
    web = ing("web", "a.test", path("/"), annotations=annotations, uid="u1",
              version=str(generation))
    ports = [port_info("web", [backend.endpoint])]
    return snapshot([web], services=(), ports=ports, generation=generation)


def test_the_dataplane_keeps_serving_the_last_good_version(
    lt: LoopThread, backend: Backend
) -> None:
    dp = IngressDataplane(
        Options(http_bind_address=(HOST, 0), https_bind_address=None, workers=1).ingress_config()
    )
    lt.run(dp.start())
    try:
        good = site({}, backend, 1)
        lt.run(dp.sync(good, frozenset(good.service_ports)))
        http, _ = dp.addresses()
        assert http is not None
        status, body = get(http[1], "/", host="a.test")
        assert status == 200 and json.loads(body)["name"] == "one"
        bad = site(SNIPPET, backend, 2)
        lt.run(dp.sync(bad, frozenset(bad.service_ports)))
        assert dp.syncs == 2 and dp.translation is not None
        assert dp.translation.warnings[0].endswith("(resourceVersion 1) keeps serving")
        status, body = get(http[1], "/", host="a.test")
        assert status == 200 and json.loads(body)["name"] == "one"
    finally:
        lt.run(dp.stop())
