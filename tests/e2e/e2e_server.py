"""Starting, watching and stopping one `httpd-<backend>` process (docs/interfaces.md).

A server runs in its own session (so its own process group), its stdout and stderr are drained
by threads so a chatty server can never block on a full pipe, and it is always stopped: SIGTERM
first, SIGKILL to the whole process group if it is still there. Only PIDs this module started
are ever signalled.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from e2e_docroot import FILES, Docroot
from e2e_client import DEFAULT_TIMEOUT_S, Connection, Response, request

READY_PATTERN = re.compile(r"^listening on (\[[0-9a-fA-F:.]+\]|[^\s:]+):(\d+)$")
READY_TIMEOUT_S = 15.0
#: SIGTERM lets in-flight requests finish within a "bounded grace period"; allow for it.
STOP_TIMEOUT_S = 15.0
STATS_FIELDS = ("requests", "connections", "bytes_sent", "errors")
#: Idle timeout every suite server runs with; the stall tests rely on it.
IDLE_TIMEOUT_S = 2
#: A connection the server must close right after a response has to be closed within this
#: bound, which is below IDLE_TIMEOUT_S so that the idle timer cannot pass for the close.
CLOSE_PROMPTLY_S = 1.5


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def build_dir() -> Path:
    """$HTTPBENCH_BUILD, else <repo>/build."""
    env = os.environ.get("HTTPBENCH_BUILD")
    return Path(env).resolve() if env else repo_root() / "build"


def registry_path() -> Path:
    return build_dir() / "servers" / "backends.json"


@dataclass(frozen=True)
class Backend:
    """One entry of backends.json."""

    name: str
    binary: Path
    entry: dict

    @property
    def max_connections(self) -> int:
        return int(self.entry.get("max_connections", 10000))

    @property
    def tunables(self) -> list[dict]:
        return list(self.entry.get("tunables", []))


def load_backends() -> tuple[list[Backend], str | None]:
    """Reads backends.json. Returns (backends, problem) where problem explains an empty list.
    $HTTPBENCH_BACKENDS (comma-separated names) restricts the list."""
    path = registry_path()
    if not path.is_file():
        return [], f"{path} not found: build the servers first (make build), or set HTTPBENCH_BUILD"
    try:
        data = json.loads(path.read_text())
        entries = data["backends"]
    except (ValueError, KeyError, TypeError) as exc:
        return [], f"{path} is not a valid backend registry: {exc!r}"
    backends = []
    for entry in entries:
        binary = Path(entry.get("binary") or build_dir() / "servers" / f"httpd-{entry['name']}")
        if not binary.is_absolute():
            binary = path.parent / binary
        backends.append(Backend(entry["name"], binary, entry))
    wanted = os.environ.get("HTTPBENCH_BACKENDS")
    if wanted:
        names = {n.strip() for n in wanted.split(",") if n.strip()}
        backends = [b for b in backends if b.name in names]
        if not backends:
            return [], f"HTTPBENCH_BACKENDS={wanted!r} matches no backend in {path}"
    if not backends:
        return [], f"{path} lists no backends"
    return backends, None


def load_references() -> tuple[list[Backend], str | None]:
    """Reads the "references" of backends.json: the canned-reply floor servers
    (servers/reference/), which only the smoke checks of test_references.py run; they are kept
    apart from `load_backends()` so that no suite meant for full HTTP servers picks one up.
    $HTTPBENCH_BACKENDS keeps the references whose name or `reference_for` it lists."""
    path = registry_path()
    if not path.is_file():
        return [], f"{path} not found: build the servers first (make build), or set HTTPBENCH_BUILD"
    try:
        entries = json.loads(path.read_text()).get("references", [])
    except (ValueError, AttributeError) as exc:
        return [], f"{path} is not a valid backend registry: {exc!r}"
    references = [Backend(e["name"], Path(e["binary"]), e) for e in entries]
    wanted = os.environ.get("HTTPBENCH_BACKENDS")
    if wanted:
        names = {n.strip() for n in wanted.split(",") if n.strip()}
        references = [r for r in references if r.name in names or r.entry.get("reference_for") in names]
    return references, None if references else f"{path} lists no references (for {wanted or 'any backend'})"


class _LineCollector(threading.Thread):
    """Drains one pipe into a list of lines and signals when a line matches a predicate."""

    def __init__(self, stream, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.stream = stream
        self.lines: list[str] = []
        self.changed = threading.Condition()

    def run(self) -> None:
        for raw in iter(self.stream.readline, b""):
            with self.changed:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\r\n"))
                self.changed.notify_all()
        with self.changed:
            self.changed.notify_all()

    def wait_for(self, predicate, timeout: float) -> str | None:
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                for line in self.lines:
                    if predicate(line):
                        return line
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self.is_alive():
                    return None
                self.changed.wait(min(remaining, 0.1))


@dataclass
class StopResult:
    returncode: int | None
    stdout: list[str]
    stderr: list[str]
    killed: bool
    elapsed_s: float
    leftover_pids: list[int] = field(default_factory=list)

    @property
    def last_line(self) -> str:
        lines = [line for line in self.stdout if line.strip()]
        return lines[-1] if lines else ""

    def stats(self) -> dict:
        """The `stats` object of the last stdout line; raises AssertionError with context."""
        try:
            parsed = json.loads(self.last_line)
        except ValueError as exc:
            raise AssertionError(
                f"last stdout line is not JSON: {self.last_line!r}; stdout={self.stdout!r}"
            ) from exc
        assert isinstance(parsed, dict) and isinstance(parsed.get("stats"), dict), (
            f"last stdout line is not {{\"stats\": {{...}}}}: {self.last_line!r}"
        )
        return parsed["stats"]

    def describe(self) -> str:
        return (
            f"returncode={self.returncode} killed={self.killed} elapsed={self.elapsed_s:.1f}s\n"
            f"stdout tail: {self.stdout[-5:]!r}\nstderr tail: {self.stderr[-10:]!r}"
        )


def all_process_stats():
    """(pid, fields) for every process in /proc, where fields[0] is the state, fields[1] the
    parent, fields[2] the process group (the fields after "(comm)", which may hold spaces)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        yield int(entry.name), stat[stat.rfind(")") + 2 :].split()


