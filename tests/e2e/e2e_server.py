"""Starting, watching and stopping one `httpd-<backend>` process (docs/interfaces.md), for the
end-to-end tests. The process contract itself — reading backends.json, starting a server in its
own session, waiting for the ready line, stopping it by PID and parsing the stats line — is
harness/server.py and harness/registry.py, the one client of that contract that the harness and
the tests share; this module adds what tests need around it (connections, assertions with
context). Only PIDs started here are ever signalled.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from e2e_docroot import FILES, Docroot
from e2e_client import DEFAULT_TIMEOUT_S, Connection, Response, request

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from harness import registry  # noqa: E402
from harness.server import LaunchSpec, ServerStartError  # noqa: E402
from harness.server import ServerProcess as _ContractProcess  # noqa: E402
from harness.server import StopResult as _ContractStop  # noqa: E402

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
    return registry.build_dir()


def registry_path() -> Path:
    return registry.backends_json_path()


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
    """Reads backends.json (harness/registry.py). Returns (backends, problem) where problem
    explains an empty list. $HTTPBENCH_BACKENDS (comma-separated names) restricts the list."""
    path = registry_path()
    try:
        entries = registry.load_backends()
    except registry.RegistryError as exc:
        return [], str(exc)
    backends = [Backend(b.name, b.binary if b.binary.is_absolute() else path.parent / b.binary, b.raw)
                for b in entries]
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
    $HTTPBENCH_BACKENDS keeps the references whose name or `reference_for` it lists. Returns
    (references, problem): problem explains an empty list that is an error; an empty list with no
    problem means the selection names no backend that has a reference."""
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
        if not references:
            return [], None  # the selection names no backend that has a reference: nothing to check
    return references, None if references else f"{path} lists no references"


@dataclass
class StopResult:
    returncode: int | None
    stdout: list[str]
    stderr: list[str]
    killed: bool
    elapsed_s: float
    leftover_pids: list[int]

    @classmethod
    def of(cls, r: _ContractStop) -> "StopResult":
        return cls(returncode=None if r.killed else r.exit_code, stdout=r.stdout, stderr=r.stderr,
                   killed=r.killed, elapsed_s=r.elapsed_s, leftover_pids=r.leftover_pids)

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
        self._process = _ContractProcess(LaunchSpec(argv=tuple(self.command)))
        self._stopped: StopResult | None = None

    @property
    def command(self) -> list[str]:
        return [str(self.backend.binary), *self.args]

    @property
    def proc(self) -> subprocess.Popen | None:
        return self._process.proc

    @property
    def pid(self) -> int:
        assert self._process.pid is not None
        return self._process.pid

    @property
    def host(self) -> str:
        return self._process.host

    @property
    def port(self) -> int:
        return self._process.port or 0

    def start(self, ready_timeout: float = READY_TIMEOUT_S) -> "ServerProcess":
        try:
            self._process.start(ready_timeout)
        except ServerStartError as exc:
            result = self.stop()
            raise AssertionError(f"{' '.join(self.command)} printed no 'listening on HOST:PORT' line within "
                                 f"{ready_timeout}s: {exc}\n{result.describe()}") from None
        return self

    def connect(self, timeout: float = DEFAULT_TIMEOUT_S) -> Connection:
        """A new client connection to this server."""
        return Connection(self.host, self.port, timeout)

    def url(self, path: str = "/") -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{path}"

    def alive(self) -> bool:
        return self._process.alive()

    @property
    def stdout_lines(self) -> list[str]:
        return list(self._process.stdout_lines)

    @property
    def stderr_lines(self) -> list[str]:
        return list(self._process.stderr_lines)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT_S) -> StopResult:
        """Sends `sig` to the server process, waits, and SIGKILLs its process group if it (or
        anything it forked) is still there. Safe to call more than once."""
        if self._stopped is None:
            self._stopped = StopResult.of(self._process.stop(grace_s=timeout, sig=sig))
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
