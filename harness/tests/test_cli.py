"""The list and check commands explain the machine in plain words."""

from __future__ import annotations

import os
import subprocess
import sys

from harness import envinfo
from harness.tests.conftest import REPO, harness_env


def run_cli(*args: str, build=None) -> subprocess.CompletedProcess:
    env = harness_env(build) if build else None
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=60)


def test_list_shows_backends_production_servers_and_experiments(fake_build):
    proc = run_cli("list", build=fake_build)
    assert proc.returncode == 0
    assert "alpha" in proc.stdout and "beta" in proc.stdout
    assert "nginx" in proc.stdout
    assert "kerneis2009" in proc.stdout


def test_list_says_how_long_a_point_is_kept_and_which_experiments_pair_each_backend_with_its_floor():
    proc = run_cli("list")
    assert proc.returncode == 0
    floors = next(line for line in proc.stdout.splitlines() if line.strip().startswith("floors "))
    assert "2 s kept per point × 5" in floors and "side by side with its reference" in floors
    quick = next(line for line in proc.stdout.splitlines() if line.strip().startswith("quick "))
    assert "side by side" not in quick


def test_check_gives_a_verdict_explanation_and_fix_for_each_item(fake_build):
    proc = run_cli("check", build=fake_build)
    for item in ("somaxconn", "open files", "CPU count", "CPU governor", "pinning", "client/server CPUs",
                 "cgroups", "loadgen"):
        assert f"] {item}:" in proc.stdout
    assert proc.returncode in (0, 1)


def test_check_flags_a_small_somaxconn_and_shared_cpus(monkeypatch, tmp_path):
    monkeypatch.setattr(envinfo, "sysctl_int", lambda name: 128 if name == "net.core.somaxconn" else 2)
    verdicts = {v.name: v for v in envinfo.check_environment(tmp_path, "0", "0", max_level=1000)}
    assert verdicts["somaxconn"].status == "fail"
    assert "sysctl -w net.core.somaxconn" in verdicts["somaxconn"].fix
    assert verdicts["client/server CPUs"].status == "warn"
    assert verdicts["loadgen"].status == "fail"


def test_check_warns_when_the_kernel_throttles_a_capped_server_task_by_task(monkeypatch):
    from harness import cgroup

    monkeypatch.setattr(cgroup, "throttle_probe", lambda cpu: cgroup.ThrottleProbe(tasks=32, periods=100,
                                                                                     preemptions=1100))
    v = envinfo.throttle_verdict(0)
    assert v.status == "warn" and "11.0 switches per throttled period with 32 runnable tasks" in v.value
    assert "one by one" in v.explanation and v.fix
    monkeypatch.setattr(cgroup, "throttle_probe", lambda cpu: cgroup.ThrottleProbe(tasks=32, periods=100,
                                                                                     preemptions=150))
    v = envinfo.throttle_verdict(0)
    assert v.status == "ok" and "as a whole" in v.explanation


def test_a_run_records_how_an_idle_cpu_waits_and_says_none_where_the_kernel_does_not(tmp_path):
    (tmp_path / "module/haltpoll/parameters").mkdir(parents=True)
    (tmp_path / "module/haltpoll/parameters/guest_halt_poll_ns").write_text("0\n")
    (tmp_path / "devices/system/cpu/cpuidle").mkdir(parents=True)
    (tmp_path / "devices/system/cpu/cpuidle/current_driver").write_text("haltpoll\n")
    assert envinfo.idle_wakeups(tmp_path) == {"cpuidle_driver": "haltpoll", "guest_halt_poll_ns": 0}
    bare = tmp_path / "bare"
    bare.mkdir()
    assert envinfo.idle_wakeups(bare) == {"cpuidle_driver": None, "guest_halt_poll_ns": None}


def test_the_cpu_model_and_the_hypervisor_flag_come_from_one_cpuinfo_text():
    guest = ("processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz\n"
             "flags\t\t: fpu vme hypervisor lahf_lm\n\nprocessor\t: 1\nmodel name\t: other\n")
    assert envinfo.cpu_facts(guest) == ("Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz", True)
    bare = "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu vme lahf_lm\n"
    assert envinfo.cpu_facts(bare) == ("AMD EPYC 7B13", False)
    model, _ = envinfo.cpu_facts("")
    assert model  # platform.processor() or "unknown", never empty


