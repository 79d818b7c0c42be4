"""Running client programs (our loadgen, wrk, ab) several at a time, as a side-by-side measurement
needs: every client is started before any is waited for, each is reaped the moment it ends (so a
caller can read its server's counters at the end of that client's own load), and none outlives
its time limit or the caller: each runs in its own session, pinned with taskset, and is killed by
its PID (kill_session), never by name.

`harness.loadgen.run_loadgens` (the runner's points) and `harness.peers` (wrk and ab) both run
their clients through `run_at_once`.
"""

from __future__ import annotations

import os
import resource
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO, Any

from harness.server import ProcessGuard, die_with_parent, kill_session

POLL_S = 0.005  # how often the clients are checked for their end


@dataclass
class Ended:
    """How one client ended: its exit status (None when it did not start or was killed past the
    limit, ``error`` then says which), its rusage (None likewise), the seconds from the start of
    all the clients to its end, and what ``on_exit`` returned when it was reaped."""

    status: int | None = None
    usage: resource.struct_rusage | None = None
    wall_s: float = 0.0
    at_exit: Any = None
    error: str | None = None

    @property
    def cpu_s(self) -> float:
        return self.usage.ru_utime + self.usage.ru_stime if self.usage is not None else 0.0


def pinned(argv: Sequence[str], cpus: str | None) -> list[str]:
    """The command that runs ``argv`` pinned to ``cpus`` (taskset, which execs it), or as it is."""
    return (["taskset", "-c", cpus] if cpus is not None else []) + list(argv)


def run_at_once(argvs: Sequence[Sequence[str]], cpus: str | None, outputs: Sequence[IO],
                limit_s: float, guard: ProcessGuard | None = None,
                on_exit: Callable[[int, resource.struct_rusage], Any] | None = None) -> list[Ended]:
    """Runs the commands at the same time, client ``i`` writing its stdout and stderr to
    ``outputs[i]``, pinned to ``cpus`` (taskset, which execs the client, so the rusage is the
    client's own) when given. Returns how each ended, in order. A client that cannot be started
    or is still running ``limit_s`` after the start is an ``error`` of its own; the others are
    still waited for. Every client is in ``guard`` while it runs, and none is left running on
    any way out (an exception or Ctrl-C included)."""
    ended = [Ended() for _ in argvs]
    procs: dict[int, subprocess.Popen] = {}
    start = time.monotonic()
    try:
        for i, (argv, out) in enumerate(zip(argvs, outputs)):
            full = pinned(argv, cpus)
            try:
                proc = subprocess.Popen(full, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                        start_new_session=True, preexec_fn=die_with_parent)
            except OSError as exc:
                ended[i].error = f"cannot execute {full[0]}: {exc.strerror}"
                continue
            procs[i] = proc
            if guard is not None:
                guard.add(proc.pid, os.path.basename(argv[0]))  # "loadgen", "wrk", "ab"
        while procs:
            for i, proc in list(procs.items()):
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)  # this client only
                if pid != proc.pid:
                    continue
                proc.returncode = os.waitstatus_to_exitcode(status)
                del procs[i]
                if guard is not None:
                    guard.remove(proc.pid)
                ended[i].status, ended[i].usage = proc.returncode, usage
                ended[i].wall_s = time.monotonic() - start
                ended[i].at_exit = on_exit(i, usage) if on_exit is not None else None
            if procs and time.monotonic() - start > limit_s:
                for i, proc in procs.items():
                    _stop(proc, guard)
                    ended[i].error = f"still running after {limit_s:g} s; killed"
                    ended[i].wall_s = time.monotonic() - start
                procs.clear()
            elif procs:
                time.sleep(POLL_S)
        return ended
    finally:
        for proc in procs.values():  # an exception or Ctrl-C while waiting
            _stop(proc, guard)


def _stop(proc: subprocess.Popen, guard: ProcessGuard | None) -> None:
    """Kills the client's session by its PID and reaps it."""
    if proc.returncode is None:
        kill_session(proc.pid)
        proc.wait()
    if guard is not None:
        guard.remove(proc.pid)
