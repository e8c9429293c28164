"""proxy/counters.py: deltas summed into totals, families read from rows, quantiles."""

from __future__ import annotations

from bisect import bisect_left

import pytest

from proxy.counters import DURATION_BUCKETS, NBUCKETS, Delta, Family, Totals, quantile

# A row: [count, sum, *buckets over DURATION_BUCKETS]
COUNT, SUM, BUCKETS = 0, 1, 2


def row(*durations: float) -> list[float]:
    out = [0.0] * (BUCKETS + NBUCKETS)
    for d in durations:
        out[COUNT] += 1
        out[SUM] += d
        out[BUCKETS + bisect_left(DURATION_BUCKETS, d)] += 1
    return out


HIST = Family("h_seconds", "a histogram", "histogram", "t", (("svc", 0),), BUCKETS, COUNT, SUM,
              DURATION_BUCKETS)
COARSE = Family("c_seconds", "coarser", "histogram", "t", (("svc", 0),), BUCKETS, COUNT, SUM,
                (0.005, 0.1, 1.0), DURATION_BUCKETS)
COUNTER = Family("n_total", "a counter", "counter", "t", (("svc", 0),), COUNT)


def test_a_value_on_a_bound_counts_in_that_bucket_like_prometheus_le() -> None:
    r = row(0.001)
    # le="0.001" includes 0.001 itself
    assert r[BUCKETS + DURATION_BUCKETS.index(0.001)] == 1


def test_projection_sums_rows_with_equal_labels_and_makes_buckets_cumulative() -> None:
    rows = {("a", "GET"): row(0.0002, 0.003), ("a", "POST"): row(0.2), ("b", "GET"): row(100.0)}
    out = HIST.project(rows)
    count, total, *cumulative = out[("a",)]
    assert count == 3 and total == pytest.approx(0.2032)
    assert len(cumulative) == len(DURATION_BUCKETS) + 1
    assert cumulative[DURATION_BUCKETS.index(0.0005)] == 1
    assert cumulative[DURATION_BUCKETS.index(0.005)] == 2
    assert cumulative[DURATION_BUCKETS.index(0.25)] == 3
    assert cumulative[-1] == 3  # +Inf
    assert out[("b",)][2:] == [0] * len(DURATION_BUCKETS) + [1]  # only in +Inf
    assert COUNTER.project(rows) == {("a",): [3], ("b",): [1]}


def test_coarser_bounds_merge_the_fine_buckets_exactly() -> None:
    rows = {("a",): row(0.0002, 0.003, 0.05, 0.5, 7.0)}
    _, _, *cumulative = COARSE.project(rows)[("a",)]
    assert cumulative == [2, 3, 4, 5]  # le 0.005, 0.1, 1, +Inf


def test_totals_only_grow_and_gauges_follow_their_source() -> None:
    totals = Totals()
    totals.absorb("w1", Delta({"t": {("a",): [1.0, 2.0]}}, {"g": {("x",): [5.0]}}))
    totals.absorb("w2", Delta({"t": {("a",): [1.0, 1.0], ("b",): [4.0, 0.0]}}, {}))
    totals.absorb("w1", Delta({"t": {("a",): [1.0, 0.0]}}, {"g": {("x",): [2.0]}}))
    assert totals.rows("t") == {("a",): [3.0, 3.0], ("b",): [4.0, 0.0]}
    assert totals.gauge_rows("g") == {("x",): [2.0]}  # the latest, not a sum over time
    totals.forget("w1")
    assert totals.gauge_rows("g") == {}
    assert totals.rows("t")[("a",)] == [3.0, 3.0]


def test_quantile_interpolates_inside_the_bucket_as_histogram_quantile_does() -> None:
    bounds = (0.1, 0.2, 0.4)
    assert quantile(0.5, bounds, [0, 10, 0, 0]) == pytest.approx(0.15)
    assert quantile(0.99, bounds, [100, 0, 0, 0]) == pytest.approx(0.099)
    assert quantile(0.99, bounds, [0, 0, 0, 5]) == 0.4  # in +Inf: the highest bound
    assert quantile(0.99, bounds, [0, 0, 0, 0]) is None
    assert not Delta()
