"""The L7 route model: one RouteTable, whatever configured it. Pure data.

Translators (ingress/translate_ingress.py for Ingress; the ingress-nginx annotations and
Gateway API HTTPRoute translators to come) turn Kubernetes objects into a RouteTable;
ingress/route_match.py compiles it for a worker. Workers know nothing of Ingress or
Gateway objects. Every type here is a frozen dataclass that pickles (the daemon sends the
table to its worker processes) and holds no I/O.

Shape::

    RouteTable
      listeners: Listener                  sockets that share one set of routes
        virtual_hosts: VirtualHost         hostnames -> ordered routes
          routes: Route                    RouteMatch -> Action, filters, source
        default: Route | None              no route matched (None: 404)
        certificates: Certificate          SNI name -> TLS Secret
        passthrough: PassthroughHost       SNI name -> relayed unterminated to a backend

Semantics (ingress/route_match.py implements exactly this; `seaway trace --url` shows it):

1. **Host.** The Host header as received, case-insensitive, port and one trailing dot
   ignored ("Shop.Example.com.:8080" is "shop.example.com"; "[::1]:80" is "[::1]"). A
   request without Host is the empty host, which only a catch-all virtual host matches.
2. **Virtual hosts are tried from the most to the least specific**: the one naming the
   exact host; then wildcards, the longest suffix first (a "label" wildcard ``*.a.com``
   matches exactly one more label, as Kubernetes Ingress says; a "suffix" wildcard matches
   one or more, as Gateway API says); then the catch-all (no hostnames). A less specific
   virtual host is tried only when no route of the more specific ones matched: this is
   both Ingress's lookup order and Gateway API's hostname precedence. Then the listener's
   ``default``; without one, 404.
3. **Routes within a virtual host are tried in their order; the first whose match holds
   wins.** Order is the translator's decision and part of the table (the Ingress translator
   puts Exact paths before Prefix paths, longer prefixes first; a Gateway translator sorts
   by the spec's precedence). The matcher finds the same answer as that scan without
   scanning: it indexes exact paths and prefixes and only checks the candidates.
4. **A match holds** when every condition holds: path, method, each header, each query
   parameter and each cookie (an AND). Paths are matched on the raw request target bytes,
   without the query and without percent-decoding; the query is split off once.
5. **The action** of the winner says what to do: Forward to weighted backends, Redirect,
   or answer a FixedResponse; its ``filters`` (ingress/route_filters.py) say what else
   happens on the way. Backends are resolved to endpoints by the translator, so nothing
   is looked up per request.

Where things came from: every Route carries a RouteSource (kind, namespace, name, rule and
match index, readable text) for `seaway trace`, status, logs and metrics labels.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Literal

from discovery.model import DEFAULT_LOAD_BALANCING, LoadBalancing
from discovery.snapshot import EndpointInfo, ServicePortName
from ingress.client_address import SEAWAY_DEFAULT, ClientAddress

if TYPE_CHECKING:
    from ingress.route_filters import Filter

_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


class Compact:
    """Base of the model's dataclasses: they pickle as (class, field values), which is
    several times faster and smaller than the default state dict of a slotted dataclass
    (the daemon pickles the whole table to every worker process on each change)."""

    __slots__ = ()

    def __reduce__(self) -> tuple[type, tuple[Any, ...]]:
        cls = type(self)
        names = _FIELD_NAMES.get(cls)
        if names is None:
            names = _FIELD_NAMES[cls] = tuple(f.name for f in fields(cls))  # type: ignore[arg-type]
        return (cls, tuple([getattr(self, name) for name in names]))


# --- matches -------------------------------------------------------------------------------

PathKind = Literal["Exact", "Prefix", "Regex"]
ValueKind = Literal["Exact", "Regex", "Present"]
WildcardMode = Literal["label", "suffix"]
SecretKey = tuple[str, str]  # (namespace, name)


@dataclass(frozen=True, slots=True)
class PathMatch(Compact):
    """A condition on the request path (the target without its query, not decoded).

    - ``Exact``: the path equals ``value``, case-sensitively.
    - ``Prefix``: element-wise prefix on "/"-separated elements, case-sensitive, a trailing
      slash on either side ignored: ``/foo`` and ``/foo/`` both match ``/foo``, ``/foo/``
      and ``/foo/bar`` but not ``/foobar``; ``/`` matches every path. This is Kubernetes
      Ingress ``Prefix`` and Gateway API ``PathPrefix``.
    - ``Regex``: ``re.search`` of ``value`` over the path bytes, so a pattern is anchored
      only where it says so: ingress-nginx's ``location ~* "^/foo/(.*)"`` is
      ``PathMatch("Regex", "^/foo/(.*)", ignore_case=True)``; a full match is
      ``^(?:...)\\Z``. ``ignore_case`` applies to Regex only.
    """

    kind: PathKind = "Prefix"
    value: str = "/"
    ignore_case: bool = False


@dataclass(frozen=True, slots=True)
class ValueMatch(Compact):
    """A condition on one named request value (see HeaderMatch, QueryMatch, CookieMatch).

    - ``Exact``: the value equals ``value`` (case-insensitively with ``ignore_case``).
    - ``Regex``: ``re.search`` of ``value`` over the received value (anchor it yourself).
    - ``Present``: the value is there, whatever it is (``value`` unused).

    A missing value never matches. Only the first occurrence of the name is considered.
    """

    name: str
    value: str = ""
    kind: ValueKind = "Exact"
    ignore_case: bool = False


@dataclass(frozen=True, slots=True)
class HeaderMatch(ValueMatch):
    """A request header by name (case-insensitive)."""


@dataclass(frozen=True, slots=True)
class QueryMatch(ValueMatch):
    """A query parameter by name (case-sensitive), its value percent-decoded."""


@dataclass(frozen=True, slots=True)
class CookieMatch(ValueMatch):
    """A cookie of the Cookie header by name (ingress-nginx canary-by-cookie)."""


@dataclass(frozen=True, slots=True)
class RouteMatch(Compact):
    """Every condition a request must meet for its Route (all of them)."""

    path: PathMatch = PathMatch()
    method: str = ""  # "" any method, else exactly this one ("GET")
    headers: tuple[HeaderMatch, ...] = ()
    query: tuple[QueryMatch, ...] = ()
    cookies: tuple[CookieMatch, ...] = ()

    @property
    def needs_headers(self) -> bool:
        """Whether testing this match reads request headers (the Cookie header included)."""
        return bool(self.headers or self.cookies)


# --- actions -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Backend(Compact):
    """One destination of a Forward, resolved by the translator.

    ``key`` names it stably across compiles ("namespace/service:port") for per-backend
    balancers, pools and metrics. ``status`` is 0 when it can take traffic; otherwise the
    status to answer when it is chosen (503: missing Service or port, no usable endpoint,
    a resource backend; 500: what Gateway API asks for an invalid backendRef), with
    ``reason`` saying why. ``weight`` shares traffic among the backends of a Forward (0:
    never chosen). ``filters`` apply only when this backend is chosen (Gateway API
    per-backendRef filters), after the route's. ``balancing`` is the Service's choice of
    balancer for its endpoints (seaway.dev/load-balancer, -hash-by).
    """

    key: str
    endpoints: tuple[EndpointInfo, ...] = ()
    service: ServicePortName | None = None
    status: int = 0
    reason: str = ""
    weight: int = 1
    filters: tuple[Filter, ...] = ()
    balancing: LoadBalancing = DEFAULT_LOAD_BALANCING


@dataclass(frozen=True, slots=True)
class Forward(Compact):
    """Proxy to one of ``backends``, chosen by weight (one backend: always that one).

    Canary releases are Forwards too: by weight, a Forward with the stable and the canary
    backend weighted (ingress-nginx canary-weight); by header or cookie, a Route matching
    the header or cookie placed before the stable Route.
    """

    backends: tuple[Backend, ...]


@dataclass(frozen=True, slots=True)
class ReplaceFullPath(Compact):
    """Path becomes ``path`` (Gateway API ReplaceFullPath); the query is kept."""

    path: str


@dataclass(frozen=True, slots=True)
class ReplacePrefix(Compact):
    """The matched Prefix of the route's PathMatch is replaced by ``prefix`` (Gateway API
    ReplacePrefixMatch): ``/foo/bar`` matched by ``/foo`` with ``/xyz`` becomes
    ``/xyz/bar``; with ``/`` or "" it becomes ``/bar``. Only for Prefix path matches."""

    prefix: str


@dataclass(frozen=True, slots=True)
class RegexReplace(Compact):
    """When ``pattern`` is found in the path, the path becomes ``replacement`` with
    ``$1``..``$9`` (or ``${n}``) replaced by the captures, as nginx's ``rewrite`` does
    (ingress-nginx rewrite-target). The query is kept (appended after the replacement's
    own, if it has one). No match: the path is unchanged."""

    pattern: str
    replacement: str
    ignore_case: bool = False


PathRewrite = ReplaceFullPath | ReplacePrefix | RegexReplace


@dataclass(frozen=True, slots=True)
class Redirect(Compact):
    """Answer ``status`` with a Location built from the request, each part replaceable.

    ``scheme``/``hostname`` None keep the request's. ``port`` None: no port when
    ``scheme`` is set (its well-known port), else the Host header's port. A port that is
    the scheme's well-known one (http 80, https 443) is never written. ``path`` None keeps
    the request path. ``keep_query`` appends the request's query (Gateway API keeps it;
    ingress-nginx permanent-redirect gives a whole URL: use ``location``). ``location``,
    when set, is the whole Location and every other part is ignored.
    ``strip_trailing_slash`` drops one "/" that ends the request URI (path and query as
    received, so "/" becomes ""), as ingress-nginx's from-to-www redirect does.
    """

    status: int = 302
    scheme: str | None = None
    hostname: str | None = None
    port: int | None = None
    path: PathRewrite | None = None
    keep_query: bool = True
    location: str | None = None
    strip_trailing_slash: bool = False


@dataclass(frozen=True, slots=True)
class FixedResponse(Compact):
    """Answer ``status`` from the proxy. ``body`` None: seaway's own page for the status
    (what it sends for its 404, 503...); otherwise exactly ``body`` with ``headers``."""

    status: int
    body: bytes | None = None
    headers: tuple[tuple[str, str], ...] = ()


Action = Forward | Redirect | FixedResponse


# --- routes, hosts, listeners ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RouteSource(Compact):
    """Where a Route came from, for `seaway trace`, status, logs and metrics labels.

    ``rule`` and ``match`` index the object's rule and the match (or path) within it, -1
    when they do not apply (a default backend). ``text`` locates it readably within the
    object: "spec.rules[0].http.paths[1] (shop.test Prefix /cart)".
    """

    kind: str
    namespace: str
    name: str
    rule: int = -1
    match: int = -1
    text: str = ""

    def __str__(self) -> str:
        where = f"{self.kind} {self.namespace}/{self.name}"
        return f"{where}: {self.text}" if self.text else where


@dataclass(frozen=True, slots=True)
class Route(Compact):
    """A match, what to do, and what happens on the way (``filters``, in order)."""

    match: RouteMatch
    action: Action
    source: RouteSource
    filters: tuple[Filter, ...] = ()


@dataclass(frozen=True, slots=True)
class VirtualHost(Compact):
    """Routes for some host names, in the order they are tried.

    ``hostnames``: lower-case exact names ("shop.example.com", "[::1]", "10.0.0.1") or
    wildcards ("*.example.com", see ``wildcard``); empty for the catch-all. A host name may
    appear in at most one VirtualHost of a listener (a translator merges and orders the
    routes of several objects for one host itself); the compiler refuses duplicates.
    """

    hostnames: tuple[str, ...]
    routes: tuple[Route, ...]
    wildcard: WildcardMode = "label"


@dataclass(frozen=True, slots=True)
class Certificate(Compact):
    """A TLS Secret for SNI names (exact or "*.x", lower-case), in claim order: the first
    Certificate naming a host is the one served for it (ingress/tls.py). ``hosts`` may be
    empty (a Secret referenced for no host). ``source`` names who asked, for messages."""

    hosts: tuple[str, ...]
    namespace: str
    secret: str
    source: str

    @property
    def secret_key(self) -> SecretKey:
        return (self.namespace, self.secret)


@dataclass(frozen=True, slots=True)
class PassthroughHost(Compact):
    """TLS connections whose ClientHello names one of ``hostnames`` (SNI) are relayed as
    bytes, never terminated, to an endpoint of ``route``'s Forward (its match is unused):
    ingress-nginx's ssl-passthrough, Gateway API TLSRoute.

    ``hostnames``: lower-case exact names, or wildcards as ``wildcard`` says (as for a
    VirtualHost; a name appears in at most one PassthroughHost of a listener). The SNI
    name is looked up exact first, then the wildcards from the longest suffix; a
    connection whose name none covers (or that sends none) is terminated as usual, or
    closed on a listener that only relays (``Listener.protocol`` "TLS").
    """

    hostnames: tuple[str, ...]
    route: Route
    wildcard: WildcardMode = "label"


@dataclass(frozen=True, slots=True)
class Listener(Compact):
    """Sockets that share one set of routes.

    ``port``/``address``/``protocol`` None: the Ingress listener, served on the dataplane's
    --http-bind-address, and on --https-bind-address when it has certificates. A Gateway
    listener sets them.

    ``filters`` are the listener's defaults (ingress-nginx's ConfigMap: body size,
    timeouts, tries, HSTS, global custom errors and address lists): they apply to every
    request of the listener, except that a route's (or backend's) filter of the same type
    replaces the listener's, as an nginx location's directive replaces the http block's.
    They are constant per table, so the hot path can fold them into its settings when the
    table is applied instead of reading them per request.

    ``client_address`` says how its sockets learn who the client is (PROXY protocol,
    trusted forwarded-for headers) and which X-Forwarded-* fields they send
    (ingress/client_address.py: ingress-nginx's ConfigMap keys for the Ingress listener).
    ``passthrough``: hosts whose TLS connections are relayed unterminated (see
    PassthroughHost); the HTTPS socket peeks at each ClientHello only when there are some.
    A Gateway listener of protocol "TLS" (mode Passthrough) only relays: its socket
    resets connections whose SNI name no PassthroughHost covers.
    """

    name: str
    virtual_hosts: tuple[VirtualHost, ...] = ()
    default: Route | None = None
    certificates: tuple[Certificate, ...] = ()
    port: int | None = None
    address: str | None = None
    protocol: Literal["HTTP", "HTTPS", "TLS"] | None = None
    filters: tuple[Filter, ...] = ()
    client_address: ClientAddress = SEAWAY_DEFAULT
    passthrough: tuple[PassthroughHost, ...] = ()

    def hosts(self) -> list[str]:
        """Every host name with routes: exact ones sorted, then wildcards sorted, then ""
        when a catch-all virtual host has routes."""
        exact: list[str] = []
        wild: list[str] = []
        catch_all = False
        for vhost in self.virtual_hosts:
            if not vhost.hostnames:
                catch_all = catch_all or bool(vhost.routes)
            for name in vhost.hostnames:
                (wild if name.startswith("*.") else exact).append(name)
        return sorted(exact) + sorted(wild) + ([""] if catch_all else [])


@dataclass(frozen=True, slots=True)
class RouteTable(Compact):
    """Everything the L7 proxy serves, for one config generation."""

    listeners: tuple[Listener, ...] = ()
    generation: int = 0

    def listener(self, name: str) -> Listener | None:
        return next((x for x in self.listeners if x.name == name), None)

    def tls_hosts(self) -> dict[str, SecretKey]:
        """SNI host (exact or "*.x") -> the Secret of the first Certificate naming it."""
        hosts: dict[str, SecretKey] = {}
        for listener in self.listeners:
            for cert in listener.certificates:
                for host in cert.hosts:
                    hosts.setdefault(host, cert.secret_key)
        return hosts

    def secret_users(self) -> dict[SecretKey, list[str]]:
        """Secret -> the sources that reference it (for messages about that Secret)."""
        users: dict[SecretKey, list[str]] = {}
        for listener in self.listeners:
            for cert in listener.certificates:
                users.setdefault(cert.secret_key, []).append(cert.source)
        return users

    def secrets(self) -> set[SecretKey]:
        """Every Secret a Certificate references."""
        return {c.secret_key for x in self.listeners for c in x.certificates}


@dataclass(frozen=True, slots=True)
class ObjectReport(Compact):
    """What a translator has to say about one object it read: the warnings for
    `seaway check`, the daemon's log and (in API mode) the object's status; ``applied``
    says what its annotations became in the route table (one line each)."""

    kind: str
    namespace: str
    name: str
    warnings: tuple[str, ...] = ()
    applied: tuple[str, ...] = ()
