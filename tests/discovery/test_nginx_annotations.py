"""ingress-nginx annotations, table-driven: valid values, invalid values (with the exact
message and the consequence ingress-nginx gives them) and defaults, per annotation.
Each case names the ingress-nginx source it follows: a parser's unit test
(internal/ingress/annotations/<name>/main_test.go), the parser itself (main.go), an e2e
test (test/e2e/annotations/<name>.go) or a section of
docs/user-guide/nginx-configuration/annotations.md."""

from __future__ import annotations

from typing import Any

import pytest

from discovery.nginx_annotations import parse_annotations
from discovery.nginx_settings import (
    DEFAULT_CORS_HEADERS,
    DEFAULT_CORS_METHODS,
    NO_ANNOTATIONS,
    Affinity,
    BasicAuth,
    Canary,
    Cors,
    ExternalAuth,
    IngressAnnotations,
    ProxySSL,
    RateLimit,
    Redirect,
    SessionCookie,
)

P = "nginx.ingress.kubernetes.io/"


def parse(
    annotations: dict[str, str], namespace: str = "default", ssl_passthrough: bool = True
) -> IngressAnnotations:
    """As seaway reads them with --enable-ssl-passthrough (unless told otherwise)."""
    prefixed = {P + k: v for k, v in annotations.items()}
    return parse_annotations(prefixed, namespace, "web", ssl_passthrough=ssl_passthrough)


def field(parsed: IngressAnnotations, path: str) -> Any:
    value: Any = parsed
    for part in path.split("."):
        value = getattr(value, part)
    return value


