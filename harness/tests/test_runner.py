"""Runner lifecycle with fake servers and a fake loadgen: records, skips, failures, resume after a
kill, and no process left behind after a crash, Ctrl-C or kill -9 of the harness."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import runner as runner_mod
from harness.runner import RunError, run_experiment
from harness.tests.conftest import REPO, alive, harness_env, recorded_pids, write_experiment


def lines(run: Path) -> list[dict]:
    return [json.loads(l) for l in (run / "runs.jsonl").read_text().splitlines() if l.strip()]


def wait_for(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_a_run_records_every_point_and_leaves_nothing_running(tmp_path, fake_build, pid_dir):
    exp = write_experiment(tmp_path, levels=(1, 5))
    run = run_experiment(exp, tmp_path / "run", False, None, None, fake_build, show_progress=False)
    recs = lines(run)
    assert [(r["backend"], r["offered_load"], r["status"]) for r in recs] == [
        ("alpha", 1, "ok"), ("alpha", 5, "ok"), ("beta", 1, "ok"), ("beta", 5, "ok")]
    first = recs[0]
    assert first["loadgen"]["mean_response_ms"] == pytest.approx(0.15)
    assert first["server"]["stats"]["requests"] == 1234  # parsed from the server's stats line
    assert first["server"]["exit_code"] == 0
    assert first["server_metrics"]["requests_served"] == 1234
    assert first["server_metrics"]["cpu_source"] == "rusage_minus_startup"
    assert first["server_metrics"]["cpu_user_s"] >= 0 and first["server_metrics"]["cpu_sys_s"] >= 0
    assert first["server"]["rusage"]["user_s"] + first["server"]["rusage"]["sys_s"] > 0
    assert first["server"]["argv"][:3] == ["taskset", "-c", "0"]
    assert "--docroot" in first["server"]["argv"]
    assert (run / "docroot" / "index.html").stat().st_size == 305
    meta = json.loads((run / "meta.json").read_text())
    assert meta["status"] == "complete"
    assert meta["environment"]["somaxconn"] is not None
    assert (run / "experiment.toml").read_text() == exp.read_text()
    assert not [p for p in recorded_pids(pid_dir) if alive(p)]


def test_keep_alive_loads_above_a_backends_max_connections_are_skipped(tmp_path, fake_build, pid_dir):
    exp = write_experiment(tmp_path, levels=(1, 30), backends='["beta"]', extra="keep_alive = true")
    run = run_experiment(exp, tmp_path / "run", False, None, None, fake_build, show_progress=False)
    by_level = {r["offered_load"]: r for r in lines(run)}
    assert by_level[1]["status"] == "ok"
    assert by_level[30]["status"] == "skipped"
    assert "max_connections 20" in by_level[30]["error"]


def test_new_connection_loads_above_max_connections_run_since_clients_queue(tmp_path, fake_build, pid_dir):
    exp = write_experiment(tmp_path, levels=(1, 30), backends='["beta"]', extra="keep_alive = false")
    run = run_experiment(exp, tmp_path / "run", False, None, None, fake_build, show_progress=False)
    assert {r["offered_load"]: r["status"] for r in lines(run)} == {1: "ok", 30: "ok"}


def test_a_server_that_never_becomes_ready_is_an_error_point_and_is_killed(tmp_path, fake_build, pid_dir,
                                                                           monkeypatch):
    monkeypatch.setenv("FAKE_SERVER_MODE", "never_ready")
    exp = write_experiment(tmp_path, levels=(1,), backends='["alpha"]', ready_timeout_s=0.5)
    run = run_experiment(exp, tmp_path / "run", False, None, None, fake_build, show_progress=False)
    (rec,) = lines(run)
    assert rec["status"] == "error"
    assert "was not ready after 0.5 s" in rec["error"]
    assert not [p for p in recorded_pids(pid_dir) if alive(p)]


def test_a_server_that_crashes_at_start_is_an_error_point_quoting_its_log(tmp_path, fake_build, pid_dir,
                                                                          monkeypatch):
    monkeypatch.setenv("FAKE_SERVER_MODE", "crash")
    exp = write_experiment(tmp_path, levels=(1,), backends='["alpha"]')
    run = run_experiment(exp, tmp_path / "run", False, None, None, fake_build, show_progress=False)
    (rec,) = lines(run)
    assert "exited with status 3" in rec["error"]
    assert "crashing on purpose" in rec["error"]


def test_a_server_ignoring_sigterm_is_killed_after_the_grace_period(tmp_path, fake_build, pid_dir, monkeypatch):
    monkeypatch.setenv("FAKE_SERVER_MODE", "ignore_term")
    monkeypatch.setattr(runner_mod.ServerProcess, "stop",
                        lambda self, grace_s=0.3, _orig=runner_mod.ServerProcess.stop: _orig(self, 0.3))
    exp = write_experiment(tmp_path, levels=(1,), backends='["alpha"]')
    run = run_experiment(exp, tmp_path / "run", False, None, None, fake_build, show_progress=False)
    (rec,) = lines(run)
    assert rec["status"] == "ok"
    assert rec["server"]["killed_after_grace"] is True
    assert not [p for p in recorded_pids(pid_dir) if alive(p)]


def test_children_of_the_server_are_stopped_with_it(tmp_path, fake_build, pid_dir, monkeypatch):
    monkeypatch.setenv("FAKE_SERVER_CHILD", "1")
    exp = write_experiment(tmp_path, levels=(1,), backends='["alpha"]')
    run = run_experiment(exp, tmp_path / "run", False, None, None, fake_build, show_progress=False)
    (rec,) = lines(run)
    assert rec["server_metrics"]["processes_max"] == 2
    assert len(recorded_pids(pid_dir)) == 3  # server, its child, loadgen
    assert not [p for p in recorded_pids(pid_dir) if alive(p)]


def test_a_failing_loadgen_is_an_error_point(tmp_path, fake_build, pid_dir, monkeypatch):
    monkeypatch.setenv("FAKE_LOADGEN_MODE", "garbage")
    exp = write_experiment(tmp_path, levels=(1,), backends='["alpha"]')
    run = run_experiment(exp, tmp_path / "run", False, None, None, fake_build, show_progress=False)
    (rec,) = lines(run)
    assert rec["status"] == "error" and "not valid JSON" in rec["error"]


def test_an_exception_inside_a_point_stops_the_server_before_propagating(tmp_path, fake_build, pid_dir,
                                                                         monkeypatch):
    def explode(*_args, **_kwargs):
        raise RuntimeError("harness bug")

    monkeypatch.setattr(runner_mod, "run_loadgen", explode)
    exp = write_experiment(tmp_path, levels=(1,), backends='["alpha"]')
    with pytest.raises(RuntimeError, match="harness bug"):
        run_experiment(exp, tmp_path / "run", False, None, None, fake_build, show_progress=False)
    servers = recorded_pids(pid_dir)
    assert servers and not [p for p in servers if alive(p)]
    assert json.loads((tmp_path / "run" / "meta.json").read_text())["status"] == "crashed"


def test_missing_loadgen_is_a_clear_error(tmp_path, fake_build):
    (fake_build / "loadgen" / "loadgen").unlink()
    exp = write_experiment(tmp_path)
    with pytest.raises(RunError, match="load generator is not built"):
        run_experiment(exp, tmp_path / "run", False, None, None, fake_build, show_progress=False)


def test_only_restricts_the_servers_and_rejects_unknown_names(tmp_path, fake_build, pid_dir):
    exp = write_experiment(tmp_path, levels=(1,))
    run = run_experiment(exp, tmp_path / "run", False, None, {"beta"}, fake_build, show_progress=False)
    assert {r["backend"] for r in lines(run)} == {"beta"}
    with pytest.raises(RunError, match="unknown server nosuch"):
        run_experiment(exp, tmp_path / "run2", False, None, {"nosuch"}, fake_build, show_progress=False)


def start_harness(args: list[str], build: Path, extra_env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "harness", *args], cwd=REPO,
                            env=harness_env(build, extra_env), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def test_resume_after_kill_finishes_without_redoing_points(tmp_path, fake_build, pid_dir):
    exp = write_experiment(tmp_path, levels=(1, 2, 3, 4), backends='["alpha"]')
    run = tmp_path / "run"
    proc = start_harness(["run", str(exp), "--out", str(run), "--no-progress"], fake_build,
                         {"FAKE_LOADGEN_SLEEP": "0.4"})
    try:
        assert wait_for(lambda: (run / "runs.jsonl").exists() and len(lines(run)) >= 2, timeout=30)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # the servers and the loadgen die with the harness (PR_SET_PDEATHSIG)
    assert wait_for(lambda: not [p for p in recorded_pids(pid_dir) if alive(p)], timeout=10)
    done_before = {r["key"] for r in lines(run)}
    assert 2 <= len(done_before) < 4

    resumed = subprocess.run([sys.executable, "-m", "harness", "run", "--resume", str(run), "--no-progress"],
                             cwd=REPO, env=harness_env(fake_build), capture_output=True, text=True, timeout=60)
    assert resumed.returncode == 0, resumed.stderr
    keys = [r["key"] for r in lines(run)]
    assert sorted(keys) == sorted({f"alpha|{lvl}|0" for lvl in (1, 2, 3, 4)})  # each point once
    meta = json.loads((run / "meta.json").read_text())
    assert meta["status"] == "complete" and meta["resumed_at"]


def test_ctrl_c_stops_the_server_and_loadgen_and_exits_130(tmp_path, fake_build, pid_dir):
    exp = write_experiment(tmp_path, levels=(1,), backends='["alpha"]')
    run = tmp_path / "run"
    proc = start_harness(["run", str(exp), "--out", str(run), "--no-progress"], fake_build,
                         {"FAKE_LOADGEN_SLEEP": "30"})
    try:
        assert wait_for(lambda: any(p.suffix == ".loadgen" for p in pid_dir.iterdir()), timeout=30)
        started = recorded_pids(pid_dir)
        assert all(alive(p) for p in started)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130
    assert "Traceback" not in err and "--resume" in err
    assert not [p for p in started if alive(p)]
    assert json.loads((run / "meta.json").read_text())["status"] == "interrupted"


def test_sigterm_to_the_harness_also_cleans_up(tmp_path, fake_build, pid_dir):
    exp = write_experiment(tmp_path, levels=(1,), backends='["alpha"]')
    proc = start_harness(["run", str(exp), "--out", str(tmp_path / "run"), "--no-progress"], fake_build,
                         {"FAKE_LOADGEN_SLEEP": "30"})
    try:
        assert wait_for(lambda: any(p.suffix == ".loadgen" for p in pid_dir.iterdir()), timeout=30)
        started = recorded_pids(pid_dir)
        os.kill(proc.pid, signal.SIGTERM)
        proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130
    assert not [p for p in started if alive(p)]


def test_server_cpu_share_runs_the_server_in_a_throttled_cgroup_and_removes_it(tmp_path, fake_build, pid_dir):
    from harness.cpulimit import CpuLimit, CpuLimitError

    try:
        CpuLimit(0.5, "httpbench-probe").remove()
    except CpuLimitError as exc:
        pytest.skip(str(exc))
    exp = write_experiment(tmp_path, levels=(1,), backends='["alpha"]', extra="[pinning]\nserver_cpu_share = 0.5")
    run = run_experiment(exp, tmp_path / "run", False, None, None, fake_build, show_progress=False)
    (rec,) = lines(run)
    assert rec["status"] == "ok"
    assert rec["server"]["cpu_share"] == 0.5
    meta = json.loads((run / "meta.json").read_text())
    cgroup = Path(meta["pinning"]["server_cpu_limit"]["cgroup"])
    assert meta["pinning"]["server_cpu_limit"]["quota_us"] * 2 == meta["pinning"]["server_cpu_limit"]["period_us"]
    assert not cgroup.exists()


def test_a_server_that_dies_during_the_load_is_an_error_point(tmp_path, fake_build, pid_dir, monkeypatch):
    real_run_loadgen = runner_mod.run_loadgen

    def kill_server_then_load(*args, **kwargs):
        server_pid = next(p for p in recorded_pids(pid_dir) if (pid_dir / f"{p}.server").exists())
        os.kill(server_pid, signal.SIGKILL)
        return real_run_loadgen(*args, **kwargs)

    monkeypatch.setattr(runner_mod, "run_loadgen", kill_server_then_load)
    exp = write_experiment(tmp_path, levels=(1,), backends='["alpha"]')
    run = run_experiment(exp, tmp_path / "run", False, None, None, fake_build, show_progress=False)
    (rec,) = lines(run)
    assert rec["status"] == "error"
    assert "exited by itself during the load (status -9)" in rec["error"]
