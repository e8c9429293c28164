"""ingress-nginx's global settings: its controller ConfigMap (--configmap NAMESPACE/NAME)
read as ingress-nginx's template/configmap.go ReadConfig reads it, into
`NginxGlobalSettings` (pure, no I/O).

When seaway answers to ingress-nginx (`IngressNginxMode.enabled`: --ingress-controller
k8s.io/ingress-nginx, or --configmap given), every key the ConfigMap leaves out takes
ingress-nginx's documented default (config.NewDefault): a migrating user keeps the
behaviour they had, defaults included (a 1m body limit, the 308 HTTPS redirect, HSTS on
HTTPS answers). Otherwise there are no global settings (`None`) and seaway's own
defaults stand.

Values are decoded as ingress-nginx's mapstructure decoder does (weakly typed): booleans
with Go's strconv.ParseBool, integers with strconv.ParseInt(base 0) so "0x10" is 16,
and an empty value is false / 0. A value that does not decode keeps the default and is
reported, as ingress-nginx logs it; a value only nginx would have refused at reload (a
body size of "10x", a CIDR that is not one) is reported here the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from discovery.nginx_catalog import configmap_status
from discovery.nginx_settings import DEFAULT_PREFIX, Ignored
from discovery.nginx_values import (
    NEXT_UPSTREAM,
    NEXT_UPSTREAM_HINT,
    go_bool,
    go_int,
    go_int_any_base,
    matches,
    nginx_size,
    parse_cidr_list,
    quote,
)

INGRESS_NGINX_CONTROLLER = "k8s.io/ingress-nginx"
Bad = Callable[[str, str, str, str], None]  # reports (key, value, what, hint)
LOAD_BALANCE = ("round_robin", "ewma")


@dataclass(frozen=True, slots=True)
class IngressNginxMode:
    """How seaway reads ingress-nginx configuration (from --annotations-prefix,
    --configmap and --ingress-controller)."""

    annotations_prefix: str = DEFAULT_PREFIX
    configmap: tuple[str, str] | None = None  # (namespace, name)
    enabled: bool = False  # global settings with ingress-nginx's defaults
    ssl_passthrough: bool = False  # --enable-ssl-passthrough: the annotation acts

    @classmethod
    def from_flags(
        cls,
        prefix: str,
        configmap: tuple[str, str] | None,
        controller: str,
        ssl_passthrough: bool = False,
    ) -> IngressNginxMode:
        enabled = configmap is not None or controller == INGRESS_NGINX_CONTROLLER
        return cls(prefix, configmap, enabled, ssl_passthrough)


@dataclass(frozen=True, slots=True)
class SettingProblem:
    """An invalid ConfigMap value; `str()` is the line `seaway check` prints."""

    configmap: str  # "namespace/name"
    key: str
    message: str
    hint: str = ""

    def __str__(self) -> str:
        return f"ConfigMap {self.configmap}: data[{self.key}]: {self.message}"


@dataclass(frozen=True, slots=True)
class NginxGlobalSettings:
    """ingress-nginx's global settings with its defaults; each annotation left unset on
    an Ingress (None in `IngressAnnotations`) takes the value here.

    Redirects: ssl_redirect (hosts with TLS) and force_ssl_redirect (all hosts) answer
    http_redirect_code (308), except for paths under no_tls_redirect_locations.
    HSTS (`Strict-Transport-Security: max-age=...; includeSubDomains[; preload]`) is added
    to HTTPS answers only.
    Client address: the connection's; with use_proxy_protocol, the PROXY header's (v1 or
    v2; a connection without one is refused); with use_forwarded_headers (or
    enable_real_ip) and the peer inside proxy_real_ip_cidr, the last untrusted address of
    forwarded_for_header (real_ip_recursive). That address is what allow/deny lists, rate
    limits and X-Real-IP see. X-Forwarded-For sent upstream is that address alone, or the
    incoming header plus it with compute_full_forwarded_for (and use_forwarded_headers).
    custom_http_errors: upstream codes answered by the default backend instead.
    Rate limits answer limit_req_status_code / limit_conn_status_code."""

    source: str = "ingress-nginx defaults"
    proxy_body_size: int = 1024 * 1024
    proxy_connect_timeout: int = 5
    proxy_read_timeout: int = 60
    proxy_send_timeout: int = 60
    proxy_next_upstream_tries: int = 3
    proxy_next_upstream: str = "error timeout"
    proxy_next_upstream_timeout: int = 0
    retry_non_idempotent: bool = False
    ssl_redirect: bool = True
    force_ssl_redirect: bool = False
    preserve_trailing_slash: bool = False
    relative_redirects: bool = False
    http_redirect_code: int = 308
    no_tls_redirect_locations: tuple[str, ...] = ("/.well-known/acme-challenge",)
    hsts: bool = True
    hsts_max_age: int = 31536000
    hsts_include_subdomains: bool = True
    hsts_preload: bool = False
    use_forwarded_headers: bool = False
    compute_full_forwarded_for: bool = False
    forwarded_for_header: str = "X-Forwarded-For"
    enable_real_ip: bool = False
    proxy_real_ip_cidr: tuple[str, ...] = ("0.0.0.0/0",)
    use_proxy_protocol: bool = False
    custom_http_errors: tuple[int, ...] = ()
    limit_req_status_code: int = 503
    limit_conn_status_code: int = 503
    load_balance: str = "round_robin"
    service_upstream: bool = False
    whitelist_source_range: tuple[str, ...] = ()
    denylist_source_range: tuple[str, ...] = ()
    block_cidrs: tuple[str, ...] = ()
    # What `seaway check` reports about the ConfigMap.
    recognised: tuple[str, ...] = ()
    ignored: tuple[Ignored, ...] = field(default=())
    problems: tuple[SettingProblem, ...] = ()


INGRESS_NGINX_DEFAULTS = NginxGlobalSettings()

_BOOLS = (
    "ssl-redirect",
    "force-ssl-redirect",
    "preserve-trailing-slash",
    "relative-redirects",
    "hsts",
    "hsts-include-subdomains",
    "hsts-preload",
    "use-forwarded-headers",
    "compute-full-forwarded-for",
    "enable-real-ip",
    "use-proxy-protocol",
    "service-upstream",
    "retry-non-idempotent",
)
_SECONDS = (
    "proxy-connect-timeout",
    "proxy-read-timeout",
    "proxy-send-timeout",
    "proxy-next-upstream-timeout",
)
_CIDR_LISTS = (
    "proxy-real-ip-cidr",
    "whitelist-source-range",
    "denylist-source-range",
    "block-cidrs",
)
_STATUS_CODES = ("limit-req-status-code", "limit-conn-status-code")


def global_settings(
    mode: IngressNginxMode, configmap_data: Mapping[str, str] | None
) -> NginxGlobalSettings | None:
    """The global settings for `mode`: None when seaway is not in ingress-nginx mode;
    ingress-nginx's defaults when the named ConfigMap does not exist (yet)."""
    if not mode.enabled:
        return None
    if mode.configmap is None:
        return INGRESS_NGINX_DEFAULTS
    ref = "/".join(mode.configmap)
    if configmap_data is None:
        return NginxGlobalSettings(source=f"ingress-nginx defaults (ConfigMap {ref} not found)")
    return parse_nginx_configmap(configmap_data, ref)