def processes_in_group(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is `pgid`, from /proc."""
    return [pid for pid, f in all_process_stats() if len(f) >= 3 and int(f[2]) == pgid and f[0] != "Z"]


class ServerProcess:
    """A running httpd-<backend>. Use `start()`, then `stop()` exactly once (idempotent)."""

    def __init__(self, backend: Backend, args: list[str]) -> None:
        self.backend = backend
        self.args = args
        self.proc: subprocess.Popen | None = None
        self.host = ""
        self.port = 0
        self._stdout: _LineCollector | None = None
        self._stderr: _LineCollector | None = None
        self._stopped: StopResult | None = None

    @property
    def command(self) -> list[str]:
        return [str(self.backend.binary), *self.args]

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, ready_timeout: float = READY_TIMEOUT_S) -> "ServerProcess":
        self.proc = subprocess.Popen(
            self.command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self._stdout = _LineCollector(self.proc.stdout, f"stdout-{self.proc.pid}")
        self._stderr = _LineCollector(self.proc.stderr, f"stderr-{self.proc.pid}")
        self._stdout.start()
        self._stderr.start()
        line = self._stdout.wait_for(lambda l: READY_PATTERN.match(l) is not None, ready_timeout)
        if line is None:
            result = self.stop()
            raise AssertionError(
                f"{' '.join(self.command)} printed no 'listening on HOST:PORT' line within "
                f"{ready_timeout}s\n{result.describe()}"
            )
        match = READY_PATTERN.match(line)
        assert match is not None
        self.host = match.group(1).strip("[]")
        self.port = int(match.group(2))
        return self

    def connect(self, timeout: float = DEFAULT_TIMEOUT_S) -> Connection:
        """A new client connection to this server."""
        return Connection(self.host, self.port, timeout)

    def url(self, path: str = "/") -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{path}"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def stdout_lines(self) -> list[str]:
        return list(self._stdout.lines) if self._stdout else []

    @property
    def stderr_lines(self) -> list[str]:
        return list(self._stderr.lines) if self._stderr else []

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT_S) -> StopResult:
        """Sends `sig` to the server process, waits, and SIGKILLs its process group if it (or
        anything it forked) is still there. Safe to call more than once."""
        if self._stopped is not None:
            return self._stopped
        assert self.proc is not None
        started = time.monotonic()
        killed = False
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                killed = True
        elapsed = time.monotonic() - started
        # Children of fork/prefork backends share the group; give them a moment to follow.
        leftovers = processes_in_group(self.proc.pid)
        grace_end = time.monotonic() + 3.0
        while leftovers and time.monotonic() < grace_end:
            time.sleep(0.05)
            leftovers = processes_in_group(self.proc.pid)
        if killed or leftovers:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        for collector in (self._stdout, self._stderr):
            if collector is not None:
                collector.join(5)
        self._stopped = StopResult(
            returncode=None if killed else self.proc.returncode,
            stdout=self.stdout_lines,
            stderr=self.stderr_lines,
            killed=killed,
            elapsed_s=elapsed,
            leftover_pids=leftovers,
        )
        return self._stopped

    def check_clean_exit(self, result: StopResult) -> dict:
        """Asserts the contract of a stop: exit 0, nothing left in the process group, and a
        JSON stats line last. Returns the stats object."""
        assert not result.killed, f"server did not exit within {STOP_TIMEOUT_S}s of the stop signal\n{result.describe()}"
        assert result.returncode == 0, f"server exited with {result.returncode}\n{result.describe()}"
        assert not result.leftover_pids, (
            f"processes {result.leftover_pids} of the server's group outlived it\n{result.describe()}"
        )
        stats = result.stats()
        missing = [name for name in STATS_FIELDS if name not in stats]
        assert not missing, f"stats line lacks {missing}: {result.last_line!r}"
        for name in STATS_FIELDS:
            assert isinstance(stats[name], int) and stats[name] >= 0, (
                f"stats.{name} is not a non-negative integer: {result.last_line!r}"
            )
        return stats


def suite_settings(backend: Backend) -> list[str]:
    """`--set` options from $HTTPBENCH_E2E_SET ("key=value,key=value"), each applied only to the
    backends that have that tunable: `HTTPBENCH_E2E_SET=poller=select` runs the whole suite on
    sped's select loop and leaves the other backends alone."""
    names = {t["name"] for t in backend.tunables}
    args: list[str] = []
    for item in os.environ.get("HTTPBENCH_E2E_SET", "").split(","):
        key = item.split("=", 1)[0].strip()
        if key and key in names:
            args += ["--set", item.strip()]
    return args


def suite_args(docroot: Docroot, backend: Backend | None = None) -> list[str]:
    args = ["--port", "0", "--docroot", str(docroot.root), "--idle-timeout", str(IDLE_TIMEOUT_S)]
    return args + (suite_settings(backend) if backend is not None else [])


def run_once(backend: Backend, args: list[str], timeout: float = 15.0) -> subprocess.CompletedProcess:
    """Runs the binary to completion (e.g. --describe); never leaves it running."""
    proc = subprocess.Popen(
        [str(backend.binary), *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = proc.communicate(timeout=5)
        raise AssertionError(
            f"{backend.binary} {' '.join(args)} did not finish within {timeout}s; "
            f"stdout={out[-500:]!r} stderr={err[-500:]!r}"
        )
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def fetch(server: ServerProcess, raw: bytes, head_request: bool = False) -> Response:
    """Sends one raw request on a new connection and reads one response."""
    with server.connect() as conn:
        conn.send(raw)
        return conn.read_response(head_request=head_request)


def assert_still_serving(server: ServerProcess) -> None:
    """The server process is alive and a fresh connection gets the right index page."""
    assert server.alive(), f"server died: {server.stop().describe()}"
    response = fetch(server, request("/index.html"))
    assert response.status == 200, response.describe()
    assert response.body == FILES["/index.html"][0], "index.html body differs"
