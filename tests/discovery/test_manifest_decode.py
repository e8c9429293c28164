"""Decoding manifest text: multi-document YAML, `kind: List`, JSON, syntax errors, and YAML
scalars read the way kubectl's YAML 1.1 reader does, whichever decoder runs."""

from __future__ import annotations

import json

import pytest

from discovery import yaml_decode
from discovery.manifest import parse_manifest_text
from discovery.model import EndpointSlice, Service

SVC = """\
apiVersion: v1
kind: Service
metadata:
  name: {name}
spec:
  clusterIP: 10.96.0.{n}
  ports:
  - port: 80
"""


def keys(text: str | bytes, file: str = "m.yaml") -> list[str]:
    objects, errors = parse_manifest_text(text, file)
    assert errors == []
    return [str(o.key) for o in objects]


def test_multi_document_with_empty_documents_and_comments() -> None:
    text = (
        "# leading comment\n---\n"
        + SVC.format(name="a", n=1)
        + "---\n---\n# only a comment\n---\n"
        + SVC.format(name="b", n=2)
        + "...\n---\n"
    )
    assert keys(text) == ["Service default/a", "Service default/b"]


def test_empty_and_comment_only_files() -> None:
    assert keys("") == []
    assert keys("# nothing here\n") == []
    assert keys(b"---\n") == []


def test_kind_list_and_typed_list() -> None:
    items = "\n".join(
        "- " + SVC.format(name=n, n=i).replace("\n", "\n  ") for i, n in enumerate(["a", "b"], 1)
    )
    assert keys(f"apiVersion: v1\nkind: List\nitems:\n{items}\n") == [
        "Service default/a",
        "Service default/b",
    ]
    assert keys(f"apiVersion: v1\nkind: ServiceList\nmetadata: {{}}\nitems:\n{items}\n") == [
        "Service default/a",
        "Service default/b",
    ]


def test_list_item_errors_name_the_item() -> None:
    text = "apiVersion: v1\nkind: List\nitems:\n- kind: Service\n  apiVersion: v1\n"
    _, errors = parse_manifest_text(text, "l.yaml")
    assert [str(e) for e in errors] == [
        "l.yaml: document 1 items[0] (Service): metadata.name: required",
        "l.yaml: document 1 items[0] (Service): spec.ports: required (at least one port)",
    ]


def test_json_object_and_list() -> None:
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "a"},
        "spec": {"clusterIP": "10.96.0.1", "ports": [{"port": 80, "targetPort": "http"}]},
    }
    assert keys(json.dumps(svc), "a.json") == ["Service default/a"]
    assert keys(json.dumps({"kind": "List", "apiVersion": "v1", "items": [svc]})) == [
        "Service default/a"
    ]
    [obj], _ = parse_manifest_text(json.dumps(svc).encode(), "a.json")
    assert isinstance(obj, Service) and obj.ports[0].target_port == "http"


def test_yaml_syntax_error_names_file_and_line() -> None:
    text = SVC.format(name="a", n=1) + "  - port: [81\n    name: x\n"
    objects, errors = parse_manifest_text(text, "bad.yaml")
    assert objects == []
    assert [str(e) for e in errors] == [
        "bad.yaml: line 10, column 9: YAML syntax error: did not find expected ',' or ']'"
    ]
    _, errors = parse_manifest_text("a: b\n c: d\n", "bad.yaml")
    assert [str(e) for e in errors] == [
        "bad.yaml: line 2, column 3: YAML syntax error: "
        "mapping values are not allowed in this context"
    ]


def test_json_syntax_error_names_line() -> None:
    _, errors = parse_manifest_text('{\n  "kind": "Service",\n  "x": \n}\n', "bad.json")
    assert [str(e) for e in errors] == [
        "bad.json: line 4, column 1: JSON syntax error: Expecting value"
    ]


def test_not_an_object() -> None:
    _, errors = parse_manifest_text("- a\n- b\n", "x.yaml")
    assert [str(e) for e in errors] == [
        "x.yaml: document 1: must be a mapping (a Kubernetes object), got a list"
    ]


def test_duplicate_in_one_file_last_wins() -> None:
    text = SVC.format(name="a", n=1) + "---\n" + SVC.format(name="a", n=2)
    [svc], errors = parse_manifest_text(text, "d.yaml")
    assert errors == []
    assert isinstance(svc, Service) and svc.cluster_ips == ("10.96.0.2",)


SLICE = """\
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: s
  labels: {{kubernetes.io/service-name: web}}
addressType: IPv4
endpoints:
- addresses: [10.0.0.1]
  conditions: {{ready: {ready}}}
  zone: {zone}
ports:
- port: {port}
"""


