"""The statistics behind every interval and rank: the bootstrap against distributions with known
answers, the slope interval, and ranks that merge overlapping intervals."""

from __future__ import annotations

import random
import statistics

import pytest

from harness.stats import Interval, bootstrap, bootstrap_groups, percentile, rank_with_ties, slope_interval


def test_percentile_interpolates_between_sorted_values():
    assert percentile([1, 2, 3, 4], 0.0) == 1
    assert percentile([1, 2, 3, 4], 1.0) == 4
    assert percentile([1, 2, 3, 4], 0.5) == pytest.approx(2.5)


def test_bootstrap_interval_of_the_mean_covers_the_true_mean_about_95_percent_of_the_time():
    # Normal(10, 1), samples of 40: the 95 % interval of the mean should miss 10 in ~5 % of trials
    # and be about 2 · 1.96 / √40 ≈ 0.62 wide.
    rng = random.Random(3)
    covered, widths = 0, []
    trials = 150
    for t in range(trials):
        sample = [rng.gauss(10, 1) for _ in range(40)]
        iv = bootstrap(sample, stat=statistics.fmean, resamples=400, seed=t)
        covered += iv.lo <= 10 <= iv.hi
        widths.append(iv.hi - iv.lo)
    assert 0.88 <= covered / trials <= 0.99
    assert statistics.median(widths) == pytest.approx(2 * 1.96 / 40 ** 0.5, rel=0.15)


def test_bootstrap_of_a_constant_has_a_zero_width_interval_and_one_value_has_none():
    assert bootstrap([5.0] * 6).bounds() == (5.0, 5.0)
    iv = bootstrap([5.0])
    assert iv.value == 5.0 and iv.lo is None and iv.hi is None and iv.half_width_rel is None


def test_the_bootstrap_is_reproducible():
    data = [1.0, 2.0, 4.0, 8.0, 16.0]
    assert bootstrap(data) == bootstrap(data)


def test_slope_interval_contains_the_true_slope_and_narrows_with_repetitions():
    rng = random.Random(5)

    def groups(reps: int) -> dict[int, list[float]]:
        return {x: [(0.2 + 0.05 * x) * (1 + rng.gauss(0, 0.02)) for _ in range(reps)] for x in (50, 500, 1000)}

    line, few = slope_interval(groups(3))
    _, many = slope_interval(groups(30))
    assert line.slope == pytest.approx(0.05, rel=0.03)
    assert many.lo <= 0.05 <= many.hi
    assert (many.hi - many.lo) < (few.hi - few.lo)


def test_stratified_bootstrap_resamples_each_group_on_its_own():
    # Two groups with no spread inside each: every resample gives the same statistic.
    iv = bootstrap_groups({1: [1.0, 1.0, 1.0], 2: [3.0, 3.0]}, lambda g: sum(statistics.median(v) for v in g.values()))
    assert iv.value == iv.lo == iv.hi == 4.0


def test_rank_merges_a_server_into_the_group_whose_leader_it_overlaps():
    ranks = rank_with_ties([
        ("a", Interval(1.00, 0.95, 1.05)),
        ("b", Interval(1.04, 1.00, 1.08)),  # overlaps a → tied with a
        ("c", Interval(1.10, 1.06, 1.14)),  # overlaps b but not a → a new group
        ("d", Interval(2.00, 1.90, 2.10)),
    ])
    assert [(r.name, r.rank, r.tied) for r in ranks] == [("a", 1, True), ("b", 1, True), ("c", 2, False),
                                                         ("d", 3, False)]


def test_rank_without_intervals_orders_by_value():
    ranks = rank_with_ties([("slow", Interval(3.0)), ("fast", Interval(1.0)), ("mid", Interval(2.0))])
    assert [(r.name, r.rank) for r in ranks] == [("fast", 1), ("mid", 2), ("slow", 3)]


def test_an_interval_says_whether_it_excludes_a_value_and_how_far_it_reaches_from_it():
    assert Interval(1.0, 0.97, 1.02).reach_from(1) == pytest.approx(0.03)
    assert not Interval(1.0, 0.97, 1.02).excludes(1)
    assert Interval(0.9, 0.88, 0.93).excludes(1) and Interval(1.1, 1.05, 1.2).excludes(1)
    assert not Interval(1.0).excludes(1) and Interval(1.0).reach_from(1) == 0  # no interval: the value alone
    assert not Interval(1.04).excludes(1)  # one value (a --quick run's single pair) is no evidence of a bias
