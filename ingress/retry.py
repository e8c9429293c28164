"""When a failed attempt sends a request to another endpoint: the retry rule, and the
budget that keeps retries from multiplying an outage. Pure: no sockets, no clock.

What can fail (reported by the exchange, ingress/exchange.py, and its upstream
connection, ingress/upstream.py), before any response byte reached the client:

- CONNECT_ERROR, CONNECT_TIMEOUT: the connect was refused, unreachable or too slow.
  Nothing reached a backend.
- STALE: a pooled keep-alive connection turned out closed before any response byte (the
  backend closed it while idle), or a pipelined request waited behind one that broke.
- ERROR: the connection failed (reset, closed) after the request went out, before the
  response head.
- TIMEOUT: no response within the read timeout (the upstream idle timer) or the
  attempt's own timeout (Gateway API ``timeouts.backendRequest``).
- INVALID: the response head was malformed.
- STATUS: the response head's status is one the policy lists (nginx's http_502...).

The rule (nginx's proxy_next_upstream, with ingress-nginx's defaults "error timeout",
3 tries):

1. Nothing is sent again once any byte of the response reached the client.
2. The failure must be one the policy names: ``error`` covers CONNECT_ERROR and ERROR,
   ``timeout`` covers CONNECT_TIMEOUT and TIMEOUT, ``invalid_header`` INVALID, the
   statuses STATUS. ``off`` (nothing named) retries nothing. STALE is always retried,
   once, and counts against neither the tries nor the budget (nginx does not count a
   failed cached connection either): the request never got an answer because of the
   idle connection, not because of the endpoint.
3. A request that reached a backend (ERROR, TIMEOUT, INVALID, STATUS, and STALE) is
   sent again only if its method is idempotent (RFC 9110: GET, HEAD, OPTIONS, TRACE,
   PUT, DELETE), or the policy says ``non_idempotent``; and only if its body can be
   sent again: it has none, none of it was read yet, or the whole body was in hand when
   the request went out and is at most RESEND_MAX bytes (kept for that; a larger or
   streamed body is never buffered for a retry). A failed connect is retried for every
   method: nothing was sent.
4. At most ``tries`` attempts in all (0: no limit), each to an endpoint not tried yet;
   none starts after ``timeout`` seconds since the request began (0: no limit).
5. Budget (Envoy's retry budget, 20% with a minimum concurrency of 3): a retry of a
   request that reached a backend starts only while the service's retries in flight
   (per worker) are fewer than 20% of its requests in flight that are not being
   retried, or fewer than 3. (Envoy compares with all requests in flight, retried ones
   included, which lets retries reach 25% of the first attempts; counted this way they
   add at most 20%.) A failed connect is not counted: it loads no backend. Under a
   total outage retries then add at most a fifth to the load instead of multiplying it
   by the number of tries.
"""

from __future__ import annotations

from collections.abc import Sequence

from ingress.route_filters import Retry

CONNECT_ERROR, CONNECT_TIMEOUT, STALE, ERROR, TIMEOUT, INVALID, STATUS = range(1, 8)
SENT = ERROR  # kinds from here on: the request reached a backend

IDEMPOTENT = frozenset({b"GET", b"HEAD", b"OPTIONS", b"TRACE", b"PUT", b"DELETE"})
RESEND_MAX = 64 * 1024  # bytes of a request body kept so that it can be sent again
BUDGET_RATIO = 0.2  # Envoy's retry_budget.budget_percent default (20%)
BUDGET_MIN = 3  # Envoy's retry_budget.min_retry_concurrency default


class RetryPolicy:
    """A Retry filter (or the worker's defaults), compiled for the failure paths."""

    __slots__ = ("error", "invalid", "non_idempotent", "statuses", "timeout", "tries", "window")

    def __init__(
        self,
        on: Sequence[str] = ("error", "timeout"),
        tries: int = 3,
        statuses: Sequence[int] = (),
        non_idempotent: bool = False,
        window: float = 0.0,
    ) -> None:
        self.error = "error" in on
        self.timeout = "timeout" in on
        self.invalid = "invalid_header" in on
        self.statuses = frozenset(statuses)
        self.non_idempotent = non_idempotent or "non_idempotent" in on
        self.tries = tries
        self.window = window  # proxy-next-upstream-timeout, seconds

    @classmethod
    def of(cls, retry: Retry) -> RetryPolicy:
        return cls(retry.on, retry.tries, retry.statuses, retry.non_idempotent, retry.timeout)

    def covers(self, kind: int, status: int = 0) -> bool:
        """Whether the policy names this failure."""
        if kind in (CONNECT_ERROR, ERROR):
            return self.error
        if kind in (CONNECT_TIMEOUT, TIMEOUT):
            return self.timeout
        if kind == INVALID:
            return self.invalid
        if kind == STATUS:
            return status in self.statuses
        return kind == STALE

    def allows(self, kind: int, method: bytes, resendable: bool) -> bool:
        """Rule 3: whether a request with `method` may be sent again after `kind`."""
        if kind < STALE:
            return True  # a failed connect: nothing was sent
        return resendable and (method in IDEMPOTENT or self.non_idempotent)

    def __repr__(self) -> str:
        on = [n for n, v in (("error", self.error), ("timeout", self.timeout),
                             ("invalid_header", self.invalid)) if v]
        on += [f"http_{s}" for s in sorted(self.statuses)]
        if self.non_idempotent:
            on.append("non_idempotent")
        return f"RetryPolicy({' '.join(on) or 'off'}, tries={self.tries}, window={self.window})"


NO_RETRY = RetryPolicy((), 1)


def resendable(
    has_body: bool, complete: bool, received: int, pending: Sequence[bytes] | None
) -> bool:
    """Whether a request's body can go out again (rule 3): it has none; none of it was
    read (so none was sent); or the whole of it is still held in `pending` (kept when it
    was complete and small enough as the request first went out)."""
    if not has_body or not received:
        return True
    return complete and pending is not None and sum(map(len, pending)) == received


class RetryBudget:
    """Retries in flight of one service in one worker, against its requests in flight."""

    __slots__ = ("active", "minimum", "ratio", "refused")

    def __init__(self, ratio: float = BUDGET_RATIO, minimum: int = BUDGET_MIN) -> None:
        self.ratio = ratio
        self.minimum = minimum
        self.active = 0  # retries in flight
        self.refused = 0  # retries the budget did not allow

    def acquire(self, requests: int) -> bool:
        """One more retry in flight, if the budget allows with `requests` of the service
        in flight (each counted once, retried or not): retries in flight stay under
        `ratio` of the requests in flight that are not being retried, so they add at
        most that fraction to the load of first attempts, or under `minimum`."""
        active = self.active  # after this one: active + 1 retries, requests - active - 1 not
        if active >= self.minimum and active + 1 > (requests - active - 1) * self.ratio:
            self.refused += 1
            return False
        self.active += 1
        return True

    def release(self) -> None:
        if self.active > 0:
            self.active -= 1
