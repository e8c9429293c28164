"""The balancing algorithms, property-tested over seeded random runs: distribution
(chi-square against the expected shares, unweighted and weighted), load and latency
awareness, Maglev's stability across workers and minimal disruption on endpoint changes,
per-endpoint caps. Pure: fake clock, seeded random, no sockets."""

from __future__ import annotations

import itertools
import random
from collections import Counter
from collections.abc import Sequence

import pytest

from discovery.snapshot import EndpointInfo
from proxy.balancer import EndpointLimits, new_balancer, spread_weights
from proxy.balancers.base import Balancer, usable
from proxy.balancers.least_request import DECAY_TIME, Ewma, LeastRequest
from proxy.balancers.maglev import Maglev, build_table
from proxy.balancers.round_robin import RoundRobin

POLICIES = ("round-robin", "least-request", "ewma", "maglev")
SEEDS = (1, 2, 3, 4, 5)
# chi-square critical values at p = 0.001 by degrees of freedom: a correct balancer fails
# one seed in a thousand; the seeds are fixed, so the test is deterministic.
CHI2_CRIT = {2: 13.82, 3: 16.27, 4: 18.47, 9: 27.88}


def eps(n: int) -> list[EndpointInfo]:
    return [EndpointInfo(f"10.0.{i // 250}.{i % 250 + 1}", 8080) for i in range(n)]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def chi2(counts: Sequence[int], shares: Sequence[float]) -> float:
    total = sum(counts)
    expected = [total * s / sum(shares) for s in shares]
    return sum((c - e) ** 2 / e for c, e in zip(counts, expected, strict=True))


def make(policy: str, endpoints: Sequence[EndpointInfo], weights: Sequence[float] | None,
         seed: int, clock: FakeClock | None = None) -> Balancer:
    return new_balancer(policy, endpoints, weights, clock=clock or FakeClock(),
                        rng=random.Random(seed))


def sequential_picks(bal: Balancer, n: int, seed: int) -> Counter[EndpointInfo]:
    """n picks, each done before the next (an idle service); keys random for maglev."""
    keys = random.Random(seed * 7919)
    got: Counter[EndpointInfo] = Counter()
    for _ in range(n):
        ep = bal.pick(b"%d" % keys.getrandbits(64) if bal.needs_key else None)
        assert ep is not None
        got[ep] += 1
        bal.done(ep)
    return got


# -- distribution --------------------------------------------------------------------------
@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("seed", SEEDS)
def test_unweighted_picks_spread_evenly(policy: str, seed: int) -> None:
    endpoints = eps(5)
    got = sequential_picks(make(policy, endpoints, None, seed), 10_000, seed)
    counts = [got[e] for e in endpoints]
    assert chi2(counts, [1] * 5) < CHI2_CRIT[4], counts


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("seed", SEEDS)
def test_weighted_picks_follow_the_weights(policy: str, seed: int) -> None:
    endpoints = eps(4)
    weights = [1.0, 2.0, 3.0, 4.0]
    got = sequential_picks(make(policy, endpoints, weights, seed), 10_000, seed)
    counts = [got[e] for e in endpoints]
    assert chi2(counts, weights) < CHI2_CRIT[3], counts


def test_weighted_round_robin_is_exact_and_interleaved() -> None:
    endpoints = eps(3)
    rr = RoundRobin(endpoints, [5.0, 1.0, 1.0])
    picks = [rr.pick() for _ in range(70)]
    counts = Counter(picks)
    assert [counts[e] for e in endpoints] == [50, 10, 10]
    for light in endpoints[1:]:  # interleaved: a light endpoint comes every 7 picks
        at = [i for i, p in enumerate(picks) if p == light]
        assert max(b - a for a, b in itertools.pairwise(at)) <= 8


def test_weighted_round_robin_keeps_its_schedule_across_an_update() -> None:
    a, b, c = eps(3)
    rr = RoundRobin([a, b], [3.0, 1.0])
    for _ in range(3):
        rr.pick()
    rr.update([a, b, c], [3.0, 1.0, 1.0])
    counts = Counter(rr.pick() for _ in range(500))
    assert [counts[a], counts[b], counts[c]] == pytest.approx([300, 100, 100], abs=2)


def test_canary_weights_spread_over_backend_endpoints() -> None:
    stable, canary = eps(4)[:3], eps(4)[3:]
    endpoints, weights = spread_weights([(90.0, stable), (10.0, canary)])
    rr = RoundRobin(endpoints, weights)
    counts = Counter(rr.pick() for _ in range(1000))
    assert counts[canary[0]] == 100
    assert sum(counts[e] for e in stable) == 900


def test_zero_weight_takes_an_endpoint_out_and_repeats_merge() -> None:
    a, b, c = eps(3)
    endpoints, weights = usable([a, b, c, a], [1.0, 0.0, 1.0, 2.0])
    assert endpoints == (a, c) and weights == (3.0, 1.0)
    assert usable([a, b], [2.0, 2.0]) == ((a, b), None)  # equal weights: unweighted path
    with pytest.raises(ValueError, match="must be finite and >= 0"):
        usable([a], [-1.0])
    with pytest.raises(ValueError, match="2 endpoints but 1 weights"):
        usable([a, b], [1.0])


