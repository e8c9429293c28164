"""Pure: explain where an HTTP request would go (`seaway trace --url`).

The owned Ingresses (and, with a GatewayConfig, seaway's Gateways and their HTTPRoutes)
are translated and compiled exactly as the proxy does, and the listener the request
arrives on is asked to explain it (Host header, target, method, headers): every route it
tried, in order, and why each lost; then what the winner does: the Service port and its
usable endpoints, a redirect, a fixed answer, or why the proxy answers 404, 503 or 500
itself. What the route's filters (an Ingress's annotations, an HTTPRoute's filters) do
to this request is shown filter by filter (the HTTPS redirect and a CORS preflight answer
it; the rewrite says the target the backend gets), with the ConfigMap's defaults.
Translation warnings about the host are added as notes. An https:// URL whose host is an
ssl-passthrough host is not routed at all: the relay and its backend are shown.

Which listener: `listener` names one ("ingress", a Gateway socket "ADDRESS:PORT" or its
model name "gateway ADDRESS:PORT"); otherwise the Gateway socket on the URL's port
(default 80/443) whose address is the URL's host, or the only one on that port, or the
one bound to every address; with none, the Ingress listener. On a Gateway socket the
Gateway listener that takes the host (its most specific hostname) is named, and its
HTTPRoute rules are the routes tried, in the spec's precedence.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from discovery.gateway_attach import GatewayConfig, attach_gateways
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
from ingress.route_match import (
    CompiledTable,
    Explanation,
    RouteResult,
    Verdict,
    compile_table,
    normalize_host,
)
from ingress.routes import FixedResponse, Forward, Listener, PathMatch, Redirect, RouteTable
from ingress.translate_gateway import (
    GATEWAY_LISTENER_PREFIX,
    GatewayTranslation,
    covers,
    host_rank,
    listener_name,
    translate_gateways,
)
from ingress.translate_ingress import INGRESS_LISTENER, translate_ingresses

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
    gateway: GatewayConfig | None = None,
    listener: str = "",
) -> list[str]:
    """Lines that explain the route of a request for `url` (see the module docstring)."""
    scheme, host, path, query = split_url(url)
    translation = translate_ingresses(snapshot, controller, watch_without_class)
    gateways = None
    if gateway is not None:
        gateways = translate_gateways(snapshot, attach_gateways(snapshot, gateway))
    sockets = gateways.listeners if gateways is not None else ()
    chosen = choose_listener(sockets, scheme, host, listener)
    fields: dict[bytes, bytes] = {}
    for name, value in headers:
        fields.setdefault(name.strip().lower().encode(), value.strip().encode())
    target = (path + ("?" + query if query else "")).encode()
    how = (host.encode(), target, method.upper().encode(), fields.get)
    if chosen is None:
        compiled = compile_table(translation.table)
        if scheme == "https":
            relayed = _passthrough(compiled, normalize_host(host.encode()).decode("latin-1"))
            if relayed:
                return [f"request {scheme}://{host}{path} (SNI {host.split(':')[0]})", *relayed]
        explained = compiled.explain(*how)
    else:
        matcher = compile_table(RouteTable((chosen,))).listener(chosen.name)
        assert matcher is not None
        explained = matcher.explain(*how)
    extra = "".join(f", {n.decode()}: {v.decode()}" for n, v in fields.items())
    extra = (f", method {method.upper()}" if method.upper() != "GET" else "") + extra
    lines = [f"request {scheme}://{host}{path} (Host: {host}, path {path}{extra})"]
    bare = explained.host.decode("latin-1")
    if chosen is not None and gateways is not None:
        lines += _gateway_listener(chosen, gateways, bare)
    if scheme == "https" and chosen is not None:
        lines.append(f"  TLS: {_gateway_certificate(chosen, bare)}")
    elif scheme == "https":
        lines.append(f"  TLS: {_certificate(snapshot, translation.table, bare)}")
    result = explained.result
    if result.origin is not None and result.origin.kind == "Gateway":
        # A Gateway listener's closing 404 (translate_gateway): no rule of its routes.
        lines += [f"  {result.origin.text}", f"  -> {result.status} from seaway"]
    else:
        if result.origin is not None:
            lines.append(f"  matched {result.source}")
        request = _Request(scheme, host, target, method.upper(), fields)
        acting, answered = _filters(result, request)
        lines += acting
        lines += answered or _outcome(result, explained, scheme, host, target, chosen is not None)
        ingress = translation.table.listeners[0] if translation.table.listeners else None
        served = chosen if chosen is not None else ingress
        if served is not None and served.filters and result.status == 0 and not answered:
            own = {type(f) for f in result.filters}
            shown = [describe(f) for f in served.filters if type(f) not in own]
            if shown:
                lines.append("  defaults (ingress-nginx ConfigMap): " + "; ".join(shown))
    lines += _others(explained.verdicts)
    warnings = translation.warnings if chosen is None else gateways.warnings if gateways else ()
    for warning in warnings:
        if bare in warning:
            lines.append(f"  note: {warning}")
    return lines


def choose_listener(
    sockets: Sequence[Listener], scheme: str, host: str, wanted: str = ""
) -> Listener | None:
    """The Gateway socket a request for `host` (Host header form) arrives on, or None for
    the Ingress listener (see the module docstring). Raises TraceError when `wanted`
    names nothing, or when the URL's port is served by several sockets."""
    if wanted:
        if wanted == INGRESS_LISTENER:
            return None
        for model in sockets:
            if wanted in (model.name, model.name.removeprefix(GATEWAY_LISTENER_PREFIX)):
                return model
        names = ", ".join([INGRESS_LISTENER, *(m.name for m in sockets)])
        raise TraceError(f"--listener {wanted!r}: no such listener (there are: {names})")
    name = normalize_host(host.encode()).decode("latin-1").strip("[]")
    port_text = host.rpartition(":")[2] if not host.endswith("]") else ""
    port = int(port_text) if port_text.isdigit() else (443 if scheme == "https" else 80)
    here = [m for m in sockets if m.port == port]
    exact = [m for m in here if m.address == name]
    if exact:
        return exact[0]
    if len(here) == 1:
        return here[0]
    anywhere = [m for m in here if m.address in ("0.0.0.0", "::")]
    if len(anywhere) == 1:
        return anywhere[0]
    if here:
        names = ", ".join(m.name.removeprefix(GATEWAY_LISTENER_PREFIX) for m in here)
        raise TraceError(f"port {port} is served by several Gateways ({names}): pick one "
                         "with --listener ADDRESS:PORT")  # fmt: skip
    return None


