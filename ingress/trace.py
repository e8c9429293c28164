"""Pure: explain where an HTTP request would go (`seaway trace --url`).

The owned Ingresses are translated and compiled exactly as the proxy does, and the
compiled table is asked to explain the request (Host header, target, method, headers):
every route it tried, in order, and why each lost; then what the winner does: the
Service port and its usable endpoints, a redirect, a fixed answer, or why the proxy
answers 404, 503 or 500 itself. What the route's annotations do to this request is
shown filter by filter (the HTTPS redirect and a CORS preflight answer it; the rewrite
says the target the backend gets), with the ConfigMap's defaults. Translation warnings
about the host are added as notes.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from discovery.ownership import DEFAULT_CONTROLLER
from discovery.snapshot import Snapshot
from ingress.filter_headers import PREFLIGHT_STATUS, cors_origin
from ingress.filter_text import describe
from ingress.route_actions import (
    forwarded_prefix,
    https_redirect_location,
    redirect_location,
    rewrite_target,
    split_target,
)
from ingress.route_filters import Cors, Filter, HttpsRedirect, Rewrite
from ingress.route_match import Explanation, RouteResult, Verdict, compile_table
from ingress.routes import FixedResponse, Forward, PathMatch, Redirect, RouteTable
from ingress.translate_ingress import translate_ingresses

MAX_VERDICTS = 12  # routes listed one by one; beyond, those whose path differs are counted


class TraceError(ValueError):
    """The URL cannot be a request the proxy would see."""


def split_url(url: str) -> tuple[str, str, str, str]:
    """(scheme, Host header, path, query) of an http(s) URL."""
    parts = urlsplit(url if "://" in url else "http://" + url)
    if parts.scheme not in ("http", "https"):
        raise TraceError(f"{url!r}: only http:// and https:// URLs are served")
    if not parts.netloc:
        raise TraceError(f"{url!r}: no host")
    return parts.scheme, parts.netloc, parts.path or "/", parts.query


def trace_request(
    snapshot: Snapshot,
    url: str,
    controller: str = DEFAULT_CONTROLLER,
    watch_without_class: bool = False,
    method: str = "GET",
    headers: Sequence[tuple[str, str]] = (),
) -> list[str]:
    """Lines that explain the route of a request for `url`."""
    scheme, host, path, query = split_url(url)
    translation = translate_ingresses(snapshot, controller, watch_without_class)
    table = compile_table(translation.table)
    fields: dict[bytes, bytes] = {}
    for name, value in headers:
        fields.setdefault(name.strip().lower().encode(), value.strip().encode())
    target = (path + ("?" + query if query else "")).encode()
    explained = table.explain(host.encode(), target, method.upper().encode(), fields.get)
    extra = "".join(f", {n.decode()}: {v.decode()}" for n, v in fields.items())
    extra = (f", method {method.upper()}" if method.upper() != "GET" else "") + extra
    lines = [f"request {scheme}://{host}{path} (Host: {host}, path {path}{extra})"]
    bare = explained.host.decode("latin-1")
    if scheme == "https":
        lines.append(f"  TLS: {_certificate(snapshot, translation.table, bare)}")
    result = explained.result
    if result.origin is not None:
        lines.append(f"  matched {result.source}")
    request = _Request(scheme, host, target, method.upper(), fields)
    acting, answered = _filters(result, request)
    lines += acting
    lines += answered or _outcome(result, explained, scheme, host, target)
    listener = translation.table.listeners[0] if translation.table.listeners else None
    if listener is not None and listener.filters and result.status == 0 and not answered:
        own = {type(f) for f in result.filters}
        shown = [describe(f) for f in listener.filters if type(f) not in own]
        if shown:
            lines.append("  defaults (ingress-nginx ConfigMap): " + "; ".join(shown))
    lines += _others(explained.verdicts)
    for warning in translation.warnings:
        if bare in warning:
            lines.append(f"  note: {warning}")
    return lines


class _Request:
    __slots__ = ("fields", "host", "method", "scheme", "target")

    def __init__(
        self, scheme: str, host: str, target: bytes, method: str, fields: dict[bytes, bytes]
    ) -> None:
        self.scheme, self.host, self.target = scheme, host, target
        self.method, self.fields = method, fields


def _filters(result: RouteResult, request: _Request) -> tuple[list[str], list[str]]:
    """(a line per filter of the route: what it does to this request; the answer when
    one of them answers the request itself, else [])."""
    lines: list[str] = []
    for f in result.filters:
        answer = _answer(f, request)
        if answer:
            lines.append(f"  {describe(f)}")
            return lines, [answer]
        if isinstance(f, Rewrite) and result.route is not None:
            lines.append(f"  {_rewritten(f, result.route.match.path, request)}")
        else:
            lines.append(f"  {describe(f)}{_effect(f, request)}")
    return lines, []


def _answer(f: Filter, request: _Request) -> str:
    """The answer a filter gives the request by itself, or ""."""
    if isinstance(f, HttpsRedirect) and request.scheme == "http":
        where = https_redirect_location(f, request.host.encode(), request.target)
        return f"  -> {f.status} redirect to {where.decode('latin-1')}"
    allowed = isinstance(f, Cors) and cors_origin(f, request.fields.get(b"origin")) is not None
    if allowed and request.method == "OPTIONS":
        return f"  -> {PREFLIGHT_STATUS} CORS preflight answered by seaway"
    return ""


def _rewritten(f: Rewrite, matched: PathMatch, request: _Request) -> str:
    """What the backend is asked instead of the request (rewrite-target, upstream-vhost,
    x-forwarded-prefix)."""
    target = rewrite_target(f.path, request.target, matched) if f.path else request.target
    line = f"rewrite: the backend is asked for {target.decode('latin-1')}"
    if f.hostname:
        line += f" with Host: {f.hostname}"
    prefix = forwarded_prefix(f, split_target(request.target)[0])
    if prefix is not None:
        line += f", X-Forwarded-Prefix: {prefix.decode('latin-1')}"
    return line


def _effect(f: Filter, request: _Request) -> str:
    """What a filter that lets the request through does to it, as ": ..." or ""."""
    if isinstance(f, HttpsRedirect):
        return ": the request came over HTTPS, so it passes"
    if isinstance(f, Cors):
        allowed = cors_origin(f, request.fields.get(b"origin"))
        return f": Access-Control-Allow-Origin {allowed.decode('latin-1')}" if allowed else (
            ": this Origin gets no CORS headers"
        )
    return ""


def _outcome(
    result: RouteResult, explained: Explanation, scheme: str, host: str, target: bytes
) -> list[str]:
    action = result.action
    if result.split is not None:
        total = result.cumulative[-1]
        shares = ", ".join(
            f"{r.key} {r.backend.weight if r.backend else 0}/{total}" for r in result.split
        )
        return [f"  backends by weight: {shares}", "  -> forwarded to one of them by weight"]
    if isinstance(action, Redirect):
        matched = result.route.match.path if result.route is not None else PathMatch()
        where = redirect_location(action, scheme.encode(), host.encode(), target, matched)
        return [f"  -> {result.status} redirect to {where.decode('latin-1')}"]
    if isinstance(action, FixedResponse) and result.origin is not None:
        return [f"  -> {result.status} answered by seaway (fixed response)"]
    if result.status == 0:
        eps = ", ".join(e.address for e in result.endpoints)
        return [
            f"  backend {result.key} (service port {result.service})",
            f"  -> forwarded, round robin over {len(result.endpoints)} endpoint(s): {eps}",
        ]
    if result.origin is None:
        path = explained.path.decode("latin-1")
        return [
            f"  no rule of an Ingress seaway owns matches host {host!r} and path {path!r}, "
            "and there is no defaultBackend",
            f"  -> {result.status} from seaway",
        ]
    backend = result.backend
    if backend is not None:
        why = f"  backend {result.key} {backend.reason}"
    elif isinstance(action, Forward) and not action.backends:
        why = "  the route names no backend"
    else:
        why = "  no backend of the route has a weight above 0"
    return [why, f"  -> {result.status} from seaway"]


def _others(verdicts: tuple[Verdict, ...]) -> list[str]:
    """The routes that lost, and why (path mismatches counted when there are many)."""
    losers = [v for v in verdicts if v.why]
    if not losers:
        return []
    lines = ["  routes that lost, in the order tried:"]
    hidden = 0
    for v in losers:
        if len(losers) > MAX_VERDICTS and v.why.startswith("path "):
            hidden += 1
            continue
        lines.append(f"    [{v.host}] {v.result.source}: {v.why}")
    if hidden:
        lines.append(f"    ... and {hidden} more whose path does not match")
    return lines


def _certificate(snapshot: Snapshot, table: RouteTable, name: str) -> str:
    """Which certificate a handshake with SNI `name` gets (as ingress/tls.py chooses)."""
    hosts = table.tls_hosts()
    dot = name.find(".")
    for pattern in (name, "*" + name[dot:] if dot > 0 else ""):
        secret = hosts.get(pattern)
        if secret is None:
            continue
        ns, secret_name = secret
        if secret in snapshot.tls_secrets:
            return f"certificate from Secret {ns}/{secret_name} (spec.tls host {pattern})"
        return (
            f"Secret {ns}/{secret_name} (spec.tls host {pattern}) is missing: the default "
            "certificate is served"
        )
    return (
        "no spec.tls host matches: the default certificate (the first usable Secret the "
        "owned Ingresses name, else a self-signed one)"
    )
