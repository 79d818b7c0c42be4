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
from harness.tests.conftest import REPO, alive, harness_env, recorded_pids, remove_cgroups, write_experiment


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
    recs = sorted(lines(run), key=lambda r: (r["backend"], r["offered_load"]))
    assert [(r["backend"], r["offered_load"], r["status"]) for r in recs] == [
        ("alpha", 1, "ok"), ("alpha", 5, "ok"), ("beta", 1, "ok"), ("beta", 5, "ok")]
    first = recs[0]
    assert first["loadgen"]["mean_response_ms"] == pytest.approx(0.15)
    assert first["server"]["stats"]["requests"] == 1234  # parsed from the server's stats line
    assert first["server"]["exit_code"] == 0
    sm = first["server_metrics"]
    assert sm["source"] in ("cgroup", "rusage_minus_startup")
    assert sm["cpu_s"] >= 0 and sm["utilization"] is not None
    if sm["source"] == "cgroup":  # root: the window's counters come from the server's cgroup
        assert sm["window_s"] == pytest.approx(first["loadgen"]["elapsed_s"], rel=1e-3)
        assert sm["status"]["requests"] > 0  # read from the fake's /server-status during the window
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
    assert rec["status"] == "ok"
    assert rec["server"]["cgroup_leftovers_killed"] == 0  # the child was stopped with its group
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


def _default_sigint() -> None:
    # As from a terminal: a test run started in the background (`make test &`, a CI runner's
    # background shell) inherits SIGINT ignored, and Python then installs no Ctrl-C handler.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_harness(args: list[str], build: Path, extra_env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "harness", *args], cwd=REPO,
                            env=harness_env(build, extra_env), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=_default_sigint)


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
    remove_cgroups(f"{run.name}-{proc.pid}-*")  # the killed harness could not remove its point's
    done_before = {r["key"] for r in lines(run)}
    assert 2 <= len(done_before) < 4

    resumed = subprocess.run([sys.executable, "-m", "harness", "run", "--resume", str(run), "--no-progress"],
                             cwd=REPO, env=harness_env(fake_build), capture_output=True, text=True, timeout=60)
    assert resumed.returncode == 0, resumed.stderr
    keys = [r["key"] for r in lines(run)]
    assert sorted(keys) == sorted({f"alpha|{lvl}|0" for lvl in (1, 2, 3, 4)})  # each point once
    meta = json.loads((run / "meta.json").read_text())
    assert meta["status"] == "complete" and meta["resumed_at"]


def test_a_resumed_run_keeps_to_the_servers_its_only_named(tmp_path, fake_build, pid_dir):
    exp = write_experiment(tmp_path, levels=(1, 2))  # alpha and beta
    run = tmp_path / "run"
    run_experiment(exp, run, False, None, {"alpha"}, fake_build, show_progress=False)
    assert json.loads((run / "meta.json").read_text())["only"] == ["alpha"]
    first = lines(run)
    (run / "runs.jsonl").write_text(json.dumps(first[0]) + "\n")  # as if stopped after one point
    run_experiment(None, None, False, run, None, fake_build, show_progress=False)
    assert sorted(r["key"] for r in lines(run)) == ["alpha|1|0", "alpha|2|0"]  # not beta's points
    # naming servers again on resume takes those instead
    run_experiment(None, None, False, run, {"beta"}, fake_build, show_progress=False)
    assert sorted(r["key"] for r in lines(run)) == ["alpha|1|0", "alpha|2|0", "beta|1|0", "beta|2|0"]


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


def test_server_cpu_share_runs_each_server_in_its_own_capped_cgroup_and_removes_it(tmp_path, fake_build, pid_dir):
    from harness.cgroup import CGROUP_ROOT, available

    ok, why = available()
    if not ok:
        pytest.skip(why)
    exp = write_experiment(tmp_path, levels=(1, 5), backends='["alpha"]', pinning="[pinning]\nserver_cpu_share = 0.5\n")
    run = run_experiment(exp, tmp_path / "run", False, None, None, fake_build, show_progress=False)
    recs = lines(run)
    assert [r["status"] for r in recs] == ["ok", "ok"]
    assert all(r["cgroup"]["share"] == 0.5 and r["cgroup"]["quota_us"] * 2 == r["cgroup"]["period_us"] for r in recs)
    meta = json.loads((run / "meta.json").read_text())
    assert meta["server_bound"] is True and meta["pinning"]["server_cpu_share_used"] == 0.5
    assert meta["calibration"]["method"] == "fixed"
    # How this kernel throttles a capped group is measured once per run, or why it could not be.
    throttling = meta["pinning"]["cap_throttling"]
    assert (throttling["measured"] and throttling["periods"] > 0) or throttling["problem"]
    # Every point's cgroup is gone (named after the run and this harness's pid, so that runs in
    # parallel with the same directory name never share one).
    assert not list(CGROUP_ROOT.glob(f"*/httpbench/{run.name}-{os.getpid()}-*"))


