"""Listener set computation and diffing (pure)."""

from __future__ import annotations

from discovery.snapshot import ServicePortInfo, ServicePortName
from proxy.userspace.listeners import (
    ListenerDiff,
    ListenerKey,
    bindable_cluster_ips,
    desired_listeners,
    diff_listeners,
    nodeport_ips,
)


def sp(
    name: str,
    ip: str,
    port: int,
    protocol: str = "TCP",
    node_port: int | None = None,
    external_ips: tuple[str, ...] = (),
) -> ServicePortInfo:
    return ServicePortInfo(
        name=ServicePortName("ns", name, "", protocol),  # type: ignore[arg-type]
        cluster_ips=(ip,),
        port=port,
        protocol=protocol,  # type: ignore[arg-type]
        node_port=node_port,
        external_ips=external_ips,
    )


def ports(*infos: ServicePortInfo) -> dict[ServicePortName, ServicePortInfo]:
    return {i.name: i for i in infos}


def test_local_cluster_ips_and_node_ports_get_listeners() -> None:
    web = sp("web", "127.0.0.10", 80, node_port=30080)
    dns = sp("dns", "127.0.0.11", 53, protocol="UDP", node_port=30053)
    remote = sp("remote", "10.96.0.1", 443)
    d = desired_listeners(
        ports(web, dns, remote),
        lambda ip: ip.startswith("127."),
        ("0.0.0.0",),
        ("192.0.2.2", "127.0.0.1"),
    )
    assert d.listeners == {
        ListenerKey("TCP", "127.0.0.10", 80): web.name,
        ListenerKey("TCP", "0.0.0.0", 30080): web.name,
        ListenerKey("UDP", "127.0.0.11", 53): dns.name,
        ListenerKey("UDP", "192.0.2.2", 30053): dns.name,
        ListenerKey("UDP", "127.0.0.1", 30053): dns.name,
    }
    assert d.skipped == ()
    assert d.conflicts == ()


def test_external_ips_when_local_and_sctp_skipped() -> None:
    web = sp("web", "10.96.0.5", 80, external_ips=("192.0.2.2", "198.51.100.1"))
    sctp = sp("sig", "127.0.0.12", 3868, protocol="SCTP")
    d = desired_listeners(ports(web, sctp), lambda ip: ip == "192.0.2.2", (), ())
    assert d.listeners == {ListenerKey("TCP", "192.0.2.2", 80): web.name}
    assert d.skipped == (sctp.name,)


def test_conflict_first_name_keeps_listener() -> None:
    a = sp("a", "127.0.0.10", 80, node_port=30000)
    b = sp("b", "127.0.0.11", 80, node_port=30000)
    d = desired_listeners(ports(b, a), lambda ip: True, ("0.0.0.0",), ())
    key = ListenerKey("TCP", "0.0.0.0", 30000)
    assert d.listeners[key] == a.name
    assert d.conflicts == ((key, a.name, b.name),)


def test_nodeport_ips_defaults_and_cidrs() -> None:
    local = ["127.0.0.1", "192.0.2.2", "fd00::2", "fe80::1"]
    assert nodeport_ips([], local, "TCP") == ("0.0.0.0", "::")
    assert nodeport_ips([], local, "UDP") == ("127.0.0.1", "192.0.2.2", "fd00::2")
    assert nodeport_ips(["192.0.2.0/24"], local, "TCP") == ("192.0.2.2",)
    assert nodeport_ips(["fd00::/8", "127.0.0.0/8"], local, "UDP") == ("127.0.0.1", "fd00::2")
    assert nodeport_ips(["fe80::/10"], local, "TCP") == ()
    assert nodeport_ips(["10.0.0.0/8"], local, "TCP") == ()


def test_bindable_cluster_ips_leave_out_loopback_and_sctp() -> None:
    infos = [
        sp("a", "10.96.0.1", 80),
        sp("b", "127.0.0.5", 80),
        sp("c", "10.96.0.2", 53, protocol="UDP"),
        sp("d", "10.96.0.3", 9, protocol="SCTP"),
    ]
    assert bindable_cluster_ips(infos) == frozenset({"10.96.0.1", "10.96.0.2"})


def test_diff_opens_closes_and_retargets_only_what_changed() -> None:
    a = ServicePortName("ns", "a", "", "TCP")
    b = ServicePortName("ns", "b", "", "TCP")
    k1 = ListenerKey("TCP", "127.0.0.1", 1)
    k2 = ListenerKey("TCP", "127.0.0.1", 2)
    k3 = ListenerKey("UDP", "127.0.0.1", 3)
    k4 = ListenerKey("TCP", "127.0.0.1", 4)
    current = {k1: a, k2: a, k3: b}
    desired = {k1: a, k2: b, k4: b}
    d = diff_listeners(current, desired)
    assert d == ListenerDiff(open=((k4, b),), close=(k3,), retarget=((k2, b),))
    assert d
    assert not diff_listeners(desired, dict(desired))


def test_diff_is_deterministic() -> None:
    a = ServicePortName("ns", "a", "", "TCP")
    keys = [ListenerKey("TCP", f"127.0.0.{i}", 80) for i in (9, 3, 5)]
    d = diff_listeners({}, {k: a for k in keys})
    assert [k for k, _ in d.open] == sorted(keys)


def test_listener_key_str() -> None:
    assert str(ListenerKey("TCP", "127.0.0.1", 80)) == "tcp://127.0.0.1:80"
    assert str(ListenerKey("UDP", "::1", 53)) == "udp://[::1]:53"
