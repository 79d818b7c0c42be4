"""The server process contract (docs/interfaces.md), from the client's side: starting, pinning,
awaiting and stopping one server. The one module the harness *and* the end-to-end tests
(tests/e2e/e2e_server.py) use.

Each server runs in its own session (``start_new_session``), so every process it spawns can be
found by session id. The server is pinned with ``taskset`` when asked; it is asked to die with
its starter (``PR_SET_PDEATHSIG``) so that even a ``kill -9`` of the harness leaves no server
behind. It is ready when it prints ``listening on HOST:PORT`` (ours) or accepts on its port
(production servers). Stopping is the stop signal (SIGTERM) to the server itself — the contract
says it then stops the processes it started — a grace period, then SIGKILL to the process group
and, by pid, to any session member that changed group. Only pids this module started are
signalled. Its stdout (the ready line, the final stats line) and optionally stderr are drained
by threads, so a chatty server never blocks on a full pipe.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from harness import metrics

READY_RE = re.compile(r"^listening on (\[[^\]]+\]|[^\s:]+):(\d+)\s*$")
PR_SET_PDEATHSIG = 1

try:
    _LIBC = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover - every Linux libc has prctl
    _LIBC = None


def die_with_parent() -> None:
    """preexec_fn: deliver SIGTERM to this child when the harness dies (even by SIGKILL)."""
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


class ServerStartError(Exception):
    """The server exited or did not become ready in time; the message quotes its log."""


@dataclass(frozen=True)
class LaunchSpec:
    """How to start one server and how to know it is ready.

    ``ready`` is ``"line"`` for our binaries (``listening on HOST:PORT`` on stdout) or ``"tcp"``
    for production servers (ready when ``port`` accepts a connection).
    """

    argv: tuple[str, ...]
    ready: str = "line"
    port: int | None = None
    cwd: Path | None = None


@dataclass
class StopResult:
    exit_code: int | None
    killed: bool  # the stop signal was not enough within the grace period
    rusage: dict[str, float] = field(default_factory=dict)
    stats: dict[str, Any] | None = None
    leftover_killed: int = 0
    exited_by_itself: bool = False  # it was already gone when the harness came to stop it
    elapsed_s: float = 0.0  # from the stop signal to the server's exit
    leftover_pids: list[int] = field(default_factory=list)  # session members that outlived it
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP raise KeyboardInterrupt like Ctrl-C, so every ``finally`` runs."""

    def handler(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


class ProcessGuard:
    """Remembers every session the harness started, to kill them all on any exit path."""

    def __init__(self) -> None:
        self._sessions: dict[int, str] = {}
        self._lock = threading.Lock()

    def add(self, pid: int, what: str) -> None:
        with self._lock:
            self._sessions[pid] = what

    def remove(self, pid: int) -> None:
        with self._lock:
            self._sessions.pop(pid, None)

    def live(self) -> dict[int, str]:
        with self._lock:
            return dict(self._sessions)

    def kill_all(self) -> None:
        for pid in list(self.live()):
            kill_session(pid)
            _reap(pid, block=False)
            self.remove(pid)


def kill_session(session_id: int, sig: int = signal.SIGKILL) -> int:
    """Send ``sig`` to the process group and to every other member of the session, by pid."""
    try:
        os.killpg(session_id, sig)
    except (ProcessLookupError, PermissionError):
        pass
    count = 0
    for member in metrics.session_members(session_id):
        try:
            os.kill(member.pid, sig)
            count += 1
        except (ProcessLookupError, PermissionError):
            pass
    return count


def _reap(pid: int, block: bool) -> tuple[int, int, Any] | None:
    try:
        got, status, usage = os.wait4(pid, 0 if block else os.WNOHANG)
    except ChildProcessError:
        return None
    if got == 0:
        return None
    return got, status, usage


def free_port(host: str = "127.0.0.1") -> int:
    """An ephemeral port that was free a moment ago (for servers that cannot take port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def parse_stats_line(lines: list[str]) -> dict[str, Any] | None:
    """The last ``{"stats": {...}}`` line the server printed, if any."""
    for line in reversed(lines):
        line = line.strip()
        if line.startswith("{"):
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict) and isinstance(obj.get("stats"), dict):
                return obj["stats"]
    return None


def unsettled_warning(label: str, timeout_s: float) -> str:
    """The one warning for a server that has not gone quiet ``timeout_s`` after its ready line
    (a pool still forking, say): what is measured next includes the rest of its start-up."""
    return f"warning: {label} was still busy {timeout_s:g} s after its ready line; measured anyway"


def settle(server: "ServerProcess", label: str, timeout_s: float = 10.0) -> bool:
    """``server.wait_settled(timeout_s)``, with ``unsettled_warning`` on stderr when it does not
    settle: every command that measures a server waits and warns through this one call."""
    if server.wait_settled(timeout_s):
        return True
    print(unsettled_warning(label, timeout_s), file=sys.stderr, flush=True)
    return False


def enter_cgroup(cg: Any | None, batch: bool = False) -> Callable[[], None]:
    """A server's preexec: into its cgroup (``cg.enter()``, a ServerCgroup), and with ``batch``
    under SCHED_BATCH, which every process and thread it makes inherits: a task of it that wakes
    up then never preempts the running one (the scheduler switches at the end of a slice or when
    a task blocks), so two servers sharing a CPU (`harness peers --simultaneous`, a runner's
    side-by-side pair) do not each pay for the other's wake-ups."""
    def enter() -> None:
        if cg is not None:
            cg.enter()
        if batch:
            os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    return enter


class ServerProcess:
    """One running server; use ``start`` then always ``stop`` (in a ``finally``).

    ``log_path``: stderr goes to this file (the harness); None keeps it in ``stderr_lines``
    (the tests). ``guard`` remembers the session so every exit path can kill it."""

    def __init__(self, spec: LaunchSpec, cpus: str | None = None, log_path: Path | None = None,
                 guard: ProcessGuard | None = None, cgroup_enter: Callable[[], None] | None = None):
        self.spec = spec
        self.cgroup_enter = cgroup_enter
        self.cpus = cpus
        self.log_path = log_path
        self.guard = guard if guard is not None else ProcessGuard()
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None
        self.host: str = "127.0.0.1"
        self.startup_s: float | None = None
        self.settle_s: float | None = None
        self.stdout_lines: list[str] = []
        self.stderr_lines: list[str] = []
        self._ready = threading.Event()
        self._reader: threading.Thread | None = None
        self._err_reader: threading.Thread | None = None
        self._stopped: StopResult | None = None
        self._reaped: tuple[int, int, Any] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def argv(self) -> list[str]:
        prefix = ["taskset", "-c", self.cpus] if self.cpus is not None else []
        return prefix + list(self.spec.argv)

    def start(self, timeout_s: float) -> int:
        """Start and wait until ready; return the port. Raises ``ServerStartError``."""
        log = None
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            log = open(self.log_path, "ab")
            log.write(f"\n=== {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(self.argv)}\n".encode())
            log.flush()
        t0 = time.monotonic()
        try:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log if log is not None else subprocess.PIPE,
                cwd=self.spec.cwd,
                start_new_session=True,
                preexec_fn=self._child_setup,
            )
        except OSError as exc:
            raise ServerStartError(f"cannot execute {self.argv[0]}: {exc.strerror}") from None
        finally:
            if log is not None:
                log.close()
        self.guard.add(self.proc.pid, " ".join(self.spec.argv))
        self._reader = threading.Thread(target=self._read_stdout, name="server-stdout", daemon=True)
        self._reader.start()
        if log is None:
            self._err_reader = threading.Thread(target=self._read_stderr, name="server-stderr", daemon=True)
            self._err_reader.start()

        deadline = t0 + timeout_s
        if self.spec.ready == "tcp":
            assert self.spec.port is not None
            self.port = self.spec.port
            while time.monotonic() < deadline:
                if self._exited():
                    break
                if _can_connect(self.host, self.port):
                    self.startup_s = time.monotonic() - t0
                    return self.port
                time.sleep(0.02)
        else:
            while time.monotonic() < deadline:
                if self._ready.wait(0.02):
                    self.startup_s = time.monotonic() - t0
                    assert self.port is not None
                    return self.port
                if self._exited() and not self._ready.is_set():
                    break
        status = os.waitstatus_to_exitcode(self._reaped[1]) if self._exited() else None
        why = (
            f"exited with status {status} before it was ready"
            if status is not None
            else f"was not ready after {timeout_s:g} s"
        )
        raise ServerStartError(f"{self.spec.argv[0]} {why}; last log lines:\n{self._log_tail()}")

    def wait_settled(self, timeout_s: float = 10.0) -> bool:
        """After ``start``: waits until the server has finished starting (its processes and
        threads idle, ``metrics.wait_quiet``), so that nothing measured next includes a pool
        still forking or spawning. True if it settled within ``timeout_s``; ``settle_s`` holds
        the wait."""
        assert self.proc is not None
        self.settle_s, quiet = metrics.wait_quiet(self.proc.pid, timeout_s)
        return quiet

    def _exited(self) -> bool:
        """Reap the server if it has exited, keeping its rusage (Popen.poll would discard it)."""
        if self._reaped is None and self.proc is not None:
            self._reaped = _reap(self.proc.pid, block=False)
            if self._reaped is not None:
                self.proc.returncode = os.waitstatus_to_exitcode(self._reaped[1])
        return self._reaped is not None

    def _child_setup(self) -> None:
        die_with_parent()
        if self.cgroup_enter is not None:
            self.cgroup_enter()

    def _read_stdout(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            self.stdout_lines.append(line)
            if not self._ready.is_set():
                m = READY_RE.match(line)
                if m:
                    self.host = m.group(1).strip("[]")
                    self.port = int(m.group(2))
                    self._ready.set()

    def _read_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        for raw in self.proc.stderr:
            self.stderr_lines.append(raw.decode(errors="replace").rstrip("\n"))

    def alive(self) -> bool:
        """The server has not exited (a zombie not yet reaped counts as exited)."""
        return self.proc is not None and not self._exited()

    def _log_tail(self, n: int = 8) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines() if self.log_path else list(self.stderr_lines)
        except OSError:
            lines = []
        lines = lines[-n:] + [f"(stdout) {l}" for l in self.stdout_lines[-n:]]
        return "\n".join("    " + l for l in lines) or "    (no output)"

    def stop(self, grace_s: float = 5.0, sig: int = signal.SIGTERM, wait_members_s: float = 3.0) -> StopResult:
        """Send ``sig`` to the server, wait ``grace_s`` for it to exit, then SIGKILL its group;
        processes of its session that outlive it by ``wait_members_s`` are killed by pid and
        listed in ``leftover_pids``. Idempotent."""
        if self._stopped is not None:
            return self._stopped
        if self.proc is None:
            self._stopped = StopResult(exit_code=None, killed=False)
            return self._stopped
        pid = self.proc.pid
        killed = False
        exited_by_itself = self._exited()
        reaped = self._reaped
        started = time.monotonic()
        # Reaped already through the Popen (proc.wait() by a caller): its pid may belong to
        # another process by now, so nothing is sent to it, and its rusage is gone.
        reaped_by_popen = reaped is None and self.proc.returncode is not None
        if reaped is None and not reaped_by_popen:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + grace_s
            while reaped is None and time.monotonic() < deadline:
                time.sleep(0.01)
                reaped = _reap(pid, block=False)
            if reaped is None:
                killed = True
                kill_session(pid)
                reaped = _reap(pid, block=True)
        elapsed = time.monotonic() - started
        # Children of fork/prefork backends follow their parent; give them a moment, then kill
        # by pid whatever of the session is still there.
        members = [m.pid for m in metrics.session_members(pid)]
        deadline = time.monotonic() + wait_members_s
        while members and time.monotonic() < deadline:
            time.sleep(0.02)
            members = [m.pid for m in metrics.session_members(pid)]
        leftovers = kill_session(pid) if members else 0
        deadline = time.monotonic() + 2.0
        while leftovers and metrics.session_members(pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        self.guard.remove(pid)
        for reader in (self._reader, self._err_reader):
            if reader is not None:
                reader.join(timeout=2)
        exit_code = self.proc.returncode if reaped_by_popen else None
        usage: dict[str, float] = {}
        if reaped is not None:
            _, status, ru = reaped
            exit_code = os.waitstatus_to_exitcode(status)
            self.proc.returncode = exit_code
            usage = {
                "user_s": ru.ru_utime,
                "sys_s": ru.ru_stime,
                "ctx_voluntary": ru.ru_nvcsw,
                "ctx_involuntary": ru.ru_nivcsw,
            }
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        self._stopped = StopResult(
            exit_code=exit_code,
            killed=killed,
            rusage=usage,
            stats=parse_stats_line(self.stdout_lines),
            leftover_killed=leftovers,
            exited_by_itself=exited_by_itself,
            elapsed_s=elapsed,
            leftover_pids=members,
            stdout=list(self.stdout_lines),
            stderr=list(self.stderr_lines),
        )
        return self._stopped


def _can_connect(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False
