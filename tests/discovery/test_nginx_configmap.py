"""ingress-nginx's controller ConfigMap -> NginxGlobalSettings: documented defaults
(docs/user-guide/nginx-configuration/configmap.md, config.NewDefault), values decoded as
template/configmap.go ReadConfig + mapstructure decode them, unknown keys ignored."""

from __future__ import annotations

from typing import Any

import pytest

from discovery.nginx_configmap import (
    INGRESS_NGINX_DEFAULTS,
    IngressNginxMode,
    global_settings,
    parse_nginx_configmap,
)

REF = "ingress-nginx/ingress-nginx-controller"


def test_documented_defaults() -> None:
    """configmap.md's default column for every key seaway reads."""
    d = INGRESS_NGINX_DEFAULTS
    assert d.proxy_body_size == 1024 * 1024  # "1m"
    assert (d.proxy_connect_timeout, d.proxy_read_timeout, d.proxy_send_timeout) == (5, 60, 60)
    assert d.proxy_next_upstream_tries == 3
    assert d.ssl_redirect is True and d.force_ssl_redirect is False
    assert d.http_redirect_code == 308
    assert d.no_tls_redirect_locations == ("/.well-known/acme-challenge",)
    assert d.hsts and d.hsts_max_age == 31536000 and d.hsts_include_subdomains
    assert not d.hsts_preload
    assert not d.use_forwarded_headers and not d.compute_full_forwarded_for
    assert d.forwarded_for_header == "X-Forwarded-For" and not d.enable_real_ip
    assert d.proxy_real_ip_cidr == ("0.0.0.0/0",)
    assert not d.use_proxy_protocol and d.custom_http_errors == ()
    assert d.limit_req_status_code == 503 and d.limit_conn_status_code == 503
    assert d.load_balance == "round_robin" and not d.service_upstream


# (source, data, field, expected) -----------------------------------------------------------
VALID: list[tuple[str, dict[str, str], str, Any]] = [
    ("configmap.md#proxy-body-size", {"proxy-body-size": "8m"}, "proxy_body_size", 8 * 2**20),
    ("e2e settings/proxy_read_timeout.go", {"proxy-read-timeout": "20"},
     "proxy_read_timeout", 20),
    ("e2e settings/proxy_connect_timeout.go", {"proxy-connect-timeout": "2"},
     "proxy_connect_timeout", 2),
    ("e2e settings/proxy_send_timeout.go", {"proxy-send-timeout": "20"},
     "proxy_send_timeout", 20),
    ("mapstructure weak decode: ParseInt base 0", {"proxy-read-timeout": "0x10"},
     "proxy_read_timeout", 16),
    ("configmap.md#ssl-redirect", {"ssl-redirect": "false"}, "ssl_redirect", False),
    ("configmap.md#force-ssl-redirect", {"force-ssl-redirect": "true"}, "force_ssl_redirect",
     True),
    ("configmap.md#hsts", {"hsts": "false"}, "hsts", False),
    ("configmap.md#hsts-max-age", {"hsts-max-age": "600"}, "hsts_max_age", 600),
    ("configmap.md#hsts-include-subdomains", {"hsts-include-subdomains": "false"},
     "hsts_include_subdomains", False),
    ("configmap.md#hsts-preload", {"hsts-preload": "true"}, "hsts_preload", True),
    ("e2e settings/forwarded_headers.go", {"use-forwarded-headers": "true"},
     "use_forwarded_headers", True),
    ("configmap.md#compute-full-forwarded-for", {"compute-full-forwarded-for": "true"},
     "compute_full_forwarded_for", True),
    ("e2e settings/enable_real_ip.go", {"forwarded-for-header": "X-Forwarded-For-Custom"},
     "forwarded_for_header", "X-Forwarded-For-Custom"),
    ("e2e settings/enable_real_ip.go", {"enable-real-ip": "true"}, "enable_real_ip", True),
    ("configmap.md#proxy-real-ip-cidr", {"proxy-real-ip-cidr": "10.0.0.0/8, 192.168.1.7"},
     "proxy_real_ip_cidr", ("10.0.0.0/8", "192.168.1.7")),
    ("e2e settings/proxy_protocol.go", {"use-proxy-protocol": "true"}, "use_proxy_protocol",
     True),
    ("configmap.go filterErrors (300-599)", {"custom-http-errors": "404, 503"},
     "custom_http_errors", (404, 503)),
    ("configmap.md#limit-req-status-code", {"limit-req-status-code": "429"},
     "limit_req_status_code", 429),
    ("configmap.md#http-redirect-code", {"http-redirect-code": "301"}, "http_redirect_code",
     301),
    ("configmap.md#load-balance", {"load-balance": "ewma"}, "load_balance", "ewma"),
    ("configmap.md#whitelist-source-range", {"whitelist-source-range": "10.0.0.0/8"},
     "whitelist_source_range", ("10.0.0.0/8",)),
    ("configmap.md#block-cidrs", {"block-cidrs": "1.2.3.4,5.6.0.0/16"}, "block_cidrs",
     ("1.2.3.4", "5.6.0.0/16")),
    ("mapstructure weak decode: empty string is false", {"hsts": ""}, "hsts", False),
    ("configmap.md#allow-snippet-annotations: false is honoured",
     {"allow-snippet-annotations": "false"}, "recognised", ("allow-snippet-annotations",)),
]


