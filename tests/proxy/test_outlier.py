"""Passive outlier detection and what balancers skip, driven by an injected clock (no
sleeps, no sockets): consecutive failures eject, ejections grow and decay, probes and
time bring endpoints back on probation, 5xx only with the opt-in, never more than half
out, the active checks' verdicts, and every balancer steering around what is out
(hashed and pinned picks fall to the next choice). Ends with a seeded property run."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from discovery.model import EndpointHealth
from discovery.snapshot import EndpointInfo
from proxy.balancer import Picker, new_balancer
from proxy.balancers.base import Balancer
from proxy.outlier import (
    ANY_HTTP,
    BASE_EJECTION,
    CONNECT_FAILED,
    HTTP_GET,
    MAX_EJECTION,
    PROBE_INTERVAL,
    RESET,
    SERVER_ERROR,
    TCP,
    TIMED_OUT,
    HealthEvent,
    HealthRegistry,
    ServiceHealth,
)

POLICIES = ("round-robin", "least-request", "ewma", "maglev")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def eps(n: int) -> list[EndpointInfo]:
    return [EndpointInfo(f"10.0.0.{i + 1}", 8080) for i in range(n)]


def addr(ep: EndpointInfo) -> tuple[str, int]:
    return (ep.ip, ep.port)


class World:
    """One service of `n` endpoints behind a balancer, with its health, an event log."""

    def __init__(
        self, n: int = 3, policy: str = "round-robin", settings: EndpointHealth | None = None
    ) -> None:
        self.clock = Clock()
        self.reg = HealthRegistry(self.clock, random.Random(1))
        self.events: list[HealthEvent] = []
        self.reg.on_event = self.events.append
        self.eps = eps(n)
        self.bal: Balancer = new_balancer(policy, self.eps, clock=self.clock)
        self.svc: ServiceHealth = self.reg.service(
            "default/web:80", ("default", "web", "80"), settings or EndpointHealth()
        )
        self.svc.attach(self.bal)

    def fail(self, ep: EndpointInfo, times: int = 1, kind: int = CONNECT_FAILED) -> None:
        for _ in range(times):
            self.svc.failure(ep, kind)

    def answer(self, ep: EndpointInfo, status: int = 200, times: int = 1) -> None:
        for _ in range(times):
            self.svc.answered(ep, status)

    def out(self) -> set[EndpointInfo]:
        return {self.bal.endpoints[i] for i in self.bal.out}

    def picks(self, n: int = 300, key: str | None = None) -> Counter[EndpointInfo]:
        got: Counter[EndpointInfo] = Counter()
        for _ in range(n):
            ep = self.bal.pick(key)
            assert ep is not None
            got[ep] += 1
            self.bal.done(ep)
        return got

    def run_until(self, t: float, probe_ok: bool | None = None) -> list[str]:
        """Advance the clock in ticks to t; answer every probe with probe_ok (None: leave
        them out). Returns the probes' kinds."""
        kinds = []
        while self.clock.now < t:
            self.clock.now = round(self.clock.now + 0.1, 6)
            for p in self.reg.tick():
                kinds.append(p.how)
                if probe_ok is not None:
                    self.reg.probed(p, probe_ok)
        return kinds


def test_five_consecutive_failures_eject_and_a_success_breaks_the_streak() -> None:
    w = World()
    a = w.eps[0]
    w.fail(a, 4)
    w.answer(a)  # any response head ends the streak
    w.fail(a, 4)
    assert w.out() == set()
    w.fail(a)
    assert w.out() == {a}
    assert [(e.what, e.reason, e.seconds) for e in w.events] == [("ejected", "connect", 30.0)]
    assert a not in w.picks()


def test_ejection_time_grows_to_the_maximum_then_decays() -> None:
    w = World(n=4)
    a = w.eps[0]
    lengths = []
    w.fail(a, 5, RESET)
    for _ in range(12):
        lengths.append(w.events[-1].seconds)
        w.run_until(w.events[-1].seconds + w.clock.now + 0.2, probe_ok=False)
        assert w.out() == set()  # back by time, on probation:
        w.fail(a, 1, RESET)  # one failure ejects it again, for longer
    assert lengths[:3] == [BASE_EJECTION, 2 * BASE_EJECTION, 3 * BASE_EJECTION]
    assert lengths[-1] == MAX_EJECTION
    # Each BASE_EJECTION in rotation takes one ejection off the count.
    w.run_until(w.clock.now + MAX_EJECTION + 0.2, probe_ok=False)
    w.answer(a)
    w.clock.now += 8 * BASE_EJECTION
    w.fail(a, 5, RESET)
    assert w.events[-1].seconds == (13 - 8 + 1) * BASE_EJECTION


