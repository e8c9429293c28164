"""CORS decisions (ingress/filters/cors.py), as ingress-nginx's buildCorsOriginRegex and
CORS template make them (test/e2e/annotations/cors.go)."""

from __future__ import annotations

from ingress.filters.cors import CorsPolicy
from ingress.route_filters import Cors


def test_any_origin_is_star() -> None:
    """cors.go "should enable cors": Access-Control-Allow-Origin: * and the defaults."""
    policy = CorsPolicy(Cors())
    assert policy.origin(None) == b"*" and policy.origin(b"https://x.y") == b"*"
    fields = dict(policy.fields(b"*"))
    assert fields[b"Access-Control-Allow-Methods"] == b"GET, PUT, POST, DELETE, PATCH, OPTIONS"
    assert fields[b"Access-Control-Allow-Credentials"] == b"true"
    assert fields[b"Access-Control-Max-Age"] == b"1728000"
    assert b"Access-Control-Expose-Headers" not in fields
    preflight = dict(policy.fields(b"*", preflight=True))
    assert preflight[b"Content-Length"] == b"0"
    assert preflight[b"Content-Type"] == b"text/plain charset=UTF-8"


def test_listed_origins_echo_the_request_origin() -> None:
    """cors.go: "should allow correct origins", "should not allow ... that is not listed",
    "should allow - single origin with wildcard"-style cases."""
    policy = CorsPolicy(
        Cors(allow_origins=("https://origin.cors.com:8080", "https://*.sub.cors.com"))
    )
    assert policy.origin(b"https://origin.cors.com:8080") == b"https://origin.cors.com:8080"
    assert policy.origin(b"HTTPS://ORIGIN.cors.com:8080") == b"HTTPS://ORIGIN.cors.com:8080"
    assert policy.origin(b"https://origin.cors.com") is None
    assert policy.origin(b"https://a.sub.cors.com") == b"https://a.sub.cors.com"
    assert policy.origin(b"https://a.b.sub.cors.com") is None  # one label only
    assert policy.origin(None) is None


def test_response_lines_and_remover() -> None:
    policy = CorsPolicy(Cors(allow_credentials=False, expose_headers=("X-A", "X-B"), max_age=5))
    lines = policy.response_lines(b"*")
    assert lines.startswith(b"Access-Control-Allow-Origin: *\r\n")
    assert b"Access-Control-Expose-Headers: X-A, X-B\r\n" in lines
    assert b"Credentials" not in lines
    assert policy.remover is not None
    head = b"HTTP/1.1 200 OK\r\naccess-control-allow-origin: evil\r\nA: b\r\n\r\n"
    assert policy.remover.sub(b"", head) == b"HTTP/1.1 200 OK\r\nA: b\r\n\r\n"