def _gateway_listener(model: Listener, gateways: GatewayTranslation, host: str) -> list[str]:
    """Which Gateway listener of the socket takes `host`."""
    assert model.address is not None and model.port is not None
    members = (gateways.members or {}).get(model.name, ())
    where = listener_name(model.address, model.port).removeprefix(GATEWAY_LISTENER_PREFIX)
    taking = [m for m in members if covers(m.hostname, host)]
    if not taking:
        hosts = ", ".join(m.hostname or "(any)" for m in members)
        return [f"  on {where}: no Gateway listener there takes host {host!r} ({hosts})"]
    owner = max(taking, key=lambda m: host_rank(m.hostname))
    return [
        f"  on {where}: Gateway {owner.gateway} listener {owner.listener} "
        f"(hostname {owner.hostname or '(any)'})"
    ]


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
        return (
            f": Access-Control-Allow-Origin {allowed.decode('latin-1')}"
            if allowed
            else (": this Origin gets no CORS headers")
        )
    return ""


def _passthrough(table: CompiledTable, name: str) -> list[str]:
    """What the HTTPS listener does with a ClientHello for `name` when a passthrough host
    covers it (ingress/passthrough.py); [] when TLS is terminated as usual."""
    main = table.listener(INGRESS_LISTENER)
    sni = main.passthrough if main is not None else None
    result = sni.match(name) if sni is not None else None
    if result is None:
        return []
    lines = [
        "  TLS: not terminated: the ClientHello names a passthrough host, so the connection "
        "is relayed as bytes (the client sees the backend's certificate; no HTTP routing)",
        f"  matched {result.source}",
    ]
    if result.status:
        backend = result.backend
        why = backend.reason if backend is not None else "has no usable backend"
        return [*lines, f"  backend {result.key} {why}", "  -> the connection is reset"]
    eps = ", ".join(e.address for e in result.endpoints)
    return [
        *lines,
        f"  backend {result.key} (service port {result.service})",
        f"  -> relayed, {result.balancing.policy} over {len(result.endpoints)} endpoint(s): "
        f"{eps}",
    ]


def _outcome(
    result: RouteResult,
    explained: Explanation,
    scheme: str,
    host: str,
    target: bytes,
    gateway: bool = False,
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
        lb = result.balancing
        how = f"maglev by {lb.hash_by}" if lb.policy == "maglev" else lb.policy
        return [
            f"  backend {result.key} (service port {result.service})",
            f"  -> forwarded, {how} over {len(result.endpoints)} endpoint(s): {eps}",
        ]
    if result.origin is None:
        path = explained.path.decode("latin-1")
        what = (
            "no rule of an HTTPRoute attached there matches"
            if gateway
            else "no rule of an Ingress seaway owns matches"
        )
        tail = "" if gateway else ", and there is no defaultBackend"
        return [
            f"  {what} host {host!r} and path {path!r}{tail}",
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
    # A Gateway virtual host's closing 404 (translate_gateway) is no route of anyone's.
    losers = [
        v
        for v in verdicts
        if v.why and (v.result.origin is None or v.result.origin.kind != "Gateway")
    ]
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


def _gateway_certificate(model: Listener, name: str) -> str:
    """Which certificate a Gateway socket's handshake with SNI `name` gets: the listener
    with that exact hostname, else the longest wildcard covering it (one or more labels),
    else the listener without hostname (ingress/tls.py, suffix wildcards)."""
    ranked = sorted(
        (c for c in model.certificates if not c.hosts or covers(c.hosts[0], name)),
        key=lambda c: host_rank(c.hosts[0] if c.hosts else ""),
        reverse=True,
    )
    if not ranked:
        return "no listener hostname matches: the socket's first usable certificate"
    cert = ranked[0]
    return f"certificate from Secret {cert.namespace}/{cert.secret} ({cert.source})"