# -- load and latency ----------------------------------------------------------------------
@pytest.mark.parametrize("seed", SEEDS)
def test_least_request_steers_around_an_endpoint_that_holds_its_requests(seed: int) -> None:
    endpoints = eps(3)
    stuck = endpoints[0]
    lr = LeastRequest(endpoints, rng=random.Random(seed))
    got: Counter[EndpointInfo] = Counter()
    for _ in range(3000):
        ep = lr.pick()
        assert ep is not None
        got[ep] += 1
        if ep != stuck:  # the others answer at once; the stuck one never does
            lr.done(ep)
    assert got[stuck] <= 2  # round robin would have sent it 1000
    assert lr.active[0] == got[stuck]


@pytest.mark.parametrize("seed", SEEDS)
def test_weighted_least_request_under_load_keeps_active_counts_in_proportion(seed: int) -> None:
    endpoints = eps(3)
    lr = LeastRequest(endpoints, [1.0, 2.0, 5.0], rng=random.Random(seed))
    held: list[EndpointInfo] = []
    rng = random.Random(seed)
    for _ in range(5000):  # 80 requests in flight, finishing in random order
        ep = lr.pick()
        assert ep is not None
        held.append(ep)
        if len(held) > 80:
            lr.done(held.pop(rng.randrange(len(held))))
    assert lr.active[0] < lr.active[1] < lr.active[2]
    assert lr.active[2] / max(1, lr.active[0]) >= 2.5


@pytest.mark.parametrize("seed", SEEDS)
def test_ewma_sends_less_to_the_slow_endpoint(seed: int) -> None:
    clock = FakeClock()
    endpoints = eps(3)
    slow = endpoints[0]
    ew = Ewma(endpoints, clock=clock, rng=random.Random(seed))
    got: Counter[EndpointInfo] = Counter()
    for _ in range(3000):
        ep = ew.pick()
        assert ep is not None
        got[ep] += 1
        clock.now += 0.01
        ew.done(ep, 0.5 if ep == slow else 0.01)
    assert got[slow] < 3000 * 0.05  # round robin: a third


def test_ewma_decays_so_an_idle_endpoint_is_tried_again_and_newcomers_start_at_the_mean(
) -> None:
    clock = FakeClock()
    a, b, c = eps(3)
    ew = Ewma([a, b], clock=clock, rng=random.Random(1))
    ew.done(a, 1.0)  # first samples set the average outright
    ew.done(b, 0.2)
    assert ew.latency(0) == pytest.approx(1.0)
    clock.now += DECAY_TIME
    assert ew.latency(0) == pytest.approx(1.0 / 2.718281828, rel=1e-6)
    ew.done(a, 0.0)  # one sample DECAY_TIME later weighs 1 - 1/e
    assert ew.latency(0) == pytest.approx(1.0 / 2.718281828, rel=1e-6)
    ew.update([a, b, c])
    assert ew.latency(2) == pytest.approx((1.0 / 2.718281828 + 0.2 / 2.718281828) / 2, rel=1e-6)


def test_ewma_learns_connect_time_from_a_lease() -> None:
    clock = FakeClock()
    (a,) = eps(1)
    ew = Ewma([a], clock=clock)
    lease = ew.lease(None, (), now=10.0)
    assert lease is not None and lease.endpoint == a and lease.timed
    lease.begin_connect()
    assert ew.connecting == [1] and ew.active == [1]
    lease.connected(now=10.25)
    assert ew.latency(0) == pytest.approx(0.25)
    assert ew.connecting == [0] and ew.active == [1]
    lease.end()
    lease.end()  # twice is harmless
    assert ew.active == [0]


# -- Maglev --------------------------------------------------------------------------------
def keys(n: int, seed: int = 1) -> list[bytes]:
    rng = random.Random(seed)
    return [b"client-%d" % rng.getrandbits(48) for _ in range(n)]


def test_maglev_table_gives_equal_or_weighted_shares() -> None:
    names = [e.address for e in eps(7)]
    assert set(Counter(build_table(names, None, 65537)).values()) <= {9362, 9363}
    shares = Counter(build_table(names[:3], [1.0, 1.0, 2.0], 65537))
    assert [shares[0], shares[1], shares[2]] == pytest.approx([16384, 16384, 32768], abs=2)


def test_maglev_same_key_same_endpoint_in_every_worker_whatever_the_order() -> None:
    endpoints = eps(9)
    worker1 = Maglev(endpoints, rng=random.Random(1))
    worker2 = Maglev(list(reversed(endpoints)), rng=random.Random(2))
    for key in keys(2000):
        assert worker1.pick(key) == worker2.pick(key)


