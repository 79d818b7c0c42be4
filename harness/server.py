"""Starting, pinning, awaiting and stopping one server.

Each server runs in its own session (``start_new_session``), so the harness can signal the whole
process group and find every process it spawned by session id. The server is pinned with
``taskset``; it is asked to die with the harness (``PR_SET_PDEATHSIG``) so that even a
``kill -9`` of the harness leaves no server behind. Stopping is SIGTERM to the group, a grace
period, then SIGKILL to the group and to any session member that changed group.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

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
    killed: bool  # SIGTERM was not enough
    rusage: dict[str, float] = field(default_factory=dict)
    stats: dict[str, Any] | None = None
    leftover_killed: int = 0
    exited_by_itself: bool = False  # it was already gone when the harness came to stop it


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


class ServerProcess:
    """One running server; use ``start`` then always ``stop`` (in a ``finally``)."""

    def __init__(self, spec: LaunchSpec, cpus: str | None, log_path: Path, guard: ProcessGuard,
                 cgroup_enter: Callable[[], None] | None = None):
        self.spec = spec
        self.cgroup_enter = cgroup_enter
        self.cpus = cpus
        self.log_path = log_path
        self.guard = guard
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None
        self.host: str = "127.0.0.1"
        self.startup_s: float | None = None
        self.stdout_lines: list[str] = []
        self._ready = threading.Event()
        self._reader: threading.Thread | None = None
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
                stderr=log,
                cwd=self.spec.cwd,
                start_new_session=True,
                preexec_fn=self._child_setup,
            )
        except OSError as exc:
            log.close()
            raise ServerStartError(f"cannot execute {self.argv[0]}: {exc.strerror}") from None
        log.close()
        self.guard.add(self.proc.pid, " ".join(self.spec.argv))
        self._reader = threading.Thread(target=self._read_stdout, name="server-stdout", daemon=True)
        self._reader.start()

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

    def _exited(self) -> bool:
        """Reap the server if it has exited, keeping its rusage (Popen.poll would discard it)."""
        if self._reaped is None and self.proc is not None:
            self._reaped = _reap(self.proc.pid, block=False)
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

    def _log_tail(self, n: int = 8) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            lines = []
        lines = lines[-n:] + [f"(stdout) {l}" for l in self.stdout_lines[-n:]]
        return "\n".join("    " + l for l in lines) or "    (no output)"

    def stop(self, grace_s: float = 5.0) -> StopResult:
        """SIGTERM the group, wait ``grace_s``, then SIGKILL; idempotent."""
        if self._stopped is not None:
            return self._stopped
        if self.proc is None:
            self._stopped = StopResult(exit_code=None, killed=False)
            return self._stopped
        pid = self.proc.pid
        killed = False
        exited_by_itself = self._exited()
        reaped = self._reaped
        if reaped is None:
            try:
                os.killpg(pid, signal.SIGTERM)
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
        # Members that outlived the leader (e.g. workers of a killed master) are killed by pid.
        leftovers = kill_session(pid) if metrics.session_members(pid) else 0
        deadline = time.monotonic() + 2.0
        while leftovers and metrics.session_members(pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        self.guard.remove(pid)
        if self._reader is not None:
            self._reader.join(timeout=2)
        exit_code = None
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
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._stopped = StopResult(
            exit_code=exit_code,
            killed=killed,
            rusage=usage,
            stats=parse_stats_line(self.stdout_lines),
            leftover_killed=leftovers,
            exited_by_itself=exited_by_itself,
        )
        return self._stopped


def _can_connect(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False
