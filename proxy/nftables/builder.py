"""Pure rule builder: Snapshot in, the `seaway` table of each family (ip, ip6) out.

Layout (kube-proxy's nftables proxier is the reference; the shape is seaway's):

    nat-prerouting, nat-output (priority -100) -> services:
        cluster IP from outside --cluster-cidr           -> mark for masquerade
        ip daddr . meta l4proto . th dport vmap @service-ips
            cluster IP  -> goto pick-P-N    (N internal endpoints, no affinity)
                        -> goto service-x / local-x   (ClientIP affinity)
            external IP, load-balancer IP -> goto external-x
        fib daddr type local  meta l4proto . th dport vmap @service-nodeports
            node port   -> goto external-x
    pick-P-N:   dnat to @endpoints-P[daddr . port . numgen random mod N]  (P: tcp, udp, sctp)
    external-x: Cluster policy: mark for masquerade, goto service-x;
                Local policy: pods and the node itself -> service-x (the node's traffic
                masqueraded), everyone else -> local-x
    service-x / local-x: the policy's endpoints, one rule each:
                numgen random mod (n-i) 0 -> DNAT (or endpoint-y with affinity)
    endpoint-y: (affinity only) remember the client in @affinity-y (timeout), DNAT
    nat-postrouting (100) -> masquerading: hairpin (@hairpin: endpoint . endpoint, for
                endpoints on this node or of services reached from outside), then what
                carries the mark
    filter-input/forward/output (0, after DNAT): @no-endpoint-services and
                @no-endpoint-nodeports (reject, or drop for Local policies without
                local endpoints); then anything still addressed to a cluster IP: reject
    firewall-prerouting/output (-110, before DNAT): LB IP . proto . port in
                @firewall-ips from a source not in @firewall-allow: drop

So a ClusterIP service is map elements only (a cluster IP, its dispatch, one element
per endpoint, one per endpoint IP for hairpin): no chain and no rule of its own. Only
services reached from outside, or with ClientIP affinity, get chains. Why not kube-proxy's
per-service `numgen ... vmap { ... }`: each anonymous map is a kernel set, and creating
sets in a table costs O(sets in the table) each (10,000 services: 11 s of kernel time);
a named map shared by per-service rules costs a walk of all its elements per rule that
uses it (38 s). Chains and map elements are cheap.

`TableBuilder` caches each service port's fragments, so a sync after a small change
rebuilds only the service ports that changed and returns what changed in each table.
"""

from __future__ import annotations

import gc
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from discovery.snapshot import EndpointInfo, ServicePortInfo, ServicePortName, Snapshot
from proxy.nftables import names as N
from proxy.nftables.table import Assembly, Chain, Delta, Fragment, SetSpec, TableState


@dataclass(frozen=True, slots=True)
class BuildConfig:
    hostname: str
    cluster_cidrs: tuple[str, ...] = ()
    nodeport_addresses: tuple[str, ...] = ()  # CIDRs or IPs; empty = every local address


@dataclass(frozen=True, slots=True)
class Family:
    name: str  # nft family and payload protocol: "ip" / "ip6"
    version: int
    addr_type: str
    loopback: str

    def has(self, address: str) -> bool:
        return (":" in address) == (self.version == 6)


IP4 = Family("ip", 4, "ipv4_addr", "127.0.0.0/8")
IP6 = Family("ip6", 6, "ipv6_addr", "::1")
FAMILIES = (IP4, IP6)
BY_NAME = {f.name: f for f in FAMILIES}


def addr(ip: str) -> str:
    """An address as nft prints it (IPv6 compressed; IPv4 comes validated)."""
    return str(ipaddress.IPv6Address(ip)) if ":" in ip else ip


