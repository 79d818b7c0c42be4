"""End to end: quick.toml against the real built servers and loadgen, then the report.

Skipped (not failed) until build/servers/backends.json and build/loadgen/loadgen exist.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness import registry
from harness.tests.conftest import REPO, alive, harness_env

BUILD = registry.build_dir()
QUICK = REPO / "harness" / "experiments" / "quick.toml"

pytestmark = pytest.mark.skipif(
    not (registry.backends_json_path(BUILD).exists() and registry.loadgen_path(BUILD).exists()),
    reason=f"needs {registry.backends_json_path(BUILD)} and {registry.loadgen_path(BUILD)} (run `make build`)",
)


def test_quick_experiment_runs_every_point_and_produces_a_report(tmp_path: Path):
    run = tmp_path / "quick"
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "run", str(QUICK), "--out", str(run), "--no-progress", "--report"],
        cwd=REPO, env=harness_env(BUILD), capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = [json.loads(l) for l in (run / "runs.jsonl").read_text().splitlines()]
    failed = [(r["backend"], r["offered_load"], r["error"]) for r in records if r["status"] == "error"]
    assert not failed
    ok = [r for r in records if r["status"] == "ok"]
    assert ok
    for r in ok:
        assert r["loadgen"]["completed"] > 0
        assert r["loadgen"]["mean_response_ms"] > 0
        assert r["loadgen"]["measured_load"] <= r["offered_load"] * 1.0001
        assert r["server_metrics"]["cpu_s"] > 0
    assert not [r["server"]["pid"] for r in records if r.get("server", {}).get("pid") and alive(r["server"]["pid"])]
    meta = json.loads((run / "meta.json").read_text())
    if meta["cgroups"]:  # root: server-bound, calibrated, exact window accounting
        assert meta["server_bound"] is True and 0.05 <= meta["pinning"]["server_cpu_share_used"] <= 1
        assert {p["server"] for p in meta["calibration"]["probes"]} >= {"sped", "thread", "nginx"}
        for r in ok:
            sm = r["server_metrics"]
            assert sm["source"] == "cgroup" and 0 < sm["utilization"] <= 1.1
            assert sm["window_s"] == pytest.approx(r["loadgen"]["elapsed_s"], rel=0.01)
            if r["kind"] == "toy" and "status" in sm:  # our servers count the window's requests themselves
                # (the status page is read every ~60 ms and interpolated at the window's ends; a busy
                # machine — e.g. the suite run in parallel — delays the reads a little)
                assert sm["status"]["requests"] == pytest.approx(r["loadgen"]["completed"], rel=0.1)
    memory = [json.loads(l) for l in (run / "memory.jsonl").read_text().splitlines()]
    assert {m["backend"] for m in memory if m["status"] == "ok"} == {"sped", "thread", "nginx"}
    assert (run / "report.pdf").stat().st_size > 50_000
    assert (run / "summary.csv").exists() and (run / "claims.json").exists()
    assert "rank" in proc.stdout
