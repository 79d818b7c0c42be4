"""Analysis arithmetic on synthetic data: fits, measured load, flags, aggregation, findings."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

import statistics

from harness.analysis import analyze, findings, knee_levels, least_squares, measured_load, record_flags, write_summary_csv
from harness.tests.conftest import DATA
from harness.tests.synthetic import FAKE_SERVERS, PREEMPTED_SHARE, make_record, make_run


def test_least_squares_recovers_an_exact_line():
    xs = [1, 10, 100, 1000]
    fit = least_squares(xs, [0.2 + 0.05 * x for x in xs])
    assert fit.slope == pytest.approx(0.05)
    assert fit.intercept == pytest.approx(0.2)
    assert fit.r == pytest.approx(1.0)
    assert fit.n == 4


def test_least_squares_matches_hand_computed_values():
    # x = 1,2,3; y = 2,3,5: Sxx = 2, Sxy = 3, Syy = 42/9 → slope 1.5, intercept 1/3, r = 3/√(2·42/9)
    fit = least_squares([1, 2, 3], [2, 3, 5])
    assert fit.slope == pytest.approx(1.5)
    assert fit.intercept == pytest.approx(1 / 3)
    assert fit.r == pytest.approx(0.9819805, rel=1e-6)


def test_least_squares_needs_two_distinct_loads():
    assert least_squares([5, 5], [1, 2]) is None
    assert least_squares([5], [1]) is None


def test_constant_response_time_has_no_correlation():
    fit = least_squares([1, 2, 3], [4, 4, 4])
    assert fit.slope == 0 and fit.r is None


def test_measured_load_follows_the_papers_definition():
    # n = 10,000 requests of 5 ms in 1 s with 50 in flight: l_m = 10000 · 0.005 / 1 = 50
    assert measured_load(10000, 0.005, 1.0) == pytest.approx(50)
    assert measured_load(10, 0.005, 0.0) == 0.0


def _run(tmp_path: Path) -> Path:
    return make_run(tmp_path / "run", levels=(1, 10, 100, 200), repetitions=2)


def test_fits_recover_the_synthetic_slopes(tmp_path: Path):
    a = analyze(_run(tmp_path))
    for server in FAKE_SERVERS:
        b = a.backend(server.name)
        assert b.fit_mean.slope == pytest.approx(server.slope_ms, rel=0.03)
        assert b.fit_mean.r > 0.999


def test_backends_are_ranked_by_slope(tmp_path: Path):
    a = analyze(_run(tmp_path))
    slopes = [b.slope.value for b in a.backends]
    assert slopes == sorted(slopes)
    assert a.backends[0].backend == "st"
    assert [b.rank for b in a.backends] == sorted(b.rank for b in a.backends)


def test_points_combine_valid_repetitions_by_the_median(tmp_path: Path):
    a = analyze(make_run(tmp_path / "run", levels=(1, 10, 100), repetitions=3))
    p = next(p for p in a.points if p.backend == "thread" and p.offered_load == 100)
    raw = [r["loadgen"]["mean_response_ms"] for r in a.records if r["backend"] == "thread" and r["offered_load"] == 100]
    assert p.repetitions == 3 and p.valid_repetitions == 3
    assert p.mean_response_ms == pytest.approx(statistics.median(raw))
    lo, hi = p.mean_response_ci
    assert min(raw) <= lo <= p.mean_response_ms <= hi <= max(raw)


def test_cpu_and_context_switches_are_per_request_in_the_window(tmp_path: Path):
    a = analyze(_run(tmp_path))
    thread = next(s for s in FAKE_SERVERS if s.name == "thread")
    st = next(s for s in FAKE_SERVERS if s.name == "st")
    p = next(p for p in a.points if p.backend == "thread" and p.offered_load == 10)
    assert p.cpu_us_per_request == pytest.approx(thread.cpu_us, rel=1e-3)
    assert p.ctx_switches_per_request == pytest.approx(thread.ctx_per_request, rel=1e-3)
    assert p.preemptions_per_request == pytest.approx(thread.ctx_per_request * PREEMPTED_SHARE, rel=1e-3)
    assert a.backend("thread").preemptions_per_request == pytest.approx(thread.ctx_per_request * PREEMPTED_SHARE,
                                                                        rel=1e-3)
    assert p.requests_per_cpu_second == pytest.approx(1e6 / thread.cpu_us, rel=1e-3)
    assert a.backend("st").user_switches_per_request == pytest.approx(st.user_switches_per_request)
    assert a.backend("thread").cpu.value == pytest.approx(thread.cpu_us, rel=1e-3)


def test_invalid_points_are_flagged_with_their_reason_and_left_out_of_the_fit(tmp_path: Path):
    a = analyze(_run(tmp_path))
    kinds = {(f.backend, f.kind) for f in a.flags}
    assert ("sped", "server_not_saturated") in kinds and ("sped", "client_busy") in kinds
    assert ("apache-prefork", "load_shortfall") in kinds
    assert ("fork", "errors") in kinds
    assert not any(f.backend == "thread" for f in a.flags)
    assert a.backend("apache-prefork").points == 8 and a.backend("apache-prefork").flagged_points == 2
    # apache-prefork's heaviest load is invalid in both repetitions: its line uses the other loads only
    assert a.backend("apache-prefork").fit_mean.n == 3
    sped_top = next(p for p in a.points if p.backend == "sped" and p.offered_load == 200)
    assert sped_top.valid_repetitions == 1 and sped_top.flags == ["client_busy", "server_not_saturated"]


def _rec(level: int, server_util: float, client_util: float, measured: float | None = None) -> dict:
    import random

    r = make_record(FAKE_SERVERS[0], level, 0, random.Random(1))
    r["server_metrics"]["utilization"] = server_util
    r["loadgen"]["client_cpu"]["utilization"] = client_util
    if measured is not None:
        r["loadgen"]["measured_load"] = measured
    return r


def test_the_validity_rule_applies_beyond_the_knee_only():
    below = _rec(1, server_util=0.3, client_util=0.2)
    assert record_flags(below, beyond_knee=False) == []  # a lone client leaves the server idle by design
    assert [f.kind for f in record_flags(_rec(500, 0.95, 0.5), beyond_knee=True)] == []
    assert [f.kind for f in record_flags(_rec(500, 0.89, 0.5), beyond_knee=True)] == ["server_not_saturated"]
    assert [f.kind for f in record_flags(_rec(500, 0.95, 0.61), beyond_knee=True)] == ["client_busy"]
    assert [f.kind for f in record_flags(_rec(500, 0.95, 0.5, measured=440), beyond_knee=True)] == ["load_shortfall"]
    # thresholds come from the experiment's [validity] table
    assert record_flags(_rec(500, 0.85, 0.5), beyond_knee=True, server_min=0.8) == []


def test_a_point_whose_response_times_account_for_too_little_of_its_load_is_flagged():
    # fiber at 1000 clients on 2026-11-30: every client always in service (1000), but
    # n·t_r/t = 581 — time the clients waited that no kept response time shows.
    hidden = _rec(1000, 0.99, 0.3, measured=1000)
    hidden["loadgen"]["measured_load_nt"] = 581.0
    assert [f.kind for f in record_flags(hidden, beyond_knee=True)] == ["load_mismatch"]
    consistent = _rec(1000, 0.99, 0.3, measured=1000)
    consistent["loadgen"]["measured_load_nt"] = 1004.0
    assert record_flags(consistent, beyond_knee=True) == []
    hidden["loadgen"]["mode"] = "open"  # open loop: Little's law holds with the arrival rate instead
    assert record_flags(hidden, beyond_knee=True) == []


def test_the_knee_is_the_lightest_load_reaching_80_percent_of_the_best_throughput():
    recs = []
    for level, rps in ((1, 2000), (10, 7000), (50, 8500), (100, 9000)):
        r = _rec(level, 0.95, 0.3)
        r["loadgen"]["requests_per_second"] = rps
        recs.append(r)
    assert knee_levels(recs) == {"sped": 50}


def test_findings_quote_numbers_computed_from_the_data(tmp_path: Path):
    a = analyze(_run(tmp_path))
    text = "\n".join(findings(a))
    best = a.backends[0]
    assert f"{best.slope.value:.4f}" in text
    assert "rank groups" in text
    assert "left out" in text and "measured load below 90 % of offered load" in text
    assert "skipped" in text


def test_findings_with_a_single_load_level_say_no_fit(tmp_path: Path):
    run = make_run(tmp_path / "one", levels=(10,), repetitions=1)
    assert "no slope could be fitted" in "\n".join(findings(analyze(run)))


def test_summary_csv_has_one_row_per_server_and_load_and_no_stdev_for_one_repetition(tmp_path: Path):
    run = _run(tmp_path)
    a = analyze(run)
    path = write_summary_csv(a, run / "summary.csv")
    rows = list(csv.DictReader(path.open()))
    assert len(rows) == len(FAKE_SERVERS) * 4
    sped = [r for r in rows if r["backend"] == "sped"]
    assert float(sped[0]["slope_ms_per_client"]) == pytest.approx(a.backend("sped").fit_mean.slope, rel=1e-5)
    single = make_run(tmp_path / "single", levels=(1, 10), repetitions=1)
    rows = list(csv.DictReader(write_summary_csv(analyze(single), single / "summary.csv").open()))
    assert all(r["mean_response_ms_stdev"] == "" for r in rows)


def test_a_later_record_of_the_same_point_replaces_an_earlier_error(tmp_path: Path):
    run = _run(tmp_path)
    lines = (run / "runs.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    error = dict(first, status="error", error="server did not start")
    (run / "runs.jsonl").write_text("\n".join([json.dumps(error)] + lines) + "\n{torn")
    a = analyze(run)
    assert not a.errors
    assert len(a.records) == len(lines) - 1  # the skipped line is not a measurement


def test_the_committed_fixture_analyses_cleanly():
    a = analyze(DATA / "tiny_run")
    assert len(a.backends) == len(FAKE_SERVERS)
    assert [b.backend for b in a.series_only] == ["sped-backlog128"]
    assert a.skipped and a.flags and a.memory