def parse_nginx_configmap(data: Mapping[str, str], ref: str) -> NginxGlobalSettings:
    """An ingress-nginx controller ConfigMap's data -> settings; `ref` "namespace/name"."""
    values: dict[str, object] = {}
    recognised: list[str] = []
    ignored: list[Ignored] = []
    problems: list[SettingProblem] = []

    def bad(key: str, value: str, what: str, hint: str) -> None:
        problems.append(SettingProblem(ref, key, f"invalid {what} {quote(value)}", hint))

    for key in sorted(data):
        value = data[key]
        parsed = _parse_key(key, value, bad)
        status = configmap_status(key)
        if parsed is _UNKNOWN:
            if status is None:
                reason = "unknown: not a key of ingress-nginx's ConfigMap"
            else:
                reason = "not supported: " + status
            ignored.append(Ignored(key, reason))
        elif parsed is not _INVALID:
            if key == "allow-snippet-annotations" and parsed is True:
                ignored.append(Ignored(key, "only false is honoured: seaway never runs snippets"))
                continue
            values[key.replace("-", "_")] = parsed
            recognised.append(key)
    values.pop("allow_snippet_annotations", None)
    return NginxGlobalSettings(
        source=f"ConfigMap {ref}",
        recognised=tuple(recognised),
        ignored=tuple(ignored),
        problems=tuple(problems),
        **values,  # type: ignore[arg-type]
    )


