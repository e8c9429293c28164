"""Pure rule builder: Snapshot in, the rules seaway wants per table and chain out.

kube-proxy's iptables layout under the SEAWAY- prefix:

nat:    PREROUTING, OUTPUT -> SEAWAY-SERVICES
          cluster IP           -> SEAWAY-SVC-x (or SEAWAY-SVL-x for internalTrafficPolicy Local)
          external / LB IP     -> SEAWAY-EXT-x
          LB IP with loadBalancerSourceRanges -> SEAWAY-FW-x: sources in range -> SEAWAY-EXT-x
          local address (last) -> SEAWAY-NODEPORTS -> SEAWAY-EXT-x
        SEAWAY-EXT-x (Cluster): mark for masquerade, -> SEAWAY-SVC-x
        SEAWAY-EXT-x (Local):   pods and the node -> SEAWAY-SVC-x, others -> SEAWAY-SVL-x
        SEAWAY-SVC-x / SVL-x:   affinity (recent) checks, then statistic 1/(n-i) -> SEAWAY-SEP-y
        SEAWAY-SEP-y:           hairpin masquerade mark, affinity set, DNAT
        POSTROUTING -> SEAWAY-POSTROUTING: MASQUERADE what carries the mark
filter: INPUT, FORWARD -> SEAWAY-EXTERNAL-SERVICES (REJECT/DROP external traffic without
        endpoints), OUTPUT, FORWARD -> SEAWAY-SERVICES (REJECT cluster IPs without endpoints),
        FORWARD -> SEAWAY-FORWARD (accept marked and established traffic),
        INPUT, FORWARD, OUTPUT -> SEAWAY-PROXY-FIREWALL (DROP what is still addressed to a
        source-restricted LB IP: SEAWAY-FW-x did not DNAT it).

One family per Ruleset: BuildConfig.family 4 for iptables, 6 for ip6tables; addresses of
the other family are left out (proxy/iptables/family.py spells the rest).

Per service port the builder makes a `ServiceFragment`; `RuleBuilder` caches fragments so
a sync after a small change rebuilds only the service ports that changed.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from discovery.snapshot import EndpointInfo, ServicePortInfo, ServicePortName, Snapshot
from proxy.iptables import chains as C
from proxy.iptables.family import Family, IPFamily, family_of

# Above this many endpoints in total, per-service comments are left out (kube-proxy's
# "large cluster mode" drops them too). An xt_comment match is 256 bytes in the legacy
# table blob that every legacy restore reads and writes back whole: measured at 10,000
# services x 2 endpoints, a one-chain legacy partial sync takes ~0.35 s without them and
# ~0.8 s with them; with nft they only cost parsing. Fixed chains keep their comments.
LARGE_CLUSTER_ENDPOINTS = 1000

# The jumps seaway puts in the built-in chains: (table, chain, rule spec).
BUILTIN_JUMPS: tuple[tuple[str, str, str], ...] = (
    (C.NAT, "PREROUTING", f'-m comment --comment "seaway service portals" -j {C.SERVICES}'),
    (C.NAT, "OUTPUT", f'-m comment --comment "seaway service portals" -j {C.SERVICES}'),
    (C.NAT, "POSTROUTING", f'-m comment --comment "seaway postrouting rules" -j {C.POSTROUTING}'),
    (
        C.FILTER,
        "INPUT",
        "-m conntrack --ctstate NEW -m comment --comment "
        f'"seaway external services" -j {C.EXTERNAL_SERVICES}',
    ),
    (
        C.FILTER,
        "INPUT",
        "-m conntrack --ctstate NEW -m comment --comment "
        f'"seaway firewall" -j {C.PROXY_FIREWALL}',
    ),
    (
        C.FILTER,
        "FORWARD",
        "-m conntrack --ctstate NEW -m comment --comment "
        f'"seaway firewall" -j {C.PROXY_FIREWALL}',
    ),
    (C.FILTER, "FORWARD", f'-m comment --comment "seaway forwarding rules" -j {C.FORWARD}'),
    (
        C.FILTER,
        "FORWARD",
        f'-m conntrack --ctstate NEW -m comment --comment "seaway service portals" -j {C.SERVICES}',
    ),
    (
        C.FILTER,
        "FORWARD",
        "-m conntrack --ctstate NEW -m comment --comment "
        f'"seaway external services" -j {C.EXTERNAL_SERVICES}',
    ),
    (
        C.FILTER,
        "OUTPUT",
        "-m conntrack --ctstate NEW -m comment --comment "
        f'"seaway firewall" -j {C.PROXY_FIREWALL}',
    ),
    (
        C.FILTER,
        "OUTPUT",
        f'-m conntrack --ctstate NEW -m comment --comment "seaway service portals" -j {C.SERVICES}',
    ),
)

_UNSAFE = re.compile(r"[^A-Za-z0-9 ._:/>\[\]-]")


@dataclass(frozen=True, slots=True)
class BuildConfig:
    hostname: str
    cluster_cidrs: tuple[str, ...] = ()  # of both families; each Ruleset uses its own
    # CIDRs or IPs; none of the Ruleset's family = every local address (as kube-proxy)
    nodeport_addresses: tuple[str, ...] = ()
    family: IPFamily = 4  # 4: iptables, 6: ip6tables

    def for_family(self, version: IPFamily) -> BuildConfig:
        return replace(self, family=version)


@dataclass(frozen=True, slots=True)
class ServiceFragment:
    """Everything one service port contributes to the ruleset."""

    chains: tuple[tuple[str, tuple[str, ...]], ...] = ()  # nat chains it owns
    services: tuple[str, ...] = ()  # nat SEAWAY-SERVICES rules
    nodeports: tuple[str, ...] = ()  # nat SEAWAY-NODEPORTS rules
    filter_services: tuple[str, ...] = ()  # filter SEAWAY-SERVICES rules
    filter_external: tuple[str, ...] = ()  # filter SEAWAY-EXTERNAL-SERVICES rules
    filter_firewall: tuple[str, ...] = ()  # filter SEAWAY-PROXY-FIREWALL rules
    endpoints: int = 0  # endpoint chains written


EMPTY_FRAGMENT = ServiceFragment()

# Receives one service port's nat chains: ((chain, rule lines), ...).
ChainsSink = Callable[[tuple[tuple[str, tuple[str, ...]], ...]], None]


@dataclass(slots=True)
class Ruleset:
    """The chains seaway owns, per table, each with its rule lines ("-A CHAIN ...")."""

    tables: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    service_ports: int = 0
    endpoints: int = 0

    def chain_count(self) -> int:
        return sum(len(t) for t in self.tables.values())

    def rule_count(self) -> int:
        return sum(len(r) for t in self.tables.values() for r in t.values())


def _clean(text: str) -> str:
    return _UNSAFE.sub("_", text)


def _comment(text: str) -> str:
    return f'-m comment --comment "{_clean(text)}"'


def _proto_match(proto: str, port: int) -> str:
    p = proto.lower()
    return f"-p {p} -m {p} --dport {port}"


def _probability(i: int, n: int) -> str:
    # kube-proxy's format: 1/(n-i) with 10 decimals, e.g. 0.3333333333.
    return f"{1.0 / (n - i):.10f}"


class FragmentBuilder:
    """Builds one service port's fragment. Pure; holds only the node's configuration."""

    __slots__ = ("cidrs", "config", "family", "large")

    def __init__(self, config: BuildConfig) -> None:
        self.config = config
        self.family: Family = family_of(config.family)
        self.cidrs = self.family.cidrs(config.cluster_cidrs)  # pod ranges of this family
        self.large = False

    def _c(self, text: str) -> str:
        """' -m comment --comment "text"', or nothing in large-cluster mode."""
        return "" if self.large else " " + _comment(text)

    def build(self, spi: ServicePortInfo, large: bool) -> ServiceFragment:
        self.large = large
        name = spi.name
        label = str(name)
        proto = spi.protocol
        fam = self.family
        cluster_ips = fam.ips(spi.cluster_ips)
        if not cluster_ips:
            # A service of the other family only: nothing in this family's tables (as
            # kube-proxy's per-family proxiers never see it).
            return EMPTY_FRAGMENT
        match = _proto_match(proto, spi.port)
        lb_ips = fam.ips(spi.load_balancer_ips) if spi.load_balancer_ips else ()
        external = fam.ips(spi.external_ips) if spi.external_ips else ()
        node_port = spi.node_port
        has_external = bool(external) or bool(lb_ips) or node_port is not None

        all_eps = fam.endpoints(spi.endpoints)
        internal_local = spi.internal_traffic_policy == "Local"
        external_local = spi.external_traffic_policy == "Local"
        local_eps: tuple[EndpointInfo, ...] = ()
        if internal_local or (external_local and has_external):
            local_eps = fam.endpoints(spi.local_endpoints(self.config.hostname))
        internal_eps = local_eps if internal_local else all_eps
        external_eps = local_eps if external_local else all_eps

        svc, svl, ext = C.policy_chains(name)
        owned: dict[str, tuple[str, ...]] = {}
        services: list[str] = []
        nodeports: list[str] = []
        f_services: list[str] = []
        f_external: list[str] = []
        f_firewall: list[str] = []

        # Endpoint chains for every endpoint any policy chain uses, by address (what
        # the chain name hashes; a str key hashes faster than the dataclass): the chain,
        # and the address as DNAT writes it (canonical for IPv6).
        used: dict[str, tuple[str, str]] = {}
        v4 = fam.version == 4
        for ep in (*all_eps, *local_eps):
            address = ep.address
            if address not in used:
                sep = C.endpoint_chain(name, ep)
                dnat = address if v4 else fam.address(ep.ip, ep.port)
                used[address] = (sep, dnat)
                owned[sep] = self._endpoint_rules(sep, ep.ip, dnat, spi, label)

        need_svc = bool(all_eps) and (not internal_local or has_external)
        need_svl = bool(local_eps) and (internal_local or (has_external and external_local))
        if need_svc:
            masq = self._masq_rules(svc, label, ("",)) if cluster_ips else []
            owned[svc] = self._policy_rules(svc, all_eps, used, spi, label, masq)
        if need_svl:
            # With internalTrafficPolicy Local, SVL is the cluster IP's chain and gets its
            # masquerade rule (as kube-proxy's internal traffic chain does); scoped to the
            # cluster IP, because external traffic with Local policy enters SVL too and
            # must keep its source.
            scopes = tuple(f" -d {fam.host(cip)} {match}" for cip in cluster_ips)
            masq = self._masq_rules(svl, label, scopes) if internal_local else []
            owned[svl] = self._policy_rules(svl, local_eps, used, spi, label, masq)

        # Cluster IPs.
        internal_target = svl if internal_local else svc
        for cip in cluster_ips:
            if internal_eps:
                services.append(
                    f"-A {C.SERVICES}{self._c(label + ' cluster IP')} -d {fam.host(cip)} "
                    f"{match} -j {internal_target}"
                )
            else:
                verdict = "DROP" if all_eps else "REJECT"
                why = "has no local endpoints" if all_eps else "has no endpoints"
                f_services.append(
                    f"-A {C.SERVICES}{self._c(label + ' ' + why)} -d {fam.host(cip)} "
                    f"{match} -j {verdict}"
                )

        if has_external:
            uses_ext = bool(external_eps or (external_local and all_eps))
            if uses_ext:
                owned[ext] = self._external_rules(
                    ext, svc, svl, label, external_local, bool(local_eps)
                )
            # loadBalancerSourceRanges: LB IPs go through SEAWAY-FW-x, which sends sources
            # in range on to SEAWAY-EXT-x; the rest leaves it un-DNATed and is dropped by
            # filter SEAWAY-PROXY-FIREWALL (kube-proxy's KUBE-FW-x / KUBE-PROXY-FIREWALL).
            ranges = fam.cidrs(spi.load_balancer_source_ranges) if lb_ips else ()
            lb_target = ext
            if ranges and all_eps:  # with endpoints, uses_ext holds
                lb_target = C.firewall_chain(name)
                owned[lb_target] = tuple(
                    f"-A {lb_target}{self._c(label + ' loadbalancer IP')} -s {r} -j {ext}"
                    for r in ranges
                )
                for ip in lb_ips:
                    f_firewall.append(
                        f"-A {C.PROXY_FIREWALL}"
                        f"{self._c(label + ' traffic not accepted by ' + lb_target)} "
                        f"-d {fam.host(ip)} {match} -j DROP"
                    )
            for ip, what, target in [
                *((ip, " external IP", ext) for ip in external),
                *((ip, " loadbalancer IP", lb_target) for ip in lb_ips),
            ]:
                if uses_ext:
                    services.append(
                        f"-A {C.SERVICES}{self._c(label + what)} -d {fam.host(ip)} "
                        f"{match} -j {target}"
                    )
                if not external_eps:
                    verdict = "DROP" if all_eps else "REJECT"
                    why = "has no local endpoints" if all_eps else "has no endpoints"
                    f_external.append(
                        f"-A {C.EXTERNAL_SERVICES}{self._c(label + ' ' + why)} "
                        f"-d {fam.host(ip)} {match} -j {verdict}"
                    )
            if node_port is not None:
                np_match = _proto_match(proto, node_port)
                if external_eps or (external_local and all_eps):
                    nodeports.append(
                        f"-A {C.NODEPORTS}{self._c(label + ' node port')} {np_match} -j {ext}"
                    )
                if not external_eps:
                    verdict = "DROP" if all_eps else "REJECT"
                    why = "has no local endpoints" if all_eps else "has no endpoints"
                    f_external.append(
                        f"-A {C.EXTERNAL_SERVICES}{self._c(label + ' ' + why)} "
                        f"-m addrtype --dst-type LOCAL {np_match} -j {verdict}"
                    )

        return ServiceFragment(
            chains=tuple(owned.items()),
            services=tuple(services),
            nodeports=tuple(nodeports),
            filter_services=tuple(f_services),
            filter_external=tuple(f_external),
            filter_firewall=tuple(f_firewall),
            endpoints=len(used),
        )

    def _masq_rules(self, chain: str, label: str, scopes: tuple[str, ...]) -> list[str]:
        """Masquerade what reaches the cluster IP from outside the cluster CIDRs, one rule
        per scope (a match prepended to the source match: "" for none).

        In a SEAWAY-SVC- chain, no destination, protocol or port match: every way in
        already implies them (SEAWAY-SERVICES jumps here on -d CLUSTER-IP -p -m --dport),
        or marks the packet itself first (SEAWAY-EXT- with Cluster policy, and for the
        node's own traffic with Local policy), or comes from a pod (Local policy's
        pod rule, which this rule skips). Fewer matches make a faster restore on nft
        (each is a kernel expression); tests/proxy/iptables/test_simulator.py's trace
        matrix checks every path.
        """
        cidrs = self.cidrs
        if not cidrs:
            return []
        comment = self._c(label + " cluster IP")
        if len(cidrs) == 1:
            return [f"-A {chain}{comment}{s} ! -s {cidrs[0]} -j {C.MARK_MASQ}" for s in scopes]
        return [f"-A {chain}{comment}{s} -j {C.NONPOD_MASQ}" for s in scopes]

    def _policy_rules(
        self,
        chain: str,
        eps: tuple[EndpointInfo, ...],
        used: Mapping[str, tuple[str, str]],
        spi: ServicePortInfo,
        label: str,
        masq: list[str],
    ) -> tuple[str, ...]:
        rules = masq
        timeout = spi.session_affinity_timeout
        targets = [used[ep.address] for ep in eps]  # (chain, address as DNAT writes it)
        if timeout is not None:
            mask = self.family.mask
            for sep, address in targets:
                rules.append(
                    f"-A {chain}{self._c(label + ' -> ' + address)} -m recent --name {sep} "
                    f"--mask {mask} --rsource --rcheck --seconds {timeout} --reap -j {sep}"
                )
        n = len(targets)
        for i, (sep, address) in enumerate(targets):
            stat = (
                f" -m statistic --mode random --probability {_probability(i, n)}"
                if i < n - 1
                else ""
            )
            rules.append(f"-A {chain}{self._c(label + ' -> ' + address)}{stat} -j {sep}")
        return tuple(rules)

    def _endpoint_rules(
        self, sep: str, ip: str, address: str, spi: ServicePortInfo, label: str
    ) -> tuple[str, ...]:
        proto = spi.protocol.lower()
        comment = self._c(label)
        fam = self.family
        recent = ""
        if spi.session_affinity_timeout is not None:
            recent = f" -m recent --name {sep} --mask {fam.mask} --rsource --set"
        return (
            f"-A {sep}{comment} -s {fam.host(ip)} -j {C.MARK_MASQ}",
            # No "-m tcp": DNAT needs only -p; the match would be one more expression.
            f"-A {sep}{comment} -p {proto}{recent} -j DNAT --to-destination {address}",
        )

    def _external_rules(
        self, ext: str, svc: str, svl: str, label: str, local: bool, has_local: bool
    ) -> tuple[str, ...]:
        if not local:
            return (
                f"-A {ext}{self._c('masquerade traffic for ' + label + ' external destinations')}"
                f" -j {C.MARK_MASQ}",
                f"-A {ext} -j {svc}",
            )
        rules = [
            f"-A {ext}{self._c('pod traffic for ' + label + ' external destinations')} "
            f"-s {cidr} -j {svc}"
            for cidr in self.cidrs
        ]
        masq = self._c(f"masquerade LOCAL traffic for {label} external destinations")
        rules.append(f"-A {ext}{masq} -m addrtype --src-type LOCAL -j {C.MARK_MASQ}")
        rules.append(
            f"-A {ext}{self._c('route LOCAL traffic for ' + label + ' external destinations')}"
            f" -m addrtype --src-type LOCAL -j {svc}"
        )
        if has_local:
            rules.append(f"-A {ext} -j {svl}")
        return tuple(rules)


def fixed_chains(config: BuildConfig) -> dict[str, dict[str, tuple[str, ...]]]:
    """The chains every ruleset has, apart from the service dispatch chains."""
    nat: dict[str, tuple[str, ...]] = {
        C.MARK_MASQ: (f"-A {C.MARK_MASQ} -j MARK --or-mark {C.MASQ_MARK}",),
        C.POSTROUTING: (
            f"-A {C.POSTROUTING} -m mark ! --mark {C.MASQ_MARK}/{C.MASQ_MARK} -j RETURN",
            f"-A {C.POSTROUTING} -j MARK --xor-mark {C.MASQ_MARK}",
            f"-A {C.POSTROUTING} {_comment('seaway service traffic requiring SNAT')} "
            "-j MASQUERADE --random-fully",
        ),
    }
    cidrs = family_of(config.family).cidrs(config.cluster_cidrs)
    if len(cidrs) > 1:
        nat[C.NONPOD_MASQ] = (
            *(f"-A {C.NONPOD_MASQ} -s {c} -j RETURN" for c in cidrs),
            f"-A {C.NONPOD_MASQ} -j {C.MARK_MASQ}",
        )
    filt: dict[str, tuple[str, ...]] = {
        C.FORWARD: (
            f"-A {C.FORWARD} {_comment('seaway forwarding rules')} "
            f"-m mark --mark {C.MASQ_MARK}/{C.MASQ_MARK} -j ACCEPT",
            f"-A {C.FORWARD} {_comment('seaway forwarding conntrack rule')} "
            "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        ),
    }
    return {C.NAT: nat, C.FILTER: filt}


def nodeport_dispatch(config: BuildConfig) -> tuple[str, ...]:
    """The last rules of nat SEAWAY-SERVICES: local destinations go to SEAWAY-NODEPORTS."""
    note = _comment("seaway service nodeports; NOTE: this must be the last rule in this chain")
    fam = family_of(config.family)
    addresses = fam.cidrs(config.nodeport_addresses)
    if not addresses:
        # NodePorts on IPv6 loopback never work (no route_localnet): not ::1, as kube-proxy.
        # (after the comment, before addrtype: where iptables-save prints it)
        not_lo = " ! -d ::1/128" if fam.version == 6 else ""
        return (
            f"-A {C.SERVICES} {note}{not_lo} -m addrtype --dst-type LOCAL -j {C.NODEPORTS}",
        )
    return tuple(
        f"-A {C.SERVICES} {note} -d {a} -m addrtype --dst-type LOCAL -j {C.NODEPORTS}"
        for a in addresses
    )


class RuleBuilder:
    """Snapshot -> Ruleset, reusing the fragments of service ports that did not change.

    Pure: no I/O. Keeps the last fragment per service port; `build(snapshot, changed)`
    rebuilds the ports whose ServicePortInfo differs from the cached one (compared by
    identity, then equality), so it never depends on the caller's `changed` set being
    right; `changed` is accepted for the Dataplane signature.

    When the same service ports exist as last time and the rebuilt ones changed only
    their own chains (an endpoint change, the common live case), the last Ruleset is
    patched instead of assembled again from every fragment (10,000 services: ~1 ms
    instead of ~20 ms).
    """

    __slots__ = ("_cache", "_fragments", "_large", "_last", "config", "family")

    def __init__(self, config: BuildConfig) -> None:
        self.config = config
        self._fragments = FragmentBuilder(config)
        self.family = self._fragments.family
        self._cache: dict[ServicePortName, tuple[ServicePortInfo, ServiceFragment]] = {}
        self._large: bool | None = None
        self._last: Ruleset | None = None  # built from exactly the cached fragments

    def build(
        self,
        snapshot: Snapshot,
        changed: frozenset[ServicePortName] | None = None,
        each_port: ChainsSink | None = None,
    ) -> Ruleset:
        """The Ruleset for `snapshot`. With `each_port`, every service port's nat chains
        (rebuilt or reused) are also passed to it as soon as they are known, endpoint
        chains before the chains that jump to them: a full sync writes them to
        iptables-restore while the rest is still being built."""
        # Tens of thousands of small tuples and strings, none cyclic: the cyclic GC
        # would only rescan them (measured: ~25 % of a 10,000-service build).
        enabled = gc.isenabled()
        gc.disable()
        try:
            return self._build(snapshot, each_port)
        finally:
            if enabled:
                gc.enable()

    def _build(self, snapshot: Snapshot, each_port: ChainsSink | None) -> Ruleset:
        last, self._last = self._last, None  # stays None if this build fails midway
        ports = snapshot.service_ports
        total_eps = sum(len(p.endpoints) for p in ports.values())
        large = total_eps > LARGE_CLUSTER_ENDPOINTS
        if large != self._large:
            self._cache.clear()
            self._large = large
            last = None
        cache = self._cache
        stale = [k for k in cache if k not in ports]
        for name in stale:
            del cache[name]

        rebuilt: list[tuple[ServiceFragment | None, ServiceFragment]] = []  # (old, new)
        for name, spi in ports.items():
            hit = cache.get(name)
            if hit is not None and (hit[0] is spi or hit[0] == spi):
                if each_port is not None:
                    each_port(hit[1].chains)
                continue
            frag = self._fragments.build(spi, large)
            cache[name] = (spi, frag)
            rebuilt.append((hit[1] if hit is not None else None, frag))
            if each_port is not None:
                each_port(frag.chains)

        ruleset = None
        if last is not None and not stale:
            ruleset = _patched(last, rebuilt)
        if ruleset is None:
            fragments = [cache[name][1] for name in sorted(ports, key=str)]
            in_family = sum(1 for f in fragments if f is not EMPTY_FRAGMENT)
            ruleset = assemble(self.config, fragments, in_family)
        self._last = ruleset
        return ruleset


def _patched(
    last: Ruleset, rebuilt: list[tuple[ServiceFragment | None, ServiceFragment]]
) -> Ruleset | None:
    """`last` with the rebuilt fragments' chains swapped in, when that is all that
    changed: no service port added, and each rebuilt one contributes the same rules to
    the shared chains as before. Else None (assemble everything)."""
    if not rebuilt:
        return last
    for old, new in rebuilt:
        if old is None or (
            old.services != new.services
            or old.nodeports != new.nodeports
            or old.filter_services != new.filter_services
            or old.filter_external != new.filter_external
            or old.filter_firewall != new.filter_firewall
        ):
            return None
    nat = dict(last.tables[C.NAT])
    endpoints = last.endpoints
    for old, _new in rebuilt:
        assert old is not None
        for chain, _ in old.chains:
            del nat[chain]
        endpoints -= old.endpoints
    for _, new in rebuilt:
        nat.update(new.chains)
        endpoints += new.endpoints
    tables = {**last.tables, C.NAT: nat}  # the other tables' dicts are shared (never mutated)
    return Ruleset(tables=tables, service_ports=last.service_ports, endpoints=endpoints)


def assemble(config: BuildConfig, fragments: list[ServiceFragment], ports: int) -> Ruleset:
    tables = fixed_chains(config)
    nat = tables[C.NAT]
    filt = tables[C.FILTER]
    services: list[str] = []
    nodeports: list[str] = []
    f_services: list[str] = []
    f_external: list[str] = []
    f_firewall: list[str] = []
    endpoints = 0
    for frag in fragments:
        services.extend(frag.services)
        nodeports.extend(frag.nodeports)
        f_services.extend(frag.filter_services)
        f_external.extend(frag.filter_external)
        f_firewall.extend(frag.filter_firewall)
        nat.update(frag.chains)
        endpoints += frag.endpoints
    services.extend(nodeport_dispatch(config))
    nat[C.SERVICES] = tuple(services)
    nat[C.NODEPORTS] = tuple(nodeports)
    filt[C.SERVICES] = tuple(f_services)
    filt[C.EXTERNAL_SERVICES] = tuple(f_external)
    filt[C.PROXY_FIREWALL] = tuple(f_firewall)
    return Ruleset(tables=tables, service_ports=ports, endpoints=endpoints)


def build_ruleset(snapshot: Snapshot, config: BuildConfig) -> Ruleset:
    """One-shot build (for `seaway rules`, `trace` and tests)."""
    return RuleBuilder(config).build(snapshot)