# (source, annotations, field path, expected value) ------------------------------------------
VALID: list[tuple[str, dict[str, str], str, Any]] = [
    # paths and rewrites
    ("rewrite/main_test.go TestRewrite", {"rewrite-target": "/$1"}, "rewrite.rewrite_target",
     "/$1"),
    ("annotations.md#use-regex", {"use-regex": "true"}, "rewrite.use_regex", True),
    ("annotations.md#use-regex: rewrite-target makes paths regexes", {"rewrite-target": "/"},
     "rewrite.regex_paths", True),
    ("rewrite/main_test.go TestAppRoot", {"app-root": "/app1"}, "rewrite.app_root", "/app1"),
    ("e2e annotations/xforwardedprefix.go", {"x-forwarded-prefix": "/test/value"},
     "rewrite.x_forwarded_prefix", "/test/value"),
    ("e2e annotations/preservetrailingslash.go", {"preserve-trailing-slash": "true"},
     "rewrite.preserve_trailing_slash", True),
    # redirects
    ("rewrite/main_test.go TestSSLRedirect", {"ssl-redirect": "false"},
     "redirects.ssl_redirect", False),
    ("e2e annotations/forcesslredirect.go", {"force-ssl-redirect": "true"},
     "redirects.force_ssl_redirect", True),
    ("redirect/redirect_test.go TestPermanentRedirectWithDefaultCode",
     {"permanent-redirect": "https://www.example.com"}, "redirects.redirect",
     Redirect("https://www.example.com", 301)),
    ("redirect/redirect_test.go TestPermanentRedirectWithCustomCode",
     {"permanent-redirect": "https://www.example.com", "permanent-redirect-code": "308"},
     "redirects.redirect", Redirect("https://www.example.com", 308)),
    ("redirect/redirect_test.go TestTemporalRedirect",
     {"temporal-redirect": "http://www.example.com", "temporal-redirect-code": "307"},
     "redirects.redirect", Redirect("http://www.example.com", 307)),
    ("redirect/redirect.go: temporal wins over permanent",
     {"temporal-redirect": "http://t.example", "permanent-redirect": "http://p.example"},
     "redirects.redirect", Redirect("http://t.example", 302)),
    ("e2e annotations/fromtowwwredirect.go", {"from-to-www-redirect": "true"},
     "redirects.from_to_www", True),
    ("e2e annotations/relativeredirects.go", {"relative-redirects": "true"},
     "redirects.relative", True),
    # limits and timeouts
    ("proxy/main_test.go TestProxy", {"proxy-body-size": "2k"}, "limits.body_size", 2048),
    ("annotations.md#custom-max-body-size", {"proxy-body-size": "8m"}, "limits.body_size",
     8 * 1024 * 1024),
    ("configmap.md#proxy-body-size: 0 = unlimited", {"proxy-body-size": "0"},
     "limits.body_size", 0),
    ("proxy/main_test.go TestProxy", {"proxy-connect-timeout": "1"},
     "limits.connect_timeout", 1),
    ("proxy/main_test.go TestProxy", {"proxy-send-timeout": "2"}, "limits.send_timeout", 2),
    ("proxy/main_test.go TestProxy", {"proxy-read-timeout": "3"}, "limits.read_timeout", 3),
    ("proxy/main_test.go TestProxy", {"proxy-next-upstream-tries": "3"},
     "limits.next_upstream_tries", 3),
    ("e2e annotations/proxy.go should build proxy next upstream",
     {"proxy-next-upstream": "error timeout http_502"}, "limits.next_upstream",
     "error timeout http_502"),
    ("e2e annotations/proxy.go should build proxy next upstream",
     {"proxy-next-upstream-timeout": "10"}, "limits.next_upstream_timeout", 10),
    ("proxy/main.go validUpstreamAnnotation: off", {"proxy-next-upstream": "off"},
     "limits.next_upstream", "off"),
    # backends
    ("backendprotocol/main_test.go TestParseAnnotations", {"backend-protocol": "HTTPS"},
     "backends.protocol", "HTTPS"),
    ("backendprotocol/main.go ValidateOptions(caseSensitive=false)",
     {"backend-protocol": " https "}, "backends.protocol", "HTTPS"),
    ("backendprotocol/main.go", {"backend-protocol": "AUTO_HTTP"}, "backends.protocol",
     "AUTO_HTTP"),
    ("e2e annotations/upstreamvhost.go", {"upstream-vhost": "upstreamvhost.bar.com"},
     "backends.upstream_vhost", "upstreamvhost.bar.com"),
    ("e2e annotations/serviceupstream.go", {"service-upstream": "true"},
     "backends.service_upstream", True),
    ("defaultbackend/main_test.go TestAnnotations", {"default-backend": "default-backend"},
     "backends.default_backend", "default-backend"),
    ("alias/main_test.go TestParse: split, trim, dedupe, sort",
     {"server-alias": "b.com, a.com,a.com,*.c.com"}, "backends.server_aliases",
     ("*.c.com", "a.com", "b.com")),
    ("customhttperrors/main_test.go TestParseAnnotations", {"custom-http-errors": "404,415"},
     "backends.custom_http_errors", (404, 415)),
    ("proxyssl/main_test.go TestAnnotations",
     {"backend-protocol": "HTTPS", "proxy-ssl-secret": "default/ca", "proxy-ssl-verify": "on",
      "proxy-ssl-verify-depth": "3", "proxy-ssl-name": "web.internal",
      "proxy-ssl-server-name": "on"},
     "backends.proxy_ssl", ProxySSL("default", "ca", True, 3, "web.internal", True)),
    ("proxyssl/main.go: defaults off, depth 0 -> 1",
     {"backend-protocol": "HTTPS", "proxy-ssl-secret": "default/ca",
      "proxy-ssl-verify-depth": "0"},
     "backends.proxy_ssl", ProxySSL("default", "ca", False, 1, "", False)),
    # canary
    ("canary/main_test.go TestAnnotations: canary enabled and weight",
     {"canary": "true", "canary-weight": "20"}, "canary", Canary(True, 20)),
    ("canary/main_test.go TestAnnotations: canary enabled by header",
     {"canary": "true", "canary-weight": "20", "canary-by-header": "X-Canary"}, "canary",
     Canary(True, 20, by_header="X-Canary")),
    ("canary/main_test.go TestAnnotations: canary enabled by cookie",
     {"canary": "true", "canary-by-cookie": "canary_enabled"}, "canary",
     Canary(True, by_cookie="canary_enabled")),
    ("e2e annotations/canary.go 'should route requests to the correct upstream if the "
     "header value matches'", {"canary": "true", "canary-by-header": "CanaryByHeader",
                               "canary-by-header-value": "DoCanary"},
     "canary", Canary(True, by_header="CanaryByHeader", by_header_value="DoCanary")),
    ("e2e annotations/canary.go canary-by-header-pattern",
     {"canary": "true", "canary-by-header": "H", "canary-by-header-pattern": "^Do(Canary)?$"},
     "canary.by_header_pattern", "^Do(Canary)?$"),
    ("annotations.md#canary: canary-weight-total",
     {"canary": "true", "canary-weight": "5", "canary-weight-total": "1000"}, "canary",
     Canary(True, 5, 1000)),
    ("Lua balancer: a total under 100 counts as 100",
     {"canary": "true", "canary-weight-total": "10"}, "canary.effective_weight_total", 100),
    # affinity and balancing
    ("sessionaffinity/main_test.go TestIngressAffinityCookieConfig",
     {"affinity": "cookie", "affinity-mode": "balanced", "session-cookie-name": "INGRESSCOOKIE",
      "session-cookie-expires": "4500", "session-cookie-max-age": "3000",
      "session-cookie-path": "/foo", "session-cookie-domain": "foo.bar",
      "session-cookie-change-on-failure": "true", "session-cookie-secure": "true",
      "session-cookie-samesite": "lax", "session-cookie-conditional-samesite-none": "true"},
     "affinity", Affinity(True, "balanced", "sticky", SessionCookie(
         "INGRESSCOOKIE", "/foo", "foo.bar", 3000, 4500, "Lax", True, True, True))),
    ("e2e annotations/affinitymode.go", {"affinity": "cookie", "affinity-mode": "persistent"},
     "affinity.mode", "persistent"),
    ("annotations.md#session-affinity: affinity-canary-behavior",
     {"affinity": "cookie", "affinity-canary-behavior": "legacy"},
     "affinity.canary_behavior", "legacy"),
    ("sessionaffinity/main.go reads affinity-canary-behavior whatever the type (a canary "
     "Ingress without affinity of its own: legacy keeps the main one's off it)",
     {"canary": "true", "affinity-canary-behavior": "legacy"},
     "affinity.canary_behavior", "legacy"),
    ("loadbalancing/main_test.go TestParse", {"load-balance": "ewma"},
     "balancing.load_balance", "ewma"),
    ("e2e annotations/upstreamhashby.go", {"upstream-hash-by": "$request_uri"},
     "balancing.upstream_hash_by", "$request_uri"),
    ("annotations.md#custom-nginx-upstream-hashing: subset size default 3",
     {"upstream-hash-by": "$binary_remote_addr", "upstream-hash-by-subset": "true"},
     "balancing.hash_by_subset_size", 3),
    # access
    ("ipallowlist/main_test.go TestParseAnnotations",
     {"allowlist-source-range": "10.0.0.0/24, 10.0.1.0/24"}, "source_ranges.allow",
     ("10.0.0.0/24", "10.0.1.0/24")),
    ("ipallowlist/main_test.go TestLegacyAnnotation (whitelist-source-range)",
     {"whitelist-source-range": "10.0.0.0/24"}, "source_ranges.allow", ("10.0.0.0/24",)),
    ("ipdenylist/main_test.go TestParseAnnotations",
     {"denylist-source-range": "2.2.2.2/32,1.1.1.1"}, "source_ranges.deny",
     ("1.1.1.1", "2.2.2.2/32")),
    ("auth/main_test.go TestIngressAuth",
     {"auth-type": "basic", "auth-secret": "demo-secret", "auth-realm": "-realm-"},
     "basic_auth", BasicAuth("default", "demo-secret", "auth-file", "-realm-")),
    ("annotations.md#authentication: namespace/secretName, auth-map",
     {"auth-type": "basic", "auth-secret": "default/users", "auth-secret-type": "auth-map"},
     "basic_auth", BasicAuth("default", "users", "auth-map", "")),
    ("authreq/main_test.go TestAnnotations + TestHeaderAnnotations",
     {"auth-url": "https://$host/oauth2/auth", "auth-method": "POST",
      "auth-signin": "https://$host/oauth2/start?rd=$escaped_request_uri",
      "auth-signin-redirect-param": "orig", "auth-response-headers": "h1, H-2",
      "auth-request-redirect": "http://foo.com/redirect-me", "auth-always-set-cookie": "true"},
     "external_auth", ExternalAuth(
         "https://$host/oauth2/auth", "POST",
         "https://$host/oauth2/start?rd=$escaped_request_uri", "orig", ("h1", "H-2"),
         "http://foo.com/redirect-me", True)),
    ("ratelimit/main_test.go TestRateLimiting",
     {"limit-connections": "5", "limit-rps": "100", "limit-rpm": "10",
      "limit-burst-multiplier": "3", "limit-whitelist": "10.0.0.0/8, 192.168.0.1"},
     "rate_limit", RateLimit(100, 10, 5, 3, ("10.0.0.0/8", "192.168.0.1"))),
    ("annotations.md#rate-limiting: burst multiplier default 5", {"limit-rps": "7"},
     "rate_limit", RateLimit(7, 0, 0, 5, ())),
    # CORS
    ("cors/main_test.go TestIngressCorsConfigValid",
     {"enable-cors": "true", "cors-allow-headers": "DNT,X-CustomHeader, Keep-Alive,User-Agent",
      "cors-allow-credentials": "false", "cors-allow-methods": "GET, PATCH",
      "cors-allow-origin": "null, https://origin123.test.com:4443",
      "cors-expose-headers": "*, X-CustomResponseHeader", "cors-max-age": "600"},
     "cors", Cors(True, ("null", "https://origin123.test.com:4443"), "GET, PATCH",
                  "DNT,X-CustomHeader, Keep-Alive,User-Agent", "*, X-CustomResponseHeader",
                  False, 600)),
    ("cors/main_test.go TestIngressCorsConfigAllowOriginWithTrailingComma",
     {"enable-cors": "true",
      "cors-allow-origin": "https://origin123.test.com:4443,    ,https://origin321.test.com:4443,"},
     "cors.allow_origin", ("https://origin123.test.com:4443", "https://origin321.test.com:4443")),
    ("cors/main_test.go TestIngressCorsConfigAllowOriginWithNonHttpProtocol",
     {"enable-cors": "true", "cors-allow-origin": "test://localhost"}, "cors.allow_origin",
     ("test://localhost",)),
    ("cors/main.go: *", {"enable-cors": "true", "cors-allow-origin": "*"},
     "cors.allow_origin", ("*",)),
    ("annotations.md#enable-cors: wildcard subdomain",
     {"enable-cors": "true", "cors-allow-origin": "https://*.origin-site.com:4443"},
     "cors.allow_origin", ("https://*.origin-site.com:4443",)),
    ("e2e annotations/cors.go 'should enable cors': defaults",
     {"enable-cors": "true"}, "cors",
     Cors(True, ("*",), DEFAULT_CORS_METHODS, DEFAULT_CORS_HEADERS, "", True, 1728000)),
    # TLS
    ("annotations.md#ssl-passthrough", {"ssl-passthrough": "true"}, "ssl_passthrough", True),
    # Go booleans: strconv.ParseBool takes 1/t/T/TRUE/True
    ("parser/main.go parseBool (strconv.ParseBool)", {"use-regex": "1"}, "rewrite.use_regex",
     True),
    ("parser/main.go parseString: lines trimmed", {"upstream-vhost": "  vhost.example  "},
     "backends.upstream_vhost", "vhost.example"),
]


