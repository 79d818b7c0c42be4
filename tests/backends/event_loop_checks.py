"""Checks of the event-library backends (libev, libuv): every deadline is served by one
library timer armed for the earliest front of the core's deadline lists, and an idle connection costs only
its slot and the library's watcher."""

from __future__ import annotations

import selectors
import socket
import time

from backend_checks import INDEX, need_descriptors, open_idle_keep_alive, rss_kb
from e2e_client import request
from e2e_server import ServerProcess, fetch


def _read_one_response(sock: socket.socket) -> None:
    data = b""
    while not data.endswith(INDEX):
        chunk = sock.recv(65536)
        assert chunk, "the server closed a connection before answering"
        data += chunk


def assert_idle_connections_expire_one_timeout_after_their_last_request(
        server: ServerProcess, idle_timeout_s: float, count: int = 150, spread_s: float = 1.5) -> None:
    """`count` connections, each served one request at a different moment over `spread_s`, and
    one connection kept busy with a request every 0.3 s: the server closes each idle one within
    [timeout - 0.1 s, timeout + 1 s] after its request (so the one timer is re-armed for every
    new front of the list, never fires late and never closes early), and never the busy one."""
    last_request: dict[socket.socket, float] = {}
    closed_after: dict[socket.socket, float] = {}
    busy = server.connect()
    selector = selectors.DefaultSelector()
    next_busy = time.monotonic()

    def keep_busy() -> None:
        nonlocal next_busy
        if time.monotonic() >= next_busy:
            busy.send(request("/index.html"))
            assert busy.read_response().body == INDEX, "the busy connection was not answered"
            next_busy = time.monotonic() + 0.3

    try:
        started = time.monotonic()
        for i in range(count):
            keep_busy()
            sock = socket.create_connection((server.host, server.port), timeout=10)
            sock.sendall(request("/index.html"))
            _read_one_response(sock)
            last_request[sock] = time.monotonic()
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ)
            time.sleep(max(0.0, started + spread_s * (i + 1) / count - time.monotonic()))
        deadline = time.monotonic() + idle_timeout_s + 3
        while len(closed_after) < count and time.monotonic() < deadline:
            keep_busy()
            for key, _ in selector.select(0.05):
                sock = key.fileobj
                try:
                    chunk = sock.recv(4096)
                except ConnectionResetError:
                    chunk = b""
                assert chunk == b"", f"an idle connection received {chunk[:80]!r}"
                closed_after[sock] = time.monotonic() - last_request[sock]
                selector.unregister(sock)
        assert len(closed_after) == count, f"{count - len(closed_after)} of {count} idle connections never closed"
        early = sorted(t for t in closed_after.values() if t < idle_timeout_s - 0.1)
        late = sorted(t for t in closed_after.values() if t > idle_timeout_s + 1.0)
        assert not early, f"{len(early)} closed before the {idle_timeout_s} s idle timeout: {early[:5]}"
        assert not late, f"{len(late)} closed more than 1 s after the idle timeout: {late[-5:]}"
        busy.send(request("/index.html"))
        assert busy.read_response().body == INDEX, "the busy connection was closed as idle"
    finally:
        selector.close()
        busy.close()
        for sock in last_request:
            sock.close()
    server.check_clean_exit(server.stop())


def assert_idle_connection_costs_at_most(server: ServerProcess, limit_bytes: int, count: int = 10_000) -> float:
    """RSS growth per idle keep-alive connection (each served one request) is at most
    `limit_bytes`: no buffer is pinned to an idle connection. Returns the bytes measured."""
    need_descriptors(count)
    for _ in range(20):  # warm-up: buffer pool, date cache, pages of the binary
        assert fetch(server, request("/index.html")).status == 200
    time.sleep(0.2)
    before = rss_kb(server.pid)
    socks = open_idle_keep_alive(server, count)
    try:
        time.sleep(0.5)
        after = rss_kb(server.pid)
    finally:
        for sock in socks:
            sock.close()
    per_connection = (after - before) * 1024 / count
    assert per_connection <= limit_bytes, (
        f"{per_connection:.0f} bytes of RSS per idle connection ({before} -> {after} kB)")
    server.check_clean_exit(server.stop())
    return per_connection