def test_busy_cpus_counts_every_cpu_busy_but_idle_and_iowait_over_the_interval():
    before = ("cpu  100 0 50 1000 10 0 0 0 0 0\ncpu0 50 0 25 500 5 0 0 0 0 0\n"
              "cpu1 50 0 25 500 5 0 0 0 0 0\nintr 1\n")
    # 200 jiffies pass in all: 60 user, 10 system, 10 steal (busy), 110 idle, 10 iowait
    after = ("cpu  160 0 60 1110 20 0 0 10 0 0\ncpu0 80 0 30 555 10 0 0 5 0 0\n"
             "cpu1 80 0 30 555 10 0 0 5 0 0\nintr 2\n")
    assert envinfo.cpu_jiffies(before) == (150, 1160, 2)
    texts = iter([before, after])
    assert envinfo.busy_cpus(0, lambda: next(texts)) == 0.8  # 80 of 200 jiffies on 2 CPUs
    assert envinfo.busy_cpus(0, lambda: "") is None
    busy = envinfo.busy_cpus(0.2)  # this machine, for real
    assert busy is not None and 0 <= busy <= (os.cpu_count() or 1) + 0.01


def test_check_judges_an_idle_machine_by_what_runs_now_not_by_a_load_average_that_remembers_the_build():
    after_build = envinfo.idle_machine_verdict(0.02, "11.48 9.05 8.56 1/89 9245")
    assert after_build.status == "ok" and "still counts" in after_build.explanation
    assert after_build.value == "0.02 CPUs busy over 1 s; load average 11.48"
    busy = envinfo.idle_machine_verdict(0.9, "0.30 0.2 0.1 2/89 9245")
    assert busy.status == "warn" and busy.fix
    assert envinfo.idle_machine_verdict(0.0, "0.01 0 0 1/80 1").explanation == "Nothing else is busy."
    # where /proc/stat cannot be read, the load average decides as before
    assert envinfo.idle_machine_verdict(None, "2.5 1 1 1/80 1").status == "warn"
    assert envinfo.idle_machine_verdict(None, "0.1 0 0 1/80 1").status == "ok"


def test_check_says_what_waking_a_sleeping_client_costs_where_idle_vcpus_halt_at_once():
    halting = envinfo.idle_verdict({"cpuidle_driver": "haltpoll", "guest_halt_poll_ns": 0})
    assert halting.status == "ok" and "halt at once" in halting.explanation
    assert "one client at a time" in halting.explanation
    polling = envinfo.idle_verdict({"cpuidle_driver": "haltpoll", "guest_halt_poll_ns": 200000})
    assert polling.value == "haltpoll, guest_halt_poll_ns 200000" and "halt at once" not in polling.explanation
    assert envinfo.idle_verdict({"cpuidle_driver": None, "guest_halt_poll_ns": None}).value == "not exposed"


def test_unknown_command_line_is_a_usage_error():
    proc = run_cli("frobnicate")
    assert proc.returncode == 2
    assert "usage" in proc.stderr


def test_run_without_a_build_is_a_clear_error_not_a_traceback(tmp_path):
    proc = run_cli("run", "quick", build=tmp_path / "nothing-built")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "make build" in proc.stderr


def test_version_names_the_project_and_its_revision():
    proc = run_cli("--version")
    assert proc.returncode == 0
    assert proc.stdout.startswith("httpbench 0.") and "git " in proc.stdout


def test_top_level_help_lists_every_command():
    proc = run_cli("--help")
    assert proc.returncode == 0
    for command in ("run", "list", "check", "plot", "report", "peers", "idle-memory", "compare", "microbench"):
        assert f"\n    {command}" in proc.stdout, command


def test_peers_help_documents_every_option_with_its_default():
    proc = run_cli("peers", "--help")
    for option, default in (("--rounds", "3"), ("--seconds", "10"), ("--ab-requests", "50000"),
                            ("--concurrency", "100"), ("--server-cpus", "0"), ("--client-cpus", "1")):
        assert option in proc.stdout and f"(default: {default})" in proc.stdout, option


def test_peers_refuses_a_cap_period_it_cannot_read_with_one_line_naming_the_option():
    for given, says in (("soon", "'soon' is neither milliseconds nor CLIENT=MS (wrk=100)"),
                        ("curl=20", "'curl=20': the client is wrk or ab")):
        proc = run_cli("peers", "sped", "--server-cpu-share", "0.25", "--cap-period-ms", given)
        assert proc.returncode != 0 and "Traceback" not in proc.stderr
        assert proc.stderr.strip() == f"peers: --cap-period-ms {says}"


def test_the_httpbench_entry_point_works_from_any_directory(tmp_path):
    proc = subprocess.run([str(REPO / "scripts" / "httpbench"), "list"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "Experiments" in proc.stdout and "kerneis2009" in proc.stdout