@pytest.mark.parametrize(("source", "annotations", "path", "expected"), VALID)
def test_valid(source: str, annotations: dict[str, str], path: str, expected: Any) -> None:
    parsed = parse(annotations)
    assert field(parsed, path) == expected, source
    assert parsed.problems == () and parsed.refusals == () and parsed.denied == ()
    assert parsed.served


# (source, annotations, key, message, effect, field path, value after) -----------------------
INVALID: list[tuple[str, dict[str, str], str, str, str, str, Any]] = [
    ("proxy/main.go: invalid -> ConfigMap default", {"proxy-body-size": "10x"},
     "proxy-body-size", 'invalid size "10x"', "default", "limits.body_size", None),
    ("template.go isValidByteSize: b is not an nginx unit", {"proxy-body-size": "10b"},
     "proxy-body-size", 'invalid size "10b"', "default", "limits.body_size", None),
    ("proxy/main_test.go: timeouts are seconds without unit", {"proxy-read-timeout": "60s"},
     "proxy-read-timeout", 'invalid timeout "60s"', "default", "limits.read_timeout", None),
    ("proxy/main.go validUpstreamAnnotation: an unknown word",
     {"proxy-next-upstream": "error sometimes"}, "proxy-next-upstream",
     'invalid condition list "error sometimes"', "default", "limits.next_upstream", None),
    ("proxy/main.go validUpstreamAnnotation: words are space separated",
     {"proxy-next-upstream": "error,timeout"}, "proxy-next-upstream",
     'invalid condition list "error,timeout"', "default", "limits.next_upstream", None),
    ("nginx refuses a negative timeout at reload", {"proxy-connect-timeout": "-1"},
     "proxy-connect-timeout", 'invalid timeout "-1"', "default", "limits.connect_timeout", None),
    ("rewrite/main.go: invalid rewrite-target defaults to empty", {"rewrite-target": "/a b"},
     "rewrite-target", 'invalid rewrite target "/a b"', "default", "rewrite.rewrite_target", ""),
    ("rewrite/main.go: app-root must be a path (IsAbs)", {"app-root": "http://a.example/x"},
     "app-root", 'invalid path "http://a.example/x"', "default", "rewrite.app_root", ""),
    ("rewrite/main.go", {"use-regex": "yes"}, "use-regex", 'invalid boolean "yes"', "default",
     "rewrite.use_regex", False),
    ("rewrite/main.go: ssl-redirect falls back to the ConfigMap", {"ssl-redirect": "nope"},
     "ssl-redirect", 'invalid boolean "nope"', "default", "redirects.ssl_redirect", None),
    ("xforwardedprefix/main.go returns the validation error: Ingress rejected",
     {"x-forwarded-prefix": "/a;b"}, "x-forwarded-prefix", 'invalid prefix "/a;b"', "refused",
     "rewrite.x_forwarded_prefix", ""),
    ("redirect/redirect.go returns the validation error",
     {"permanent-redirect": "https://a.example/%20"}, "permanent-redirect",
     'invalid URL "https://a.example/%20"', "refused", "redirects.redirect", None),
    ("redirect/redirect.go: code outside 300-308 -> 301",
     {"permanent-redirect": "https://a.example", "permanent-redirect-code": "200"},
     "permanent-redirect-code", 'invalid redirect code "200"', "default", "redirects.redirect",
     Redirect("https://a.example", 301)),
    ("redirect/redirect.go: code not a number -> validation error",
     {"permanent-redirect": "https://a.example", "permanent-redirect-code": "moved"},
     "permanent-redirect-code", 'invalid redirect code "moved"', "refused",
     "redirects.redirect", Redirect("https://a.example", 301)),
    ("redirect/redirect.go isValidURL: only http(s) for temporal redirects",
     {"temporal-redirect": "ftp://a.example", "from-to-www-redirect": "true"},
     "temporal-redirect", 'invalid redirect URL "ftp://a.example"', "default",
     "redirects.from_to_www", False),
    ("redirect/redirect.go", {"from-to-www-redirect": "sure"}, "from-to-www-redirect",
     'invalid boolean "sure"', "refused", "redirects.from_to_www", False),
    ("backendprotocol/main_test.go TestParseInvalidAnnotations: -> HTTP",
     {"backend-protocol": "INVALID"}, "backend-protocol", 'invalid backend protocol "INVALID"',
     "default", "backends.protocol", "HTTP"),
    ("upstreamvhost/main.go returns the validation error", {"upstream-vhost": "a;b"},
     "upstream-vhost", 'invalid host name "a;b"', "refused", "backends.upstream_vhost", ""),
    ("serviceupstream/main.go: a bad value reads as false", {"service-upstream": "yep"},
     "service-upstream", 'invalid boolean "yep"', "default", "backends.service_upstream",
     False),
    ("defaultbackend/main.go ValidateServiceName", {"default-backend": "Not_A_Service"},
     "default-backend", 'invalid Service name "Not_A_Service"', "refused",
     "backends.default_backend", ""),
    ("alias/main.go ValidateArrayOfServerName", {"server-alias": "a.com,lolo;xpto.com"},
     "server-alias", 'invalid server alias list "a.com,lolo;xpto.com"', "refused",
     "backends.server_aliases", ()),
    ("nginx regex server names cannot be matched by seaway",
     {"server-alias": r"a.com,~^www\d+\.example\.com$"}, "server-alias",
     r'unsupported server alias "~^www\\d+\\.example\\.com$"', "default",
     "backends.server_aliases", ("a.com",)),
    ("customhttperrors/main_test.go TestParseInvalidAnnotations",
     {"custom-http-errors": "404,abc"}, "custom-http-errors",
     'invalid HTTP status codes "404,abc"', "refused", "backends.custom_http_errors", None),
    ("proxyssl/main.go: ns/name required (k8s.ParseNameNS)",
     {"backend-protocol": "HTTPS", "proxy-ssl-secret": "ca"}, "proxy-ssl-secret",
     'invalid Secret reference "ca"', "denied", "backends.proxy_ssl", None),
    ("proxyssl/main.go: on/off only -> off",
     {"backend-protocol": "HTTPS", "proxy-ssl-secret": "default/ca",
      "proxy-ssl-verify": "yes"}, "proxy-ssl-verify", 'invalid switch "yes"', "default",
     "backends.proxy_ssl.verify", False),
    ("canary/main.go: invalid weight defaults to 0",
     {"canary": "true", "canary-weight": "ten"}, "canary-weight", 'invalid weight "ten"',
     "default", "canary.weight", 0),
    ("canary/main.go: invalid total defaults to 100",
     {"canary": "true", "canary-weight-total": "x"}, "canary-weight-total",
     'invalid weight total "x"', "default", "canary.weight_total", 100),
    ("canary/main.go BasicCharsRegex", {"canary": "true", "canary-by-header": "X;Canary"},
     "canary-by-header", 'invalid header name "X;Canary"', "default", "canary.by_header", ""),
    ("e2e canary.go: should routes to mainline upstream when the given Regex causes error "
     "(the pattern is kept: the translator sends requests with the header to the main)",
     {"canary": "true", "canary-by-header": "H", "canary-by-header-pattern": "(a"},
     "canary-by-header-pattern", 'invalid pattern "(a"', "default",
     "canary.by_header_pattern", "(a"),
    ("sessionaffinity/main.go: only cookie", {"affinity": "ip"}, "affinity",
     'invalid affinity type "ip"', "default", "affinity.cookie_affinity", False),
    ("sessionaffinity/main.go: invalid name -> INGRESSCOOKIE",
     {"affinity": "cookie", "session-cookie-name": "a;b"}, "session-cookie-name",
     'invalid value "a;b"', "default", "affinity.cookie.name", "INGRESSCOOKIE"),
    ("sessionaffinity/main.go affinityCookieExpiresRegex",
     {"affinity": "cookie", "session-cookie-max-age": "1h"}, "session-cookie-max-age",
     'invalid max age "1h"', "default", "affinity.cookie.max_age", None),
    ("sessionaffinity/main.go: SameSite none, lax or strict",
     {"affinity": "cookie", "session-cookie-samesite": "sometimes"}, "session-cookie-samesite",
     'invalid SameSite "sometimes"', "default", "affinity.cookie.samesite", ""),
    ("loadbalancing/main.go returns the validation error", {"load-balance": "least_conn"},
     "load-balance", 'invalid algorithm "least_conn"', "refused", "balancing.load_balance",
     None),
    ("upstreamhashby/main.go returns the validation error", {"upstream-hash-by": "$a;b"},
     "upstream-hash-by", 'invalid hash key "$a;b"', "refused", "balancing.upstream_hash_by", ""),
    ("seaway cannot expand every nginx variable", {"upstream-hash-by": "$ssl_session_id"},
     "upstream-hash-by", 'unsupported nginx variable $ssl_session_id in "$ssl_session_id"',
     "default", "balancing.upstream_hash_by", ""),
    ("ipallowlist/main.go: LocationDenied -> 503 on every path",
     {"allowlist-source-range": "10.0.0.0/33"}, "allowlist-source-range",
     'invalid CIDR list "10.0.0.0/33"', "denied", "source_ranges.allow", None),
    ("ipdenylist/main.go: LocationDenied", {"denylist-source-range": "10.0.0.0/8,"},
     "denylist-source-range", 'invalid CIDR list "10.0.0.0/8,"', "denied",
     "source_ranges.deny", None),
    ("auth/main_test.go TestIngressAuthBadAuthType", {"auth-type": "invalid"}, "auth-type",
     'invalid auth type "invalid"', "refused", "basic_auth", None),
    ("auth/main_test.go TestIngressInvalidRealm",
     {"auth-type": "basic", "auth-secret": "s", "auth-realm": "something weird ; location"},
     "auth-realm", 'invalid realm "something weird ; location"', "refused", "basic_auth.realm",
     ""),
    ("auth/main_test.go TestIngressInvalidSecretName",
     {"auth-type": "basic", "auth-secret": "demo-secret;xpto"}, "auth-secret",
     'invalid Secret reference "demo-secret;xpto"', "denied", "basic_auth", None),
    ("authreq/main_test.go TestAnnotations: invalid URL characters -> rejected",
     {"auth-url": "http://foo.com/external-auth#x"}, "auth-url",
     'invalid URL "http://foo.com/external-auth#x"', "refused", "external_auth", None),
    ("parser/main_test.go TestStringToURL 'invalid host (multiple dots)' -> denied",
     {"auth-url": "http://foo..bar.com"}, "auth-url", 'invalid URL "http://foo..bar.com"',
     "denied", "external_auth", None),
    ("authreq/main.go: invalid HTTP method -> denied",
     {"auth-url": "http://a.example/auth", "auth-method": "FOO"}, "auth-method",
     'invalid HTTP method "FOO"', "denied", "external_auth.method", ""),
    ("authreq/main_test.go TestHeaderAnnotations: invalid headers list -> denied",
     {"auth-url": "http://a.example/auth", "auth-response-headers": "h1, $h2"},
     "auth-response-headers", 'invalid header list "h1, $h2"', "denied",
     "external_auth.response_headers", ()),
    ("authreq/main.go: invalid signin is dropped",
     {"auth-url": "http://a.example/auth", "auth-signin": "http://a.example/#x"},
     "auth-signin", 'invalid URL "http://a.example/#x"', "default", "external_auth.signin", ""),
    ("ratelimit/main.go returns the validation error", {"limit-rps": "lots"}, "limit-rps",
     'invalid rate "lots"', "refused", "rate_limit", RateLimit()),
    ("ratelimit/main.go: burst multiplier -> 5", {"limit-rps": "5",
                                                  "limit-burst-multiplier": "x"},
     "limit-burst-multiplier", 'invalid multiplier "x"', "default",
     "rate_limit.burst_multiplier", 5),
    ("ratelimit/main.go ValidateCIDRs", {"limit-rps": "5", "limit-allowlist": "10.0.0.0/8,x"},
     "limit-allowlist", 'invalid CIDR list "10.0.0.0/8,x"', "refused", "rate_limit.allowlist",
     ()),
    ("cors/main_test.go TestIngressCorsConfigInvalid (with enable-cors true)",
     {"enable-cors": "true", "cors-allow-headers": "@alright, #ingress"}, "cors-allow-headers",
     'invalid list "@alright, #ingress"', "default", "cors.allow_headers",
     DEFAULT_CORS_HEADERS),
    ("cors/main_test.go TestIngressCorsConfigInvalid", {"enable-cors": "true",
                                                         "cors-allow-methods": "GET, $nginx"},
     "cors-allow-methods", 'invalid list "GET, $nginx"', "default", "cors.allow_methods",
     DEFAULT_CORS_METHODS),
    ("cors/main_test.go TestIngressCorsConfigInvalid", {"enable-cors": "true",
                                                         "cors-max-age": "abcd"},
     "cors-max-age", 'invalid max age "abcd"', "default", "cors.max_age", 1728000),
    ("cors/main_test.go TestIngressCorsConfigInvalid", {"enable-cors": "true",
                                                         "cors-allow-credentials": "no"},
     "cors-allow-credentials", 'invalid boolean "no"', "default", "cors.allow_credentials",
     True),
    ("cors/main.go corsOriginRegexValidator: * only alone; invalid -> *",
     {"enable-cors": "true", "cors-allow-origin": "https://a.b, *"}, "cors-allow-origin",
     'invalid origin list "https://a.b, *"', "default", "cors.allow_origin", ("*",)),
    ("cors/main.go corsOriginRegex: an origin without scheme is skipped",
     {"enable-cors": "true", "cors-allow-origin": "origin123.test.com:4443"},
     "cors-allow-origin", 'invalid origin "origin123.test.com:4443"', "default",
     "cors.allow_origin", ()),
    ("sslpassthrough/main.go returns the validation error", {"ssl-passthrough": "maybe"},
     "ssl-passthrough", 'invalid boolean "maybe"', "refused", "ssl_passthrough", False),
]