@pytest.mark.parametrize(("source", "data", "name", "expected"), VALID)
def test_valid(source: str, data: dict[str, str], name: str, expected: Any) -> None:
    settings = parse_nginx_configmap(data, REF)
    assert getattr(settings, name) == expected, source
    assert settings.problems == () and settings.source == f"ConfigMap {REF}"
    assert settings.recognised == tuple(data)


@pytest.mark.parametrize(
    ("data", "key", "message", "name", "after"),
    [
        ({"proxy-body-size": "10x"}, "proxy-body-size", 'invalid size "10x"',
         "proxy_body_size", 2**20),
        ({"proxy-read-timeout": "60s"}, "proxy-read-timeout", 'invalid timeout "60s"',
         "proxy_read_timeout", 60),
        ({"hsts": "yes"}, "hsts", 'invalid boolean "yes"', "hsts", True),
        ({"hsts-max-age": "1y"}, "hsts-max-age", 'invalid max age "1y"', "hsts_max_age",
         31536000),
        # configmap.go: validRedirectCodes 301, 302, 307, 308, else the default
        ({"http-redirect-code": "303"}, "http-redirect-code", 'invalid redirect code "303"',
         "http_redirect_code", 308),
        ({"limit-req-status-code": "99"}, "limit-req-status-code", 'invalid status code "99"',
         "limit_req_status_code", 503),
        ({"proxy-real-ip-cidr": "10.0.0.0/8,nope"}, "proxy-real-ip-cidr",
         'invalid CIDR list "10.0.0.0/8,nope"', "proxy_real_ip_cidr", ("0.0.0.0/0",)),
        ({"load-balance": "chash"}, "load-balance", 'invalid algorithm "chash"', "load_balance",
         "round_robin"),
        # configmap.go: an invalid code is skipped, the others kept
        ({"custom-http-errors": "404,abc,200"}, "custom-http-errors",
         'invalid HTTP status code "abc"', "custom_http_errors", (404,)),
    ],
)
def test_invalid_keeps_the_default(
    data: dict[str, str], key: str, message: str, name: str, after: Any
) -> None:
    settings = parse_nginx_configmap(data, REF)
    assert str(settings.problems[0]) == f"ConfigMap {REF}: data[{key}]: {message}"
    assert settings.problems[0].hint
    assert getattr(settings, name) == after


def test_unknown_and_unsupported_keys_are_listed_with_the_reason() -> None:
    settings = parse_nginx_configmap(
        {"use-gzip": "true", "no-such-key": "1", "allow-snippet-annotations": "true",
         "proxy-body-size": "2m"},
        REF,
    )
    reasons = {i.key: i.reason for i in settings.ignored}
    assert reasons["use-gzip"] == "not supported: response compression is not implemented"
    assert reasons["no-such-key"].startswith("unknown: ")
    assert reasons["allow-snippet-annotations"].startswith("only false is honoured")
    assert settings.recognised == ("proxy-body-size",) and settings.proxy_body_size == 2 * 2**20


def test_mode_decides_whether_there_are_global_settings() -> None:
    """No ingress-nginx mode: no global settings (seaway's defaults). ingress-nginx mode
    (--ingress-controller k8s.io/ingress-nginx or --configmap): its defaults under the
    ConfigMap, also while the ConfigMap does not exist."""
    assert global_settings(IngressNginxMode(), {"hsts": "false"}) is None
    by_controller = IngressNginxMode.from_flags(
        "nginx.ingress.kubernetes.io", None, "k8s.io/ingress-nginx"
    )
    assert by_controller.enabled
    assert global_settings(by_controller, None) is INGRESS_NGINX_DEFAULTS
    assert not IngressNginxMode.from_flags("p.io", None, "seaway.dev/ingress").enabled
    by_flag = IngressNginxMode.from_flags("p.io", ("ingress-nginx", "ctl"), "seaway.dev/ingress")
    missing = global_settings(by_flag, None)
    assert missing is not None
    assert missing.source.endswith("(ConfigMap ingress-nginx/ctl not found)")
    assert missing.proxy_body_size == 2**20
    found = global_settings(by_flag, {"hsts": "false"})
    assert found is not None and found.hsts is False and found.ssl_redirect is True