def test_back_by_time_on_probation_the_first_failure_ejects_again() -> None:
    w = World()
    a = w.eps[0]
    w.fail(a, 5, TIMED_OUT)
    w.run_until(w.clock.now + BASE_EJECTION + 0.5)  # probes never answered
    assert w.out() == set()
    assert w.events[-1].what == "returned" and w.events[-1].reason == "time"
    w.fail(a, 1, TIMED_OUT)
    assert w.out() == {a}
    assert w.events[-1].seconds == 2 * BASE_EJECTION


def test_a_success_ends_the_probation() -> None:
    w = World()
    a = w.eps[0]
    w.fail(a, 5)
    w.run_until(w.clock.now + 5, probe_ok=True)
    assert w.out() == set()
    w.answer(a)
    w.fail(a, 4)
    assert w.out() == set()
    assert w.svc.watching == 1  # (a's streak of 4)
    w.answer(a)
    assert w.svc.watching == 0


def test_a_probe_that_passes_brings_it_back_within_the_probe_interval() -> None:
    w = World()
    a = w.eps[0]
    w.fail(a, 5)
    start = w.clock.now
    kinds = w.run_until(start + 10, probe_ok=False)
    assert w.out() == {a} and len(kinds) >= 3  # probed every ~2 s while it fails them
    w.run_until(w.clock.now + PROBE_INTERVAL * 1.3, probe_ok=True)
    assert w.out() == set()
    back = w.events[-1]
    assert back.what == "returned" and back.reason == "probe"


@pytest.mark.parametrize(
    ("kind", "path", "how"),
    [
        (CONNECT_FAILED, "", TCP),
        (RESET, "", TCP),
        (TIMED_OUT, "", ANY_HTTP),  # a black hole accepts connections: ask for an answer
        (TIMED_OUT, "/healthz", HTTP_GET),
        (CONNECT_FAILED, "/healthz", HTTP_GET),
    ],
)
def test_the_probe_fits_the_failure(kind: int, path: str, how: str) -> None:
    w = World(settings=EndpointHealth(check_path=path))
    w.fail(w.eps[0], 5, kind)
    assert set(w.run_until(w.clock.now + 5)) == {how}


def test_5xx_ejects_only_with_the_opt_in_and_is_not_probed_without_a_path() -> None:
    plain = World()
    plain.answer(plain.eps[0], 500, times=50)
    assert plain.out() == set() and plain.svc.watching == 0
    opted = World(settings=EndpointHealth(consecutive_5xx=3))
    a = opted.eps[0]
    opted.answer(a, 503, times=2)
    opted.answer(a, 200)
    opted.answer(a, 500, times=2)
    assert opted.out() == set()
    opted.answer(a, 500)
    assert opted.out() == {a}
    assert opted.events[-1].reason == "5xx"
    assert opted.run_until(opted.clock.now + BASE_EJECTION - 1) == []  # it would answer a probe
    opted.run_until(opted.clock.now + 2)
    assert opted.out() == set()


def test_never_more_than_half_out() -> None:
    w = World(n=3)
    a, b, _ = w.eps
    w.fail(a, 5)
    w.fail(b, 20)
    assert w.out() == {a}
    overflows = [e for e in w.events if e.what == "overflow"]
    assert len(overflows) == 1  # logged once per streak
    assert w.reg.take_counts()[("overflow", "default", "web", "80", "10.0.0.2:8080",
                                "connect")] == 16
    # When a comes back, b's very next failure takes the room.
    w.run_until(w.clock.now + 3, probe_ok=True)
    w.fail(b)
    assert w.out() == {b}


@pytest.mark.parametrize(("n", "most"), [(1, 0), (2, 1), (3, 1), (4, 2), (10, 5)])
def test_the_cap_by_size(n: int, most: int) -> None:
    w = World(n=n)
    for ep in w.eps:
        w.fail(ep, 5)
    assert len(w.out()) == most


def test_active_verdicts_exclude_and_panic_beyond_half() -> None:
    w = World(n=4)
    a, b, c, _ = w.eps
    w.reg.set_active_down({addr(a)})
    assert w.out() == {a}
    w.reg.set_active_down({addr(a), addr(b)})
    assert w.out() == {a, b}
    w.reg.set_active_down({addr(a), addr(b), addr(c)})
    assert w.out() == set()  # panic: spread over all
    assert set(w.picks(40)) == set(w.eps)
    w.fail(w.eps[3], 5)  # and no passive ejection on top
    assert w.svc.excluded == {addr(a), addr(b), addr(c)}


def test_endpoints_that_leave_are_forgotten_and_their_timers_cancelled() -> None:
    w = World(n=4)
    a = w.eps[0]
    w.fail(a, 5)
    assert len(w.reg.wheel) == 1
    w.bal.update(w.eps[1:])
    assert w.out() == set() and not w.svc.records and len(w.reg.wheel) == 0
    w.bal.update(w.eps)  # back: a fresh start
    assert w.out() == set()