def networks(cidrs: Iterable[str]) -> list[str]:
    """CIDRs or addresses, merged where they overlap (an nft interval set refuses
    overlapping elements), as nft prints them (a single address without /32)."""
    nets = [ipaddress.ip_network(c, strict=False) for c in cidrs]
    out: list[str] = []
    for version in (4, 6):
        same = [n for n in nets if n.version == version]
        for net in ipaddress.collapse_addresses(same):  # type: ignore[type-var]
            full = net.prefixlen == net.max_prefixlen
            out.append(str(net.network_address) if full else str(net))
    return out


def _destination(ep: EndpointInfo) -> str:
    ip = addr(ep.ip)
    return f"[{ip}]:{ep.port}" if ":" in ip else f"{ip}:{ep.port}"


def fixed_sets(config: BuildConfig, fam: Family) -> dict[str, SetSpec]:
    a = fam.addr_type
    service_key = (a, "inet_proto", "inet_service")
    nodeport_key = ("inet_proto", "inet_service")
    sets = {
        N.CLUSTER_IPS: SetSpec((a,)),
        N.CLUSTER_CIDRS: SetSpec((a,), flags=("interval",)),
        N.HAIRPIN: SetSpec((a, a)),
        N.SERVICE_IPS: SetSpec(service_key, "verdict"),
        N.SERVICE_NODEPORTS: SetSpec(nodeport_key, "verdict"),
        **{
            N.endpoints_map(p): SetSpec(
                (a, "inet_service", "integer"),
                f"{a} . inet_service",
                typeof=f"{fam.name} daddr . {p} dport . numgen random mod 1 "
                f": {fam.name} daddr . {p} dport",
            )
            for p in N.PROTOCOLS
        },
        N.NO_ENDPOINT_SERVICES: SetSpec(service_key, "verdict"),
        N.NO_ENDPOINT_NODEPORTS: SetSpec(nodeport_key, "verdict"),
        N.FIREWALL_IPS: SetSpec(service_key),
        N.FIREWALL_ALLOW: SetSpec((*service_key, a), flags=("interval",)),
    }
    if config.nodeport_addresses:
        sets[N.NODEPORT_ADDRESSES] = SetSpec((a,), flags=("interval",))
    if fam.version == 4:
        sets[N.SYNC_STATE] = SetSpec(("mark",))  # its element: proxy/nftables/record.py
    return sets


def _nodeport_rule(config: BuildConfig, fam: Family, vmap: str) -> list[str]:
    """`fib daddr type local ... vmap @vmap` for the addresses NodePorts are served on;
    none when --nodeport-addresses has no address of this family. Loopback is never
    one (as in kube-proxy's nftables mode: DNAT from 127.0.0.1 needs route_localnet)."""
    ports = f"meta l4proto . th dport vmap @{vmap}"
    if not config.nodeport_addresses:
        return [f"fib daddr type local {fam.name} daddr != {fam.loopback} {ports}"]
    if not any(fam.has(a) for a in config.nodeport_addresses):
        return []
    return [f"fib daddr type local {fam.name} daddr @{N.NODEPORT_ADDRESSES} {ports}"]


def _base(kind: str, hook: str, priority: int) -> str:
    return f"type {kind} hook {hook} priority {priority}; policy accept;"


