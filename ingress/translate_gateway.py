"""Gateway API (Gateways and their HTTPRoutes) -> the route model (ingress/routes.py). Pure.

Input: a Snapshot and its GatewayAttachment (discovery/gateway_attach.py: which Gateways
and listeners are seaway's and served, which routes attach to which listener with which
hostnames, every backendRef resolved or not). Output: route model Listeners, one per
socket, beside the Ingress listener in the one RouteTable.

Sockets
    Each served Gateway listener (the Gateway Accepted and Programmed; the listener
    Accepted, Programmed, not Conflicted) is served on each of the Gateway's bind addresses
    (spec.addresses, or --gateway-bind-address) at its port. Listeners of one or several
    Gateways on the same address:port share one socket and one model Listener, named
    ``gateway <address>:<port>``; they all have the same protocol (the attachment marks
    the others Conflicted). HTTPS sockets carry a Certificate per Gateway listener: its
    hostname (or none: the socket's default certificate) and its first valid
    certificateRef.

Which Gateway listener a request belongs to
    A request is served by the Gateway listener whose hostname matches its Host most
    specifically (an exact hostname, then the longest wildcard, then a listener without
    hostname), and only that listener's routes are tried. Wildcards match one or more
    labels ("suffix" virtual hosts). A virtual host is made for every hostname a listener
    or an attached route names (route hostnames intersected with the listener's); it holds
    the routes of the listener that owns that hostname whose hostnames cover it, so a
    request never falls through to another listener's routes (a virtual host of a
    listener with a hostname ends with a 404 for whatever none of its routes matched).

Order within a virtual host (the spec's precedence)
    The route whose matching hostname is the most specific first (an exact name before a
    wildcard, then more characters); then, across all rules of all those routes: an
    Exact path, then PathPrefix by length (longest first), then RegularExpression; then
    a method match; then more header matches; then more query matches; then the oldest
    route (creationTimestamp), then namespace/name; then rule and match order.

What each rule becomes (matches, filters, backends, redirects): ingress/gateway_rules.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from discovery.gateway_attach import (
    GatewayAttachment,
    GatewayState,
    ListenerState,
    RouteState,
    age_key,
)
from discovery.gateway_hostnames import is_wildcard, wildcard_matches
from discovery.model_gateway import HTTPRoute, TLSRoute
from discovery.snapshot import Snapshot
from ingress.backends import ServiceBackends
from ingress.gateway_rules import KIND, RuleTranslator
from ingress.routes import (
    Certificate,
    FixedResponse,
    Listener,
    ObjectReport,
    PassthroughHost,
    PathMatch,
    Route,
    RouteMatch,
    RouteSource,
    VirtualHost,
)

GATEWAY_LISTENER_PREFIX = "gateway "
SERVED_PROTOCOLS = ("HTTP", "HTTPS", "TLS")
KIND_TLS = "TLSRoute"
L4_PROTOCOLS = ("TCP", "UDP")


def listener_name(address: str, port: int) -> str:
    """The model Listener name of a Gateway socket: "gateway 10.0.0.1:80", "gateway [::1]:80"."""
    host = f"[{address}]" if ":" in address else address
    return f"{GATEWAY_LISTENER_PREFIX}{host}:{port}"


@dataclass(frozen=True, slots=True)
class SocketMember:
    """One Gateway listener served on a socket (for messages, trace and tests)."""

    gateway: str  # "namespace/name"
    listener: str
    hostname: str


@dataclass(frozen=True, slots=True)
class GatewayTranslation:
    """The Gateway sockets as model Listeners, and what the translation has to say.

    ``members``: model Listener name -> the Gateway listeners it serves, in precedence
    order. ``services``: (namespace, name) of every Service a backend names.
    ``warnings`` in the order found; ``reports`` the same per HTTPRoute and Gateway.
    """

    listeners: tuple[Listener, ...] = ()
    members: dict[str, tuple[SocketMember, ...]] | None = None
    services: frozenset[tuple[str, str]] = frozenset()
    warnings: tuple[str, ...] = ()
    reports: tuple[ObjectReport, ...] = ()


def translate_gateways(snapshot: Snapshot, attachment: GatewayAttachment) -> GatewayTranslation:
    """The served Gateway listeners of `attachment` as model Listeners (module docstring)."""
    return _Translator(snapshot, attachment).run()


# -- hostname precedence ------------------------------------------------------------------------


def covers(pattern: str, hostname: str) -> bool:
    """Whether every host `hostname` (a name, a wildcard, or "" for any) stands for is
    matched by `pattern` ("" matches everything)."""
    if not pattern:
        return True
    if not hostname:
        return False
    if pattern == hostname:
        return True
    return is_wildcard(pattern) and wildcard_matches(pattern, hostname)


def host_rank(hostname: str) -> tuple[int, int]:
    """Larger is more specific: exact names before wildcards, then more characters; ""
    (any host) last."""
    if not hostname:
        return (-1, 0)
    return (0 if is_wildcard(hostname) else 1, len(hostname))


def match_rank(route: Route) -> tuple[int, int, int, int, int]:
    """The spec's precedence between matches (smaller first): Exact path, PathPrefix by
    length, RegularExpression; then a method; then more headers; then more query params."""
    m = route.match
    kind = {"Exact": 0, "Prefix": 1, "Regex": 2}[m.path.kind]
    length = len(m.path.value) if m.path.kind == "Prefix" else 0
    return (kind, -length, 0 if m.method else 1, -len(m.headers), -len(m.query))


# -- the pieces of one socket -------------------------------------------------------------------


class _Attached:
    """One route attached to one Gateway listener: its hostnames there, and its Routes."""

    __slots__ = ("hostnames", "route", "routes")

    def __init__(self, route: RouteState, hostnames: tuple[str, ...]) -> None:
        self.route = route
        self.hostnames = hostnames  # () = every host the listener takes
        self.routes: list[Route] = []


class _HostIndex:
    """The routes of one Gateway listener by hostname, to find those serving a virtual
    host without trying every route (a listener may have thousands, one host each)."""

    __slots__ = ("_any", "_exact", "_wild")

    def __init__(self, attached: Iterable[_Attached]) -> None:
        self._exact: dict[str, list[_Attached]] = {}
        self._wild: dict[str, list[_Attached]] = {}  # ".example.com" for "*.example.com"
        self._any: list[_Attached] = []
        for item in attached:
            for name in item.hostnames or ("",):
                if not name:
                    self._any.append(item)
                elif is_wildcard(name):
                    self._wild.setdefault(name[1:], []).append(item)
                else:
                    self._exact.setdefault(name, []).append(item)

    def covering(self, key: str) -> list[tuple[_Attached, str]]:
        """The routes serving `key` (a name, a wildcard, or "" for any host), each with its
        most specific hostname that covers it, most specific first."""
        found: dict[int, tuple[_Attached, str]] = {}
        if key and not is_wildcard(key):
            for item in self._exact.get(key, ()):
                found.setdefault(id(item), (item, key))
        if key:
            rest = key[1:] if is_wildcard(key) else key
            dot = 0 if is_wildcard(key) else rest.find(".")
            while dot >= 0:  # the wildcards covering `key`, the longest first
                suffix = rest[dot:]
                for item in self._wild.get(suffix, ()):
                    found.setdefault(id(item), (item, "*" + suffix))
                dot = rest.find(".", dot + 1)
        for item in self._any:
            found.setdefault(id(item), (item, ""))
        return list(found.values())


class _Member:
    __slots__ = ("attached", "gateway", "state")

    def __init__(self, gateway: GatewayState, state: ListenerState) -> None:
        self.gateway = gateway
        self.state = state
        self.attached: dict[tuple[str, str], _Attached] = {}

    @property
    def hostname(self) -> str:
        return self.state.listener.hostname.lower()

    def describe(self) -> SocketMember:
        meta = self.gateway.gateway.meta
        return SocketMember(f"{meta.namespace}/{meta.name}", self.state.name, self.hostname)


class _Socket:
    __slots__ = ("address", "members", "port", "protocol")

    def __init__(self, address: str, port: int, protocol: str) -> None:
        self.address = address
        self.port = port
        self.protocol = protocol
        self.members: list[_Member] = []

    @property
    def name(self) -> str:
        return listener_name(self.address, self.port)

    def owner(self, key: str) -> _Member | None:
        """The Gateway listener that takes requests for `key` (most specific hostname)."""
        found = [m for m in self.members if covers(m.hostname, key)]
        return max(found, key=lambda m: host_rank(m.hostname)) if found else None


class _Translator:
    __slots__ = ("_attachment", "_backends", "_members", "_reports", "_sockets", "_warnings")

    def __init__(self, snapshot: Snapshot, attachment: GatewayAttachment) -> None:
        self._attachment = attachment
        self._backends = ServiceBackends(snapshot)
        self._sockets: dict[tuple[str, int], _Socket] = {}
        self._members: dict[tuple[str, str, str], list[_Member]] = {}
        self._warnings: list[str] = []
        self._reports: dict[tuple[str, str, str], list[str]] = {}

    def _warn(self, kind: str, namespace: str, name: str, text: str) -> None:
        self._warnings.append(text)
        self._reports.setdefault((kind, namespace, name), []).append(text)

    def run(self) -> GatewayTranslation:
        for gateway in self._attachment.gateways:
            self._add_gateway(gateway)
        for route in self._attachment.routes:
            self._attach(route)
        translators: dict[int, RuleTranslator] = {}
        listeners = []
        for sock in self._sockets.values():
            rules = translators.get(sock.port)
            if rules is None:
                rules = translators[sock.port] = RuleTranslator(self._backends, sock.port)
            listeners.append(self._listener(sock, rules))
        for rules in translators.values():
            for (ns, name), texts in rules.warnings.items():
                for text in texts:
                    if text not in self._warnings:
                        self._warn(KIND, ns, name, text)
        reports = tuple(
            ObjectReport(kind, ns, name, tuple(texts))
            for (kind, ns, name), texts in self._reports.items()
        )
        members = {s.name: tuple(m.describe() for m in s.members) for s in self._sockets.values()}
        return GatewayTranslation(
            tuple(listeners),
            members,
            frozenset(self._backends.services),
            tuple(self._warnings),
            reports,
        )

    # -- sockets and members ---------------------------------------------------------------

    def _add_gateway(self, state: GatewayState) -> None:
        meta = state.gateway.meta
        where = f"Gateway {meta.namespace}/{meta.name}"
        if not state.accepted.status or not state.programmed.status:
            why = state.accepted if not state.accepted.status else state.programmed
            self._warn(
                "Gateway", meta.namespace, meta.name,
                f"{where}: not served: {why.reason}: {why.message}".rstrip(": "),
            )  # fmt: skip
            return
        for listener in state.listeners:
            lst = listener.listener
            if lst.protocol in L4_PROTOCOLS:
                continue  # the userspace L4 proxy's (proxy/userspace/gateway_listeners.py)
            problem = _not_served(listener)
            if problem:
                self._warn(
                    "Gateway", meta.namespace, meta.name,
                    f"{where}: listener {lst.name} not served: {problem}",
                )  # fmt: skip
                continue
            for address in state.bind_addresses:
                key = (address, lst.port)
                sock = self._sockets.get(key)
                if sock is None:
                    sock = self._sockets[key] = _Socket(address, lst.port, lst.protocol)
                elif sock.protocol != lst.protocol:
                    self._warn(
                        "Gateway", meta.namespace, meta.name,
                        f"{where}: listener {lst.name} not served: {address}:{lst.port} is "
                        f"already served with protocol {sock.protocol}",
                    )  # fmt: skip
                    continue
                member = _Member(state, listener)
                sock.members.append(member)
                self._members.setdefault((meta.namespace, meta.name, lst.name), []).append(member)

    def _attach(self, route: RouteState) -> None:
        rmeta = route.route.meta
        kind = route.route.kind
        for parent in route.parents:
            if not parent.accepted.status:
                continue
            gmeta = parent.gateway.gateway.meta
            for attached in parent.listeners:
                for member in self._members.get((gmeta.namespace, gmeta.name, attached.name), ()):
                    key = (rmeta.namespace, rmeta.name)
                    found = member.attached.get(key)
                    if found is None:
                        member.attached[key] = _Attached(route, attached.hostnames)
                    elif found.hostnames and attached.hostnames:
                        names = dict.fromkeys((*found.hostnames, *attached.hostnames))
                        found.hostnames = tuple(names)
                    else:  # one of the two parentRefs takes every host
                        found.hostnames = ()
        for number, rule in enumerate(route.rules):
            if rule.problem:
                self._warn(
                    kind, rmeta.namespace, rmeta.name,
                    f"{kind} {rmeta.namespace}/{rmeta.name}: spec.rules[{number}] dropped: "
                    f"{rule.problem}",
                )  # fmt: skip
            for b in (*rule.backends, *rule.mirrors):
                if not b.ok:
                    self._warn(
                        kind, rmeta.namespace, rmeta.name,
                        f"{kind} {rmeta.namespace}/{rmeta.name}: spec.rules[{number}]: "
                        f"{b.reason}: {b.message} (its share of requests gets 500)",
                    )  # fmt: skip

    # -- one socket -> one model Listener ---------------------------------------------------------

    def _listener(self, sock: _Socket, rules: RuleTranslator) -> Listener:
        if sock.protocol == "TLS":
            return self._relay_listener(sock, rules)
        for member in sock.members:
            for attached in member.attached.values():
                state = attached.route
                if not isinstance(state.route, HTTPRoute):
                    continue
                for index, rule in enumerate(state.rules):
                    attached.routes += rules.routes(state.route, index, rule)
        keys: dict[str, None] = {}
        for member in sock.members:
            keys[member.hostname] = None
            for attached in member.attached.values():
                for name in attached.hostnames or ("",):
                    keys[name] = None
        indexes = {id(m): _HostIndex(m.attached.values()) for m in sock.members}
        vhosts = []
        for key in keys:
            owner = sock.owner(key)
            if owner is None:
                continue  # a name no listener of this socket takes
            routes = _ordered(key, indexes[id(owner)])
            if key and not _ends_with_catch_all(routes):
                routes.append(_no_rule(sock, owner, key))
            vhosts.append(VirtualHost((key,) if key else (), tuple(routes), "suffix"))
        https = sock.protocol == "HTTPS"
        return Listener(
            sock.name,
            tuple(vhosts),
            None,
            _certificates(sock) if https else (),
            sock.port,
            sock.address,
            "HTTPS" if https else "HTTP",
        )


    def _relay_listener(self, sock: _Socket, rules: RuleTranslator) -> Listener:
        """A TLS (Passthrough) socket: its TLSRoutes' hostnames, each relayed to the
        backendRefs of the route's first rule; a name two routes claim goes to the
        oldest (routes are attached oldest first), the other is warned."""
        hosts: list[PassthroughHost] = []
        taken: dict[str, str] = {}
        for member in sock.members:
            for attached in member.attached.values():
                route = attached.route.route
                if not isinstance(route, TLSRoute) or not attached.route.rules:
                    continue
                meta = route.meta
                who = f"{KIND_TLS} {meta.namespace}/{meta.name}"
                names = attached.hostnames or ((member.hostname,) if member.hostname else ())
                if not names:
                    self._warn(KIND_TLS, meta.namespace, meta.name,
                               f"{who}: no hostname on the route or listener {member.state.name}: "
                               "seaway relays by SNI name only; not served")  # fmt: skip
                    continue
                mine = []
                for name in names:
                    if name in taken:
                        self._warn(KIND_TLS, meta.namespace, meta.name,
                                   f"{who}: hostname {name} is already relayed for {taken[name]}")
                        continue  # fmt: skip
                    taken[name] = who
                    mine.append(name)
                if len(attached.route.rules) > 1:
                    self._warn(KIND_TLS, meta.namespace, meta.name,
                               f"{who}: only spec.rules[0] is used (a TLSRoute rule has no "
                               "match to choose between rules)")  # fmt: skip
                if mine:
                    source = RouteSource(KIND_TLS, meta.namespace, meta.name, 0, -1,
                                         f"spec.rules[0] ({', '.join(mine)})")
                    forward = rules.forward(attached.route.rules[0])
                    route_model = Route(RouteMatch(), forward, source)
                    hosts.append(PassthroughHost(tuple(mine), route_model, "suffix"))
        return Listener(sock.name, (), None, (), sock.port, sock.address, "TLS",
                        passthrough=tuple(hosts))  # fmt: skip


def _not_served(state: ListenerState) -> str:
    """Why a Gateway listener is not served, or ""."""
    for verdict in (state.accepted, state.programmed):
        if not verdict.status:
            return f"{verdict.reason}: {verdict.message}".rstrip(": ")
    if state.conflicted.status:
        return f"{state.conflicted.reason}: {state.conflicted.message}".rstrip(": ")
    if state.listener.protocol not in SERVED_PROTOCOLS:
        return f"protocol {state.listener.protocol} is not served"
    return ""


def _ordered(key: str, index: _HostIndex) -> list[Route]:
    """The Routes of the routes that serve `key`, in the spec's precedence."""
    ranked = []
    for item, name in index.covering(key):
        exact, length = host_rank(name)
        age = age_key(item.route.route.meta)
        for route in item.routes:
            src = route.source
            ranked.append(((-exact, -length, *match_rank(route), age, src.rule, src.match), route))
    ranked.sort(key=lambda pair: pair[0])
    return [route for _, route in ranked]