def test_repetitions_run_in_a_freshly_shuffled_order(tmp_path, fake_build):
    exp = runner_mod.load_experiment(write_experiment(tmp_path, levels=(1, 2, 3, 4, 5), repetitions=3))
    targets, _ = runner_mod.resolve_targets(exp, fake_build)
    points = runner_mod.plan_points(exp, targets, seed=7)
    reps = [[(p.target.label, p.level) for p in points if p.repetition == r] for r in range(3)]
    assert all(sorted(r) == sorted(reps[0]) for r in reps)  # every repetition has every point
    assert len({tuple(r) for r in reps}) == 3  # in a different order each time
    assert [p.repetition for p in points] == sorted(p.repetition for p in points)  # repetition after repetition
    assert runner_mod.plan_points(exp, targets, seed=7) == points  # the seed makes it repeatable


def test_resume_refuses_a_run_whose_binaries_changed(tmp_path, fake_build, pid_dir):
    exp = write_experiment(tmp_path, levels=(1,), backends='["alpha"]')
    run = run_experiment(exp, tmp_path / "run", False, None, None, fake_build, show_progress=False)
    binary = fake_build / "servers" / "httpd-alpha"
    binary.write_text(binary.read_text() + "\n# rebuilt\n")
    with pytest.raises(RunError, match="httpd-alpha was rebuilt"):
        run_experiment(None, None, False, run, None, fake_build, show_progress=False)


def test_calibration_picks_the_largest_share_that_keeps_the_client_half_busy(monkeypatch):
    from harness import calibrate
    from harness.experiment import Calibration
    from harness.runner import Target

    # The client's load grows with the server's share: 1.8 × share for the fast server, 0.5 × for the slow one.
    speed = {"fast": 1.8, "slow": 0.5}
    calls = []

    def fake_probe(_runner, target, level, share, seconds):
        calls.append((target.label, share))
        return {"server": target.label, "share": share, "level": level, "status": "ok", "error": None,
                "requests_per_second": 1000 * speed[target.label] * share,
                "client_utilization": speed[target.label] * share, "server_utilization": 0.99, "errors_total": 0}

    monkeypatch.setattr(calibrate, "probe", fake_probe)
    targets = [Target(n, "toy", n, "m", "event-driven", "/bin/true") for n in ("slow", "fast")]
    result = calibrate.calibrate(None, targets, 1000, Calibration(client_max=0.5), show=False)
    assert result["fastest"] == "fast"
    assert result["share"] == 0.27  # floor(0.5 / 1.8, 2 decimals); 1.8 × 0.27 = 0.486 ≤ 0.5
    assert calls[-1] == ("fast", 0.27)  # verified on the fastest server
    assert result["capacity_rps"]["slow"] == pytest.approx(500 * 0.27)


def test_calibration_lowers_the_share_until_the_client_is_within_bounds(monkeypatch):
    from harness import calibrate
    from harness.experiment import Calibration
    from harness.runner import Target

    def sublinear_probe(_runner, target, level, share, seconds):  # the client stays busier than linear
        util = 0.9 * (share / calibrate.TRIAL_SHARE) ** 0.8
        return {"server": target.label, "share": share, "level": level, "status": "ok", "error": None,
                "requests_per_second": 100.0, "client_utilization": util, "server_utilization": 1.0,
                "errors_total": 0}

    monkeypatch.setattr(calibrate, "probe", sublinear_probe)
    result = calibrate.calibrate(None, [Target("a", "toy", "a", "m", "event-driven", "/bin/true")], 100,
                                 Calibration(client_max=0.5), show=False)
    # linear estimate 0.25 × 0.5 / 0.9 → 0.13 gives 0.53 (too busy); 10 % lower, 0.11, gives 0.47
    assert [p["share"] for p in result["probes"]] == [0.25, 0.13, 0.11]
    assert result["share"] == 0.11 and "reason" not in result


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


def test_loadgens_run_at_the_same_time_and_each_failure_stays_its_own(tmp_path, pid_dir, monkeypatch):
    from harness.loadgen import LoadgenError, run_loadgens
    from harness.server import ProcessGuard

    from .conftest import FAKES, alive

    fake = str(FAKES / "fake_loadgen.py")
    monkeypatch.setenv("FAKE_LOADGEN_SLEEP", "0.6")
    argvs = [[fake, "-c", "5", "-n", "100", "--json", str(tmp_path / f"{i}.json"), "http://127.0.0.1:1/"]
             for i in range(2)]
    argvs.append(["/nonexistent/loadgen", "--json", str(tmp_path / "2.json")])
    guard = ProcessGuard()
    t0 = time.monotonic()
    results = run_loadgens(argvs, None, guard, 20, [tmp_path / f"{i}.log" for i in range(3)])
    assert time.monotonic() - t0 < 1.1  # two sleeps of 0.6 s, at the same time
    assert all(isinstance(r, dict) and "completed" in r for r in results[:2])
    assert isinstance(results[2], LoadgenError) and "cannot execute" in str(results[2])
    # one that outlasts the limit is killed by its PID; the other still gives its result
    monkeypatch.setenv("FAKE_LOADGEN_SLEEP", "30")
    slow = run_loadgens(argvs[:1], None, guard, 0.5, [tmp_path / "slow.log"])
    assert isinstance(slow[0], LoadgenError) and "still running" in str(slow[0])
    pids = [int(p.name.split(".")[0]) for p in pid_dir.glob("*.loadgen")]
    assert len(pids) == 3 and not any(alive(pid) for pid in pids)
