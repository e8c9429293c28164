"""The retry rule and budget of ingress/retry.py, as pure logic (nginx's
proxy_next_upstream semantics; Envoy's retry budget)."""

from __future__ import annotations

from ingress.retry import (
    CONNECT_ERROR,
    CONNECT_TIMEOUT,
    ERROR,
    INVALID,
    STALE,
    STATUS,
    TIMEOUT,
    RetryBudget,
    RetryPolicy,
    resendable,
)
from ingress.route_filters import Retry


def test_conditions_name_the_failures() -> None:
    """nginx: "error" is an error connecting, sending or reading the response header;
    "timeout" a timeout doing any of those; invalid_header a bad response; http_NNN a
    status; off none (a stale keep-alive connection is seaway's own, always retried)."""
    default = RetryPolicy()
    assert [default.covers(k) for k in (CONNECT_ERROR, CONNECT_TIMEOUT, ERROR, TIMEOUT)] == [
        True] * 4
    assert not default.covers(INVALID) and not default.covers(STATUS, 502)
    only = RetryPolicy.of(Retry(3, ("timeout", "invalid_header"), (502, 503)))
    assert not only.covers(CONNECT_ERROR) and not only.covers(ERROR)
    assert only.covers(CONNECT_TIMEOUT) and only.covers(INVALID)
    assert only.covers(STATUS, 503) and not only.covers(STATUS, 500)
    off = RetryPolicy.of(Retry(3, ()))
    assert not any(off.covers(k, 502) for k in (CONNECT_ERROR, ERROR, TIMEOUT, INVALID, STATUS))
    assert off.covers(STALE)


def test_non_idempotent_requests_go_again_only_when_nothing_was_sent() -> None:
    default = RetryPolicy()
    for kind in (CONNECT_ERROR, CONNECT_TIMEOUT):
        assert default.allows(kind, b"POST", resendable=False)
    for kind in (STALE, ERROR, TIMEOUT, INVALID, STATUS):
        assert not default.allows(kind, b"POST", True)
        assert not default.allows(kind, b"PATCH", True)
        assert default.allows(kind, b"GET", True) and default.allows(kind, b"DELETE", True)
        assert not default.allows(kind, b"PUT", resendable=False)
    assert RetryPolicy(("error", "non_idempotent")).allows(ERROR, b"POST", True)


def test_a_body_goes_again_only_when_it_is_all_in_hand() -> None:
    assert resendable(False, True, 0, None)  # no body
    assert resendable(True, False, 0, None)  # none of it read yet (so none sent)
    assert resendable(True, True, 6, [b"ab", b"cdef"])  # kept whole
    assert not resendable(True, True, 6, None)  # too large to keep, or streamed
    assert not resendable(True, True, 6, [b"cdef"])  # part of it went out earlier
    assert not resendable(True, False, 2, [b"ab"])  # still arriving


def test_budget_minimum_and_ratio() -> None:
    """Envoy's retry budget: min_retry_concurrency 3; beyond it, retries in flight under
    20% of the requests in flight that are not retries."""
    b = RetryBudget()
    assert [b.acquire(1) for _ in range(4)] == [True, True, True, False]
    b = RetryBudget()
    granted = sum(b.acquire(120) for _ in range(40))
    assert granted == 20  # 20 <= 0.2 * (120 - 20), 21 > 0.2 * 99
    assert b.refused == 20
    for _ in range(25):
        b.release()
    assert b.active == 0


def test_budget_keeps_retries_to_a_fifth_of_first_attempts() -> None:
    """A total outage simulated in rounds: C requests in flight, every try fails and
    takes one round; a failed first try is retried when the budget allows, a retry's
    failure ends the request (2 tries). Retries stay within 20% of the requests, plus
    what the minimum allows (3 in flight: up to 3 per round); with many in flight, 20%
    alone."""
    for clients in (1, 2, 10, 64, 500):
        budget = RetryBudget()
        first = clients  # requests on their first try
        retrying = 0
        requests = retries = 0
        rounds = 200
        for _ in range(rounds):
            requests += first
            for _ in range(retrying):
                budget.release()  # the retries fail: their requests end
            wanting, retrying = first, 0
            for _ in range(wanting):
                if budget.acquire(clients):
                    retrying += 1
            retries += retrying
            first = clients - retrying  # finished requests are replaced by new ones
        assert retries <= 0.2 * requests + 3 * rounds, clients
        if clients >= 64:
            assert retries <= 0.2 * requests, clients
