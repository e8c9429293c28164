"""What the Ingress status says (discovery/ingress_status.py, pure). Cases ported from
ingress-nginx internal/ingress/status/status_test.go, each named after its upstream test."""

from __future__ import annotations

import pytest

from discovery.ingress_status import (
    IngressStatusConfig,
    node_entries,
    ownership_updates,
    published,
    release_updates,
    service_entries,
    status_json,
)
from discovery.model import Ingress, LoadBalancerIngress, Node, ObjectMeta, Service

LB = LoadBalancerIngress


def ingress(name: str, *entries: LB, rv: str = "7") -> Ingress:
    meta = ObjectMeta(name, "default", resource_version=rv)
    return Ingress(meta, "seaway", load_balancer=entries)


def node(*addresses: tuple[str, str]) -> Node:
    return Node(ObjectMeta("node-a"), addresses)


# -- where the addresses come from ------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "service", "expected"),
    [
        ("service type ClusterIP",
         Service(ObjectMeta("foo", "default"), "ClusterIP", ("1.1.1.1",)),
         (LB(ip="1.1.1.1"),)),
        ("service type NodePort",
         Service(ObjectMeta("foo", "default"), "NodePort", ("1.1.1.1",)),
         (LB(ip="1.1.1.1"),)),
        ("service type NodePort with externalIPs",
         Service(ObjectMeta("foo", "default"), "NodePort", ("1.1.1.1",),
                 external_ips=("2.2.2.2", "3.3.3.3")),
         (LB(ip="2.2.2.2"), LB(ip="3.3.3.3"))),
        ("service type ExternalName",
         Service(ObjectMeta("foo", "default"), "ExternalName", external_name="foo.bar"),
         (LB(hostname="foo.bar"),)),
        ("service type LoadBalancer",
         Service(ObjectMeta("foo", "default"), "LoadBalancer", ("1.1.1.1",),
                 load_balancer_ips=("10.0.0.1", "10.0.0.2"), load_balancer_hostnames=("foo",)),
         (LB(ip="10.0.0.1"), LB(ip="10.0.0.2"), LB(hostname="foo"))),
        ("service type LoadBalancer with same externalIP and ingress IP",
         Service(ObjectMeta("foo", "default"), "LoadBalancer", ("1.1.1.1",),
                 external_ips=("10.0.0.1",), load_balancer_ips=("10.0.0.1",)),
         (LB(ip="10.0.0.1"),)),
        ("headless ClusterIP (seaway: nothing to publish)",
         Service(ObjectMeta("foo", "default"), "ClusterIP", (), headless=True),
         ()),
    ],
)  # fmt: skip
def test_running_addresses_with_publish_service(
    title: str, service: Service, expected: tuple[LB, ...]
) -> None:
    """TestRunningAddressesWithPublishService (its cases by title)."""
    assert service_entries(service) == expected, title
    config = IngressStatusConfig(publish_service=("default", "foo"))
    mine, problem = published(config, service, None)
    assert mine == expected
    assert (problem == "") == bool(expected)


def test_running_addresses_with_publish_service_missing() -> None:
    """TestRunningAddressesWithPublishService "invalid service type": no address, an error
    that says why (and nothing is written: see test_no_address_leaves_status_alone)."""
    config = IngressStatusConfig(publish_service=("default", "foo"))
    mine, problem = published(config, None, None)
    assert mine == () and "default/foo: no such Service" in problem


def test_running_addresses_with_pods_uses_the_node_external_ip() -> None:
    """TestRunningAddressesWithPods: the node's ExternalIP (11.0.0.2), not its InternalIP;
    with --report-node-internal-ip-address its InternalIP; InternalIP when it has no
    ExternalIP."""
    both = node(("InternalIP", "11.0.0.1"), ("ExternalIP", "11.0.0.2"), ("Hostname", "n"))
    assert node_entries(both, internal=False) == (LB(ip="11.0.0.2"),)
    assert node_entries(both, internal=True) == (LB(ip="11.0.0.1"),)
    assert node_entries(node(("InternalIP", "11.0.0.1")), internal=False) == (LB(ip="11.0.0.1"),)
    config = IngressStatusConfig(node_name="node-a", fallback_addresses=("192.0.2.9",))
    assert published(config, None, both) == ((LB(ip="11.0.0.2"),), "")
    # The Node is unknown (not listed yet, or not a cluster node): the host's addresses.
    assert published(config, None, None) == ((LB(ip="192.0.2.9"),), "")
    mine, problem = published(IngressStatusConfig(node_name="node-a"), None, node())
    assert mine == () and "node-a" in problem


@pytest.mark.parametrize(
    ("flag", "expected"),
    [
        (("127.0.0.1",), (LB(ip="127.0.0.1"),)),  # TestRunningAddressesWithPublishStatusAddress
        (("127.0.0.1", "1.1.1.1"),  # ...WithPublishStatusAddresses (and ...AndSpaces: the
         (LB(ip="127.0.0.1"), LB(ip="1.1.1.1"))),  # flag parser strips ", " separators)
        (("lb.example.com",), (LB(hostname="lb.example.com"),)),  # nameOrIPToLoadBalancerIngress
    ],
)  # fmt: skip
def test_running_addresses_with_publish_status_address(
    flag: tuple[str, ...], expected: tuple[LB, ...]
) -> None:
    """TestRunningAddressesWithPublishStatusAddress(es)(AndSpaces); the flag wins over a
    Service and a Node."""
    config = IngressStatusConfig(publish_addresses=flag, publish_service=("default", "foo"))
    svc = Service(ObjectMeta("foo", "default"), "ClusterIP", ("9.9.9.9",))
    assert published(config, svc, node(("ExternalIP", "8.8.8.8"))) == (expected, "")


