"""ingress-nginx annotations for paths, redirects, limits and backends: ports of its
parsers rewrite/, xforwardedprefix/, redirect/, proxy/, backendprotocol/,
upstreamvhost/, serviceupstream/, defaultbackend/, alias/, customhttperrors/ and
proxyssl/ (see discovery/nginx_annotations.py for the whole)."""

from __future__ import annotations

import re
from typing import cast
from urllib.parse import urlsplit

from discovery.nginx_reader import AnnotationReader
from discovery.nginx_settings import (
    BackendProtocol,
    Backends,
    PathRewrite,
    ProxyLimits,
    ProxySSL,
    Redirect,
    Redirects,
)
from discovery.nginx_values import (
    BASIC_CHARS,
    NEXT_UPSTREAM,
    NEXT_UPSTREAM_HINT,
    REGEX_PATH_WITH_CAPTURE,
    URL_IS_VALID,
    is_server_name,
    is_service_name,
    matches,
    nginx_size,
    quote,
)

_CUSTOM_ERRORS = re.compile(r"(?:[4,5]\d{2},?)*")
_ON_OFF = re.compile(r"on|off")
_PLAIN_ALIAS = re.compile(r"(\*\.)?[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?")
URL_HINT = "letters, digits and -._~/:,?&= only (no % or #), as ingress-nginx allows"


# -- paths and rewrites (rewrite/, xforwardedprefix/) -------------------------------------


def read_rewrite(r: AnnotationReader) -> PathRewrite:
    target = r.text(
        "rewrite-target",
        REGEX_PATH_WITH_CAPTURE,
        "rewrite target",
        "a path; $1..$n insert the captures of the path's regular expression",
        "default",
    )
    app_root = r.text(
        "app-root",
        lambda v: matches(REGEX_PATH_WITH_CAPTURE, v) and v.strip().startswith("/"),
        "path",
        "a path starting with / (not a URL)",
        "default",
    )
    prefix = r.text(
        "x-forwarded-prefix",
        REGEX_PATH_WITH_CAPTURE,
        "prefix",
        "a path; $1..$n insert the captures of the path's regular expression",
        "refused",
        remove_spaces=True,
    )
    return PathRewrite(
        use_regex=r.flag("use-regex", "default") or False,
        rewrite_target=target or "",
        app_root=app_root or "",
        x_forwarded_prefix=prefix or "",
        preserve_trailing_slash=r.flag("preserve-trailing-slash", "default"),
    )


# -- redirects (rewrite/ for the ssl ones, redirect/) ---------------------------------------


def read_redirects(r: AnnotationReader) -> Redirects:
    ssl_redirect = r.flag("ssl-redirect", "default")
    force = r.flag("force-ssl-redirect", "default")
    www = r.flag("from-to-www-redirect", "refused") or False
    relative = r.flag("relative-redirects", "refused") or False
    redirect: Redirect | None = None
    temporal = r.text("temporal-redirect", url_valid, "URL", URL_HINT, "refused")
    if temporal is not None:
        code = _redirect_code(r, "temporal-redirect-code", 307, 302)
        r.ignore_all(
            ("permanent-redirect", "permanent-redirect-code"),
            "temporal-redirect is set, and wins (ingress-nginx reads it first)",
        )
        scheme = urlsplit(temporal).scheme
        if scheme.startswith("http"):
            redirect = Redirect(temporal, code)
        else:
            r.problem(
                r.key("temporal-redirect"),
                f"invalid redirect URL {quote(temporal)}",
                "default",
                "an http:// or https:// URL; ingress-nginx then ignores every redirect "
                "annotation of the Ingress",
            )
            www = relative = False
    else:
        r.ignore("temporal-redirect-code", "temporal-redirect is not set")
        permanent = r.text("permanent-redirect", url_valid, "URL", URL_HINT, "refused")
        code = _redirect_code(r, "permanent-redirect-code", 308, 301)
        if permanent is not None:
            redirect = Redirect(permanent, code)
        else:
            r.ignore("permanent-redirect-code", "permanent-redirect is not set")
    return Redirects(ssl_redirect, force, redirect, www, relative)


def url_valid(value: str) -> bool:
    return matches(URL_IS_VALID, value)


def _redirect_code(r: AnnotationReader, name: str, highest: int, default: int) -> int:
    code = r.integer(name, "refused", "redirect code", f"300-{highest}")
    if code is None:
        return default
    if not 300 <= code <= highest:
        r.problem(
            r.key(name),
            f"invalid redirect code {quote(str(code))}",
            "default",
            f"300-{highest}; ingress-nginx uses {default} instead",
        )
        return default
    return code


# -- limits and timeouts (proxy/) ------------------------------------------------------------


def read_limits(r: AnnotationReader) -> ProxyLimits:
    size = r.text(
        "proxy-body-size",
        lambda v: nginx_size(v) is not None,
        "size",
        'bytes, or a number with k, m or g ("8m"); 0 = unlimited',
        "default",
    )
    seconds = "whole seconds, e.g. 60 (no unit)"
    return ProxyLimits(
        body_size=nginx_size(size) if size is not None else None,
        connect_timeout=r.integer("proxy-connect-timeout", "default", "timeout", seconds, 0),
        read_timeout=r.integer("proxy-read-timeout", "default", "timeout", seconds, 0),
        send_timeout=r.integer("proxy-send-timeout", "default", "timeout", seconds, 0),
        next_upstream_tries=r.integer(
            "proxy-next-upstream-tries", "default", "number of tries", "a whole number", 0
        ),
        next_upstream=r.text(
            "proxy-next-upstream", NEXT_UPSTREAM, "condition list", NEXT_UPSTREAM_HINT, "default"
        ),
        next_upstream_timeout=r.integer(
            "proxy-next-upstream-timeout", "default", "timeout", seconds, 0
        ),
    )


