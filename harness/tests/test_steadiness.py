"""How steady the machine is: the fixed loop, its summary, and the interval floor it implies."""

from __future__ import annotations

import json
import random
import statistics
from pathlib import Path

import pytest

from harness import envinfo, registry, steadiness
from harness.tests.conftest import write_experiment
from plots.report import steadiness_text

BUILD = registry.build_dir()
LOOP_BUILT = steadiness.loop_path(BUILD).exists()


def test_summary_of_a_steady_and_of_a_dipping_machine():
    steady = steadiness.summarize([1000.0] * 8, cpu=0, window_s=0.5)
    assert steady.cv == 0 and steady.slowest == steady.fastest == 1.0
    dip = steadiness.summarize([1000.0] * 6 + [750.0, 1000.0], cpu=1, window_s=0.5)
    assert dip.slowest == pytest.approx(0.75)
    assert dip.fastest == 1.0
    assert dip.cv == pytest.approx(statistics.stdev(dip.rates) / statistics.fmean(dip.rates))


def test_summary_refuses_too_few_windows():
    with pytest.raises(steadiness.SteadinessError):
        steadiness.summarize([1000.0], cpu=0, window_s=0.5)


def test_interval_floor_is_zero_without_variation_and_shrinks_with_repetitions():
    assert steadiness.interval_floor(0.0, 5) == 0.0
    five, ten, twenty = (steadiness.interval_floor(0.05, n, trials=200) for n in (5, 10, 20))
    assert five > ten > twenty > 0
    # The percentile-bootstrap interval of a median of 5 spans nearly the whole sample: for
    # normal noise that is about ±1.2 standard deviations.
    assert 0.04 < five < 0.08
    # Proportional to the noise.
    assert steadiness.interval_floor(0.10, 5, trials=200) == pytest.approx(2 * steadiness.interval_floor(
        0.05, 5, trials=200), rel=0.02)


def test_interval_floor_matches_the_bootstrap_of_the_analysis():
    """The floor simulates what harness.stats.bootstrap gives a median of n noisy values."""
    from harness.stats import bootstrap

    rng = random.Random(7)
    widths = []
    for _ in range(60):
        sample = [1.0 + rng.gauss(0.0, 0.05) for _ in range(5)]
        iv = bootstrap(sample)
        widths.append((iv.hi - iv.lo) / 2)
    assert statistics.median(widths) == pytest.approx(steadiness.interval_floor(0.05, 5), rel=0.25)


def test_probe_without_the_loop_built_says_so(tmp_path: Path):
    with pytest.raises(steadiness.SteadinessError, match="not built"):
        steadiness.probe(tmp_path, 0, 1.0, 0.25)
    verdict = envinfo.steadiness_verdict(tmp_path, 0, 1.0)
    assert verdict.status == "warn" and "not built" in verdict.explanation


@pytest.mark.skipif(not LOOP_BUILT, reason="needs servers/microbench/steady_loop (make build-bench)")
def test_probe_runs_both_loops_and_keeps_the_less_steady():
    s = steadiness.probe(BUILD, 0, 2.0, 0.25)
    assert s.windows == 4  # each loop gets half the time
    assert all(r > 0 for r in s.rates)
    assert 0 <= s.cv < 1 and s.slowest <= 1 <= s.fastest
    assert s.arithmetic_cv is not None and s.cache_cv is not None
    assert s.cv == max(s.arithmetic_cv, s.cache_cv)
    assert s.loop == ("cache" if s.cache_cv >= s.arithmetic_cv else "arithmetic")
    assert s.cache_kib >= 32


@pytest.mark.skipif(not LOOP_BUILT, reason="needs servers/microbench/steady_loop (make build-bench)")
def test_the_cache_chase_is_slower_per_step_than_arithmetic():
    """A step of the chase waits for a cache line; a step of the arithmetic loop does not. A chase
    through 64 MiB (beyond any L2) is slower still: the loop really walks memory."""
    arithmetic = steadiness.run_loop(BUILD, 0, 0.5, 0.25)
    in_cache = steadiness.run_loop(BUILD, 0, 0.5, 0.25, 256)
    in_memory = steadiness.run_loop(BUILD, 0, 0.5, 0.25, 64 * 1024)
    assert (arithmetic.loop, in_cache.loop) == ("arithmetic", "cache")
    assert statistics.median(in_cache.rates) < statistics.median(arithmetic.rates)
    assert statistics.median(in_memory.rates) < statistics.median(in_cache.rates)