_UNKNOWN = object()
_INVALID = object()


def _parse_key(key: str, value: str, bad: Bad) -> object:
    """The typed value of one key, _INVALID (reported through `bad`), or _UNKNOWN."""
    if key in _BOOLS or key == "allow-snippet-annotations":
        parsed = False if value == "" else go_bool(value)
        if parsed is None:
            bad(key, value, "boolean", 'use "true" or "false"')
            return _INVALID
        return parsed
    if key in _SECONDS or key == "proxy-next-upstream-tries" or key in _STATUS_CODES:
        number = 0 if value == "" else go_int_any_base(value)
        low, high = (100, 599) if key in _STATUS_CODES else (0, 2**31)
        if number is None or not low <= number <= high:
            if key in _STATUS_CODES:
                bad(key, value, "status code", "an HTTP status code such as 429")
            elif key in _SECONDS:
                bad(key, value, "timeout", "whole seconds, e.g. 60 (no unit)")
            else:
                bad(key, value, "number", "a whole number")
            return _INVALID
        return number
    if key in _CIDR_LISTS:
        entries = ",".join(p.strip() for p in value.split(",") if p.strip())
        cidrs, error = parse_cidr_list(entries)
        if error:
            bad(key, value, "CIDR list", error)
            return _INVALID
        return cidrs
    return _parse_other(key, value, bad)


def _parse_other(key: str, value: str, bad: Bad) -> object:
    if key == "proxy-body-size":
        size = nginx_size(value)
        if size is None:
            bad(key, value, "size", 'bytes, or a number with k, m or g ("8m"); 0 = unlimited')
            return _INVALID
        return size
    if key == "hsts-max-age":
        seconds = go_int(value.strip())
        if seconds is None or seconds < 0:
            bad(key, value, "max age", "whole seconds")
            return _INVALID
        return seconds
    if key == "http-redirect-code":
        code = go_int(value)
        if code not in (301, 302, 307, 308):
            bad(key, value, "redirect code", "301, 302, 307 or 308; 308 is used")
            return _INVALID
        return code
    if key == "custom-http-errors":
        codes: list[int] = []
        for part in (p.strip() for p in value.split(",")):
            code = go_int(part) if part else None
            if code is not None and 299 < code < 600:
                codes.append(code)
            elif part:
                bad(key, part, "HTTP status code", "300-599; that code is left out")
        return tuple(codes)
    if key == "no-tls-redirect-locations":
        return tuple(p.strip() for p in value.split(",") if p.strip())
    if key == "forwarded-for-header":
        if not value.strip():
            bad(key, value, "header name", "a header name such as X-Forwarded-For")
            return _INVALID
        return value.strip()
    if key == "proxy-next-upstream":
        words = value.strip()
        if not matches(NEXT_UPSTREAM, words):
            bad(key, value, "condition list", NEXT_UPSTREAM_HINT)
            return _INVALID
        return words
    if key == "load-balance":
        if value.strip() not in LOAD_BALANCE:
            bad(key, value, "algorithm", "round_robin or ewma")
            return _INVALID
        return value.strip()
    return _UNKNOWN
