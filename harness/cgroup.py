"""One cgroup per server: the CPU cap that makes a comparison server-bound, and exact accounting.

Kerneis & Chroboczek ran their server at 600 MHz against a 2.2 GHz client so that the server,
not the client, was the bottleneck. On one 2-core machine the harness gets the same effect by
putting every server (ours and production ones) in its own cgroup capped by the CFS bandwidth
controller, and it reads the server's costs from the same cgroup:

* CPU time: ``cpuacct.usage`` (v1) or ``cpu.stat usage_usec`` (v2) — every thread and every
  process the server ever had, in nanoseconds (microseconds on v2), no 10 ms ticks. The kernel
  splits it into user and system time at the tick, so the split (not the total) is sampled.
* Throttling: ``nr_periods``, ``nr_throttled`` and the throttled time of ``cpu.stat``.
* Peak memory: ``memory.max_usage_in_bytes`` (v1) or ``memory.peak`` (v2), user and kernel
  memory charged to the server, instead of sampling RSS.
* Kernel context switches: a ``perf_event_open`` software counter bound to the cgroup
  (``PERF_FLAG_PID_CGROUP``) on each server CPU, summed over every thread that ran there; and
  of those, the *preemptions* (a thread switched out while it could still run: the
  ``sched:sched_switch`` tracepoint counted with a filter on its ``prev_state``). Under the cap
  they show what throttling costs a server of many threads or processes: since Linux 6.18 a
  throttled group's tasks are stopped one by one, each when it next leaves the kernel, so every
  runnable task of a capped server is switched out once per period (``throttle_probe``;
  docs/methodology.md, "What the cap costs a server of many tasks").

Controllers may live in one v2 hierarchy or in several v1 hierarchies (``cpu``, ``cpuacct``,
``memory``, with perf events on the v2 ``unified`` mount in the hybrid layout); the code handles
both. Everything needs root (or a delegated subtree); ``available()`` says why not when it is
missing, and the harness then runs uncapped and says so on the report's first page.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import signal
import struct
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PARENT = "httpbench"
MIN_QUOTA_US = 1000  # the kernel refuses a smaller cfs quota
MIN_PERIOD_US = 2000  # short periods keep throttling pauses short compared with response times


class CgroupError(Exception):
    """The cgroup cannot be made or used here; the message says why and what to do."""


# -- where the controllers are --------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """Where each needed controller is mounted on this machine."""

    version: int  # 2: one unified hierarchy holds cpu and memory; 1: separate v1 hierarchies
    cpu: Path  # holds the bandwidth limit and (v2) the CPU usage
    cpuacct: Path  # CPU usage (v1); equal to ``cpu`` on v2 or when co-mounted
    memory: Path | None
    perf: Path | None  # a hierarchy whose directories perf_event_open accepts (v2 or v1 perf_event)

    def roots(self) -> list[Path]:
        out: list[Path] = []
        for p in (self.cpu, self.cpuacct, self.memory, self.perf):
            if p is not None and p not in out:
                out.append(p)
        return out


def _controllers(v2_root: Path) -> list[str]:
    try:
        return (v2_root / "cgroup.controllers").read_text().split()
    except OSError:
        return []


def _v2_mount() -> Path | None:
    for root in (CGROUP_ROOT, CGROUP_ROOT / "unified"):
        if (root / "cgroup.controllers").exists():
            return root
    return None


def detect_layout(root: Path = CGROUP_ROOT) -> Layout:
    """Find the cpu, cpuacct, memory and perf hierarchies; raise ``CgroupError`` if there is no
    CPU controller at all."""
    v2 = _v2_mount() if root == CGROUP_ROOT else (root if (root / "cgroup.controllers").exists() else None)
    if v2 is not None and "cpu" in _controllers(v2):
        return Layout(version=2, cpu=v2, cpuacct=v2,
                      memory=v2 if "memory" in _controllers(v2) else None, perf=v2)

    def v1(*names: str, marker: str) -> Path | None:
        for name in names:
            p = root / name
            if (p / marker).exists():
                return p
        return None

    cpu = v1("cpu", "cpu,cpuacct", "cpuacct,cpu", marker="cpu.cfs_quota_us")
    if cpu is None:
        raise CgroupError("no cgroup CPU controller here (neither cgroup v2 with 'cpu' in "
                          "cgroup.controllers nor a v1 'cpu' hierarchy with cpu.cfs_quota_us)")
    cpuacct = cpu if (cpu / "cpuacct.usage").exists() else v1("cpuacct", marker="cpuacct.usage")
    if cpuacct is None:
        raise CgroupError("the v1 'cpuacct' controller is not mounted: CPU time cannot be read per cgroup")
    memory = v1("memory", marker="memory.max_usage_in_bytes")
    perf = v1("perf_event", marker="cgroup.procs") or v2
    return Layout(version=1, cpu=cpu, cpuacct=cpuacct, memory=memory, perf=perf)


def available() -> tuple[bool, str]:
    """(usable, why not): root and a CPU controller are needed."""
    if os.geteuid() != 0:
        return False, "the harness is not running as root, so it cannot create cgroups"
    try:
        detect_layout()
    except CgroupError as exc:
        return False, str(exc)
    return True, ""


# -- perf context-switch counters bound to a cgroup -----------------------------------------------

_PERF_TYPE_SOFTWARE = 1
_PERF_TYPE_TRACEPOINT = 2
_PERF_EVENT_IOC_SET_FILTER = 0x40082406  # _IOW('$', 6, char *)
# sched_switch's prev_state of a task switched out while running (preempted): TASK_REPORT_MAX,
# the bit above the reported states (the tracepoint's format prints it as "R+").
_TASK_REPORT_MAX = 0x100
TRACEFS_ROOTS = (Path("/sys/kernel/tracing"), Path("/sys/kernel/debug/tracing"))
_PERF_COUNT_SW_CONTEXT_SWITCHES = 3
_PERF_FLAG_PID_CGROUP = 1 << 2
_PERF_FLAG_FD_CLOEXEC = 1 << 3
_PERF_EVENT_OPEN = {"x86_64": 298, "aarch64": 241, "riscv64": 241, "i686": 336, "armv7l": 364}


class _PerfAttr(ctypes.Structure):
    # PERF_ATTR_SIZE_VER0: the first 64 bytes of struct perf_event_attr.
    _fields_ = [("type", ctypes.c_uint32), ("size", ctypes.c_uint32), ("config", ctypes.c_uint64),
                ("sample_period", ctypes.c_uint64), ("sample_type", ctypes.c_uint64),
                ("read_format", ctypes.c_uint64), ("flags", ctypes.c_uint64),
                ("wakeup_events", ctypes.c_uint32), ("bp_type", ctypes.c_uint32),
                ("config1", ctypes.c_uint64)]


try:
    _LIBC = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover
    _LIBC = None


def _open_cgroup_counters(cgroup_dir: Path, cpus: list[int], type_: int, config: int,
                          event_filter: str | None = None) -> list[int]:
    """One counting perf event per CPU for the tasks of ``cgroup_dir`` (a tracepoint's with
    ``event_filter``); raises ``OSError``."""
    nr = _PERF_EVENT_OPEN.get(platform.machine())
    if _LIBC is None or nr is None:
        raise OSError(errno.ENOSYS, f"perf_event_open is not known on {platform.machine()}")
    attr = _PerfAttr(type=type_, size=ctypes.sizeof(_PerfAttr), config=config)
    dir_fd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY)
    fds: list[int] = []
    try:
        for cpu in cpus:
            fd = _LIBC.syscall(nr, ctypes.byref(attr), dir_fd, cpu, -1,
                               _PERF_FLAG_PID_CGROUP | _PERF_FLAG_FD_CLOEXEC)
            if fd < 0:
                err = ctypes.get_errno()
                raise OSError(err, f"perf_event_open(cgroup {cgroup_dir}, cpu {cpu}): {os.strerror(err)}")
            fds.append(fd)
            if event_filter is not None and _LIBC.ioctl(fd, _PERF_EVENT_IOC_SET_FILTER,
                                                        ctypes.c_char_p(event_filter.encode())) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"perf filter {event_filter!r}: {os.strerror(err)}")
    except OSError:
        for fd in fds:
            os.close(fd)
        raise
    finally:
        os.close(dir_fd)
    return fds


def open_context_switch_counters(cgroup_dir: Path, cpus: list[int]) -> list[int]:
    """Every switch away from a task of ``cgroup_dir``, one counter per CPU; raises ``OSError``."""
    return _open_cgroup_counters(cgroup_dir, cpus, _PERF_TYPE_SOFTWARE, _PERF_COUNT_SW_CONTEXT_SWITCHES)


def _tracepoint_id(category: str, event: str) -> int:
    for root in TRACEFS_ROOTS:
        path = root / "events" / category / event / "id"
        try:
            return int(path.read_text())
        except (OSError, ValueError):
            continue
    raise OSError(errno.ENOENT, f"tracepoint {category}:{event} not found under "
                                f"{' or '.join(str(r) for r in TRACEFS_ROOTS)} (is tracefs mounted?)")


def open_preemption_counters(cgroup_dir: Path, cpus: list[int]) -> list[int]:
    """The switches away from a task of ``cgroup_dir`` that could still run (preempted, or
    stopped by throttling), one counter per CPU: ``sched:sched_switch`` whose ``prev_state`` is
    running, with or without the preempted flag (``R`` or ``R+`` in a trace). Raises ``OSError``."""
    return _open_cgroup_counters(cgroup_dir, cpus, _PERF_TYPE_TRACEPOINT, _tracepoint_id("sched", "sched_switch"),
                                 f"prev_state == 0 || prev_state == {_TASK_REPORT_MAX}")


def read_counters(fds: list[int]) -> int:
    return sum(struct.unpack("Q", os.read(fd, 8))[0] for fd in fds)


# -- one server's cgroup ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Reading:
    """The cgroup's cumulative counters at one instant (``t_ns`` on CLOCK_MONOTONIC)."""

    t_ns: int
    cpu_ns: int
    cpu_user_ns: int | None = None
    cpu_sys_ns: int | None = None
    nr_periods: int | None = None
    nr_throttled: int | None = None
    throttled_ns: int | None = None
    memory_bytes: int | None = None
    ctx_switches: int | None = None
    preemptions: int | None = None  # of those switches, the ones away from a task that could run


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _read_keyed(path: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        text = path.read_text()
    except OSError:
        return out
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        try:
            out[key] = int(value)
        except ValueError:
            continue
    return out


def burst_requests(burst_us: float, server_us: float, client_us: float, connections: float) -> tuple[float, float]:
    """What one burst of a cap holds: (the requests a server can serve with ``burst_us`` of CPU
    at ``server_us`` each, the requests its client can have ready for them: its ``connections``'
    and those it sends meanwhile, at best one per ``client_us`` of its own CPU). A capped server
    runs at full speed until its part of the period's quota is spent; when the first figure is
    the larger, it empties its queue inside each burst and waits on its client, woken for each
    arrival, and its CPU per request follows the client's pace (docs/methodology.md, "A period
    longer than the client's backlog"). Two servers sharing a cap and two clients sharing a CPU
    halve both sides alike, so the same figures hold for a pair."""
    return burst_us / server_us, connections + burst_us / client_us


def longest_busy_burst(server_us: float, client_us: float, connections: float) -> float | None:
    """The longest burst (µs of the server's CPU) whose requests the client keeps ready
    (``burst_requests``); None when none runs dry (the client is the cheaper per request)."""
    gain = 1 / server_us - 1 / client_us
    return connections / gain if gain > 0 else None


def bandwidth(share: float, period_us: int | None = None) -> tuple[int, int]:
    """(quota µs, period µs) giving ``share`` of one CPU with the shortest allowed period, or
    with ``period_us`` when given (a quota below the kernel's 1 ms is refused: ValueError)."""
    if not 0 < share <= 64:
        raise ValueError(f"share must be positive, got {share}")
    if period_us is not None:
        quota = round(period_us * share)
        if quota < MIN_QUOTA_US:
            raise ValueError(f"a period of {period_us / 1000:g} ms at {share:g} of a CPU gives a quota of "
                             f"{quota} µs, below the kernel's {MIN_QUOTA_US} µs")
        return quota, period_us
    quota = max(MIN_QUOTA_US, round(MIN_PERIOD_US * share))
    period = max(MIN_PERIOD_US, round(quota / share))
    return quota, period


@dataclass
class ServerCgroup:
    """A fresh cgroup in every hierarchy the layout needs. ``enter`` is a ``preexec_fn``; call
    ``close`` when the server has exited (it kills any process left inside, by pid)."""

    name: str
    share: float | None = None  # fraction of one CPU; None = no limit
    cap_period_us: int | None = None  # the CFS period of the cap; None = the shortest (bandwidth())
    group: str | None = None  # a SharedCap's name: the cgroup is made inside it (and takes its cap)
    cpus: list[int] = field(default_factory=lambda: [0])
    layout: Layout | None = None
    quota_us: int | None = None
    period_us: int | None = None
    perf_error: str | None = None
    preempt_error: str | None = None  # why preemptions are not counted (perf_error, or no tracefs)
    _dirs: dict[str, Path] = field(default_factory=dict)
    _perf_fds: list[int] = field(default_factory=list)
    _preempt_fds: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.layout is None:
            self.layout = detect_layout()
        lay = self.layout
        try:
            _enable_controllers(lay, (lay.cpu, lay.cpu / PARENT))
            _make_dirs(lay, Path(self.group, self.name) if self.group else Path(self.name), self._dirs)
            _give_weight(lay, self._dirs["cpu"])
            if self.share is not None:
                self.quota_us, self.period_us = bandwidth(self.share, self.cap_period_us)
                _write_cap(lay, self._dirs["cpu"], self.quota_us, self.period_us)
        except OSError as exc:
            self.close()
            raise CgroupError(f"cannot set up the server's cgroup {self.name}: {exc.strerror} "
                              f"({exc.filename}); run as root") from None
        if "perf" in self._dirs:
            try:
                self._perf_fds = open_context_switch_counters(self._dirs["perf"], self.cpus)
            except OSError as exc:
                self.perf_error = str(exc)
            try:
                self._preempt_fds = open_preemption_counters(self._dirs["perf"], self.cpus)
            except OSError as exc:  # no tracefs: the switches are still counted, not split
                self.preempt_error = str(exc)

    @property
    def cpu_dir(self) -> Path:
        return self._dirs["cpu"]

    def enter(self) -> None:
        """Move the calling process into every hierarchy (used between fork and exec)."""
        pid = str(os.getpid())
        for path in dict.fromkeys(self._dirs.values()):
            with open(path / "cgroup.procs", "w") as fh:
                fh.write(pid)

    def read(self) -> Reading:
        """The cumulative counters now."""
        t = time.monotonic_ns()
        lay = self.layout
        assert lay is not None
        ctx = read_counters(self._perf_fds) if self._perf_fds else None
        pre = read_counters(self._preempt_fds) if self._preempt_fds else None
        if lay.version == 2:
            st = _read_keyed(self._dirs["cpu"] / "cpu.stat")
            mem = _read_int(self._dirs["memory"] / "memory.current") if "memory" in self._dirs else None
            return Reading(t_ns=t, cpu_ns=st.get("usage_usec", 0) * 1000,
                           cpu_user_ns=_times(st.get("user_usec"), 1000), cpu_sys_ns=_times(st.get("system_usec"), 1000),
                           nr_periods=st.get("nr_periods"), nr_throttled=st.get("nr_throttled"),
                           throttled_ns=_times(st.get("throttled_usec"), 1000), memory_bytes=mem, ctx_switches=ctx,
                           preemptions=pre)
        acct = self._dirs["cpuacct"]
        st = _read_keyed(self._dirs["cpu"] / "cpu.stat")
        user = _read_int(acct / "cpuacct.usage_user")
        sys_ = _read_int(acct / "cpuacct.usage_sys")
        mem = _read_int(self._dirs["memory"] / "memory.usage_in_bytes") if "memory" in self._dirs else None
        return Reading(t_ns=t, cpu_ns=_read_int(acct / "cpuacct.usage") or 0, cpu_user_ns=user, cpu_sys_ns=sys_,
                       nr_periods=st.get("nr_periods"), nr_throttled=st.get("nr_throttled"),
                       throttled_ns=st.get("throttled_time"), memory_bytes=mem, ctx_switches=ctx, preemptions=pre)

    def memory_peak_bytes(self) -> int | None:
        """The largest memory charge since the cgroup was made (user + kernel memory)."""
        if "memory" not in self._dirs:
            return None
        name = "memory.peak" if self.layout and self.layout.version == 2 else "memory.max_usage_in_bytes"
        return _read_int(self._dirs["memory"] / name)

    def pids(self) -> list[int]:
        out: set[int] = set()
        for path in dict.fromkeys(self._dirs.values()):
            try:
                out.update(int(x) for x in (path / "cgroup.procs").read_text().split())
            except (OSError, ValueError):
                continue
        return sorted(out)

    def close(self, wait_s: float = 3.0) -> int:
        """Kill (by pid) whatever is still inside, remove the directories; return how many
        processes had to be killed."""
        for fd in self._perf_fds + self._preempt_fds:
            os.close(fd)
        self._perf_fds, self._preempt_fds = [], []
        killed = 0
        deadline = time.monotonic() + wait_s
        while True:
            left = self.pids()
            if not left or time.monotonic() > deadline:
                break
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed += 1
                except ProcessLookupError:
                    pass
            time.sleep(0.02)
        _remove_dirs(self._dirs)
        self._dirs = {}
        return killed


@dataclass
class SharedCap:
    """One cap for servers measured at the same time (``harness peers --simultaneous``): a
    cgroup under the shared parent capped at ``share`` of a CPU, each server in a child of it
    (``ServerCgroup(group=name)``) with no cap of its own and the same weight. While every
    server is busy the scheduler gives each an equal part of the cap, and each child still
    counts its own CPU time, context switches and preemptions. Close it after its children."""

    name: str
    share: float
    cap_period_us: int | None = None
    layout: Layout | None = None
    quota_us: int = 0
    period_us: int = 0
    _dirs: dict[str, Path] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.layout is None:
            self.layout = detect_layout()
        lay = self.layout
        try:
            self.quota_us, self.period_us = bandwidth(self.share, self.cap_period_us)
            _make_dirs(lay, Path(self.name), self._dirs)
            cpu = self._dirs["cpu"]
            _enable_controllers(lay, (lay.cpu, lay.cpu / PARENT, cpu))  # its children get them too
            _give_weight(lay, cpu)
            _write_cap(lay, cpu, self.quota_us, self.period_us)
        except OSError as exc:
            self.close()
            raise CgroupError(f"cannot set up the shared cgroup {self.name}: {exc.strerror} "
                              f"({exc.filename}); run as root") from None

    def usage_ns(self) -> int:
        """CPU time of every server in it so far, in nanoseconds."""
        lay = self.layout
        assert lay is not None
        if lay.version == 2:
            return _read_keyed(self._dirs["cpu"] / "cpu.stat").get("usage_usec", 0) * 1000
        return _read_int(self._dirs["cpuacct"] / "cpuacct.usage") or 0

    def close(self) -> None:
        """Removes the directories (empty once every child ServerCgroup is closed; the last
        child's close may already have taken them)."""
        _remove_dirs(self._dirs)
        self._dirs = {}


def _enable(parent: Path, controller: str) -> None:
    ctl = parent / "cgroup.subtree_control"
    if controller not in ctl.read_text().split():
        ctl.write_text(f"+{controller}")


def _enable_controllers(lay: Layout, parents: tuple[Path, ...]) -> None:
    """On v2, lets the children of each of ``parents`` (made if missing) use cpu and memory."""
    if lay.version != 2:
        return
    for ctl in ("cpu", "memory"):
        if ctl == "memory" and lay.memory is None:
            continue
        for parent in parents:
            parent.mkdir(exist_ok=True)
            _enable(parent, ctl)


def _make_dirs(lay: Layout, relative: Path, dirs: dict[str, Path]) -> None:
    """Makes ``PARENT/relative`` in every hierarchy the layout has, entering each in ``dirs`` (by
    controller key) as it is made, so a failure part-way leaves the made ones to remove."""
    for key, root in (("cpu", lay.cpu), ("cpuacct", lay.cpuacct), ("memory", lay.memory), ("perf", lay.perf)):
        if root is None:
            continue
        path = root / PARENT / relative
        path.mkdir(parents=True, exist_ok=True)
        dirs[key] = path


def _give_weight(lay: Layout, cpu_dir: Path) -> None:
    """The highest CPU weight, on ``cpu_dir`` and on its parent (weights compete level by level,
    so the parent's is what other processes on the CPU meet): stray work on the server's CPU
    (kernel threads, another process) then takes as little of it as the scheduler allows, and a
    capped server gets its whole allowance."""
    for d in (cpu_dir.parent, cpu_dir):
        if lay.version == 2:
            (d / "cpu.weight").write_text("10000")
        else:
            (d / "cpu.shares").write_text("262144")


def _write_cap(lay: Layout, cpu_dir: Path, quota_us: int, period_us: int) -> None:
    if lay.version == 2:
        (cpu_dir / "cpu.max").write_text(f"{quota_us} {period_us}")
    else:
        (cpu_dir / "cpu.cfs_period_us").write_text(str(period_us))
        (cpu_dir / "cpu.cfs_quota_us").write_text(str(quota_us))


def _remove_dirs(dirs: dict[str, Path]) -> None:
    """Removes each directory (waiting up to a second for its last task to leave), then its
    parent once nothing else uses it (the shared parent, or a SharedCap)."""
    for path in dirs.values():
        for _ in range(50):
            try:
                path.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.02)  # the last task is still leaving
        try:
            path.parent.rmdir()
        except OSError:
            pass