def test_standardize_load_balancer_ingresses() -> None:
    """TestStandardizeLoadBalancerIngresses: sorted, hostnames after bare IPs (an entry
    without a hostname sorts first, as ingress-nginx's lessLoadBalancerIngress)."""
    entries = (LB(ip="2001:db8::68"), LB(ip="10.0.0.1"), LB(hostname="opensource-k8s-ingress"))
    assert status_json(entries) == {
        "loadBalancer": {
            "ingress": [{"ip": "10.0.0.1"}, {"ip": "2001:db8::68"},
                        {"hostname": "opensource-k8s-ingress"}]
        }
    }  # fmt: skip
    assert status_json(()) == {"loadBalancer": {"ingress": None}}  # merge patch: removed


# -- what is written -------------------------------------------------------------------------


def test_status_actions_published_replace_and_other_classes_are_untouched() -> None:
    """TestStatusActions: an owned Ingress gets exactly the running address, whatever it
    showed; an Ingress of another class keeps its status; shutdown empties the owned one."""
    stale = (LB("foo1", "10.0.0.1"), LB("foo2", "10.0.0.2"), LB(ip="10.0.0.3"), LB("foo4"))
    owned = ingress("foo_ingress_1", *stale)
    other = ingress("foo_ingress_different_class", LB("foo.bar.com", "0.0.0.0"))
    mine = (LB(ip="11.0.0.2"),)
    ups = ownership_updates([owned, other], {owned.key}, set(), mine, shared=False)
    assert [(u.key.name, u.resource_version, u.status) for u in ups] == [
        ("foo_ingress_1", "7", {"loadBalancer": {"ingress": [{"ip": "11.0.0.2"}]}})
    ]
    written = ingress("foo_ingress_1", LB(ip="11.0.0.2"), rv="8")
    assert ownership_updates([written, other], {written.key}, set(), mine, False) == []
    (clear,) = release_updates([written, other], {written.key}, mine)
    assert clear.key.name == "foo_ingress_1"
    assert clear.status == {"loadBalancer": {"ingress": None}}


def test_same_entries_in_another_order_are_not_rewritten() -> None:
    """ingress-nginx sorts both lists before comparing (ingressSliceEqual)."""
    current = ingress("web", LB(ip="10.0.0.2"), LB(ip="10.0.0.1"))
    mine = (LB(ip="10.0.0.1"), LB(ip="10.0.0.2"))
    assert ownership_updates([current], {current.key}, set(), mine, shared=False) == []


def test_node_addresses_are_shared_between_replicas() -> None:
    """Without a published address each seaway adds its node's and keeps the others';
    letting go (or shutting down) removes its own only."""
    web = ingress("web", LB(ip="10.0.0.1"))  # node A's, written by the seaway there
    mine = (LB(ip="10.0.0.2"),)  # node B
    (up,) = ownership_updates([web], {web.key}, set(), mine, shared=True)
    assert up.status["loadBalancer"]["ingress"] == [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}]
    both = ingress("web", LB(ip="10.0.0.1"), LB(ip="10.0.0.2"))
    assert ownership_updates([both], {both.key}, set(), mine, shared=True) == []
    (gone,) = ownership_updates([both], set(), {both.key}, mine, shared=True)
    assert gone.status["loadBalancer"]["ingress"] == [{"ip": "10.0.0.1"}]
    (down,) = release_updates([both], {both.key}, mine)
    assert down.status == gone.status
    # Node B's address changed: its old one goes, node A's stays.
    (moved,) = ownership_updates([both], {both.key}, set(), (LB(ip="10.0.0.3"),), True,
                                 retired=mine)  # fmt: skip
    assert moved.status["loadBalancer"]["ingress"] == [{"ip": "10.0.0.1"}, {"ip": "10.0.0.3"}]


def test_let_go_ingress_keeps_other_entries_and_unowned_are_untouched() -> None:
    mine = (LB(ip="1.1.0.0"),)
    moved = ingress("moved", LB(ip="1.1.0.0"), LB(hostname="elsewhere.example"))
    stranger = ingress("stranger", LB(ip="1.1.0.0"))  # never seaway's in this run
    (up,) = ownership_updates([moved, stranger], set(), {moved.key}, mine, shared=False)
    assert up.key == moved.key
    assert up.status["loadBalancer"]["ingress"] == [{"hostname": "elsewhere.example"}]


def test_no_address_leaves_status_alone() -> None:
    """With nothing to publish (the Service has no address yet), owned Ingresses keep
    what they show instead of being emptied."""
    web = ingress("web", LB(ip="10.0.0.1"))
    assert ownership_updates([web], {web.key}, set(), (), shared=False) == []
