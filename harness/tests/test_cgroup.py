"""The server's cgroup: exact CPU accounting of every process and thread, the cap, context
switches, peak memory, and no process left behind. Needs root and the cgroup controllers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

import platform

from harness.cgroup import PARENT, ServerCgroup, SharedCap, ThrottleProbe, available, bandwidth, throttle_probe

ok, why = available()
pytestmark = pytest.mark.skipif(not ok, reason=f"cgroups unavailable: {why}")

BURN = """
import os, resource, sys, threading, time
def burn(seconds):
    t = time.thread_time()
    while time.thread_time() - t < seconds:
        pass
threads = [threading.Thread(target=burn, args=(0.1,)) for _ in range(2)]
for t in threads: t.start()
for t in threads: t.join()
pid = os.fork()
if pid == 0:
    burn(0.1)
    os._exit(0)
os.waitpid(pid, 0)
burn(0.05)
me = resource.getrusage(resource.RUSAGE_SELF)
kids = resource.getrusage(resource.RUSAGE_CHILDREN)
print(me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime)
"""


def run_in(cg: ServerCgroup, code: str, cpus: str = "0") -> tuple[str, float]:
    t0 = time.monotonic()
    out = subprocess.run(["taskset", "-c", cpus, sys.executable, "-c", code], preexec_fn=cg.enter,
                         capture_output=True, text=True, timeout=60, check=True).stdout
    return out, time.monotonic() - t0


def test_cpu_time_counts_every_thread_and_every_forked_process_exactly(tmp_path):
    cg = ServerCgroup(f"test-cpu-{os.getpid()}", share=None, cpus=[0])
    try:
        before = cg.read()
        out, _ = run_in(cg, BURN)
        after = cg.read()
    finally:
        cg.close()
    own_account = float(out.split()[-1])  # the processes' own rusage: 2 threads, a child, the main thread
    assert own_account > 0.3
    counted = (after.cpu_ns - before.cpu_ns) / 1e9
    # The cgroup also counts taskset and the interpreter's start-up, a few tens of ms. The
    # process's rusage is the kernel's tick-scaled split of the same runtime, which may read a
    # few ms more than the cgroup's nanosecond count.
    assert own_account - 0.01 <= counted <= own_account + 0.15


def test_the_cap_throttles_the_server_to_its_share(tmp_path):
    cg = ServerCgroup(f"test-cap-{os.getpid()}", share=0.25, cpus=[0])
    try:
        before = cg.read()
        _, wall = run_in(cg, "import time\nt=time.process_time()\nwhile time.process_time()-t<0.3: pass")
        after = cg.read()
    finally:
        cg.close()
    cpu = (after.cpu_ns - before.cpu_ns) / 1e9
    assert cpu >= 0.3
    assert wall >= 0.8 * cpu / 0.25  # 0.3 s of CPU at a quarter of a CPU takes ~1.2 s
    assert after.nr_throttled > before.nr_throttled
    assert after.throttled_ns > before.throttled_ns


def test_context_switches_of_the_cgroup_are_counted():
    cg = ServerCgroup(f"test-ctx-{os.getpid()}", share=None, cpus=[0])
    if cg.perf_error:
        cg.close()
        pytest.skip(f"perf counters unavailable: {cg.perf_error}")
    try:
        before = cg.read()
        run_in(cg, "import time\nfor _ in range(300): time.sleep(0.001)")
        after = cg.read()
    finally:
        cg.close()
    assert 300 <= after.ctx_switches - before.ctx_switches <= 400


def test_peak_memory_is_the_largest_charge():
    cg = ServerCgroup(f"test-mem-{os.getpid()}", share=None, cpus=[0])
    try:
        run_in(cg, "b = bytearray(64 * 1024 * 1024)\nfor i in range(0, len(b), 4096): b[i] = 1")
        peak = cg.memory_peak_bytes()
    finally:
        cg.close()
    assert peak is not None and peak >= 64 * 1024 * 1024


def test_close_kills_what_is_left_inside_by_pid_and_removes_the_directories():
    cg = ServerCgroup(f"test-left-{os.getpid()}", share=0.5, cpus=[0])
    proc = subprocess.Popen([sys.executable, "-c", "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                             "time.sleep(60)"], preexec_fn=cg.enter, start_new_session=True)
    dirs = list(cg._dirs.values())
    time.sleep(0.2)
    assert proc.pid in cg.pids()
    assert cg.close() == 1
    assert proc.wait(timeout=5) == -signal.SIGKILL
    assert not any(d.exists() for d in dirs)


def test_bandwidth_uses_the_shortest_period_the_kernel_allows():
    assert bandwidth(0.25) == (1000, 4000)
    assert bandwidth(0.5) == (1000, 2000)
    quota, period = bandwidth(0.28)
    assert quota >= 1000 and abs(quota / period - 0.28) < 0.001


def test_bandwidth_takes_a_longer_period_when_asked_and_refuses_a_quota_below_the_kernels():
    assert bandwidth(0.25, 100_000) == (25_000, 100_000)
    with pytest.raises(ValueError, match="below the kernel's 1000 µs"):
        bandwidth(0.25, 2_000)


def test_a_cgroup_capped_with_a_longer_period_gets_that_period():
    cg = ServerCgroup(f"test-period-{os.getpid()}", share=0.25, cpus=[0], cap_period_us=100_000)
    try:
        assert (cg.cpu_dir / ("cpu.max" if cg.layout.version == 2 else "cpu.cfs_period_us")).read_text().split()[-1] \
            == "100000"
        assert (cg.quota_us, cg.period_us) == (25_000, 100_000)
    finally:
        cg.close()


def test_servers_in_a_shared_cap_split_it_evenly_and_each_counts_only_its_own_cpu():
    # Two busy loops, one in each child of a cap of half a CPU: together they get half a CPU,
    # each about a quarter, and each child's reading holds its own loop's time only.
    shared = SharedCap(f"test-shared-{os.getpid()}", 0.5, cap_period_us=100_000)
    a = ServerCgroup("0-a", cpus=[0], group=shared.name)
    b = ServerCgroup("1-b", cpus=[0], group=shared.name)
    loops: list[subprocess.Popen] = []
    try:
        assert a.cpu_dir.parent == shared._dirs["cpu"] and a.cpu_dir.parent.parent.name == PARENT
        assert (shared.quota_us, shared.period_us) == (50_000, 100_000)
        before = a.read(), b.read(), shared.usage_ns()
        loops = _busy_loops(a, 1) + _busy_loops(b, 1)
        time.sleep(1.0)
        for loop in loops:
            loop.kill()  # by its PID
            loop.wait()
        after = a.read(), b.read(), shared.usage_ns()
    finally:
        for loop in loops:
            if loop.poll() is None:
                loop.kill()
                loop.wait()
        a.close()
        b.close()
        shared.close()
    used_a = (after[0].cpu_ns - before[0].cpu_ns) / 1e9
    used_b = (after[1].cpu_ns - before[1].cpu_ns) / 1e9
    used = (after[2] - before[2]) / 1e9
    assert 0.35 <= used <= 0.65  # half a CPU for about a second, both loops together
    assert used_a + used_b == pytest.approx(used, rel=0.02)
    assert 0.6 <= used_a / used_b <= 1.6  # an even split
    assert not any((root / PARENT / shared.name).exists() for root in shared.layout.roots())


def _busy_loops(cg: ServerCgroup, n: int) -> list[subprocess.Popen]:
    return [subprocess.Popen(["taskset", "-c", "0", "sh", "-c", "while :; do :; done"], preexec_fn=cg.enter,
                             start_new_session=True) for _ in range(n)]


def test_a_task_that_blocks_is_not_preempted_and_busy_tasks_sharing_a_cpu_are():
    cg = ServerCgroup(f"test-preempt-{os.getpid()}", share=None, cpus=[0])
    loops: list[subprocess.Popen] = []
    try:
        if cg.perf_error or cg.preempt_error:
            pytest.skip(f"perf counters unavailable: {cg.perf_error or cg.preempt_error}")
        before = cg.read()
        run_in(cg, "import time\nfor _ in range(300): time.sleep(0.001)")
        slept = cg.read()
        loops = _busy_loops(cg, 3)
        time.sleep(0.5)
        busy = cg.read()
    finally:
        for p in loops:
            p.kill()
            p.wait()
        cg.close()
    switches, preempted = slept.ctx_switches - before.ctx_switches, slept.preemptions - before.preemptions
    assert switches >= 300 and preempted < switches / 10  # each sleep is a switch, none a preemption
    switches, preempted = busy.ctx_switches - slept.ctx_switches, busy.preemptions - slept.preemptions
    assert preempted >= 10 and preempted >= 0.9 * switches  # a busy loop leaves the CPU only when made to


def test_the_throttle_probe_says_per_task_when_switches_per_period_grow_with_the_tasks():
    assert ThrottleProbe(tasks=32, periods=100, preemptions=1100).per_task
    assert not ThrottleProbe(tasks=32, periods=100, preemptions=250).per_task  # a group off the CPU at once
    assert not ThrottleProbe(tasks=2, periods=100, preemptions=200).per_task


def test_this_kernel_throttles_a_capped_group_task_by_task_from_linux_6_18():
    release = tuple(int(x) for x in platform.release().split("-")[0].split(".")[:2])
    try:
        many, few = throttle_probe(0, tasks=32), throttle_probe(0, tasks=2)
    except OSError as exc:
        pytest.skip(f"preemptions cannot be counted here: {exc}")
    assert many.periods > 50 and few.periods > 50  # 0.5 s of a 4-ms period, throttled nearly every period
    if release >= (6, 18):
        assert many.per_task and many.per_period > 3 * few.per_period
    else:
        assert not many.per_task


def test_one_burst_of_the_cap_holds_its_cpu_over_the_servers_cost_against_the_clients_backlog():
    from harness.cgroup import burst_requests, longest_busy_burst

    # 7.5 ms of CPU (0.15 of a 50-ms period) at 30 µs a new connection: 250 requests; ab at 65
    # µs each has its 100 connections' and about 115 more ready
    served, ready = burst_requests(7_500, 30.0, 65.0, 100)
    assert (served, ready) == (pytest.approx(250), pytest.approx(215.4, abs=0.1))
    # the longest burst ab keeps busy: 100 / (1/30 - 1/65) µs, where the two are equal
    longest = longest_busy_burst(30.0, 65.0, 100)
    assert longest == pytest.approx(5_571, abs=1)
    assert burst_requests(longest, 30.0, 65.0, 100)[0] == pytest.approx(burst_requests(longest, 30.0, 65.0, 100)[1])
    # a client cheaper per request than the server (wrk against a thread server) never lets it run dry
    assert longest_busy_burst(20.0, 8.0, 100) is None
