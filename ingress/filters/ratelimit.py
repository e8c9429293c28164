"""Per-client request rates and concurrent requests, as nginx's limit_req and limit_conn
count them (ingress-nginx limit-rps, limit-rpm, limit-burst-multiplier,
limit-connections). Pure: the clock is injected.

RateZone is nginx's leaky bucket with ``nodelay``: per key, ``excess`` drains at ``rate``
requests a second; a request adds one (what is left never below 0, as
ngx_http_limit_req_lookup computes it); a request that would take it above ``burst`` is
refused (and not counted). The first request of a key, or of a drained one, leaves it
at 0, so ``burst + 1`` requests pass at once. ingress-nginx sets burst to the limit
times the burst multiplier (limit-rps 5, multiplier 5: 26 requests at once, then 5 a
second).

ConcurrencyZone counts the requests of a key under way (nginx counts a connection only
while it has a request being processed), refusing one over ``limit``.

Limits hold per worker process (nginx shares its zones between workers; seaway's workers
share nothing): with N workers a client may get up to N times the rate. Keys are client
addresses as bytes; zones forget keys that drained when they grow past ZONE_KEYS.
"""

from __future__ import annotations

from collections.abc import Callable

Clock = Callable[[], float]
ZONE_KEYS = 65536  # keys a zone holds before it sweeps the drained ones


class RateZone:
    """Requests per second with a burst, per key."""

    __slots__ = ("_clock", "_state", "burst", "rate")

    def __init__(self, rate: float, burst: float, clock: Clock) -> None:
        self.rate = rate  # requests a second (limit-rpm n: n / 60)
        self.burst = burst
        self._clock = clock
        self._state: dict[bytes, tuple[float, float]] = {}  # key -> (excess, when)

    def allow(self, key: bytes) -> bool:
        now = self._clock()
        state = self._state
        found = state.get(key)
        if found is None:
            if len(state) >= ZONE_KEYS:
                self._sweep(now)
            state[key] = (0.0, now)
            return True
        excess, when = found
        excess = max(excess - self.rate * (now - when) + 1.0, 0.0)  # nginx's order
        if excess > self.burst:
            return False
        state[key] = (excess, now)
        return True

    def _sweep(self, now: float) -> None:
        rate = self.rate
        drained = [k for k, (e, t) in self._state.items() if e - rate * (now - t) <= 0.0]
        for k in drained:
            del self._state[k]
        if len(self._state) >= ZONE_KEYS:  # nobody drained: forget the oldest half
            for k in list(self._state)[: ZONE_KEYS // 2]:
                del self._state[k]

    def __len__(self) -> int:
        return len(self._state)


class ConcurrencyZone:
    """Requests under way, per key, at most ``limit``."""

    __slots__ = ("_counts", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._counts: dict[bytes, int] = {}

    def acquire(self, key: bytes) -> bool:
        n = self._counts.get(key, 0)
        if n >= self.limit:
            return False
        self._counts[key] = n + 1
        return True

    def release(self, key: bytes) -> None:
        n = self._counts.get(key, 0) - 1
        if n > 0:
            self._counts[key] = n
        else:
            self._counts.pop(key, None)

    def count(self, key: bytes) -> int:
        return self._counts.get(key, 0)
