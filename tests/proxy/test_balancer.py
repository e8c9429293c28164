"""Round robin, ClientIP affinity and the Picker over any balancer (pure, fake clock)."""

from __future__ import annotations

from discovery.snapshot import EndpointInfo
from proxy.balancer import ClientIPAffinity, Lease, LeastRequest, Maglev, Picker, RoundRobin

A = EndpointInfo("10.0.0.1", 80)
B = EndpointInfo("10.0.0.2", 80)
C = EndpointInfo("10.0.0.3", 80)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_round_robin_cycles_in_order() -> None:
    rr = RoundRobin([A, B, C])
    assert [rr.pick() for _ in range(7)] == [A, B, C, A, B, C, A]


def test_round_robin_empty_gives_none() -> None:
    rr = RoundRobin([])
    assert rr.pick() is None
    assert rr.pick_excluding(set()) is None


def test_pick_excluding_skips_tried_and_gives_up_after_all() -> None:
    rr = RoundRobin([A, B, C])
    assert rr.pick_excluding({A}) == B
    assert rr.pick_excluding({A, B}) == C
    assert rr.pick_excluding({A, C}) == B
    assert rr.pick_excluding({A, B, C}) is None


def test_update_keeps_position_and_drops_removed() -> None:
    rr = RoundRobin([A, B, C])
    assert rr.pick() == A
    rr.update([A, C])
    picks = [rr.pick() for _ in range(4)]
    assert B not in picks
    assert picks.count(A) == 2 and picks.count(C) == 2
    rr.update([])
    assert rr.pick() is None
    rr.update([B])
    assert rr.pick() == B


def test_affinity_sticks_until_timeout_then_expires() -> None:
    clock = FakeClock()
    aff = ClientIPAffinity(10, clock)
    aff.record("1.1.1.1", B)
    clock.now += 9
    assert aff.lookup("1.1.1.1", {A, B}) == B
    clock.now += 11
    assert aff.lookup("1.1.1.1", {A, B}) is None
    assert len(aff) == 0


def test_affinity_drops_unusable_endpoint() -> None:
    aff = ClientIPAffinity(10, FakeClock())
    aff.record("1.1.1.1", B)
    assert aff.lookup("1.1.1.1", {A, C}) is None
    assert len(aff) == 0


def test_affinity_expire_sweeps_only_stale() -> None:
    clock = FakeClock()
    aff = ClientIPAffinity(10, clock)
    aff.record("1.1.1.1", A)
    clock.now += 8
    aff.record("2.2.2.2", B)
    clock.now += 5
    assert aff.expire() == 1
    assert aff.lookup("2.2.2.2", {A, B}) == B


def test_picker_without_affinity_is_round_robin() -> None:
    p = Picker(RoundRobin([A, B, C]))
    assert [p.pick("1.1.1.1") for _ in range(3)] == [A, B, C]
    assert p.pick("1.1.1.1", {A}) == B


def test_picker_with_affinity_keeps_client_on_endpoint() -> None:
    clock = FakeClock()
    p = Picker(RoundRobin([A, B, C]), affinity_timeout=30, clock=clock)
    first = p.pick("1.1.1.1")
    other = p.pick("2.2.2.2")
    assert first != other
    assert [p.pick("1.1.1.1") for _ in range(5)] == [first] * 5
    # sliding window: used every 20s, never expires
    for _ in range(3):
        clock.now += 20
        assert p.pick("1.1.1.1") == first


def test_picker_affinity_moves_when_endpoint_removed_or_tried() -> None:
    p = Picker(RoundRobin([A, B]), affinity_timeout=30, clock=FakeClock())
    assert p.pick("1.1.1.1") == A
    assert p.pick("1.1.1.1", {A}) == B  # connect to A failed: move on
    assert p.pick("1.1.1.1") == B  # and stick to the new one
    p.update([A, C])
    assert p.pick("1.1.1.1") in (A, C)
    assert p.pick("1.1.1.1", {A, C}) is None


def test_picker_affinity_can_be_switched_off() -> None:
    p = Picker(RoundRobin([A, B]), affinity_timeout=30, clock=FakeClock())
    p.pick("1.1.1.1")
    p.set_affinity(None)
    assert p.affinity is None
    assert {p.pick("1.1.1.1") for _ in range(2)} == {A, B}


def test_picker_hashes_the_client_ip_when_the_balancer_hashes() -> None:
    worker1 = Picker(Maglev([A, B, C]))
    worker2 = Picker(Maglev([C, B, A]))
    clients = [f"192.0.2.{i}" for i in range(1, 60)]
    first = [worker1.pick(ip) for ip in clients]
    assert first == [worker2.pick(ip) for ip in clients]
    assert first == [worker1.pick(ip) for ip in clients]  # stable
    assert set(first) == {A, B, C}


def test_picker_affinity_at_its_cap_goes_elsewhere_and_counts_every_pick() -> None:
    p = Picker(LeastRequest([A, B], max_active=1), affinity_timeout=30, clock=FakeClock())
    first = p.pick("1.1.1.1")
    assert first is not None
    assert p.pick("1.1.1.1") not in (None, first)  # the affine one is full
    assert p.balancer.active == [1, 1]
    assert p.pick("1.1.1.1") is None and p.balancer.saturated


def test_picker_switches_balancer_and_old_leases_end_on_theirs() -> None:
    old = RoundRobin([A, B])
    p = Picker(old)
    ep = p.pick("1.1.1.1")
    assert ep is not None
    lease = Lease(p.balancer, ep, 0.0)
    p.set_balancer(LeastRequest([A, B]))
    lease.end(1.0)
    assert old.active == [0, 0] and p.balancer.active == [0, 0]
