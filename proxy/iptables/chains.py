"""Chain names: fixed dispatch chains and stable hashed per-service / per-endpoint chains.

Like kube-proxy, per-service chain names come from a hash of validated fields (namespace,
name, port name, protocol, endpoint address), never from user text, so they always fit
iptables' 28-character limit and cannot inject anything.
"""

from __future__ import annotations

from discovery.snapshot import EndpointInfo, ServicePortName
from proxy.naming import endpoint_hash, port_hash

PREFIX = "SEAWAY-"

# nat table
SERVICES = "SEAWAY-SERVICES"
NODEPORTS = "SEAWAY-NODEPORTS"
POSTROUTING = "SEAWAY-POSTROUTING"
MARK_MASQ = "SEAWAY-MARK-MASQ"
# only with several --cluster-cidr ranges: RETURN for pod sources, else mark
NONPOD_MASQ = "SEAWAY-NONPOD-MASQ"
# filter table (SERVICES is reused there for REJECT of cluster IPs, as kube-proxy does)
EXTERNAL_SERVICES = "SEAWAY-EXTERNAL-SERVICES"
FORWARD = "SEAWAY-FORWARD"
# DROP what still goes to a load-balancer IP with source ranges after nat (not DNATed)
PROXY_FIREWALL = "SEAWAY-PROXY-FIREWALL"

MASQ_MARK = "0x4000"

NAT = "nat"
FILTER = "filter"


def policy_chains(name: ServicePortName) -> tuple[str, str, str]:
    """(SEAWAY-SVC-x, SEAWAY-SVL-x, SEAWAY-EXT-x) with one hash."""
    h = port_hash(name)
    return "SEAWAY-SVC-" + h, "SEAWAY-SVL-" + h, "SEAWAY-EXT-" + h


def service_chain(name: ServicePortName) -> str:
    """SEAWAY-SVC-<hash>: all usable endpoints (Cluster policy)."""
    return "SEAWAY-SVC-" + port_hash(name)


def local_chain(name: ServicePortName) -> str:
    """SEAWAY-SVL-<hash>: local endpoints only (Local policy)."""
    return "SEAWAY-SVL-" + port_hash(name)


def external_chain(name: ServicePortName) -> str:
    """SEAWAY-EXT-<hash>: traffic to NodePorts, external IPs and load-balancer IPs."""
    return "SEAWAY-EXT-" + port_hash(name)


def firewall_chain(name: ServicePortName) -> str:
    """SEAWAY-FW-<hash>: load-balancer IP traffic, checked against loadBalancerSourceRanges."""
    return "SEAWAY-FW-" + port_hash(name)


def endpoint_chain(name: ServicePortName, endpoint: EndpointInfo) -> str:
    """SEAWAY-SEP-<hash>: one endpoint (hairpin masquerade, affinity, DNAT)."""
    return "SEAWAY-SEP-" + endpoint_hash(name, endpoint)


_PER_SERVICE = ("SEAWAY-SVC-", "SEAWAY-SVL-", "SEAWAY-EXT-", "SEAWAY-FW-", "SEAWAY-SEP-")


def is_per_service(chain: str) -> bool:
    """A chain of one service port (or one of its endpoints), not a fixed chain."""
    return chain.startswith(_PER_SERVICE)


def is_ours(chain: str) -> bool:
    return chain.startswith(PREFIX)
