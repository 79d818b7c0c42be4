"""clients.run_at_once: several clients at once, each reaped the moment it ends with its own
status and rusage, each failure its own, and no client left running past its limit or after an
error in the caller."""

from __future__ import annotations

import os
import tempfile
import time

import pytest

from harness.clients import run_at_once
from harness.server import ProcessGuard


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie is not running
        return f.read().split(")")[-1].split()[0] != "Z"


def outputs(n: int) -> list:
    return [tempfile.TemporaryFile(mode="w+") for _ in range(n)]


def test_clients_run_at_once_and_each_is_reaped_when_it_ends():
    outs = outputs(3)
    order: list[int] = []
    started = time.monotonic()
    ends = run_at_once([["sh", "-c", "sleep 0.4; echo slow"], ["sh", "-c", "echo fast"],
                        ["sh", "-c", "sleep 0.4; exit 3"]], "0", outs, limit_s=10,
                       on_exit=lambda i, usage: order.append(i) or usage.ru_nvcsw)
    assert time.monotonic() - started < 0.75  # at once: not 0.8 s one after the other
    assert order[0] == 1 and sorted(order) == [0, 1, 2]
    assert [e.status for e in ends] == [0, 0, 3] and all(e.error is None for e in ends)
    assert ends[1].wall_s < 0.3 <= ends[0].wall_s
    assert ends[0].at_exit >= 1  # the slow one slept: a voluntary switch in its own rusage
    outs[0].seek(0)
    assert outs[0].read().strip() == "slow"


def test_a_clients_cpu_is_its_own_rusage():
    busy, idle = run_at_once([["sh", "-c", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done"],
                              ["sleep", "0.2"]], "0", outputs(2), limit_s=60)
    assert busy.cpu_s > 0.05 and idle.cpu_s < 0.05


def test_a_client_that_cannot_start_is_its_own_error_and_the_others_still_run():
    missing, fine = run_at_once([["/nonexistent/client"], ["true"]], None, outputs(2), limit_s=10)
    assert missing.error is not None and "cannot execute /nonexistent/client" in missing.error
    assert missing.status is None and fine.status == 0 and fine.error is None


def test_a_client_past_the_limit_is_killed_by_its_pid_and_the_rest_are_waited_for():
    guard = ProcessGuard()
    running: dict[int, str] = {}
    started = time.monotonic()
    ends = run_at_once([["sleep", "30"], ["sleep", "0.1"]], None, outputs(2), limit_s=0.5, guard=guard,
                       on_exit=lambda i, usage: running.update(guard.live()))
    assert time.monotonic() - started < 5
    assert ends[0].error == "still running after 0.5 s; killed" and ends[0].status is None
    assert ends[1].status == 0 and ends[1].error is None
    assert len(running) == 1  # when the short one ended, the long one was in the guard
    assert guard.live() == {} and not any(alive(pid) for pid in running)


def test_an_error_in_the_caller_leaves_no_client_running():
    guard = ProcessGuard()
    seen: dict[int, int] = {}

    def fail_on_first(i, usage):
        seen.update(guard.live())  # the other client, still running
        raise RuntimeError("the server's counters could not be read")

    with pytest.raises(RuntimeError):
        run_at_once([["sleep", "30"], ["true"]], None, outputs(2), limit_s=60, guard=guard, on_exit=fail_on_first)
    assert seen and guard.live() == {}
    deadline = time.monotonic() + 5
    while any(alive(p) for p in seen) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(p) for p in seen)
