"""What ingress-nginx configures per Service port (its "upstream") instead of per path. Pure.

ingress-nginx makes one upstream per Service port (internal/ingress/controller/
controller.go createUpstreams), and the first Ingress that names it (oldest first; its
spec.defaultBackend before its rules) decides its load-balance, upstream-hash-by and
service-upstream; cookie affinity takes its type and mode from the first Ingress path
that asks for it and its cookie settings from the last (getBackendServers). Every route
forwarding to that Service port gets them, whichever Ingress the route came from: an
ingress-nginx behaviour kept on purpose, so a migrated cluster balances as before.

Only one choice applies (rootfs/etc/nginx/lua/balancer.lua get_implementation): cookie
affinity, else upstream-hash-by (both on the Backend's filters), else load-balance: ewma
sets the Backend's balancer to seaway's EWMA (proxy/balancers/least_request.py Ewma, the
same latency score and 10 s decay as ingress-nginx's ewma.lua), overriding the Service's
seaway.dev/load-balancer; round_robin leaves the Service's balancer (default least-request,
which picks in round-robin order while nothing is in flight).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from discovery.model import Ingress, IngressBackend, LoadBalancing
from discovery.nginx_configmap import NginxGlobalSettings
from discovery.nginx_settings import Affinity, IngressAnnotations, SessionCookie
from discovery.snapshot import EndpointInfo, Snapshot
from ingress.route_filters import CookieAffinity, Filter, HashBy
from ingress.routes import Backend

NsName = tuple[str, str]


@dataclass(slots=True)
class Upstream:
    """One Service port's settings, as its first (or, for cookies, last) Ingress set them."""

    owner: NsName  # the first Ingress naming it
    owner_is_canary: bool
    balance: str = "round_robin"
    hash_by: str = ""
    hash_subset_size: int = 0
    service_upstream: bool = False
    affinity: Affinity | None = None  # type and mode of the first, cookie of the last
    users: list[NsName] = field(default_factory=list)

    @property
    def plain(self) -> bool:
        """Nothing to change on its Backends (seaway's defaults)."""
        return not (
            self.affinity or self.hash_by or self.service_upstream or self.balance == "ewma"
        )


class Upstreams:
    """The upstreams of one translation: `note` every Ingress in order, then ask."""

    __slots__ = ("_made", "_settings", "_snapshot", "by_key")

    def __init__(self, snapshot: Snapshot, settings: NginxGlobalSettings | None) -> None:
        self._snapshot = snapshot
        self._settings = settings
        self.by_key: dict[str, Upstream] = {}
        self._made: dict[tuple[str, str, str | None], Backend] = {}

    def note(self, ingress: Ingress, anns: IngressAnnotations, backend: Backend) -> None:
        """`ingress` names `backend` (call in ingress-nginx's order)."""
        key = backend.key
        ns_name = (ingress.meta.namespace, ingress.meta.name)
        up = self.by_key.get(key)
        if up is None:
            s, b = self._settings, anns.balancing
            service_upstream = anns.backends.service_upstream
            if service_upstream is None:
                service_upstream = bool(s and s.service_upstream)
            up = self.by_key[key] = Upstream(
                ns_name,
                anns.canary.enabled,
                b.load_balance or (s.load_balance if s else "round_robin"),
                b.upstream_hash_by,
                b.hash_by_subset_size if b.hash_by_subset else 0,
                service_upstream,
            )
        if ns_name not in up.users:
            up.users.append(ns_name)
        wanted = anns.affinity
        if wanted.cookie_affinity:
            first = up.affinity
            up.affinity = wanted if first is None else replace(first, cookie=wanted.cookie)

    def upstream(self, key: str) -> Upstream | None:
        return self.by_key.get(key)

    def backend(self, resolved: Backend, path: str, affinity_of: str | None = None) -> Backend:
        """The Backend a route at Ingress path `path` forwards to: `resolved` with the
        cluster IP as its one endpoint under service-upstream, and its endpoint choice
        (affinity from the upstream `affinity_of` when given: a sticky canary)."""
        up = self.by_key.get(resolved.key)
        if up is None or (up.plain and affinity_of is None):
            return resolved
        affinity = up.affinity
        if affinity_of is not None:
            source = self.by_key.get(affinity_of)
            affinity = source.affinity if source is not None else None
        cookie_path = path if affinity is not None and not affinity.cookie.path else None
        cache_key = (resolved.key, affinity_of or "", cookie_path)
        made = self._made.get(cache_key)
        if made is not None:
            return made
        chosen = _choice(up, affinity, path)
        balancing = resolved.balancing
        if not chosen and up.balance == "ewma":
            balancing = LoadBalancing("ewma", balancing.hash_by)
        endpoints, status, reason = resolved.endpoints, resolved.status, resolved.reason
        if up.service_upstream:
            cluster = self._cluster_endpoint(resolved)
            if cluster is not None:
                endpoints, status, reason = (cluster,), 0, ""
        if chosen == () and endpoints is resolved.endpoints and balancing == resolved.balancing:
            made = resolved
        else:
            made = replace(
                resolved, endpoints=endpoints, status=status, reason=reason, filters=chosen,
                balancing=balancing,
            )  # fmt: skip
        self._made[cache_key] = made
        return made

    def _cluster_endpoint(self, backend: Backend) -> EndpointInfo | None:
        """The Service's cluster IP and port as one endpoint (ingress-nginx
        getServiceClusterEndpoint); None for a headless or missing Service."""
        if backend.service is None:
            return None
        info = self._snapshot.service_ports.get(backend.service)
        if info is None or not info.cluster_ips:
            return None
        return EndpointInfo(info.cluster_ips[0], info.port)


def _choice(up: Upstream, affinity: Affinity | None, path: str) -> tuple[Filter, ...]:
    if affinity is not None:
        return (cookie_affinity(affinity.cookie, affinity.mode, path),)
    if up.hash_by:
        return (HashBy(up.hash_by, up.hash_subset_size),)
    return ()


def cookie_affinity(cookie: SessionCookie, mode: str, path: str) -> CookieAffinity:
    """The CookieAffinity of ingress-nginx's sticky balancer; the cookie Path is the
    annotation's, else the Ingress path that matched (sticky.lua's $location_path)."""
    return CookieAffinity(
        cookie.name,
        cookie.path or path,
        cookie.max_age,
        cookie.expires,
        cookie.samesite or None,
        cookie.secure,
        "persistent" if mode == "persistent" else "balanced",
        cookie.domain or None,
        cookie.conditional_samesite_none,
        cookie.change_on_failure,
    )


def written_port(backend: IngressBackend) -> str:
    """How a Service port is written in the Ingress (for X-Service-Port)."""
    if backend.port_number is not None:
        return str(backend.port_number)
    return backend.port_name
