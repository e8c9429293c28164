"""Every annotation and ConfigMap key ingress-nginx documents, and what seaway does with it.

The source of truth for three things: the reason `seaway check` gives for an ignored
annotation or key, the README's migration tables (tests/discovery/test_nginx_catalog.py
compares them), and which names are ingress-nginx's at all (anything else under the
prefix is reported as unknown). Names come from ingress-nginx's
docs/user-guide/nginx-configuration/annotations.md and configmap.md, plus the few its
parsers read without documenting them (allowlist-source-range, limit-allowlist,
relative-redirects, ...).

Status "parsed": seaway reads and validates the value exactly as ingress-nginx does.
`TRANSLATED` says which parsed names the Ingress translator (ingress/translate_ingress.py)
turns into route-table matches, actions and filters, and whether that acts on traffic
now (matching and backend choice) or waits for the hot path to run the filter; a parsed
name not there is still only planned. "refused": the Ingress is not served. Anything
else: not supported, and the text says why.
"""

from __future__ import annotations

PARSED = "parsed"
REFUSED = "refused"

_BUFFERS = "nginx buffer tuning: seaway streams bodies both ways with flow control"
_AUTH_TLS = "client certificate (mTLS) authentication is not implemented"
_AUTH_CACHE = "auth-url answers are not cached: every request asks the auth service"
_AUTH_KEEPALIVE = "nginx's keep-alive to auth-url: seaway's upstream pool decides"
_TRACING = "no tracing (OpenTelemetry) in seaway"
_WAF = "no web application firewall (ModSecurity) in seaway"
_MIRROR = "request mirroring is not implemented"
_LOGS = (
    "per-Ingress logging switches: seaway's access log (--access-log) has every request or "
    "none; `seaway trace --url` shows what a rewrite does"
)
_FASTCGI = "no FastCGI: backend-protocol FCGI refuses the Ingress"
_SNIPPET = (
    "a snippet is nginx configuration text, and seaway never runs annotation text as "
    "configuration: the Ingress is refused (ingress-nginx refuses it too by default)"
)

