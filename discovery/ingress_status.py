"""status.loadBalancer.ingress of the Ingresses seaway owns: what it should say. Pure.

The addresses seaway publishes, as ingress-nginx finds them (internal/ingress/status/
status.go, runningAddresses):

1. ``--publish-status-address A,B``: those, each an IP or else a hostname;
2. else ``--publish-service NAMESPACE/NAME``: that Service's addresses, by its type:
   ExternalName its external name; ClusterIP its cluster IP; NodePort its externalIPs,
   else its cluster IP; LoadBalancer its status.loadBalancer.ingress, then its
   externalIPs;
3. else this node's: its Node object's ExternalIP, else its InternalIP
   (``--report-node-internal-ip-address``: the InternalIP); while the Node is unknown,
   the addresses its name resolves to (the Gateway status's node addresses).

How they are written:

- published (1 and 2): the list is the whole status of every owned Ingress, whatever it
  said before (ingress-nginx's behaviour); every replica publishes the same list, so
  replicas agree.
- the node's (3): each seaway (one per node in a DaemonSet) adds its own address and
  keeps the entries it did not write, so the status lists every node seaway serves on.
  ingress-nginx gets the same list by having one elected leader list the nodes of all its
  pods; seaway needs neither leader election nor pod listing.
- An Ingress that stops being seaway's while it runs loses seaway's addresses (other
  entries stay); at shutdown (``--update-status-on-shutdown``, default true as in
  ingress-nginx) every owned Ingress does.
- Entries are compared as a set, sorted by hostname then IP (as ingress-nginx), and
  written only when they differ.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from discovery.model import Ingress, LoadBalancerIngress, Node, ObjectKey, Service
from discovery.model_meta import StatusUpdate
from discovery.ownership import DEFAULT_CONTROLLER

Entries = tuple[LoadBalancerIngress, ...]


@dataclass(frozen=True, slots=True)
class IngressStatusConfig:
    """Which Ingresses are seaway's and what their status says (the CLI's flags)."""

    controller: str = DEFAULT_CONTROLLER
    watch_without_class: bool = False
    publish_addresses: tuple[str, ...] = ()  # --publish-status-address
    publish_service: tuple[str, str] | None = None  # --publish-service (namespace, name)
    node_name: str = ""  # whose Node's addresses are published (neither flag given)
    node_internal_ip: bool = False  # --report-node-internal-ip-address
    # this host's, while its Node is unknown (looked up lazily: proxy/app/node_addresses.py)
    fallback_addresses: Sequence[str] = ()
    update_on_shutdown: bool = True  # --update-status-on-shutdown

    @property
    def shared(self) -> bool:
        """Each replica adds its own node's address (neither flag given)."""
        return not self.publish_addresses and self.publish_service is None