@pytest.mark.parametrize("policy", POLICIES)
def test_every_balancer_skips_what_is_out(policy: str) -> None:
    w = World(n=4, policy=policy)
    a = w.eps[2]
    w.fail(a, 5)
    got = w.picks(400, key="user-1" if policy == "maglev" else None)
    assert a not in got
    if policy != "maglev":
        assert set(got) == set(w.eps) - {a}


def test_weighted_endpoints_keep_their_shares_among_those_left() -> None:
    clock = Clock()
    reg = HealthRegistry(clock)
    e = eps(3)
    bal = new_balancer("round-robin", e, [1.0, 2.0, 6.0], clock=clock)
    svc = reg.service("k", ("", "k", ""))
    svc.attach(bal)
    for _ in range(5):
        svc.failure(e[0], CONNECT_FAILED)
    got: Counter[EndpointInfo] = Counter()
    for _ in range(800):
        ep = bal.pick()
        assert ep is not None
        got[ep] += 1
        bal.done(ep)
    assert got[e[0]] == 0
    assert got[e[2]] == 3 * got[e[1]]


def test_a_hashed_key_whose_endpoint_is_out_moves_to_the_next_and_comes_back() -> None:
    w = World(n=5, policy="maglev")
    keys = [f"user-{i}" for i in range(200)]
    home = {k: w.bal.pick(k) for k in keys}
    for ep in home.values():
        assert ep is not None
        w.bal.done(ep)
    a = w.eps[1]
    w.fail(a, 5)
    for k in keys:
        ep = w.bal.pick(k)
        assert ep is not None and ep != a
        if home[k] != a:
            assert ep == home[k]  # only a's keys move
        w.bal.done(ep)
    w.run_until(w.clock.now + 3, probe_ok=True)
    assert all(w.bal.pick(k) == home[k] for k in keys)


def test_pinned_picks_fall_over() -> None:
    w = World(n=3)
    a = w.eps[0]
    picker = Picker(w.bal, affinity_timeout=100, clock=w.clock)
    first = picker.pick("192.0.2.7")
    assert first is not None
    w.fail(first, 5)
    again = picker.pick("192.0.2.7")
    assert again is not None and again != first
    assert w.bal.hold(first, 0.0) is None and not w.bal.saturated
    assert set(w.bal.avoiding([a])) >= {a, first}


def test_a_new_balancer_for_the_service_keeps_its_health() -> None:
    w = World(n=3)
    a = w.eps[0]
    w.fail(a, 5)
    other = new_balancer("least-request", w.eps, clock=w.clock)
    w.reg.service("default/web:80", ("default", "web", "80")).attach(other)
    assert {other.endpoints[i] for i in other.out} == {a}


def test_counts_for_metrics() -> None:
    w = World()
    a = w.eps[0]
    w.fail(a, 5, TIMED_OUT)
    w.run_until(w.clock.now + 3, probe_ok=True)
    counts = w.reg.take_counts()
    assert counts == {
        ("ejected", "default", "web", "80", "10.0.0.1:8080", "timeout"): 1,
        ("returned", "default", "web", "80", "10.0.0.1:8080", "probe"): 1,
    }
    assert w.reg.take_counts() == {}
    assert "ejected for 30s after timeouts" in w.events[0].message()


@pytest.mark.parametrize("seed", range(8))
def test_property_random_outcomes(seed: int) -> None:
    """Random failures, answers, probes and time on 2-9 endpoints: never more than half
    out by ejection, `watching` always equals the records on a streak or on probation,
    the balancer never picks what it excludes, and an endpoint that answers every probe
    is never out for longer than a probe interval and a tick."""
    rng = random.Random(seed)
    n = rng.randint(2, 9)
    w = World(n=n, policy=rng.choice(POLICIES), settings=EndpointHealth(consecutive_5xx=2))
    good = set(rng.sample(w.eps, rng.randint(0, n)))  # these pass every probe
    for _ in range(3000):
        r = rng.random()
        ep = rng.choice(w.eps)
        if r < 0.45:
            w.svc.failure(ep, rng.choice((CONNECT_FAILED, TIMED_OUT, RESET)))
        elif r < 0.9:
            w.svc.answered(ep, rng.choice((200, 200, 404, 500, 503)))
        else:
            w.clock.now = round(w.clock.now + rng.choice((0.1, 0.5, 2.0, 31.0)), 6)
            for p in w.reg.tick():
                ok = any(addr(e) == p.address for e in good)
                w.reg.probed(p, ok)
        ejected = [r for r in w.svc.records.values() if r.ejected]
        assert len(ejected) * 2 <= n
        assert w.svc.watching == sum(1 for r in w.svc.records.values() if r.interesting)
        for rec in ejected:
            if any(addr(e) == rec.address for e in good) and rec.kind != SERVER_ERROR:
                assert w.clock.now - rec.since <= PROBE_INTERVAL * 1.2 + 31.0 + 0.2
        picked = w.bal.pick("k" if w.bal.needs_key else None)
        assert picked is not None and addr(picked) not in {r.address for r in ejected}
        w.bal.done(picked)