def fixed_chains(config: BuildConfig, fam: Family) -> dict[str, Chain]:
    ip = fam.name
    new = "ct state new"
    masq: list[str] = []
    if any(fam.has(c) for c in config.cluster_cidrs):
        # Cluster IPs reached from outside the pod network are masqueraded (kube-proxy
        # writes this into every service's chain; one rule for all does the same).
        masq = [f"{ip} daddr @{N.CLUSTER_IPS} {ip} saddr != @{N.CLUSTER_CIDRS} jump {N.MARK_MASQ}"]
    checks = (f"{new} jump {N.ENDPOINTS_CHECK}", f"{new} {ip} daddr @{N.CLUSTER_IPS} reject")
    key = f"{ip} daddr . meta l4proto . th dport"
    return {
        N.NAT_PREROUTING: Chain((f"jump {N.SERVICES}",), _base("nat", "prerouting", -100)),
        N.NAT_OUTPUT: Chain((f"jump {N.SERVICES}",), _base("nat", "output", -100)),
        N.NAT_POSTROUTING: Chain((f"jump {N.MASQUERADING}",), _base("nat", "postrouting", 100)),
        N.FIREWALL_PREROUTING: Chain(
            (f"{new} jump {N.FIREWALL_CHECK}",), _base("filter", "prerouting", -110)
        ),
        N.FIREWALL_OUTPUT: Chain(
            (f"{new} jump {N.FIREWALL_CHECK}",), _base("filter", "output", -110)
        ),
        N.FILTER_INPUT: Chain((checks[0],), _base("filter", "input", 0)),
        N.FILTER_FORWARD: Chain(checks, _base("filter", "forward", 0)),
        N.FILTER_OUTPUT: Chain(checks, _base("filter", "output", 0)),
        N.SERVICES: Chain(
            (
                *masq,
                f"{key} vmap @{N.SERVICE_IPS}",
                *_nodeport_rule(config, fam, N.SERVICE_NODEPORTS),
            )
        ),
        N.MASQUERADING: Chain(
            (
                f"ct status dnat {ip} saddr . {ip} daddr @{N.HAIRPIN} jump {N.MARK_MASQ}",
                f"meta mark & {N.MASQ_MARK} == 0 return",
                f"meta mark set meta mark ^ {N.MASQ_MARK}",
                "masquerade fully-random",
            )
        ),
        N.MARK_MASQ: Chain((f"meta mark set meta mark | {N.MASQ_MARK}",)),
        N.ENDPOINTS_CHECK: Chain(
            (
                f"{key} vmap @{N.NO_ENDPOINT_SERVICES}",
                *_nodeport_rule(config, fam, N.NO_ENDPOINT_NODEPORTS),
            )
        ),
        N.FIREWALL_CHECK: Chain(
            (f"{key} @{N.FIREWALL_IPS} {key} . {ip} saddr != @{N.FIREWALL_ALLOW} drop",)
        ),
        N.REJECT: Chain(("reject",)),
    }


def fixed_table(config: BuildConfig, fam: Family) -> TableState:
    """The table with no service in it: hooks, fixed chains, sets and maps."""
    sets = fixed_sets(config, fam)
    elements: dict[str, dict[str, str]] = {name: {} for name in sets}
    elements[N.CLUSTER_CIDRS] = dict.fromkeys(
        networks(c for c in config.cluster_cidrs if fam.has(c)), ""
    )
    if N.NODEPORT_ADDRESSES in sets:
        elements[N.NODEPORT_ADDRESSES] = dict.fromkeys(
            networks(a for a in config.nodeport_addresses if fam.has(a)), ""
        )
    return TableState(fam.name, fixed_chains(config, fam), sets, elements)


def pick_chain(fam: Family, proto: str, n: int) -> Chain:
    ip = fam.name
    return Chain(
        (
            # `tcp dport` implies `meta l4proto tcp` (nft adds the match)
            f"dnat {ip} to {ip} daddr . {proto} dport . "
            f"numgen random mod {n} map @{N.endpoints_map(proto)}",
        )
    )