def entry(text: str) -> LoadBalancerIngress:
    """An IP, or else a hostname (ingress-nginx nameOrIPToLoadBalancerIngress)."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return LoadBalancerIngress(hostname=text)
    return LoadBalancerIngress(ip=text)


def service_entries(service: Service) -> Entries:
    """The addresses of the --publish-service Service (ingress-nginx
    statusAddressFromService); () when its type gives none (headless ClusterIP)."""
    if service.type == "ExternalName":
        return (LoadBalancerIngress(hostname=service.external_name),)
    cluster = tuple(LoadBalancerIngress(ip=ip) for ip in service.cluster_ips[:1])
    if service.type == "ClusterIP":
        return cluster
    external = tuple(LoadBalancerIngress(ip=ip) for ip in service.external_ips)
    if service.type == "NodePort":
        return external or cluster
    lb = [LoadBalancerIngress(ip=ip) for ip in service.load_balancer_ips]
    lb += [LoadBalancerIngress(hostname=h) for h in service.load_balancer_hostnames]
    seen = {e.address for e in lb}
    return tuple(lb) + tuple(e for e in external if e.ip not in seen)


def node_entries(node: Node, internal: bool) -> Entries:
    """The Node's ExternalIP, else its InternalIP; the InternalIP when `internal`
    (ingress-nginx GetNodeIPOrName)."""
    by_type: dict[str, str] = {}
    for kind, address in node.addresses:
        by_type.setdefault(kind, address)
    order = ("InternalIP",) if internal else ("ExternalIP", "InternalIP")
    for kind in order:
        if by_type.get(kind):
            return (entry(by_type[kind]),)
    return ()


def published(
    config: IngressStatusConfig, service: Service | None, node: Node | None
) -> tuple[Entries, str]:
    """(seaway's addresses, why there are none): `service` is the --publish-service
    Service (None: not found), `node` this node's Node (None: unknown)."""
    if config.publish_addresses:
        return tuple(entry(a) for a in config.publish_addresses), ""
    if config.publish_service is not None:
        namespace, name = config.publish_service
        if service is None:
            return (), f"--publish-service {namespace}/{name}: no such Service"
        found = service_entries(service)
        if not found:
            return (), f"--publish-service {namespace}/{name}: the Service has no address yet"
        return found, ""
    if node is not None:
        found = node_entries(node, config.node_internal_ip)
        if found:
            return found, ""
    fallback = tuple(entry(a) for a in config.fallback_addresses)
    if fallback:
        return fallback, ""
    return (), f"Node {config.node_name!r} shows no address"


def _same(a: Iterable[LoadBalancerIngress], b: Iterable[LoadBalancerIngress]) -> bool:
    return sorted(set(a)) == sorted(set(b))


def wanted(current: Entries, mine: Entries, shared: bool, retired: Entries = ()) -> Entries:
    """The status of an Ingress seaway owns; `retired`: entries seaway published earlier
    and no longer does (its node's address changed), taken out of a shared status."""
    if not shared:
        return tuple(sorted(set(mine)))
    return tuple(sorted((set(current) - set(retired)) | set(mine)))


def released(current: Entries, mine: Entries) -> Entries:
    """The status of an Ingress seaway lets go of: without seaway's entries."""
    gone = set(mine)
    return tuple(sorted(e for e in set(current) if e not in gone))


def update(ingress: Ingress, entries: Entries) -> StatusUpdate | None:
    """The write that makes the Ingress say `entries`; None when it says that already."""
    if _same(ingress.load_balancer, entries):
        return None
    return StatusUpdate(ingress.key, ingress.meta.resource_version, status_json(entries))


def ownership_updates(
    ingresses: Iterable[Ingress],
    owned: set[ObjectKey],
    let_go: set[ObjectKey],
    mine: Entries,
    shared: bool,
    retired: Entries = (),
) -> list[StatusUpdate]:
    """Writes for the owned Ingresses (seaway's addresses in), and for those in `let_go`
    (seaway's addresses out). With no addresses known (`mine` empty), owned Ingresses are
    left as they are rather than emptied."""
    out: list[StatusUpdate] = []
    for ingress in ingresses:
        key = ingress.key
        if key in owned:
            if not mine:
                continue
            u = update(ingress, wanted(ingress.load_balancer, mine, shared, retired))
        elif key in let_go:
            u = update(ingress, released(ingress.load_balancer, mine))
        else:
            continue
        if u is not None:
            out.append(u)
    return out


def release_updates(
    ingresses: Iterable[Ingress], keys: set[ObjectKey], mine: Entries
) -> list[StatusUpdate]:
    """Writes that take seaway's addresses out of the Ingresses in `keys` (shutdown)."""
    out = []
    for ingress in ingresses:
        if ingress.key in keys:
            u = update(ingress, released(ingress.load_balancer, mine))
            if u is not None:
                out.append(u)
    return out


def status_json(entries: Entries) -> dict[str, Any]:
    """The Ingress's status as API JSON (for a JSON merge patch: null removes the list)."""
    items = [
        {k: v for k, v in (("ip", e.ip), ("hostname", e.hostname)) if v} for e in sorted(entries)
    ]
    return {"loadBalancer": {"ingress": items or None}}


def describe(entries: Entries) -> str:
    """As kubectl's ADDRESS column shows them: IP, else hostname, comma-separated."""
    return ",".join(sorted({e.address for e in entries})) or "none"