def _ends_with_catch_all(routes: list[Route]) -> bool:
    if not routes:
        return False
    m = routes[-1].match
    plain = not (m.method or m.headers or m.query or m.cookies)
    return plain and m.path.kind == "Prefix" and m.path.value.rstrip("/") == ""


def _no_rule(sock: _Socket, owner: _Member, key: str) -> Route:
    """The last route of a virtual host: 404, without falling through to the routes of a
    less specific Gateway listener on the same socket."""
    meta = owner.gateway.gateway.meta
    text = f"listener {owner.state.name} takes host {key}, and no rule of its routes matches"
    source = RouteSource("Gateway", meta.namespace, meta.name, text=text)
    return Route(RouteMatch(PathMatch("Prefix", "/")), FixedResponse(404), source)


def _certificates(sock: _Socket) -> tuple[Certificate, ...]:
    """One Certificate per Gateway listener (its first valid certificateRef), exact
    hostnames first, then wildcards from the longest, then the listener without hostname
    (the socket's default certificate)."""
    certs = []
    for member in sorted(sock.members, key=lambda m: host_rank(m.hostname), reverse=True):
        if not member.state.certificates:
            continue
        secret = member.state.certificates[0].meta
        meta = member.gateway.gateway.meta
        source = f"Gateway {meta.namespace}/{meta.name}: listener {member.state.name}"
        hosts = (member.hostname,) if member.hostname else ()
        certs.append(Certificate(hosts, secret.namespace, secret.name, source))
    return tuple(certs)