class FragmentBuilder:
    """Builds one service port's fragments (one per family). Pure."""

    __slots__ = ("_pick", "config", "local_cidrs")

    def __init__(self, config: BuildConfig) -> None:
        self.config = config
        self.local_cidrs = {f.name: any(f.has(c) for c in config.cluster_cidrs) for f in FAMILIES}
        self._pick: dict[tuple[str, str, int], tuple[str, Chain]] = {}

    def build(self, spi: ServicePortInfo) -> tuple[Fragment | None, ...]:
        v6 = [":" in ip for ip in spi.cluster_ips]
        return (
            self._family(spi, IP4) if not all(v6) else None,
            self._family(spi, IP6) if any(v6) else None,
        )

    def _pick_chain(self, fam: Family, proto: str, n: int) -> tuple[str, Chain]:
        got = self._pick.get((fam.name, proto, n))
        if got is None:
            got = (N.pick_chain(proto, n), pick_chain(fam, proto, n))
            self._pick[(fam.name, proto, n)] = got
        return got

    def _family(self, spi: ServicePortInfo, fam: Family) -> Fragment:
        is6 = fam.version == 6
        cluster_ips = [addr(ip) for ip in spi.cluster_ips if (":" in ip) == is6]
        name = spi.name
        proto = spi.protocol.lower()
        port = spi.port
        external: list[str] = []
        if spi.external_ips or spi.load_balancer_ips:
            external = [
                addr(ip) for ip in (*spi.external_ips, *spi.load_balancer_ips) if (":" in ip) == is6
            ]
        node_port = spi.node_port
        has_external = bool(external) or node_port is not None

        all_eps = spi.endpoints
        if any((":" in e.ip) != is6 for e in all_eps):
            all_eps = tuple([e for e in all_eps if (":" in e.ip) == is6])
        internal_local = spi.internal_traffic_policy == "Local"
        external_local = spi.external_traffic_policy == "Local"
        local_eps: tuple[EndpointInfo, ...] = ()
        if internal_local or (external_local and has_external):
            local_eps = tuple(e for e in spi.local_endpoints(self.config.hostname) if fam.has(e.ip))
        internal_eps = local_eps if internal_local else all_eps
        external_eps = local_eps if external_local else all_eps
        affinity = spi.session_affinity_timeout
        svc = svl = ext = ""
        if has_external or affinity is not None:
            svc, svl, ext = N.policy_chains(name)

        chains: list[tuple[str, Chain]] = []
        sets: list[tuple[str, SetSpec]] = []
        elements: list[tuple[str, str, str]] = []
        used: dict[tuple[str, int], EndpointInfo] = {}
        for ep in (*all_eps, *local_eps):
            used.setdefault((ep.ip, ep.port), ep)
        # Hairpin: a pod reaching itself through the service. Only a pod on this node
        # sends to this node's cluster IPs (a pod elsewhere uses its own node's rules), so
        # other endpoints need no element, unless the service is reached from outside
        # (any pod may connect to this node's NodePort or an external IP routed here).
        host = self.config.hostname
        hairpin = N.HAIRPIN
        for ep in used.values():
            if has_external or ep.node_name == host or not ep.node_name:
                ip = addr(ep.ip)
                elements.append((hairpin, f"{ip} . {ip}", ""))

        use_svc = bool(all_eps) and (has_external or (affinity is not None and not internal_local))
        use_svl = bool(local_eps) and (
            (has_external and external_local) or (affinity is not None and internal_local)
        )
        if affinity is not None and (use_svc or use_svl):
            eps = (*(all_eps if use_svc else ()), *(local_eps if use_svl else ()))
            self._affinity_objects(spi, fam, eps, affinity, chains, sets)
        if use_svc:
            chains.append((svc, Chain(self._policy_rules(spi, fam, all_eps))))
        if use_svl:
            chains.append((svl, Chain(self._policy_rules(spi, fam, local_eps))))

        for cip in cluster_ips:
            key = f"{cip} . {proto} . {port}"
            elements.append((N.CLUSTER_IPS, cip, ""))
            if not internal_eps:
                verdict = "drop" if all_eps else f"goto {N.REJECT}"
                elements.append((N.NO_ENDPOINT_SERVICES, key, verdict))
            elif affinity is not None:
                elements.append((N.SERVICE_IPS, key, f"goto {svl if internal_local else svc}"))
            else:
                n = len(internal_eps)
                pick = self._pick_chain(fam, proto, n)
                if pick not in chains:
                    chains.append(pick)
                elements.append((N.SERVICE_IPS, key, f"goto {pick[0]}"))
                endpoints = N.endpoints_map(proto)
                elements.extend(
                    (endpoints, f"{cip} . {port} . {i}", f"{addr(ep.ip)} . {ep.port}")
                    for i, ep in enumerate(internal_eps)
                )

        if has_external:
            no_external = "" if external_eps else ("drop" if all_eps else f"goto {N.REJECT}")
            if all_eps:
                local_chain = svl if use_svl else ""
                ext_rules = self._external_rules(fam, svc, local_chain, external_local)
                chains.append((ext, Chain(ext_rules)))
            for ip in external:
                key = f"{ip} . {proto} . {port}"
                if all_eps:
                    elements.append((N.SERVICE_IPS, key, f"goto {ext}"))
                if no_external:
                    elements.append((N.NO_ENDPOINT_SERVICES, key, no_external))
            if node_port is not None:
                key = f"{proto} . {node_port}"
                if all_eps:
                    elements.append((N.SERVICE_NODEPORTS, key, f"goto {ext}"))
                if no_external:
                    elements.append((N.NO_ENDPOINT_NODEPORTS, key, no_external))

        if spi.load_balancer_source_ranges and spi.load_balancer_ips:
            elements.extend(self._firewall_elements(spi, fam, proto, port))

        return Fragment(tuple(chains), tuple(sets), tuple(elements), len(used))

    @staticmethod
    def _affinity_objects(
        spi: ServicePortInfo,
        fam: Family,
        eps: tuple[EndpointInfo, ...],
        timeout: int,
        chains: list[tuple[str, Chain]],
        sets: list[tuple[str, SetSpec]],
    ) -> None:
        """ClientIP affinity: per endpoint a set of its clients (with the timeout) and a
        chain that adds the client to it and DNATs."""
        seen: set[str] = set()
        proto = spi.protocol.lower()
        spec = SetSpec((fam.addr_type,), flags=("dynamic", "timeout"), timeout=timeout)
        for ep in eps:
            chain = N.endpoint_chain(spi.name, ep)
            if chain in seen:
                continue
            seen.add(chain)
            aff = N.affinity_set(spi.name, ep, timeout)
            sets.append((aff, spec))
            rules = (
                f"update @{aff} {{ {fam.name} saddr }}",
                f"meta l4proto {proto} dnat to {_destination(ep)}",
            )
            chains.append((chain, Chain(rules)))

    @staticmethod
    def _firewall_elements(
        spi: ServicePortInfo, fam: Family, proto: str, port: int
    ) -> list[tuple[str, str, str]]:
        """loadBalancerSourceRanges of this family: each LB IP . proto . port, and each
        with every allowed range (none of the family: no filtering, as in kube-proxy)."""
        ranges = networks(r for r in spi.load_balancer_source_ranges if fam.has(r))
        out: list[tuple[str, str, str]] = []
        if not ranges:
            return out
        for lb in spi.load_balancer_ips:
            if fam.has(lb):
                key = f"{addr(lb)} . {proto} . {port}"
                out.append((N.FIREWALL_IPS, key, ""))
                out.extend((N.FIREWALL_ALLOW, f"{key} . {r}", "") for r in ranges)
        return out

    def _policy_rules(
        self, spi: ServicePortInfo, fam: Family, eps: tuple[EndpointInfo, ...]
    ) -> tuple[str, ...]:
        """One rule per endpoint: `numgen random mod (n-i) 0` picks endpoint i with
        probability 1/(n-i) of what reaches it, so each gets 1/n."""
        name = spi.name
        proto = spi.protocol.lower()
        affinity = spi.session_affinity_timeout
        rules: list[str] = []
        if affinity is not None:
            for ep in eps:
                aff = N.affinity_set(name, ep, affinity)
                rules.append(f"{fam.name} saddr @{aff} goto {N.endpoint_chain(name, ep)}")
        n = len(eps)
        for i, ep in enumerate(eps):
            if affinity is not None:
                target = f"goto {N.endpoint_chain(name, ep)}"
            else:
                target = f"meta l4proto {proto} dnat to {_destination(ep)}"
            rules.append(f"numgen random mod {n - i} 0 {target}" if i < n - 1 else target)
        return tuple(rules)

    def _external_rules(self, fam: Family, svc: str, svl: str, local: bool) -> tuple[str, ...]:
        if not local:
            return (f"jump {N.MARK_MASQ}", f"goto {svc}")
        rules: list[str] = []
        if self.local_cidrs[fam.name]:
            # Pods reaching an external destination: as if they went out and came back in
            # through a load balancer, so every endpoint may serve them.
            rules.append(f"{fam.name} saddr @{N.CLUSTER_CIDRS} goto {svc}")
        # The node itself: its source would be an address of this node, so masquerade.
        rules.append(f"fib saddr type local jump {N.MARK_MASQ}")
        rules.append(f"fib saddr type local goto {svc}")
        if svl:
            rules.append(f"goto {svl}")
        return tuple(rules)


