"""harness compare on two stored synthetic runs: a real change is reported with its direction,
noise is not."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from harness.compare import FASTER, SAME, SLOWER, compare_runs
from harness.tests.conftest import REPO
from harness.tests.synthetic import FAKE_SERVERS, make_run, with_slope

LEVELS = (1, 100, 500, 1000)


def test_a_slower_server_is_reported_slower_and_the_others_unchanged(tmp_path: Path):
    a = make_run(tmp_path / "a", levels=LEVELS, repetitions=4, flagged=False, seed=1)
    slower = with_slope("thread", 0.075 * 1.15)  # thread got 15 % slower
    b = make_run(tmp_path / "b", servers=slower, levels=LEVELS, repetitions=4, flagged=False, seed=2)
    changes, _ = compare_runs(a, b)
    slopes = {c.server: c for c in changes if c.what.startswith("slope")}
    assert slopes["thread"].verdict == SLOWER
    assert slopes["thread"].ratio == __import__("pytest").approx(1.15, rel=0.03)
    assert all(c.verdict == SAME for name, c in slopes.items() if name != "thread")
    tp = next(c for c in changes if c.server == "thread" and c.what == "throughput (req/s) @ c=1000")
    assert tp.verdict == SLOWER  # fewer requests per second is slower too


def test_a_faster_server_is_reported_faster(tmp_path: Path):
    a = make_run(tmp_path / "a", levels=LEVELS, repetitions=4, flagged=False, seed=1)
    b = make_run(tmp_path / "b", servers=with_slope("fork", 0.3), levels=LEVELS, repetitions=4, flagged=False, seed=2)
    slopes = {c.server: c for c in compare_runs(a, b)[0] if c.what.startswith("slope")}
    assert slopes["fork"].verdict == FASTER


def test_servers_in_one_run_only_are_named(tmp_path: Path):
    a = make_run(tmp_path / "a", levels=LEVELS, repetitions=2, flagged=False)
    b = make_run(tmp_path / "b", servers=FAKE_SERVERS[:3], levels=LEVELS, repetitions=2, flagged=False)
    _, notes = compare_runs(a, b)
    assert any("only in a" in n and "fork" in n for n in notes)


def test_compare_cli_prints_a_table_and_writes_csv(tmp_path: Path):
    a = make_run(tmp_path / "a", levels=LEVELS, repetitions=2, flagged=False, seed=1)
    b = make_run(tmp_path / "b", levels=LEVELS, repetitions=2, flagged=False, seed=2)
    proc = subprocess.run([sys.executable, "-m", "harness", "compare", str(a), str(b), "--csv", str(tmp_path / "c.csv")],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "slope (ms/client)" in proc.stdout and "no significant change" in proc.stdout
    assert (tmp_path / "c.csv").read_text().startswith("server,")
    bad = subprocess.run([sys.executable, "-m", "harness", "compare", str(a), str(tmp_path / "nope")],
                         cwd=REPO, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "no runs.jsonl" in bad.stderr