# annotation (without prefix) -> PARSED, REFUSED, or why it is not supported
ANNOTATIONS: dict[str, str] = {
    # paths and rewrites
    "app-root": PARSED,
    "rewrite-target": PARSED,
    "use-regex": PARSED,
    "x-forwarded-prefix": PARSED,
    "preserve-trailing-slash": PARSED,
    # redirects
    "ssl-redirect": PARSED,
    "force-ssl-redirect": PARSED,
    "permanent-redirect": PARSED,
    "permanent-redirect-code": PARSED,
    "temporal-redirect": PARSED,
    "temporal-redirect-code": PARSED,
    "from-to-www-redirect": PARSED,
    "relative-redirects": PARSED,
    "use-port-in-redirects": "redirects seaway makes use the Host header as received",
    # limits and timeouts
    "proxy-body-size": PARSED,
    "proxy-connect-timeout": PARSED,
    "proxy-read-timeout": PARSED,
    "proxy-send-timeout": PARSED,
    "proxy-next-upstream-tries": PARSED,
    "proxy-next-upstream": PARSED,
    "proxy-next-upstream-timeout": PARSED,
    "client-body-buffer-size": _BUFFERS,
    "proxy-buffering": _BUFFERS,
    "proxy-buffers-number": _BUFFERS,
    "proxy-buffer-size": _BUFFERS,
    "proxy-busy-buffers-size": _BUFFERS,
    "proxy-max-temp-file-size": _BUFFERS,
    "proxy-request-buffering": _BUFFERS,
    "limit-rate": "response bandwidth limits are not implemented",
    "limit-rate-after": "response bandwidth limits are not implemented",
    # backends
    "backend-protocol": PARSED,
    "upstream-vhost": PARSED,
    "service-upstream": PARSED,
    "default-backend": PARSED,
    "server-alias": PARSED,
    "custom-http-errors": PARSED,
    "proxy-ssl-secret": PARSED,
    "proxy-ssl-verify": PARSED,
    "proxy-ssl-verify-depth": PARSED,
    "proxy-ssl-name": PARSED,
    "proxy-ssl-server-name": PARSED,
    "proxy-ssl-ciphers": "TLS to pods uses Python's ssl defaults (TLS 1.2 and up)",
    "proxy-ssl-protocols": "TLS to pods uses Python's ssl defaults (TLS 1.2 and up)",
    "proxy-http-version": "seaway speaks HTTP/1.1 to backends",
    "proxy-cookie-domain": "Set-Cookie rewriting is not implemented",
    "proxy-cookie-path": "Set-Cookie rewriting is not implemented",
    "proxy-redirect-from": "Location rewriting is not implemented",
    "proxy-redirect-to": "Location rewriting is not implemented",
    "connection-proxy-header": "seaway handles Connection itself (Upgrade is tunnelled)",
    "custom-headers": "response headers from a ConfigMap are not implemented",
    "disable-proxy-intercept-errors": "custom-http-errors always intercepts in seaway",
    "fastcgi-index": _FASTCGI,
    "fastcgi-params-configmap": _FASTCGI,
    "http2-push-preload": "no HTTP/2 (and browsers dropped server push)",
    # traffic
    "canary": PARSED,
    "canary-weight": PARSED,
    "canary-weight-total": PARSED,
    "canary-by-header": PARSED,
    "canary-by-header-value": PARSED,
    "canary-by-header-pattern": PARSED,
    "canary-by-cookie": PARSED,
    "affinity": PARSED,
    "affinity-mode": PARSED,
    "affinity-canary-behavior": PARSED,
    "session-cookie-name": PARSED,
    "session-cookie-path": PARSED,
    "session-cookie-domain": PARSED,
    "session-cookie-max-age": PARSED,
    "session-cookie-expires": PARSED,
    "session-cookie-samesite": PARSED,
    "session-cookie-conditional-samesite-none": PARSED,
    "session-cookie-secure": PARSED,
    "session-cookie-change-on-failure": PARSED,
    "upstream-hash-by": PARSED,
    "upstream-hash-by-subset": PARSED,
    "upstream-hash-by-subset-size": PARSED,
    "load-balance": PARSED,
    # access
    "allowlist-source-range": PARSED,
    "whitelist-source-range": PARSED,
    "denylist-source-range": PARSED,
    "auth-type": PARSED,
    "auth-secret": PARSED,
    "auth-secret-type": PARSED,
    "auth-realm": PARSED,
    "auth-url": PARSED,
    "auth-method": PARSED,
    "auth-signin": PARSED,
    "auth-signin-redirect-param": PARSED,
    "auth-response-headers": PARSED,
    "auth-request-redirect": PARSED,
    "auth-always-set-cookie": PARSED,
    "auth-cache-key": _AUTH_CACHE,
    "auth-cache-duration": _AUTH_CACHE,
    "auth-keepalive": _AUTH_KEEPALIVE,
    "auth-keepalive-share-vars": _AUTH_KEEPALIVE,
    "auth-keepalive-requests": _AUTH_KEEPALIVE,
    "auth-keepalive-timeout": _AUTH_KEEPALIVE,
    "auth-proxy-set-headers": "headers for the auth service from a ConfigMap are not implemented",
    "enable-global-auth": "the ConfigMap's global-auth-url is not supported, so there is "
    "nothing to turn off",
    "satisfy": "access rules always all apply (satisfy all); any is not implemented",
    "auth-tls-secret": _AUTH_TLS,
    "auth-tls-verify-depth": _AUTH_TLS,
    "auth-tls-verify-client": _AUTH_TLS,
    "auth-tls-error-page": _AUTH_TLS,
    "auth-tls-pass-certificate-to-upstream": _AUTH_TLS,
    "auth-tls-match-cn": _AUTH_TLS,
    "limit-rps": PARSED,
    "limit-rpm": PARSED,
    "limit-connections": PARSED,
    "limit-burst-multiplier": PARSED,
    "limit-allowlist": PARSED,
    "limit-whitelist": PARSED,
    "enable-cors": PARSED,
    "cors-allow-origin": PARSED,
    "cors-allow-methods": PARSED,
    "cors-allow-headers": PARSED,
    "cors-expose-headers": PARSED,
    "cors-allow-credentials": PARSED,
    "cors-max-age": PARSED,
    # TLS
    "ssl-passthrough": PARSED,
    "ssl-ciphers": "TLS settings are global in seaway, not per Ingress",
    "ssl-prefer-server-ciphers": "TLS settings are global in seaway, not per Ingress",
    # snippets: refused
    "configuration-snippet": REFUSED,
    "server-snippet": REFUSED,
    "auth-snippet": REFUSED,
    "stream-snippet": REFUSED,
    "modsecurity-snippet": REFUSED,
    # observability and the rest
    "enable-access-log": _LOGS,
    "enable-rewrite-log": _LOGS,
    "enable-opentelemetry": _TRACING,
    "opentelemetry-trust-incoming-span": _TRACING,
    "opentelemetry-operation-name": _TRACING,
    "enable-modsecurity": _WAF,
    "enable-owasp-core-rules": _WAF,
    "modsecurity-transaction-id": _WAF,
    "mirror-target": _MIRROR,
    "mirror-request-body": _MIRROR,
    "mirror-host": _MIRROR,
}