@pytest.mark.parametrize(("source", "annotations", "key", "message", "effect", "path", "after"),
                         INVALID)
def test_invalid(
    source: str,
    annotations: dict[str, str],
    key: str,
    message: str,
    effect: str,
    path: str,
    after: Any,
) -> None:
    parsed = parse(annotations)
    problems = [p for p in parsed.problems if p.annotation == P + key]
    assert [(p.message, p.effect) for p in problems] == [(message, effect)], source
    assert str(problems[0]) == f"default/web: metadata.annotations[{P}{key}]: {message}"
    assert problems[0].hint
    assert field(parsed, path) == after, source
    assert P + key not in parsed.recognised
    assert parsed.served is (effect != "refused")
    assert bool(parsed.denied) is (effect == "denied")


def test_the_brief_example_line() -> None:
    (problem,) = parse({"proxy-body-size": "10x"}).problems
    assert str(problem) == (
        "default/web: metadata.annotations[nginx.ingress.kubernetes.io/proxy-body-size]: "
        'invalid size "10x"'
    )


def test_defaults() -> None:
    """Nothing set: every group at ingress-nginx's defaults; unset values (None) defer to
    the ConfigMap. An Ingress without prefixed annotations shares one object."""
    assert parse({}) is NO_ANNOTATIONS
    assert parse_annotations({"other.io/x": "1"}, "default", "web") is NO_ANNOTATIONS
    d = NO_ANNOTATIONS
    assert d.limits.body_size is None and d.limits.read_timeout is None
    assert d.redirects.ssl_redirect is None and d.redirects.redirect is None
    assert d.canary == Canary(False, 0, 100, "", "", "", "")  # canary/main.go defaults
    assert d.affinity.cookie.name == "INGRESSCOOKIE"  # sessionaffinity defaultAffinityCookieName
    assert d.affinity.mode == "balanced" and d.affinity.canary_behavior == "sticky"
    assert d.cors == Cors(False, ("*",), DEFAULT_CORS_METHODS, DEFAULT_CORS_HEADERS, "", True,
                          1728000)
    assert DEFAULT_CORS_METHODS == "GET, PUT, POST, DELETE, PATCH, OPTIONS"  # annotations.md
    assert d.rate_limit == RateLimit(0, 0, 0, 5, ()) and not d.rate_limit.active
    assert d.backends.protocol == "HTTP" and d.backends.custom_http_errors is None
    assert d.source_ranges.allow is None and d.basic_auth is None and d.external_auth is None
    assert d.served and not d.has_findings


