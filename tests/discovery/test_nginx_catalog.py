"""The catalog of ingress-nginx names is complete, agrees with the parsers, and the
README's migration tables show exactly it."""

from __future__ import annotations

import re

import pytest

from discovery.nginx_annotations import parse_annotations
from discovery.nginx_catalog import (
    ANNOTATION_NOTES,
    ANNOTATIONS,
    CONFIGMAP_KEYS,
    CONFIGMAP_NOTES,
    PARSED,
    REFUSED,
    TRANSLATED,
    TRANSLATED_KEYS,
    readme_status,
)
from discovery.nginx_configmap import parse_nginx_configmap
from tests.support import REPO

P = "nginx.ingress.kubernetes.io/"


def annotation_rows() -> list[str]:
    return [
        f"| `{name}` | "
        f"{readme_status(status, ANNOTATION_NOTES.get(name, ''), TRANSLATED.get(name, ''))} |"
        for name, status in sorted(ANNOTATIONS.items())
    ]


def configmap_rows() -> list[str]:
    return [
        f"| `{key}` | "
        f"{readme_status(status, CONFIGMAP_NOTES.get(key, ''), TRANSLATED_KEYS.get(key, ''))} |"
        for key, status in sorted(CONFIGMAP_KEYS.items())
    ]


def readme_table(title: str) -> list[str]:
    """The rows (header excluded) of the table following the line `title` in README.md."""
    lines = (REPO / "README.md").read_text().splitlines()
    start = lines.index(title)
    rows: list[str] = []
    for line in lines[start + 1 :]:
        if line.startswith("|"):
            rows.append(line)
        elif rows:
            break
    return rows[2:]


def test_readme_tables_show_the_catalog() -> None:
    assert readme_table("<!-- ingress-nginx annotations -->") == annotation_rows()
    assert readme_table("<!-- ingress-nginx ConfigMap keys -->") == configmap_rows()


def test_translated_names_are_parsed_ones() -> None:
    """Only what the parsers read can be translated."""
    assert set(TRANSLATED) <= {k for k, v in ANNOTATIONS.items() if v == PARSED}
    assert set(TRANSLATED_KEYS) <= {k for k, v in CONFIGMAP_KEYS.items() if v == PARSED}
    assert TRANSLATED["ssl-passthrough"] == "translated, acts now"
    assert "block-cidrs" in TRANSLATED_KEYS
    assert TRANSLATED_KEYS["use-proxy-protocol"] == "translated, acts now"
    assert TRANSLATED["use-regex"] == "translated, acts now"
    assert TRANSLATED["enable-cors"] == "translated, acts now"
    assert TRANSLATED["load-balance"] == "translated, acts now"


def test_catalog_holds_every_documented_name() -> None:
    """Spot checks against ingress-nginx's annotations.md table and configmap.md table
    (138 annotation names from the docs and parsers, 193 ConfigMap keys)."""
    assert len(ANNOTATIONS) == 138 and len(CONFIGMAP_KEYS) == 193
    for name in ("app-root", "auth-tls-match-cn", "mirror-host", "upstream-hash-by-subset-size",
                 "allowlist-source-range", "limit-allowlist", "relative-redirects"):
        assert name in ANNOTATIONS
    for key in ("add-headers", "grpc-buffer-size-kb", "otel-sampler-ratio", "hsts-preload"):
        assert key in CONFIGMAP_KEYS
    assert set(ANNOTATION_NOTES) <= {k for k, v in ANNOTATIONS.items() if v == PARSED}
    assert set(CONFIGMAP_NOTES) <= {k for k, v in CONFIGMAP_KEYS.items() if v == PARSED}