class TableBuilder:
    """Snapshot -> the wanted table of each family, and what changed since the last build.

    Pure. Keeps the fragments of every service port; a build rebuilds the ports whose
    ServicePortInfo differs from the cached one (compared by identity, then equality),
    so it never depends on the caller's `changed` set being right."""

    __slots__ = ("_cache", "_fragments", "assemblies", "config", "endpoints")

    def __init__(self, config: BuildConfig) -> None:
        self.config = config
        self._fragments = FragmentBuilder(config)
        self._cache: dict[ServicePortName, tuple[ServicePortInfo, tuple[Fragment | None, ...]]] = {}
        self.assemblies = {f.name: Assembly(fixed_table(config, f)) for f in FAMILIES}
        self.endpoints = 0

    def state(self, family: str) -> TableState:
        return self.assemblies[family].state

    def states(self) -> dict[str, TableState]:
        return {name: a.state for name, a in self.assemblies.items()}

    def build(self, snapshot: Snapshot, deltas: bool = True) -> dict[str, Delta]:
        """Bring the tables up to `snapshot`; returns each family's changes (empty
        without `deltas`: a full sync compares whole tables and needs none)."""
        for asm in self.assemblies.values():
            asm.recording(deltas)
        # Tens of thousands of small tuples and strings, none cyclic: the cyclic GC
        # would only rescan them.
        enabled = gc.isenabled()
        gc.disable()
        try:
            self._build(snapshot)
        finally:
            if enabled:
                gc.enable()
        return {name: a.take_delta() for name, a in self.assemblies.items()}

    def _build(self, snapshot: Snapshot) -> None:
        ports = snapshot.service_ports
        cache = self._cache
        asms = [self.assemblies[f.name] for f in FAMILIES]
        for name in [k for k in cache if k not in ports]:
            self._swap(asms, cache.pop(name)[1], ())
        for name, spi in ports.items():
            hit = cache.get(name)
            if hit is not None and (hit[0] is spi or hit[0] == spi):
                continue
            frags = self._fragments.build(spi)
            self._swap(asms, hit[1] if hit is not None else (), frags)
            cache[name] = (spi, frags)

    def _swap(
        self,
        asms: list[Assembly],
        old: tuple[Fragment | None, ...],
        new: tuple[Fragment | None, ...],
    ) -> None:
        for asm, frag in zip(asms, old, strict=False):
            if frag is not None:
                asm.remove(frag)
                self.endpoints -= frag.endpoints
        for asm, frag in zip(asms, new, strict=False):
            if frag is not None:
                asm.add(frag)
                self.endpoints += frag.endpoints

    @property
    def service_ports(self) -> int:
        return len(self._cache)


def build_tables(snapshot: Snapshot, config: BuildConfig) -> dict[str, TableState]:
    """One-shot build (for `seaway rules`, `trace` and tests)."""
    builder = TableBuilder(config)
    builder.build(snapshot)
    return builder.states()