@pytest.mark.parametrize(
    ("annotations", "key", "reason"),
    [
        # canary/main.go: "configured but not enabled" -> the canary config is dropped
        ({"canary-weight": "20"}, "canary-weight", 'canary is not "true"'),
        ({"canary": "false", "canary-by-header": "X"}, "canary-by-header", 'canary is not "true"'),
        ({"cors-max-age": "60"}, "cors-max-age", 'enable-cors is not "true"'),
        ({"session-cookie-name": "S"}, "session-cookie-name", 'affinity is not "cookie"'),
        ({"auth-secret": "s"}, "auth-secret", "auth-type is not set"),
        ({"auth-method": "GET"}, "auth-method", "auth-url is not set"),
        ({"limit-whitelist": "10.0.0.0/8"}, "limit-whitelist", "no limit-rps, limit-rpm"),
        ({"permanent-redirect-code": "308"}, "permanent-redirect-code",
         "permanent-redirect is not set"),
        ({"temporal-redirect": "http://a.b", "permanent-redirect": "http://c.d"},
         "permanent-redirect", "temporal-redirect is set"),
        ({"upstream-hash-by-subset": "true"}, "upstream-hash-by-subset",
         "upstream-hash-by is not set"),
        ({"canary": "true", "canary-by-header-value": "v"}, "canary-by-header-value",
         "canary-by-header is not set"),
        ({"canary": "true", "canary-by-header": "H", "canary-by-header-value": "v",
          "canary-by-header-pattern": "p"}, "canary-by-header-pattern",
         "canary-by-header-value is set"),
        ({"proxy-ssl-verify": "on"}, "proxy-ssl-verify", "proxy-ssl-secret is not set"),
        ({"proxy-ssl-secret": "default/ca"}, "proxy-ssl-secret", "backend-protocol is not HTTPS"),
        ({"allowlist-source-range": "10.0.0.0/8", "whitelist-source-range": "10.0.0.0/16"},
         "whitelist-source-range", "allowlist-source-range is set"),
        # parser/main.go checkAnnotation: an empty value is no value
        ({"proxy-body-size": ""}, "proxy-body-size", "empty value"),
        ({"mirror-target": "http://m"}, "mirror-target", "not supported: request mirroring"),
        ({"proxy-buffering": "on"}, "proxy-buffering", "not supported: nginx buffer tuning"),
        ({"auth-tls-secret": "ns/ca"}, "auth-tls-secret", "not supported: client certificate"),
        ({"no-such-thing": "1"}, "no-such-thing", "unknown: not an annotation ingress-nginx"),
    ],
)
def test_ignored_with_reason(annotations: dict[str, str], key: str, reason: str) -> None:
    parsed = parse(annotations)
    reasons = {i.key: i.reason for i in parsed.ignored}
    assert reason in reasons[P + key]
    assert P + key not in parsed.recognised
    assert parsed.problems == () and parsed.served


