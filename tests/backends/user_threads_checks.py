"""Checks shared by the tests of the user-level-thread backends (fiber, st, pth): descriptor
limits on both sides, resident memory, and connections the server closes past its limit."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest

from backend_checks import backend_named, wait_until
from e2e_client import request
from e2e_docroot import Docroot
from e2e_server import Backend, ServerProcess, assert_still_serving, fetch


def closed_by_server(sock: socket.socket, timeout: float = 10.0) -> bool:
    """True when the server closes `sock` (EOF or reset) without sending anything."""
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def assert_past_the_limit_extra_connections_are_closed_with_a_message(
    server: ServerProcess, connections: int, closed_tail: int, message: str
) -> None:
    """Opens `connections` connections at once: the server must print `message` on stderr,
    close the last `closed_tail` of them rather than leave them hanging, still serve the first
    ones, and keep serving new connections once they are gone."""
    socks: list[socket.socket] = []
    try:
        socks = [socket.create_connection((server.host, server.port), timeout=10) for _ in range(connections)]
        assert wait_until(lambda: any(message in line for line in server.stderr_lines), 10), (
            f"no {message!r} on stderr: {server.stderr_lines[-5:]!r}"
        )
        assert all(closed_by_server(sock) for sock in socks[-closed_tail:]), "connections past the limit were left hanging"
        for sock in socks[:10]:
            sock.settimeout(10)
            sock.sendall(request("/index.html"))
            assert sock.recv(65536).startswith(b"HTTP/1.1 200"), "a connection within the limit was not served"
    finally:
        for sock in socks:
            sock.close()
    assert server.alive(), f"server died: {server.stop().describe()}"
    # The server notices the closed connections one by one; until it has, a new one may still
    # be dropped.
    assert wait_until(lambda: serves_index(server), 10), "the server stopped serving new connections"
    assert_still_serving(server)


def serves_index(server: ServerProcess) -> bool:
    try:
        return fetch(server, request("/index.html")).status == 200
    except (AssertionError, OSError):
        return False


def check_descriptor_limit(name: str, docroot: Docroot, message: str) -> dict:
    """Runs httpd-`name` under a hard descriptor limit of 256 (prlimit), opens 400 connections
    and checks assert_past_the_limit_extra_connections_are_closed_with_a_message(). Returns the
    stats of the clean exit."""
    prlimit = shutil.which("prlimit")
    if prlimit is None:
        pytest.skip("prlimit (util-linux) is not installed")
    backend = backend_named(name)
    limited = Backend(name, Path(prlimit), backend.entry)  # prlimit execs the same binary
    args = ["--nofile=256:256", str(backend.binary), "--port", "0", "--docroot", str(docroot.root), "--idle-timeout", "30"]
    server = ServerProcess(limited, args).start()
    try:
        assert_past_the_limit_extra_connections_are_closed_with_a_message(server, 400, 100, message)
    finally:
        result = server.stop()  # never left running, even when an assertion failed
    return server.check_clean_exit(result)