SNIPPET_REASON = _SNIPPET

_NGINX = "nginx process tuning: not applicable to seaway"
_LOG = "logging is seaway's own: --access-log (a file or stdout), --access-log-format, -v"
_LOG_PATH = "the access log is a flag: --access-log PATH (or - for stdout)"
_LOG_OFF = "seaway's access log is off unless --access-log is given"
_LOG_FORMAT = "the access log's format is a flag: --access-log-format (combined or json)"
_TLS = "TLS tuning: seaway uses Python's ssl defaults (TLS 1.2 and up)"
_HTTP2 = "no HTTP/2 in seaway yet"
_COMPRESSION = "response compression is not implemented"
_GEOIP = "GeoIP is not implemented"
_GLOBAL_AUTH = "global external auth is not implemented (per-Ingress auth-url is)"
_STREAM = "TCP/UDP services of the controller (--tcp-services-configmap) are not supported"
_KEEPALIVE = "seaway's upstream keep-alive pool has its own settings"
_CM_SNIPPET = "snippets are nginx configuration text: never run by seaway"
_HEADERS_CM = "header sets from other ConfigMaps are not implemented"

# ConfigMap key -> PARSED or why it is not supported
CONFIGMAP_KEYS: dict[str, str] = {
    "add-headers": _HEADERS_CM,
    "allow-backend-server-header": "the backend's Server header is always passed through",
    "allow-cross-namespace-resources": "cross-namespace references in annotations are "
    "always refused (ingress-nginx's default)",
    "allow-snippet-annotations": PARSED,
    "annotations-risk-level": "seaway accepts every annotation it implements and refuses "
    "snippets (ingress-nginx's default level High does the same)",
    "annotation-value-word-blocklist": "annotation values are never configuration text in "
    "seaway, so there is nothing to block",
    "hide-headers": "response header hiding is not implemented",
    "access-log-params": _LOG,
    "access-log-path": _LOG_PATH,
    "http-access-log-path": _LOG_PATH,
    "stream-access-log-path": _LOG,
    "enable-access-log-for-default-backend": _LOG,
    "error-log-path": _LOG,
    "enable-modsecurity": _WAF,
    "modsecurity-snippet": _CM_SNIPPET,
    "enable-owasp-modsecurity-crs": _WAF,
    "client-header-buffer-size": "request head limits are fixed: 8 KiB target, 32 KiB head",
    "client-header-timeout": "the request head must arrive within 10 s (fixed)",
    "client-body-buffer-size": _BUFFERS,
    "client-body-timeout": "not implemented: bodies stream with flow control",
    "disable-access-log": _LOG_OFF,
    "disable-ipv6": "listeners are set with --http-bind-address / --https-bind-address",
    "disable-ipv6-dns": _NGINX,
    "enable-underscores-in-headers": "header names with underscores are accepted and passed",
    "enable-ocsp": "OCSP stapling is not implemented",
    "ignore-invalid-headers": "invalid header names are refused with 400 (strict parsing)",
    "retry-non-idempotent": PARSED,
    "error-log-level": "use seaway -v/--log-level",
    "http2-max-field-size": _HTTP2,
    "http2-max-header-size": _HTTP2,
    "http2-max-requests": _HTTP2,
    "http2-max-concurrent-streams": _HTTP2,
    "hsts": PARSED,
    "hsts-include-subdomains": PARSED,
    "hsts-max-age": PARSED,
    "hsts-preload": PARSED,
    "keep-alive": "idle client keep-alive is 75 s (fixed, nginx's default too)",
    "keep-alive-requests": "no per-connection request limit",
    "large-client-header-buffers": "request head limits are fixed: 8 KiB target, 32 KiB head",
    "log-format-escape-none": _LOG_FORMAT,
    "log-format-escape-json": _LOG_FORMAT,
    "log-format-upstream": _LOG_FORMAT,
    "log-format-stream": _LOG,
    "enable-multi-accept": _NGINX,
    "max-worker-connections": _NGINX,
    "max-worker-open-files": _NGINX,
    "map-hash-bucket-size": _NGINX,
    "nginx-status-ipv4-whitelist": "seaway's status is on --metrics-bind-address",
    "nginx-status-ipv6-whitelist": "seaway's status is on --metrics-bind-address",
    "proxy-real-ip-cidr": PARSED,
    "proxy-set-headers": _HEADERS_CM,
    "server-name-hash-max-size": _NGINX,
    "server-name-hash-bucket-size": _NGINX,
    "proxy-headers-hash-max-size": _NGINX,
    "proxy-headers-hash-bucket-size": _NGINX,
    "reuse-port": "seaway's workers always share listeners with SO_REUSEPORT",
    "server-tokens": "seaway adds no Server header of its own",
    "ssl-ciphers": _TLS,
    "ssl-ecdh-curve": _TLS,
    "ssl-dh-param": _TLS,
    "ssl-protocols": _TLS,
    "ssl-session-cache": _TLS,
    "ssl-session-cache-size": _TLS,
    "ssl-session-tickets": _TLS,
    "ssl-session-ticket-key": _TLS,
    "ssl-session-timeout": _TLS,
    "ssl-buffer-size": _TLS,
    "use-proxy-protocol": PARSED,
    "proxy-protocol-header-timeout": "the PROXY header must arrive within the request "
    "head timeout (10 s, fixed)",
    "enable-aio-write": _NGINX,
    "use-gzip": _COMPRESSION,
    "use-geoip": _GEOIP,
    "use-geoip2": _GEOIP,
    "geoip2-autoreload-in-minutes": _GEOIP,
    "enable-brotli": _COMPRESSION,
    "brotli-level": _COMPRESSION,
    "brotli-min-length": _COMPRESSION,
    "brotli-types": _COMPRESSION,
    "use-http2": _HTTP2,
    "gzip-disable": _COMPRESSION,
    "gzip-level": _COMPRESSION,
    "gzip-min-length": _COMPRESSION,
    "gzip-types": _COMPRESSION,
    "worker-processes": "use seaway --workers",
    "worker-cpu-affinity": _NGINX,
    "worker-shutdown-timeout": _NGINX,
    "enable-serial-reloads": "seaway applies changes without reloads",
    "load-balance": PARSED,
    "variables-hash-bucket-size": _NGINX,
    "variables-hash-max-size": _NGINX,
    "upstream-keepalive-connections": _KEEPALIVE,
    "upstream-keepalive-time": _KEEPALIVE,
    "upstream-keepalive-timeout": _KEEPALIVE,
    "upstream-keepalive-requests": _KEEPALIVE,
    "limit-conn-zone-variable": "connection limits are always per client address",
    "proxy-stream-timeout": _STREAM,
    "proxy-stream-next-upstream": _STREAM,
    "proxy-stream-next-upstream-timeout": _STREAM,
    "proxy-stream-next-upstream-tries": _STREAM,
    "proxy-stream-responses": _STREAM,
    "bind-address": "listeners are set with --http-bind-address / --https-bind-address",
    "use-forwarded-headers": PARSED,
    "enable-real-ip": PARSED,
    "forwarded-for-header": PARSED,
    "forwarded-for-proxy-protocol-header": "not needed: seaway reads the PROXY address and "
    "forwarded-for-header itself, without nginx's intermediate header",
    "compute-full-forwarded-for": PARSED,
    "proxy-add-original-uri-header": "X-Original-URI is not sent",
    "generate-request-id": "X-Request-ID is not generated",
    "jaeger-collector-host": _TRACING,
    "jaeger-collector-port": _TRACING,
    "jaeger-endpoint": _TRACING,
    "jaeger-service-name": _TRACING,
    "jaeger-propagation-format": _TRACING,
    "jaeger-sampler-type": _TRACING,
    "jaeger-sampler-param": _TRACING,
    "jaeger-sampler-host": _TRACING,
    "jaeger-sampler-port": _TRACING,
    "jaeger-trace-context-header-name": _TRACING,
    "jaeger-debug-header": _TRACING,
    "jaeger-baggage-header": _TRACING,
    "jaeger-trace-baggage-header-prefix": _TRACING,
    "enable-opentelemetry": _TRACING,
    "opentelemetry-trust-incoming-span": _TRACING,
    "opentelemetry-operation-name": _TRACING,
    "opentelemetry-config": _TRACING,
    "otlp-collector-host": _TRACING,
    "otlp-collector-port": _TRACING,
    "otel-max-queuesize": _TRACING,
    "otel-schedule-delay-millis": _TRACING,
    "otel-max-export-batch-size": _TRACING,
    "otel-service-name": _TRACING,
    "otel-sampler": _TRACING,
    "otel-sampler-parent-based": _TRACING,
    "otel-sampler-ratio": _TRACING,
    "main-snippet": _CM_SNIPPET,
    "http-snippet": _CM_SNIPPET,
    "server-snippet": _CM_SNIPPET,
    "stream-snippet": _CM_SNIPPET,
    "location-snippet": _CM_SNIPPET,
    "custom-http-errors": PARSED,
    "proxy-body-size": PARSED,
    "proxy-connect-timeout": PARSED,
    "proxy-read-timeout": PARSED,
    "proxy-send-timeout": PARSED,
    "proxy-buffers-number": _BUFFERS,
    "proxy-buffer-size": _BUFFERS,
    "proxy-busy-buffers-size": _BUFFERS,
    "proxy-cookie-path": "Set-Cookie rewriting is not implemented",
    "proxy-cookie-domain": "Set-Cookie rewriting is not implemented",
    "proxy-next-upstream": PARSED,
    "proxy-next-upstream-timeout": PARSED,
    "proxy-next-upstream-tries": PARSED,
    "proxy-redirect-from": "Location rewriting is not implemented",
    "proxy-request-buffering": _BUFFERS,
    "ssl-redirect": PARSED,
    "force-ssl-redirect": PARSED,
    "denylist-source-range": PARSED,
    "whitelist-source-range": PARSED,
    "skip-access-log-urls": _LOG,
    "limit-rate": "response bandwidth limits are not implemented",
    "limit-rate-after": "response bandwidth limits are not implemented",
    "lua-shared-dicts": "no Lua in seaway",
    "http-redirect-code": PARSED,
    "proxy-buffering": _BUFFERS,
    "limit-req-status-code": PARSED,
    "limit-conn-status-code": PARSED,
    "enable-syslog": _LOG,
    "syslog-host": _LOG,
    "syslog-port": _LOG,
    "no-tls-redirect-locations": PARSED,
    "global-allowed-response-headers": _HEADERS_CM,
    "global-auth-url": _GLOBAL_AUTH,
    "global-auth-method": _GLOBAL_AUTH,
    "global-auth-signin": _GLOBAL_AUTH,
    "global-auth-signin-redirect-param": _GLOBAL_AUTH,
    "global-auth-response-headers": _GLOBAL_AUTH,
    "global-auth-request-redirect": _GLOBAL_AUTH,
    "global-auth-snippet": _CM_SNIPPET,
    "global-auth-cache-key": _GLOBAL_AUTH,
    "global-auth-cache-duration": _GLOBAL_AUTH,
    "no-auth-locations": _GLOBAL_AUTH,
    "block-cidrs": PARSED,
    "block-user-agents": "User-Agent blocking is not implemented",
    "block-referers": "Referer blocking is not implemented",
    "proxy-ssl-location-only": "proxy-ssl-* annotations always apply per path in seaway",
    "default-type": "backend responses pass with the Content-Type they have",
    "service-upstream": PARSED,
    "ssl-reject-handshake": "unknown SNI names get the default certificate",
    "debug-connections": "use seaway -v debug",
    "strict-validate-path-type": "paths are validated as the Kubernetes API does",
    "grpc-buffer-size-kb": _HTTP2,
    "relative-redirects": PARSED,
    # read by ingress-nginx (defaults.Backend) without a row in configmap.md
    "preserve-trailing-slash": PARSED,
}