# -- backends (backendprotocol/, upstreamvhost/, serviceupstream/, defaultbackend/, alias/,
#    customhttperrors/, proxyssl/) -------------------------------------------------------


def read_backends(r: AnnotationReader, namespace: str) -> Backends:
    protocol = r.choice(
        "backend-protocol",
        ("http", "https", "auto_http", "grpc", "grpcs", "fcgi"),
        "backend protocol",
        "default",
        case_sensitive=False,
        hint="HTTP, HTTPS, AUTO_HTTP (GRPC, GRPCS and FCGI are not supported)",
    )
    proto = cast(BackendProtocol, protocol.upper() if protocol else "HTTP")
    if proto in ("GRPC", "GRPCS", "FCGI"):
        what = "FastCGI" if proto == "FCGI" else "HTTP/2"
        r.refuse(
            r.key("backend-protocol"),
            f"backend-protocol {proto} needs {what} to the pod, which seaway does not speak "
            "yet: the Ingress is not served rather than served wrongly",
        )
    service_upstream = r.flag("service-upstream", "default")
    if service_upstream is None and r.present("service-upstream"):
        service_upstream = False  # ingress-nginx's parser returns false for a bad value
    errors = r.text(
        "custom-http-errors",
        _CUSTOM_ERRORS,
        "HTTP status codes",
        "comma-separated codes 400-599, e.g. 404,503",
        "refused",
        remove_spaces=True,
    )
    return Backends(
        protocol=proto,
        upstream_vhost=r.text(
            "upstream-vhost", is_server_name, "host name", "a host name", "refused"
        )
        or "",
        service_upstream=service_upstream,
        default_backend=r.text(
            "default-backend",
            is_service_name,
            "Service name",
            "the name of a Service in the Ingress's namespace",
            "refused",
        )
        or "",
        server_aliases=_aliases(r),
        custom_http_errors=(
            tuple(int(c) for c in (p.strip() for p in errors.split(",")) if c)
            if errors is not None
            else None
        ),
        proxy_ssl=_proxy_ssl(r, namespace, proto),
    )


def _aliases(r: AnnotationReader) -> tuple[str, ...]:
    value = r.text(
        "server-alias",
        lambda v: all(is_server_name(part) for part in v.split(",")),
        "server alias list",
        "comma-separated host names",
        "refused",
    )
    if value is None:
        return ()
    aliases = sorted({a.strip() for a in value.split(",") if a.strip()})
    plain = tuple(a.lower() for a in aliases if _PLAIN_ALIAS.fullmatch(a))
    for alias in aliases:
        if not _PLAIN_ALIAS.fullmatch(alias):
            r.problem(
                r.key("server-alias"),
                f"unsupported server alias {quote(alias)}",
                "default",
                "host names and *.wildcards only; nginx regular-expression names are not "
                "supported, so that alias is left out",
            )
    return plain


def _proxy_ssl(r: AnnotationReader, namespace: str, protocol: str) -> ProxySSL | None:
    others = (
        "proxy-ssl-verify",
        "proxy-ssl-verify-depth",
        "proxy-ssl-name",
        "proxy-ssl-server-name",
    )
    secret = r.text(
        "proxy-ssl-secret",
        BASIC_CHARS,
        "Secret reference",
        "namespace/name of a Secret with ca.crt (and tls.crt, tls.key)",
        "refused",
        remove_spaces=True,
    )
    if secret is None:
        r.ignore_all(
            others,
            "proxy-ssl-secret is not set: ingress-nginx then reads no proxy-ssl-* annotation",
        )
        return None
    key = r.key("proxy-ssl-secret")
    parts = secret.split("/")
    if len(parts) != 2 or not all(parts):
        r.problem(key, f"invalid Secret reference {quote(secret)}", "denied", "namespace/name")
        return None
    if parts[0] != namespace:
        r.deny(key, f"Secret {secret} is in another namespace, which is not allowed")
        return None
    if protocol not in ("HTTPS", "AUTO_HTTP"):
        r.ignore_all(("proxy-ssl-secret", *others), "backend-protocol is not HTTPS")
        return None
    verify = r.text(
        "proxy-ssl-verify",
        _ON_OFF,
        "switch",
        '"on" or "off"',
        "default",
        remove_spaces=True,
    )
    name = r.text("proxy-ssl-name", is_server_name, "host name", "a host name", "default")
    sni = r.text(
        "proxy-ssl-server-name",
        _ON_OFF,
        "switch",
        '"on" or "off"',
        "default",
        remove_spaces=True,
    )
    depth = r.integer("proxy-ssl-verify-depth", "default", "depth", "a whole number", 0)
    return ProxySSL(parts[0], parts[1], verify == "on", depth or 1, name or "", sni == "on")