@pytest.mark.parametrize(
    "snippet", ["configuration-snippet", "server-snippet", "auth-snippet", "stream-snippet",
                "modsecurity-snippet"],
)
def test_snippets_refuse_the_ingress(snippet: str) -> None:
    """controller.go CheckIngress: 'annotation cannot be used. Snippet directives are
    disabled by the Ingress administrator' (allow-snippet-annotations false, the default;
    e2e annotations/snippet.go). The message names the annotation."""
    parsed = parse({snippet: 'more_set_headers "X: y";', "use-regex": "true"})
    assert not parsed.served
    (refusal,) = parsed.refusals
    assert refusal.startswith(f"metadata.annotations[{P}{snippet}]: a snippet is nginx ")
    assert P + snippet not in parsed.recognised


@pytest.mark.parametrize("protocol", ["GRPC", "grpcs", "FCGI"])
def test_backend_protocols_seaway_cannot_speak_refuse_the_ingress(protocol: str) -> None:
    """e2e annotations/grpc.go needs HTTP/2 to the pod: reported, never served as HTTP/1.1."""
    parsed = parse({"backend-protocol": protocol})
    assert not parsed.served
    (refusal,) = parsed.refusals
    assert f"backend-protocol {protocol.upper()} needs" in refusal


def test_digest_auth_and_cross_namespace_secrets_deny_every_path() -> None:
    """auth/main_test.go TestIngressInvalidDifferentNamespace: another namespace's Secret
    is refused (allow-cross-namespace-resources false); digest is not implemented. Both
    fail closed: 503 on every path, never unprotected."""
    cross = parse({"auth-type": "basic", "auth-secret": "other/users"})
    assert cross.served and cross.basic_auth is None
    assert cross.denied == (
        f"metadata.annotations[{P}auth-secret]: Secret other/users is in another namespace, "
        "which is not allowed",
    )
    digest = parse({"auth-type": "digest", "auth-secret": "users"})
    assert digest.basic_auth is None and "digest authentication" in digest.denied[0]
    missing = parse({"auth-type": "basic"})  # auth/main_test.go TestInvalidIngressAuthNoSecret
    assert missing.denied == (f"metadata.annotations[{P}auth-secret]: auth-type basic needs "
                              "auth-secret",)
    other_ns = parse({"auth-type": "basic", "auth-secret": "other/users"}, namespace="other")
    assert other_ns.basic_auth == BasicAuth("other", "users") and not other_ns.denied


