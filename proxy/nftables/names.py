"""Names in seaway's nftables tables: fixed chains, sets and maps, and the hashed names of
one service port's (or endpoint's) chains and affinity sets (proxy/naming.py: hashes of
validated fields, never user text)."""

from __future__ import annotations

from discovery.snapshot import EndpointInfo, ServicePortName
from proxy.naming import digest, endpoint_hash, port_hash, port_key

TABLE = "seaway"
FAMILIES = ("ip", "ip6")

# base chains (hooked)
NAT_PREROUTING = "nat-prerouting"
NAT_OUTPUT = "nat-output"
NAT_POSTROUTING = "nat-postrouting"
FIREWALL_PREROUTING = "firewall-prerouting"
FIREWALL_OUTPUT = "firewall-output"
FILTER_INPUT = "filter-input"
FILTER_FORWARD = "filter-forward"
FILTER_OUTPUT = "filter-output"

# regular fixed chains
SERVICES = "services"
MASQUERADING = "masquerading"
MARK_MASQ = "mark-for-masquerade"
ENDPOINTS_CHECK = "endpoints-check"
FIREWALL_CHECK = "firewall-check"
REJECT = "reject-chain"

# sets and maps
CLUSTER_IPS = "cluster-ips"  # every cluster IP: reject what no service port took
CLUSTER_CIDRS = "cluster-cidrs"  # --cluster-cidr: pod sources
NODEPORT_ADDRESSES = "nodeport-addresses"  # --nodeport-addresses
HAIRPIN = "hairpin"  # endpoint . endpoint: a pod reaching itself through a service
SERVICE_IPS = "service-ips"  # cluster/external/LB IP . proto . port : verdict
SERVICE_NODEPORTS = "service-nodeports"  # proto . node port : verdict
PROTOCOLS = ("tcp", "udp", "sctp")
NO_ENDPOINT_SERVICES = "no-endpoint-services"  # IP . proto . port : reject / drop
NO_ENDPOINT_NODEPORTS = "no-endpoint-nodeports"  # proto . node port : reject / drop
FIREWALL_IPS = "firewall-ips"  # LB IP . proto . port with loadBalancerSourceRanges
FIREWALL_ALLOW = "firewall-allow"  # LB IP . proto . port . source range
SYNC_STATE = "sync-state"  # ip table only: the sync record (proxy/nftables/record.py)

MASQ_MARK = "0x4000"

SERVICE_PREFIX = "service-"  # endpoints for Cluster policy
LOCAL_PREFIX = "local-"  # endpoints on this node, for Local policies
EXTERNAL_PREFIX = "external-"  # NodePort, external and LB IP traffic
ENDPOINT_PREFIX = "endpoint-"  # one endpoint (ClientIP affinity only)
AFFINITY_PREFIX = "affinity-"  # the clients one endpoint has (ClientIP affinity)
PICK_PREFIX = "pick-"  # "pick-tcp-N": DNAT to one of N endpoints through @endpoints-tcp

PER_SERVICE = (SERVICE_PREFIX, LOCAL_PREFIX, EXTERNAL_PREFIX, ENDPOINT_PREFIX)


def policy_chains(name: ServicePortName) -> tuple[str, str, str]:
    """(service-x, local-x, external-x) with one hash."""
    h = port_hash(name)
    return SERVICE_PREFIX + h, LOCAL_PREFIX + h, EXTERNAL_PREFIX + h


def endpoint_chain(name: ServicePortName, endpoint: EndpointInfo) -> str:
    return ENDPOINT_PREFIX + endpoint_hash(name, endpoint)


def affinity_set(name: ServicePortName, endpoint: EndpointInfo, timeout: int) -> str:
    """The timeout is part of the hash: a changed timeout is a new set, never a set whose
    declaration changes under rules that use it."""
    return AFFINITY_PREFIX + digest(f"{port_key(name)}{endpoint.address}/{timeout}")


def endpoints_map(proto: str) -> str:
    """cluster IP . port . index : endpoint . port, one map per protocol (nft 1.0.6 cannot
    add elements or rules to a `typeof` map keyed on `meta l4proto . th dport`)."""
    return f"endpoints-{proto}"


def pick_chain(proto: str, n: int) -> str:
    return f"{PICK_PREFIX}{proto}-{n}"


def is_per_service(chain: str) -> bool:
    return chain.startswith(PER_SERVICE)