# A value each parsed annotation accepts, with what it needs to take effect.
VALID_VALUE = {
    "proxy-next-upstream": "error timeout http_502",
    "app-root": "/app", "rewrite-target": "/", "x-forwarded-prefix": "/p",
    "permanent-redirect": "https://a.b", "temporal-redirect": "https://a.b",
    "permanent-redirect-code": "308", "temporal-redirect-code": "307",
    "proxy-body-size": "1m", "backend-protocol": "HTTPS", "upstream-vhost": "a.b",
    "default-backend": "svc", "server-alias": "a.b", "custom-http-errors": "404",
    "proxy-ssl-secret": "default/ca", "proxy-ssl-verify": "on", "proxy-ssl-name": "a.b",
    "proxy-ssl-server-name": "on", "canary-by-header": "H", "canary-by-header-value": "v",
    "canary-by-header-pattern": "p", "canary-by-cookie": "c", "affinity": "cookie",
    "affinity-mode": "balanced", "affinity-canary-behavior": "sticky",
    "session-cookie-name": "n", "session-cookie-path": "/", "session-cookie-domain": "a.b",
    "session-cookie-samesite": "Lax", "upstream-hash-by": "$request_uri",
    "load-balance": "ewma", "allowlist-source-range": "10.0.0.0/8",
    "whitelist-source-range": "10.0.0.0/8", "denylist-source-range": "10.0.0.0/8",
    "auth-type": "basic", "auth-secret": "s", "auth-secret-type": "auth-file",
    "auth-realm": "r", "auth-url": "https://a.b/auth", "auth-method": "GET",
    "auth-signin": "https://a.b/start", "auth-signin-redirect-param": "rd",
    "auth-response-headers": "X-User", "auth-request-redirect": "https://a.b/x",
    "limit-allowlist": "10.0.0.0/8", "limit-whitelist": "10.0.0.0/8",
    "cors-allow-origin": "https://a.b", "cors-allow-methods": "GET",
    "cors-allow-headers": "X-A", "cors-expose-headers": "X-B",
}
NEEDS = {
    "canary-": {"canary": "true"},
    "canary-by-header-": {"canary": "true", "canary-by-header": "H"},
    "cors-": {"enable-cors": "true"},
    "session-cookie-": {"affinity": "cookie"},
    "affinity-": {"affinity": "cookie"},
    "auth-": {"auth-url": "https://a.b/auth"},
    "limit-": {"limit-rps": "1"},
    "proxy-ssl-": {"backend-protocol": "HTTPS", "proxy-ssl-secret": "default/ca"},
    "upstream-hash-by-": {"upstream-hash-by": "$request_uri"},
    "permanent-redirect-": {"permanent-redirect": "https://a.b"},
    "temporal-redirect-": {"temporal-redirect": "https://a.b"},
}


def context_for(name: str) -> dict[str, str]:
    if name in ("auth-type", "auth-url"):
        return {"auth-secret": "s"} if name == "auth-type" else {}
    if name in ("auth-secret", "auth-secret-type", "auth-realm"):
        return {"auth-type": "basic", "auth-secret": "s"}
    for prefix in sorted(NEEDS, key=len, reverse=True):
        if name.startswith(prefix) and name != prefix.rstrip("-"):
            return dict(NEEDS[prefix])
    return {}


@pytest.mark.parametrize("name", sorted(ANNOTATIONS))
def test_each_annotation_does_what_the_catalog_says(name: str) -> None:
    status = ANNOTATIONS[name]
    value = VALID_VALUE.get(name, "true")
    if re.search(r"(timeout|tries|weight|total|size-?|max-age|expires|depth|rps|rpm|"
                 r"connections|multiplier)$", name) and name not in VALID_VALUE:
        value = "5"
    annotations = {**context_for(name), name: value}
    prefixed = {P + k: v for k, v in annotations.items()}
    parsed = parse_annotations(prefixed, "default", "web", ssl_passthrough=True)
    ignored = {i.key: i.reason for i in parsed.ignored}
    if status == PARSED:
        assert P + name in parsed.recognised, (ignored.get(P + name), parsed.problems)
    elif status == REFUSED:
        assert not parsed.served and any(name in r for r in parsed.refusals)
    else:
        assert ignored[P + name] == "not supported: " + status


@pytest.mark.parametrize("key", sorted(CONFIGMAP_KEYS))
def test_each_configmap_key_does_what_the_catalog_says(key: str) -> None:
    status = CONFIGMAP_KEYS[key]
    samples = {"proxy-body-size": "1m", "http-redirect-code": "301", "load-balance": "ewma",
               "forwarded-for-header": "X-F", "no-tls-redirect-locations": "/x",
               "custom-http-errors": "404", "allow-snippet-annotations": "false",
               "limit-req-status-code": "429", "limit-conn-status-code": "429",
               "proxy-next-upstream": "error timeout http_502"}
    value = samples.get(key, "10.0.0.0/8" if ("cidr" in key or "range" in key) else "5")
    if status == PARSED and key not in samples and not key.endswith(("cidr", "range", "cidrs")):
        value = "true" if not re.search(r"timeout|tries|max-age", key) else "5"
    settings = parse_nginx_configmap({key: value}, "ns/cm")
    ignored = {i.key: i.reason for i in settings.ignored}
    if status == PARSED:
        assert settings.recognised == (key,), (settings.problems, ignored)
    else:
        assert ignored[key] == "not supported: " + status