def test_external_auth_with_variables_seaway_cannot_expand_is_denied() -> None:
    parsed = parse({"auth-url": "http://$upstream_addr/auth"})
    assert parsed.external_auth is None
    assert parsed.denied and "$upstream_addr" in parsed.denied[0]


def test_a_canary_ingress_keeps_only_canary_affinity_and_balancing() -> None:
    """annotations.md#canary: 'all the other non-canary annotations will be ignored
    (inherited from the corresponding main ingress) except load-balance, upstream-hash-by,
    and annotations related to session affinity'."""
    parsed = parse({
        "canary": "true", "canary-weight": "10", "rewrite-target": "/", "enable-cors": "true",
        "load-balance": "ewma", "affinity": "cookie", "session-cookie-name": "C",
    })
    assert parsed.canary.weight == 10 and parsed.balancing.load_balance == "ewma"
    assert parsed.affinity.cookie.name == "C"
    assert parsed.rewrite.rewrite_target == "" and not parsed.cors.enabled
    reasons = {i.key: i.reason for i in parsed.ignored}
    assert "canary Ingress takes this from the main Ingress" in reasons[P + "rewrite-target"]
    assert set(parsed.recognised) == {P + k for k in ("canary", "canary-weight", "load-balance",
                                                      "affinity", "session-cookie-name")}


