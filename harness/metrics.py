"""Readings of a server's process tree from /proc.

The tree is every process whose session id is the server's pid: the harness starts each server
with ``start_new_session``, so workers, forked children and helper processes all share it even
after they are re-parented. CPU time is taken from ``/proc/PID/stat`` (utime + stime of the
whole thread group, including exited threads, plus cutime + cstime of reaped children), so the
sum over the live tree is conserved when a child exits and is reaped inside the tree.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PROC = Path("/proc")


@dataclass(frozen=True)
class ProcStat:
    pid: int
    state: str
    ppid: int
    pgrp: int
    session: int
    cpu_user_s: float  # utime + cutime
    cpu_sys_s: float  # stime + cstime
    threads: int


def read_stat(pid: int) -> ProcStat | None:
    """Parse /proc/PID/stat; ``None`` if the process is gone."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may itself contain spaces or ')'.
    rest = text[text.rfind(")") + 2 :].split()
    # rest[0] is field 3 (state); field n is rest[n - 3].
    utime, stime, cutime, cstime = (int(rest[i]) for i in (11, 12, 13, 14))
    return ProcStat(
        pid=pid,
        state=rest[0],
        ppid=int(rest[1]),
        pgrp=int(rest[2]),
        session=int(rest[3]),
        cpu_user_s=(utime + cutime) / CLOCK_TICKS,
        cpu_sys_s=(stime + cstime) / CLOCK_TICKS,
        threads=int(rest[17]),
    )


def session_members(session_id: int) -> list[ProcStat]:
    """Every live (not zombie) process whose session id is ``session_id``."""
    members = []
    for entry in os.scandir(PROC):
        if not entry.name.isdigit():
            continue
        st = read_stat(int(entry.name))
        if st is not None and st.session == session_id and st.state not in ("Z", "X"):
            members.append(st)
    return members


def read_status_kib(pid: int, keys: tuple[str, ...]) -> dict[str, int]:
    """Selected ``kB`` or count fields of /proc/PID/status (missing ones are absent)."""
    out: dict[str, int] = {}
    try:
        text = (PROC / str(pid) / "status").read_text()
    except OSError:
        return out
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in keys:
            out[key] = int(value.split()[0])
    return out


def tree_runtime_s(session_id: int) -> float:
    """CPU time used so far by every live thread of the session, from /proc/PID/task/TID/schedstat
    (nanoseconds, unlike the 10 ms ticks of /proc/PID/stat, whose per-process rounding adds up to
    whole seconds over a pool of 64 processes)."""
    total_ns = 0
    for member in session_members(session_id):
        task_dir = PROC / str(member.pid) / "task"
        try:
            tids = os.listdir(task_dir)
        except OSError:
            continue
        for tid in tids:
            try:
                total_ns += int((task_dir / tid / "schedstat").read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue
    return total_ns / 1e9


def wait_quiet(session_id: int, timeout_s: float = 10.0, window_s: float = 0.2,
               busy_share: float = 0.02) -> tuple[float, bool]:
    """Waits until the session's threads use less than ``busy_share`` of one CPU over one
    ``window_s``: the end of a server's start-up. A server says it is listening as soon as its
    socket is, and a pool may go on starting after that: prefork capped at 25 % of a CPU was still
    forking its 256 workers seconds later, inside the warm-up and the measured run (their
    clone()s, page faults and first requests counted as the pool's steady state). Returns the
    seconds waited and whether the server went quiet before ``timeout_s``."""
    t0 = time.monotonic()
    before = tree_runtime_s(session_id)
    while True:
        time.sleep(window_s)
        now = tree_runtime_s(session_id)
        if now - before < busy_share * window_s:
            return time.monotonic() - t0, True
        if time.monotonic() - t0 >= timeout_s:
            return time.monotonic() - t0, False
        before = now


def pss_sum_kib(session_id: int) -> int | None:
    """Proportional set size summed over the session (shared pages split between their users,
    unlike RSS, which counts a page shared by 64 pool processes 64 times)."""
    total = 0
    seen = False
    for member in session_members(session_id):
        try:
            text = (PROC / str(member.pid) / "smaps_rollup").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("Pss:"):
                total += int(line.split()[1])
                seen = True
                break
    return total if seen else None


@dataclass
class TreeSnapshot:
    """CPU and memory of the whole tree at one instant."""

    cpu_user_s: float
    cpu_sys_s: float
    processes: int
    threads: int
    rss_kib: int
    hwm_kib: int
    pids: tuple[int, ...]


def snapshot(session_id: int) -> TreeSnapshot:
    members = session_members(session_id)
    rss = hwm = 0
    for m in members:
        st = read_status_kib(m.pid, ("VmRSS", "VmHWM"))
        rss += st.get("VmRSS", 0)
        hwm += st.get("VmHWM", 0)
    return TreeSnapshot(
        cpu_user_s=sum(m.cpu_user_s for m in members),
        cpu_sys_s=sum(m.cpu_sys_s for m in members),
        processes=len(members),
        threads=sum(m.threads for m in members),
        rss_kib=rss,
        hwm_kib=hwm,
        pids=tuple(m.pid for m in members),
    )


@dataclass
class TreeSampler:
    """Samples the tree every ``interval_s`` on a background thread while the load runs.

    Short-lived processes and threads (fork and thread-per-connection backends) are only seen
    if they are alive at a sampling instant, so the maxima are lower bounds for those models.
    """

    session_id: int
    interval_s: float = 0.1
    max_rss_kib: int = 0
    max_processes: int = 0
    max_threads: int = 0
    samples: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="tree-sampler", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            t0 = time.monotonic()
            self.take()
            # Finding the session means reading every /proc/PID/stat; on a machine with thousands
            # of processes that is expensive, and the sampler shares the client's CPU. Keep its
            # share of that CPU under ~5 % by stretching the interval.
            self._stop.wait(max(self.interval_s, 20 * (time.monotonic() - t0)))

    def take(self) -> TreeSnapshot:
        snap = snapshot(self.session_id)
        self.max_rss_kib = max(self.max_rss_kib, snap.rss_kib)
        self.max_processes = max(self.max_processes, snap.processes)
        self.max_threads = max(self.max_threads, snap.threads)
        self.samples += 1
        return snap

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