def _times(v: int | None, k: int) -> int | None:
    return None if v is None else v * k


# -- how this kernel throttles a capped group -----------------------------------------------------


@dataclass(frozen=True)
class ThrottleProbe:
    """What capping costs a group of many runnable tasks on this kernel (``throttle_probe``)."""

    tasks: int
    periods: int
    preemptions: int

    @property
    def per_period(self) -> float:
        return self.preemptions / self.periods if self.periods else 0.0

    @property
    def per_task(self) -> bool:
        """True when a throttled group's tasks are stopped one by one (Linux 6.18 and later):
        the switches per period grow with the runnable tasks instead of staying at one or two
        (the whole group taken off the CPU at once, and the scheduler's own time slices)."""
        return self.per_period >= max(4.0, self.tasks / 8)


def throttle_probe(cpu: int = 0, tasks: int = 32, seconds: float = 0.5) -> ThrottleProbe:
    """Runs ``tasks`` busy shell loops pinned to ``cpu`` in a cgroup capped at 1 ms every 4 ms
    for ``seconds`` and counts the preemptions of its tasks per throttled period. Raises
    ``CgroupError`` (no cgroups) or ``OSError`` (no perf counters or tracefs)."""
    cg = ServerCgroup(f"throttle-probe-{os.getpid()}", share=0.25, cpus=[cpu])
    procs: list = []
    try:
        if not cg._preempt_fds:
            raise OSError(errno.ENOTSUP, cg.preempt_error or cg.perf_error or "preemptions cannot be counted here")
        procs = [subprocess.Popen(["taskset", "-c", str(cpu), "sh", "-c", "while :; do :; done"],
                                  preexec_fn=cg.enter, start_new_session=True) for _ in range(tasks)]
        time.sleep(0.1)  # every loop started and throttled at least once
        a = cg.read()
        time.sleep(seconds)
        b = cg.read()
        return ThrottleProbe(tasks=tasks, periods=(b.nr_throttled or 0) - (a.nr_throttled or 0),
                             preemptions=(b.preemptions or 0) - (a.preemptions or 0))
    finally:
        for p in procs:
            p.kill()
            p.wait()
        cg.close()


def throttling_summary(cpu: int = 0) -> dict:
    """``throttle_probe`` as meta.json keeps it (``pinning.cap_throttling``) and ``harness
    check`` and the report read it: {measured, per_task, tasks, periods, preemptions,
    switches_per_period}, or {measured: False, problem} when the probe cannot run."""
    try:
        p = throttle_probe(cpu)
    except (CgroupError, OSError) as exc:
        return {"measured": False, "problem": str(exc)}
    return {"measured": True, "per_task": p.per_task, "tasks": p.tasks, "periods": p.periods,
            "preemptions": p.preemptions, "switches_per_period": round(p.per_period, 2)}