@pytest.mark.parametrize(
    ("ready", "port", "zone", "expect"),
    [
        # YAML 1.1 booleans, as kubectl reads them
        ("true", "80", "z", (True, 80, "z")),
        ("false", "80", "z", (False, 80, "z")),
        ("True", "80", "z", (True, 80, "z")),
        ("FALSE", "80", "z", (False, 80, "z")),
        ("yes", "80", "z", (True, 80, "z")),
        ("off", "80", "z", (False, 80, "z")),
        ("~", "80", "z", (True, 80, "z")),  # null: unset, ready
        ("null", "80", "z", (True, 80, "z")),
        # YAML 1.1 integers
        ("true", "0x50", "z", (True, 80, "z")),
        ("true", "0120", "z", (True, 80, "z")),  # octal
        ("true", "8_0", "z", (True, 80, "z")),
        ("true", "+80", "z", (True, 80, "z")),
        ("true", "1:20", "z", (True, 80, "z")),  # sexagesimal, yes really
        # strings that look like other things stay strings
        ("true", "80", '"80"', (True, 80, "80")),
        ("true", "80", "'true'", (True, 80, "true")),
        ("true", "80", "2024-01-02", (True, 80, "2024-01-02")),
        ("true", "80", "10.0.0.1", (True, 80, "10.0.0.1")),
        ("true", "80", "0b1f2e", (True, 80, "0b1f2e")),
    ],
)
def test_scalars_read_as_kubectl_does(
    ready: str, port: str, zone: str, expect: tuple[bool, int, str]
) -> None:
    text = SLICE.format(ready=ready, port=port, zone=zone)
    [es], errors = parse_manifest_text(text, "s.yaml")
    assert errors == []
    assert isinstance(es, EndpointSlice)
    got = (es.endpoints[0].conditions.ready, es.ports[0].port, es.endpoints[0].zone)
    assert got == expect


@pytest.mark.parametrize(
    ("port", "message"),
    [
        ('"80"', 'must be an integer, got "80"'),
        ("1e3", 'must be an integer, got "1e3"'),  # a string in YAML 1.1
        ("80.0", "must be an integer, got 80.0"),
        ("true", "must be an integer, got true"),
        (".inf", "must be an integer, got inf"),
    ],
)
def test_port_type_errors_same_whichever_decoder(port: str, message: str) -> None:
    text = SLICE.format(ready="true", port=port, zone="z")
    _, errors = parse_manifest_text(text, "s.yaml")
    assert [str(e) for e in errors] == [
        f"s.yaml: EndpointSlice default/s: ports[0].port: {message}"
    ]


def test_fast_decoder_refuses_what_it_could_misread(capfd: pytest.CaptureFixture[str]) -> None:
    if not yaml_decode.fast_available():
        pytest.skip("rapidyaml not installed")
    assert yaml_decode.decode_fast(b"a: 1\n") == [{"a": 1}]
    assert yaml_decode.decode_fast(b"a: 1\n---\nb: x\n") == [{"a": 1}, {"b": "x"}]
    for risky in (b"a: ~\n", b"a: &x 1\nb: *x\n", b"a: !!str 1\n", b"a: 0x1f\n", b"<<: {}\n"):
        assert yaml_decode.decode_fast(risky) is None, risky
    # a uid starting with 0b is not a binary number
    assert yaml_decode.decode_fast(b"uid: 0b6f2a4e-1\n") == [{"uid": "0b6f2a4e-1"}]
    # a syntax error is left to PyYAML (which names the line), and prints nothing
    assert yaml_decode.decode_fast(b"a: [1\nb: 2\n") is None
    assert capfd.readouterr().err == ""  # rapidyaml's own error print is silenced


@pytest.mark.parametrize(
    ("text", "refused"),
    [
        (b"a: ~\n", True),
        (b"a:\t~\n", True),
        (b"a: [1, ~]\n", True),
        (b"a: !!str 1\n", True),
        (b"a: [!!str 1]\n", True),
        (b"x: &a 1\ny: *a\n", True),
        (b"b:\n  <<: {c: 1}\n", True),
        (b"p: 0x1f\n", True),
        (b"p: -0x1f # hex\n", True),
        (b"p: [0x1f]\n", True),
        (b"- 0b101\n", True),
        (b"a: b~c\n", False),
        (b"a: ~x\n", False),
        (b'h: "*.x.com"\n', False),
        (b"u: http://a/?x=1&y=2\n", False),
        (b"t: 'hi ! there'\n", False),
        (b"a: <b>\n", False),
        (b"uid: 0b6f2a4e-1c2d-4e5f-8a9b-0b1234567890\n", False),
        (b"n: 100b\n", False),
    ],
)
def test_fast_decoder_guard(text: bytes, refused: bool) -> None:
    if not yaml_decode.fast_available():
        pytest.skip("rapidyaml not installed")
    assert (yaml_decode.decode_fast(text) is None) == refused