# What a PARSED name does beyond its ingress-nginx meaning (the README shows it).
ANNOTATION_NOTES: dict[str, str] = {
    "backend-protocol": "HTTP, HTTPS, AUTO_HTTP; GRPC, GRPCS and FCGI refuse the Ingress",
    "auth-type": "basic; digest answers 503 on every path rather than serving unprotected",
    "auth-url": "nginx variables limited to those seaway can expand ($host, $request_uri, ...)",
    "load-balance": "ewma: seaway's EWMA balancer; round_robin: the Service's own balancer, "
    "by default least-request, which picks in round-robin order while nothing is in flight",
    "server-alias": "host names and *.wildcards; nginx regex names are left out",
    "ssl-passthrough": "with --enable-ssl-passthrough, as in ingress-nginx: TLS whose SNI "
    "is the host (exactly) relayed unterminated to its \"/\" path's Service",
    "whitelist-source-range": "alias of allowlist-source-range",
    "limit-whitelist": "alias of limit-allowlist",
    "proxy-send-timeout": "until the request is all read from the client, then "
    "proxy-read-timeout; one idle timer per upstream exchange, reset by reads and writes",
    "proxy-next-upstream": "retries go to an endpoint not tried yet; those of requests "
    "that reached a backend are capped by a retry budget (20% of requests in flight, at "
    "least 3); a stale keep-alive connection is retried once even with off",
    "proxy-ssl-verify-depth": "not enforced: OpenSSL's default depth applies",
    "limit-rps": "per worker process: with N workers a client may get N times the rate",
    "limit-rpm": "per worker process: with N workers a client may get N times the rate",
    "limit-connections": "per worker process; counts requests under way, as nginx",
}
CONFIGMAP_NOTES: dict[str, str] = {
    "allow-snippet-annotations": "only false is honoured: snippets are always refused",
    "proxy-send-timeout": "on every route: until the request is all read from the client, "
    "then proxy-read-timeout; one idle timer per upstream exchange, reset by reads and "
    "writes (set apart from proxy-read-timeout, it gives each route a plan that arms both)",
    "proxy-next-upstream": "retries go to an endpoint not tried yet; those of requests "
    "that reached a backend are capped by a retry budget (20% of requests in flight, at "
    "least 3); a stale keep-alive connection is retried once even with off",
    "retry-non-idempotent": "a POST or PATCH body is sent again only when it was whole "
    "and at most 64 KiB as it first went out",
    "load-balance": "ewma: seaway's EWMA balancer; round_robin: the Service's own balancer, "
    "by default least-request, which picks in round-robin order while nothing is in flight",
    "use-proxy-protocol": "v1 and v2 on the HTTP and HTTPS listeners, before TLS; a "
    "connection without the header is closed; the address is used when the peer is in "
    "proxy-real-ip-cidr, as nginx's realip",
    "use-forwarded-headers": "X-Forwarded-For/-Proto/-Host/-Port of trusted peers sent on; "
    "Proto decides the HTTPS redirect; with use-proxy-protocol and no X-Forwarded-For the "
    "PROXY address is the client (nginx: the balancer's)",
    "enable-real-ip": "client address from forwarded-for-header, nginx realip recursive",
    "forwarded-for-header": "read for the client address; X-Original-Forwarded-For is sent "
    "from X-Forwarded-For only",
    "proxy-real-ip-cidr": "the trusted proxies (nginx set_real_ip_from)",
    "compute-full-forwarded-for": "with use-forwarded-headers, as ingress-nginx",
}