def test_combine_keeps_the_less_steady_loop_with_both_variations():
    arithmetic = steadiness.summarize([100.0, 101.0, 99.0, 100.0], 0, 0.5)
    cache = steadiness.summarize([100.0, 80.0, 120.0, 100.0], 0, 0.5, "cache")
    both = steadiness.combine(arithmetic, cache, 1024)
    assert both.loop == "cache" and both.cv == cache.cv and both.rates == cache.rates
    assert both.arithmetic_cv == arithmetic.cv and both.cache_cv == cache.cv and both.cache_kib == 1024
    assert steadiness.combine(cache, arithmetic, 8).loop == "cache"  # the worse, whichever it is


def test_the_chase_fills_half_the_l2_cache(tmp_path: Path):
    def cache(cpu: int, index: int, level: str, kind: str, size: str) -> None:
        d = tmp_path / f"cpu{cpu}" / "cache" / f"index{index}"
        d.mkdir(parents=True)
        (d / "level").write_text(level + "\n")
        (d / "type").write_text(kind + "\n")
        (d / "size").write_text(size + "\n")

    cache(0, 0, "1", "Data", "48K")
    cache(0, 1, "1", "Instruction", "32K")
    cache(0, 2, "2", "Unified", "2048K")
    cache(0, 3, "3", "Unified", "260M")
    assert steadiness.cache_working_set_kib(0, tmp_path) == 1024
    cache(1, 2, "2", "Unified", "1M")
    assert steadiness.cache_working_set_kib(1, tmp_path) == 512
    assert steadiness.cache_working_set_kib(2, tmp_path) == 1024  # unknown: 1 MiB


def test_report_states_the_floor_and_flags_a_wide_one():
    meta = {"steadiness": {"cpu": 0, "window_s": 0.5, "windows": 10, "cv": 0.064, "slowest": 0.75,
                           "fastest": 1.05, "repetitions": 5, "interval_floor": 0.077}}
    text, wide = steadiness_text(meta)
    assert "6.4%" in text and "±7.7%" in text and "5 repetitions" in text
    assert wide
    meta["steadiness"].update(cv=0.01, interval_floor=0.012)
    assert not steadiness_text(meta)[1]
    assert steadiness_text({}) is None
    assert "could not be measured" in steadiness_text({"steadiness": {"error": "x"}})[0]
    text, _ = steadiness_text(meta, spread=(0.08, 0.04, 0.14))
    assert "a median 8.0%" in text and "4.0% to 14.0%" in text


def test_report_names_both_loops_when_both_ran():
    meta = {"steadiness": {"cpu": 0, "window_s": 0.5, "windows": 5, "cv": 0.09, "slowest": 0.8,
                           "fastest": 1.1, "repetitions": 5, "interval_floor": 0.11, "loop": "cache",
                           "arithmetic_cv": 0.007, "cache_cv": 0.09, "cache_kib": 1024}}
    text, wide = steadiness_text(meta)
    assert "arithmetic" in text and "0.7%" in text
    assert "1024 KiB" in text and "9.0%" in text and "±11.0%" in text
    assert wide
    meta["steadiness"].update(repetitions=1, interval_floor=0.0)
    text, _ = steadiness_text(meta)
    assert "single repetition no figure has an interval" in text and "±18%" in text
    assert "±0.0%" not in text


def test_the_run_records_steadiness_when_the_experiment_asks(tmp_path: Path, fake_build: Path, monkeypatch):
    """``[calibration] steadiness_s`` > 0 puts the probe's result and its floor in meta.json."""
    from harness.runner import run_experiment

    calls = []

    def fake_probe(build, cpu, seconds, window):
        calls.append((cpu, seconds, window))
        return steadiness.summarize([100.0, 90.0, 110.0, 100.0], cpu, window)

    monkeypatch.setattr(steadiness, "probe", fake_probe)
    exp = write_experiment(tmp_path, levels=(1,), backends='["alpha"]', repetitions=2,
                           extra="[calibration]\nsteadiness_s = 2\n[pinning]\nserver_cpu_share = 1.0\n")
    run = run_experiment(exp, tmp_path / "run", False, None, None, fake_build, show_progress=False)
    meta = json.loads((run / "meta.json").read_text())
    assert calls == [(0, 2.0, 0.25)]
    st = meta["steadiness"]
    assert st["windows"] == 4 and st["repetitions"] == 2 and st["interval_floor"] > 0


def test_no_probe_unless_the_experiment_asks(tmp_path: Path, fake_build: Path, monkeypatch):
    from harness.runner import run_experiment

    monkeypatch.setattr(steadiness, "probe", lambda *a: pytest.fail("probed"))
    exp = write_experiment(tmp_path, levels=(1,), backends='["alpha"]')
    run = run_experiment(exp, tmp_path / "run", False, None, None, fake_build, show_progress=False)
    assert "steadiness" not in json.loads((run / "meta.json").read_text())
