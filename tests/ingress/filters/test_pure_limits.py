"""Rate and concurrency limits (ingress/filters/ratelimit.py) and address lists
(ingress/filters/ranges.py), on an injected clock: no sleeping, no timing."""

from __future__ import annotations

from ingress.filters.ranges import AddressSet, SourceFilter
from ingress.filters.ratelimit import ZONE_KEYS, ConcurrencyZone, RateZone


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_rate_as_nginx_limit_req_nodelay() -> None:
    """limit-rps 2 with burst multiplier 3: burst 6, so 7 requests pass at once (nginx
    lets the first one of a key in at excess 0), then 2 a second."""
    clock = Clock()
    zone = RateZone(2, 6, clock)
    assert [zone.allow(b"a") for _ in range(8)] == [True] * 7 + [False]
    assert zone.allow(b"b")  # another client has its own bucket
    clock.now += 0.5  # one request drained
    assert zone.allow(b"a") and not zone.allow(b"a")
    clock.now += 10
    assert sum(zone.allow(b"a") for _ in range(10)) == 7  # back to a full burst


def test_rpm_is_a_rate_per_minute() -> None:
    clock = Clock()
    zone = RateZone(1 / 60, 1, clock)  # limit-rpm 1, multiplier 1
    assert zone.allow(b"a") and zone.allow(b"a") and not zone.allow(b"a")
    clock.now += 59
    assert not zone.allow(b"a")
    clock.now += 2
    assert zone.allow(b"a")


def test_zone_forgets_drained_keys_when_full() -> None:
    clock = Clock()
    zone = RateZone(1000, 1, clock)
    for i in range(ZONE_KEYS):
        zone.allow(b"%d" % i)
    clock.now += 1
    zone.allow(b"new")
    assert len(zone) == 1


def test_concurrency() -> None:
    zone = ConcurrencyZone(2)
    assert zone.acquire(b"a") and zone.acquire(b"a") and not zone.acquire(b"a")
    assert zone.acquire(b"b")
    zone.release(b"a")
    assert zone.count(b"a") == 1 and zone.acquire(b"a")
    zone.release(b"a")
    zone.release(b"a")
    assert zone.count(b"a") == 0


def test_allow_and_deny_lists() -> None:
    """ingress-nginx ipallowlist.go / ipdenylist.go: allow only the listed ranges; deny
    the listed ones; deny wins."""
    f = SourceFilter(["10.0.0.0/8", "2001:db8::/32", "127.0.0.1"], ["10.1.0.0/16"])
    assert f.allows(b"10.2.3.4") and f.allows(b"127.0.0.1") and f.allows(b"2001:db8::1")
    assert not f.allows(b"10.1.2.3") and not f.allows(b"192.168.1.1")
    assert f.allows(b"::ffff:10.2.3.4")  # a dual-stack socket's view of an IPv4 client
    assert not f.allows(b"garbage")
    only_deny = SourceFilter([], ["192.168.0.0/16"])
    assert only_deny.allows(b"10.0.0.1") and not only_deny.allows(b"192.168.3.3")
    assert not AddressSet([]) and b"1.2.3.4" not in AddressSet(["1.2.3.5/32"])