ACTS = "translated, acts now"
PENDING = "translated; runtime pending"

# Translated names that do not act at request time yet (none left: load-balance's ewma
# became the Backend's EWMA balancer).
_PENDING: tuple[str, ...] = ()
# Parsed annotations the translator handles (all of them).
TRANSLATED: dict[str, str] = {
    name: PENDING if name in _PENDING else ACTS
    for name, status in ANNOTATIONS.items()
    if status == PARSED
}
# ConfigMap keys the translator applies: as the listener's filters (body size, timeouts,
# tries, HSTS, global custom errors and address lists) or the defaults of the annotations.
# The client-address keys become the Ingress listener's ClientAddress
# (ingress/client_address.py).
TRANSLATED_KEYS: dict[str, str] = {
    **{
        key: PENDING if key in _PENDING else ACTS
        for key in (
            "proxy-body-size",
            "proxy-connect-timeout",
            "proxy-read-timeout",
            "proxy-send-timeout",
            "proxy-next-upstream-tries",
            "proxy-next-upstream",
            "proxy-next-upstream-timeout",
            "retry-non-idempotent",
            "ssl-redirect",
            "force-ssl-redirect",
            "preserve-trailing-slash",
            "relative-redirects",
            "http-redirect-code",
            "no-tls-redirect-locations",
            "hsts",
            "hsts-max-age",
            "hsts-include-subdomains",
            "hsts-preload",
            "custom-http-errors",
            "limit-req-status-code",
            "limit-conn-status-code",
            "load-balance",
            "whitelist-source-range",
            "denylist-source-range",
            "block-cidrs",
        )
    },
    "service-upstream": ACTS,
    "allow-snippet-annotations": ACTS,
    **{
        key: ACTS
        for key in (
            "use-proxy-protocol",
            "use-forwarded-headers",
            "enable-real-ip",
            "forwarded-for-header",
            "proxy-real-ip-cidr",
            "compute-full-forwarded-for",
        )
    },
}


def readme_status(status: str, note: str = "", translated: str = "") -> str:
    """The status column of the README's migration tables."""
    if status == PARSED:
        return (translated or "planned: parsed + validated") + (f" ({note})" if note else "")
    if status == REFUSED:
        return "refused: the Ingress is not served (snippet)"
    return "not supported: " + status


def annotation_status(name: str) -> str | None:
    """PARSED, REFUSED, a reason, or None for a name ingress-nginx does not have."""
    return ANNOTATIONS.get(name)


def configmap_status(key: str) -> str | None:
    return CONFIGMAP_KEYS.get(key)