def test_ssl_passthrough_makes_every_other_annotation_moot() -> None:
    """annotations.md#ssl-passthrough: 'using SSL Passthrough invalidates all the other
    annotations set on an Ingress object'."""
    parsed = parse({"ssl-passthrough": "true", "proxy-body-size": "1k", "enable-cors": "true"})
    assert parsed.ssl_passthrough and parsed.limits.body_size is None
    assert parsed.recognised == (P + "ssl-passthrough",)
    assert {i.key for i in parsed.ignored} == {P + "proxy-body-size", P + "enable-cors"}


def test_ssl_passthrough_without_the_flag_is_ignored_and_the_rest_acts() -> None:
    """cmd/nginx/flags.go: --enable-ssl-passthrough (default false) starts the TCP proxy
    that reads SNI; without it the annotation changes nothing and nginx serves the host
    with every other annotation, TLS terminated."""
    parsed = parse({"ssl-passthrough": "true", "proxy-body-size": "1k"}, ssl_passthrough=False)
    assert not parsed.ssl_passthrough and parsed.limits.body_size == 1024
    assert parsed.recognised == (P + "proxy-body-size",)
    (ignored,) = parsed.ignored
    assert ignored.key == P + "ssl-passthrough" and "--enable-ssl-passthrough" in ignored.reason
    bad = parse({"ssl-passthrough": "maybe"}, ssl_passthrough=False)
    assert bad.refusals, "an invalid value is refused with or without the flag"


def test_annotations_prefix() -> None:
    """--annotations-prefix (ingress-nginx cli-arguments.md): only that prefix is read;
    keys under the default prefix are listed as not read."""
    annotations = {"custom.io/use-regex": "true", P + "rewrite-target": "/"}
    parsed = parse_annotations(annotations, "default", "web", prefix="custom.io")
    assert parsed.rewrite.use_regex and parsed.rewrite.rewrite_target == ""
    assert parsed.recognised == ("custom.io/use-regex",)
    (ignored,) = parsed.ignored
    assert ignored.key == P + "rewrite-target" and "custom.io" in ignored.reason
    plain = parse_annotations(annotations, "default", "web")
    assert plain.recognised == (P + "rewrite-target",) and plain.ignored == ()
