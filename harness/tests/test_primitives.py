"""plots/primitives.py: one figure per microbenchmark family and the comparison with von Leitner
(2003), drawn from the stored microbench JSON."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness import microbench as mb
from harness.tests.conftest import DATA
from plots import primitives as pr


@pytest.fixture(scope="module")
def doc(tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("microbench")
    for p in (DATA / "microbench").glob("*.json"):
        shutil.copy(p, d)
    return mb.load(mb.collect(d))


def combined(*rows: tuple[str, float], counters: dict | None = None) -> dict:
    runs = []
    for name, ns in rows:
        run = {"name": name, "run_name": name, "run_type": "iteration", "iterations": 10,
               "real_time": ns, "cpu_time": ns, "time_unit": "ns"}
        run.update((counters or {}).get(name, {}))
        runs.append(run)
    return mb.combine({"test": {"benchmarks": runs}}, {"cpus": "0", "repetitions": 1})


def test_every_family_figure_is_written_as_png_and_pdf(doc, tmp_path: Path):
    paths = pr.render_all(doc, tmp_path)
    assert len(paths) == 2 * len(pr.FIGURES)
    for name, _title, _draw in pr.FIGURES:
        png = tmp_path / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert png.stat().st_size > 20_000  # axes, lines and labels, not an empty canvas
        assert (tmp_path / f"{name}.pdf").read_bytes()[:4] == b"%PDF"


def test_each_figure_plots_the_families_data(doc):
    spawn = pr.draw_spawn(doc)
    ax = spawn.axes[0]
    plotted = {tuple(line.get_xdata()) for line in ax.get_lines()}
    assert (0, 1000) in plotted  # the stored spawn runs have 0 and 1,000 alive
    assert ax.get_yscale() == "log"
    events = pr.draw_events(doc)
    assert events.axes[0].get_xscale() == "log" and events.axes[0].get_yscale() == "log"
    epoll = mb.series(doc, "events", "epoll", "idle")
    assert any(list(line.get_ydata()) == [t for _, t in epoll] for line in events.axes[0].get_lines())
    switch = pr.draw_switch(doc)
    n_switch = len([r for r in doc["benchmarks"] if r["family"] == "switch"])
    assert len(switch.axes[0].patches) == n_switch


def test_a_run_without_a_family_still_draws_every_figure_saying_so(tmp_path: Path):
    only_parser = combined(("parse/minimal_request", 60.0))
    paths = pr.render_all(only_parser, tmp_path)
    assert len(paths) == 2 * len(pr.FIGURES)
    texts = [t.get_text() for t in pr.draw_switch(only_parser).axes[0].texts]
    assert any("no switch benchmarks" in t for t in texts)


def test_the_leitner_table_compares_ratios_computed_from_the_run(doc):
    rows = pr.leitner_rows(doc)
    assert all(len(r) == len(pr.LEITNER_HEADER) for r in rows)
    vfork = next(r for r in rows if r[0].startswith("vfork ÷ fork"))
    ratio = mb.lookup(doc, "spawn/vfork/alive:0") / mb.lookup(doc, "spawn/fork/alive:0")
    assert vfork[2].startswith(f"{ratio:.2f}")
    assert vfork[1].startswith("0.78") and "1.39" in vfork[1]  # 250/320 and 250/180 from the talk
    segments = next(r for r in rows if r[0].startswith("TCP segments"))
    assert segments[2] == "2 : 1 : 1" and segments[3] == "agrees"
    poll = next(r for r in rows if r[0].startswith("poll wait"))
    assert "10,000 idle" in poll[0] and poll[3].startswith("agrees")


def test_a_primitive_that_slows_down_with_more_alive_disagrees_with_his_o1():
    slow = combined(("spawn/fork/alive:0/real_time", 100_000.0), ("spawn/fork/alive:10000/real_time", 450_000.0))
    row = next(r for r in pr.leitner_rows(slow) if r[0].startswith("fork with"))
    assert row[0] == "fork with 10,000 processes alive ÷ none alive"
    assert row[2].startswith("4.50") and row[3] == "differs (grows)"
    flat = combined(("spawn/fork/alive:0/real_time", 100_000.0), ("spawn/fork/alive:10000/real_time", 120_000.0))
    row = next(r for r in pr.leitner_rows(flat) if r[0].startswith("fork with"))
    assert row[3] == "agrees (flat)"


def test_missing_benchmarks_are_said_to_be_missing_not_invented():
    rows = pr.leitner_rows(combined(("parse/minimal_request", 60.0)))
    assert all(r[2] == "not measured" for r in rows)
    assert all("{n}" not in r[0] for r in rows)


def test_target_rows_are_the_harness_checks(doc):
    rows = pr.target_rows(doc)
    checks = mb.check_targets(doc)
    assert rows == [[c.target, c.measured, c.verdict] for c in checks]
    assert len(rows[0]) == len(pr.TARGET_HEADER)


def test_format_ns_picks_a_readable_unit():
    assert pr.format_ns(12.34) == "12.3 ns"
    assert pr.format_ns(4567.0) == "4.57 µs"
    assert pr.format_ns(20_100_000.0) == "20.1 ms"
    assert pr.format_ns(None) == "–"
