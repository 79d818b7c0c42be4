"""Fixtures of the loadgen end-to-end tests (helpers live in loadgen_e2e_support.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

import pytest

from loadgen_e2e_support import (
    LoopbackServer,
    Responder,
    ScriptedServer,
    Server,
    SlowAcceptServer,
    ThreadedServer,
    build_dir,
    free_port,
    make_docroot,
    start_h2o,
    start_lighttpd,
    stop_process_group,
    wait_for_port,
)

S = TypeVar("S", bound=LoopbackServer)


@pytest.fixture(scope="session")
def loadgen() -> Path:
    binary = build_dir() / "loadgen" / "loadgen"
    if not binary.exists():
        pytest.fail(f"{binary} not built (set HTTPBENCH_BUILD to the build directory)")
    return binary


@pytest.fixture(scope="session")
def real_server() -> Iterator[Server]:
    """h2o (or lighttpd) with one worker on a free loopback port, serving the 305-byte page."""
    if shutil.which("h2o"):
        name, start = "h2o", start_h2o
    elif shutil.which("lighttpd"):
        name, start = "lighttpd", start_lighttpd
    else:
        pytest.skip("neither h2o nor lighttpd is installed")
    base = Path(tempfile.mkdtemp(prefix="loadgen-e2e-"))
    root = make_docroot(base)
    port = free_port()
    proc = start(base, port, root)
    try:
        wait_for_port(port, proc)
        yield Server(name, port)
    finally:
        stop_process_group(proc)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def sped_server() -> Iterator[Server]:
    """The project's own sped backend, if it was built; skipped otherwise."""
    registry = build_dir() / "servers" / "backends.json"
    if not registry.exists():
        pytest.skip(f"{registry} not built")
    backends = json.loads(registry.read_text()).get("backends", [])
    sped = next((b for b in backends if b.get("name") == "sped"), None)
    if sped is None or not Path(sped.get("binary", "")).exists():
        pytest.skip("sped backend not built")
    port = free_port()
    proc = subprocess.Popen([sped["binary"], "--bind", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        wait_for_port(port, proc)
        yield Server("sped", port)
    finally:
        stop_process_group(proc)


def started_servers(kind: type[S]) -> Iterator[Callable[..., S]]:
    """The body of a factory fixture: yields make(*args) -> kind(*args).start(), then stops
    every server it made once the test is over."""
    servers: list[S] = []

    def make(*args: Any, **kwargs: Any) -> S:
        s = kind(*args, **kwargs).start()
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.stop()


@pytest.fixture
def scripted_server() -> Iterator[Callable[[Responder], ScriptedServer]]:
    """Factory of ScriptedServers, all stopped after the test."""
    yield from started_servers(ScriptedServer)


@pytest.fixture
def threaded_server() -> Iterator[Callable[..., ThreadedServer]]:
    """Factory of ThreadedServers (a thread per connection, per-request delays): (delay, chunks)."""
    yield from started_servers(ThreadedServer)


@pytest.fixture
def slow_accept_server() -> Iterator[Callable[..., SlowAcceptServer]]:
    """Factory of SlowAcceptServers (few workers, tiny listen backlog): (workers, backlog,
    service_s)."""
    yield from started_servers(SlowAcceptServer)


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    result: dict | None


@pytest.fixture
def run_loadgen(loadgen: Path, tmp_path: Path) -> Callable[..., Run]:
    """Runs loadgen (with --json unless json_out=False); returns exit code, output, result."""
    counter = iter(range(1000))

    def run(*args: str, timeout: float = 30, json_out: bool = True) -> Run:
        out = tmp_path / f"result-{next(counter)}.json"
        cmd = [str(loadgen), *args] + (["--json", str(out)] if json_out else [])
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        result = json.loads(out.read_text()) if json_out and out.exists() else None
        return Run(proc.returncode, proc.stdout, proc.stderr, result)

    return run
