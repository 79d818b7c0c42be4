"""Memory per idle keep-alive connection (the SXE posts' and Pariag et al.'s question): open N
connections, let each be served one request, hold them idle, and divide the growth of the
server's resident memory (summed over its processes) by N. Backends and installed production
servers alike (the latter started from production.py's launch spec, serving the 305-byte page).

    /usr/bin/python3 -m harness idle-memory sped,fiber,st,node --connections 10000
"""

from __future__ import annotations

import contextlib
import resource
import socket
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

from . import production
from .metrics import read_status_kib, session_members
from .registry import load_backends
from .server import LaunchSpec, ProcessGuard, ServerProcess, free_port, settle

REQUEST = b"GET / HTTP/1.1\r\nHost: idle-memory\r\n\r\n"


def rss_kib(session_id: int) -> int:
    """Resident memory summed over the server's processes (its session)."""
    return sum(read_status_kib(p.pid, ("VmRSS",)).get("VmRSS", 0) for p in session_members(session_id))


_rss_kb = rss_kib


def _one_request(sock: socket.socket, body_bytes: int = 305) -> None:
    sock.sendall(REQUEST)
    data = b""
    while b"\r\n\r\n" not in data or len(data) < data.index(b"\r\n\r\n") + 4 + body_bytes:
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError("server closed a connection that should stay open")
        data += chunk


@contextlib.contextmanager
def hold_idle_connections(port: int, n: int, body_bytes: int = 305, timeout_s: float = 10.0) -> Iterator[int]:
    """Open up to ``n`` keep-alive connections, each served one request, and hold them idle;
    yields how many are held (fewer when the server stops answering, e.g. a full pool)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(n):
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
            except OSError:
                break
            try:
                _one_request(s, body_bytes)
            except (OSError, RuntimeError):
                s.close()
                break
            socks.append(s)
        yield len(socks)
    finally:
        for s in socks:
            s.close()


def measure(binary: Path, connections: int, server_cpus: str, extra_args: list[str]) -> tuple[int, int]:
    """RSS (kB) with no connection and with `connections` idle ones."""
    spec = LaunchSpec(argv=(str(binary), "--port", "0", "--idle-timeout", "300", *extra_args))
    return _measure(lambda _scratch: spec, connections, server_cpus, binary.name)


def measure_production(name: str, executable: str, connections: int, server_cpus: str) -> tuple[int, int]:
    """The same for an installed production server, started as production.launch_spec() says,
    serving a docroot that holds the 305-byte page."""
    from .docroot import write_page

    def spec(scratch: Path) -> LaunchSpec:
        scratch.chmod(0o755)  # servers that drop root (nginx's workers) must read the docroot
        docroot = scratch / "docroot"
        docroot.mkdir()
        write_page(docroot, 305)
        return production.launch_spec(name, executable, scratch / name, docroot, free_port())

    return _measure(spec, connections, server_cpus, name)


def _measure(make_spec: Callable[[Path], LaunchSpec], connections: int, server_cpus: str,
             label: str) -> tuple[int, int]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    guard = ProcessGuard()
    with tempfile.TemporaryDirectory(prefix="httpbench-idle-") as tmp:
        srv = ServerProcess(make_spec(Path(tmp)), server_cpus, Path(tmp) / "server.log", guard)
        port = srv.start(timeout_s=20)
        settle(srv, label)  # a pool still forking after its ready line belongs to the baseline
        socks: list[socket.socket] = []
        try:
            # One request first: lazily built state (date cache, pools) belongs to the baseline.
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                _one_request(s)
            time.sleep(0.3)
            before = _rss_kb(srv.pid)
            for _ in range(connections):
                s = socket.create_connection(("127.0.0.1", port), timeout=30)
                _one_request(s)
                socks.append(s)
            time.sleep(1.0)
            after = _rss_kb(srv.pid)
        finally:
            for s in socks:
                s.close()
            srv.stop()
            guard.kill_all()
    return before, after


def run(names: list[str], connections: int, server_cpus: str, build: Path) -> int:
    backends = {b.name: b for b in load_backends(build)}
    installed = production.installed()
    for name in names:
        if name not in backends and name not in installed:
            raise SystemExit(f"idle-memory: '{name}' is neither in backends.json nor an installed production server")
    print(f"{'backend':<12} {'connections':>11} {'RSS before kB':>14} {'RSS after kB':>13} {'bytes/conn':>11}")
    for name in names:
        if name in backends:
            b = backends[name]
            n = min(connections, b.max_connections or connections)
            # Pools hold one connection per worker: give them enough workers.
            extra = ["--workers", str(n)] if b.raw.get("workers_bound_connections") is True else []
            before, after = measure(b.binary, n, server_cpus, extra)
        else:
            # Apache's fixed pool (launch_spec's default, 64) holds one connection per worker.
            n = min(connections, 64) if name.startswith("apache") else connections
            before, after = measure_production(name, installed[name], n, server_cpus)
        print(f"{name:<12} {n:>11} {before:>14} {after:>13} {(after - before) * 1024 / n:>11.0f}", flush=True)
    return 0