@pytest.mark.parametrize("n", [3, 10, 50])
def test_maglev_removing_one_endpoint_moves_about_one_nth_of_the_keys(n: int) -> None:
    endpoints = eps(n)
    ks = keys(20_000, seed=n)
    before = Maglev(endpoints)
    removed = endpoints[n // 2]
    after = Maglev([e for e in endpoints if e != removed])
    old = [before.pick(k) for k in ks]
    new = [after.pick(k) for k in ks]
    moved = sum(o != w for o, w in zip(old, new, strict=True)) / len(ks)
    needless = sum(o != w and o != removed for o, w in zip(old, new, strict=True)) / len(ks)
    assert moved <= 1 / n + 0.01
    assert needless <= 0.01  # keys whose endpoint stayed almost all stay with it


@pytest.mark.parametrize("n", [3, 10, 50])
def test_maglev_adding_one_endpoint_moves_about_one_nth_of_the_keys(n: int) -> None:
    endpoints = eps(n + 1)
    ks = keys(20_000, seed=n)
    bal = Maglev(endpoints[:n])
    old = [bal.pick(k) for k in ks]
    bal.update(endpoints)
    new = [bal.pick(k) for k in ks]
    moved = sum(o != w for o, w in zip(old, new, strict=True)) / len(ks)
    assert moved <= 1 / (n + 1) + 0.01
    needless = sum(o != w and w != endpoints[n] for o, w in zip(old, new, strict=True)) / len(ks)
    assert needless <= 0.01  # almost every key that moved went to the newcomer


def test_maglev_falls_back_consistently_and_without_a_key_round_robins() -> None:
    endpoints = eps(4)
    bal = Maglev(endpoints)
    first = bal.pick(b"user-42")
    assert first is not None
    second = bal.pick(b"user-42", [first])
    assert second not in (None, first)
    assert Maglev(endpoints).pick(b"user-42", [first]) == second  # the same in any worker
    assert bal.pick(b"user-42", endpoints) is None
    assert [bal.pick(None) for _ in range(4)] == endpoints


# -- caps (circuit breaking) and counts ------------------------------------------------------
@pytest.mark.parametrize("policy", POLICIES)
def test_caps_pass_over_full_endpoints_then_overflow(policy: str) -> None:
    a, b = eps(2)
    bal = new_balancer(policy, [a, b], clock=FakeClock(), rng=random.Random(3),
                       limits=EndpointLimits(max_active=2))
    picks = [bal.pick(b"k" if bal.needs_key else None) for _ in range(4)]
    assert Counter(picks) == {a: 2, b: 2}
    assert bal.pick(b"k") is None and bal.saturated and bal.overflows == 1
    bal.done(a)
    assert bal.pick(b"k") == a and not bal.saturated
    assert not bal.pick_this(a)


def test_connecting_cap_frees_on_connect_or_on_a_failed_connect() -> None:
    (a,) = eps(1)
    bal = RoundRobin([a], max_connecting=1)
    first = bal.lease(None, (), 0.0)
    assert first is not None and not first.timed
    first.begin_connect()
    assert bal.pick() is None and bal.saturated  # one connect in progress: full
    first.connected()
    second = bal.lease(None, (), 0.0)
    assert second is not None and not bal.saturated
    second.begin_connect()
    second.end()  # that connect failed: both counts drop
    assert bal.connecting == [0] and bal.active == [1]
    pooled = bal.lease(None, (), 0.0)  # a request on a pooled connection: no connect
    assert pooled is not None
    pooled.end()
    first.end()
    assert bal.connecting == [0] and bal.active == [0]


def test_a_lease_outlives_an_update_and_finds_its_endpoint_by_address() -> None:
    a, b, c = eps(3)
    bal = LeastRequest([a, b], rng=random.Random(1))
    lease = bal.lease(None, (), 0.0)
    assert lease is not None
    held = lease.endpoint
    bal.update([c, held])  # its index changed
    assert bal.active == [0, 1]
    lease.end()
    assert bal.active == [0, 0]
    gone = bal.lease(None, (), 0.0)
    assert gone is not None
    bal.update([e for e in (a, b, c) if e != gone.endpoint])
    gone.end()  # its endpoint left: nothing to release, nothing broken
    assert sum(bal.active) == 0


def test_update_keeps_counts_of_endpoints_that_stay_and_ignores_gone_ones() -> None:
    a, b, c = eps(3)
    bal = LeastRequest([a, b], rng=random.Random(1))
    while bal.active != [1, 1]:
        bal.pick()
        if bal.active[0] > 1:
            bal.done(a)
        if bal.active[1] > 1:
            bal.done(b)
    bal.update([b, c])
    assert bal.active == [1, 0]
    bal.done(a)  # a left meanwhile: nothing to release
    assert bal.active == [1, 0]
    moved = EndpointInfo(b.ip, b.port, ready=False, serving=True, terminating=True)
    bal.update([moved, c])  # same address, other conditions: same counts
    assert bal.active == [1, 0]


def test_unknown_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown load balancer 'random'"):
        new_balancer("random", eps(2), clock=FakeClock())


def test_empty_balancers_pick_nothing() -> None:
    for policy in POLICIES:
        bal = new_balancer(policy, (), clock=FakeClock())
        assert bal.pick(b"k") is None and not bal.saturated
