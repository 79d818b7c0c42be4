"""The status page (docs/interfaces.md): GET /server-status, answered by the core with the
shared counters of every process of the server, and counted apart from the requests it
measures, so that two status reads bracket exactly the requests between them."""

from __future__ import annotations

import json
import time

from e2e_client import Connection, request
from e2e_docroot import FILES, Docroot
from e2e_server import Backend, ServerProcess, suite_args

#: Requests a test sends between status reads, spread over CONNECTIONS connections at once
#: so that the process and thread pools serve them in several workers.
REQUESTS = 40
CONNECTIONS = 4
#: How long the user-thread test waits before each keep-alive request, so that a thread is
#: already waiting for it rather than finding it there.
PAUSE_BEFORE_NEXT_REQUEST_S = 0.01
COUNTERS = ("requests", "connections", "bytes_sent", "bytes_received", "errors", "user_switches", "status_requests")


def read_status(conn: Connection, path: str = "/server-status") -> dict:
    conn.send(request(path))
    response = conn.read_response()
    assert response.status == 200, response.describe()
    assert (response.header("Content-Type") or "").startswith("application/json"), response.describe()
    assert response.header("Cache-Control") == "no-store", response.describe()
    status = json.loads(response.body)
    for name in COUNTERS:
        assert isinstance(status.get(name), int) and status[name] >= 0, f"{name}: {status}"
    assert isinstance(status.get("uptime_s"), (int, float)) and status["uptime_s"] >= 0, status
    return status


class Traffic:
    """Sends `requests` requests over `connections` keep-alive connections held open together,
    plus one new connection per request for the last few, and tallies what the server should
    count: requests, connections, bytes each way, 404s."""

    def __init__(self, server: ServerProcess, requests: int, connections: int) -> None:
        self.requests = requests
        self.connections = 0
        self.sent = self.received = self.missing = 0
        paths = ["/index.html", "/plain.txt", "/hello?name=s", "/no-such-file"]
        conns = [server.connect() for _ in range(connections)]
        self.connections += connections
        try:
            one_shot = 5
            for i in range(requests - one_shot):
                self._exchange(conns[i % connections], paths[i % len(paths)])
        finally:
            for conn in conns:
                self.received += len(conn.received)
                conn.close()
        for _ in range(one_shot):
            with server.connect() as conn:
                self.connections += 1
                self._exchange(conn, "/index.html", close=True)
                conn.wait_closed(5)
                self.received += len(conn.received)

    def _exchange(self, conn: Connection, path: str, close: bool = False) -> None:
        raw = request(path, close=close)
        conn.send(raw)
        self.sent += len(raw)
        response = conn.read_response()
        if path == "/no-such-file":
            assert response.status == 404, response.describe()
            self.missing += 1
        else:
            assert response.status == 200, response.describe()


def settle() -> None:
    """bytes_sent is counted once a write returns, which may be just after the client has read
    the bytes: give a server thread that was preempted right there time to count them."""
    time.sleep(0.1)


def test_status_after_n_requests_reports_exactly_n_and_the_stats_line_agrees(start_server, docroot: Docroot, backend: Backend):
    server = start_server(suite_args(docroot))
    traffic = Traffic(server, REQUESTS, CONNECTIONS)
    settle()
    with server.connect() as watcher:
        status = read_status(watcher)
    assert status["requests"] == REQUESTS, status
    assert status["connections"] == traffic.connections + 1, status  # + the watcher's
    assert status["bytes_sent"] == traffic.received, status
    assert status["bytes_received"] == traffic.sent, status
    assert status["errors"] == traffic.missing, status
    assert status["status_requests"] == 1, status
    assert status["pid"] == server.pid, f"pid {status['pid']} is not the server's {server.pid}"
    result = server.stop()
    stats = server.check_clean_exit(result)
    assert stats["requests"] == REQUESTS, f"status requests must not count: {result.last_line}"
    assert stats["status_requests"] == 1, result.last_line
    assert stats["bytes_sent"] == traffic.received, result.last_line
    assert "user_switches" in stats, result.last_line


def test_two_status_reads_differ_by_exactly_the_requests_between_them(server: ServerProcess):
    with server.connect() as watcher:
        before = read_status(watcher)
        traffic = Traffic(server, REQUESTS, CONNECTIONS)
        settle()
        after = read_status(watcher)
    moved = {name: after[name] - before[name] for name in COUNTERS}
    assert moved["requests"] == REQUESTS, moved
    assert moved["connections"] == traffic.connections, moved
    assert moved["bytes_sent"] == traffic.received, moved
    assert moved["bytes_received"] == traffic.sent, moved
    assert moved["errors"] == traffic.missing, moved
    assert moved["status_requests"] == 1, moved
    assert after["uptime_s"] >= before["uptime_s"]


def test_user_switches_grow_with_requests_only_for_user_level_threads(server: ServerProcess, backend: Backend):
    with server.connect() as watcher:
        before = read_status(watcher)
        with server.connect() as conn:
            for _ in range(REQUESTS):
                # The thread has gone back to wait for the next request before it comes
                # (otherwise, on a loaded machine, a server preempted right after its write
                # finds every next request already there: 1 switch in 40 was seen in CI).
                time.sleep(PAUSE_BEFORE_NEXT_REQUEST_S)
                conn.send(request("/index.html"))
                assert conn.read_response().status == 200
        after = read_status(watcher)
    switches = after["user_switches"] - before["user_switches"]
    if backend.entry["category"] == "user-thread":
        # A thread waits for almost every next keep-alive request (a few may still find it
        # there on a loaded machine); never several times per request.
        assert REQUESTS // 4 <= switches <= 4 * REQUESTS + 4, f"{switches} switches for {REQUESTS} requests"
    else:
        assert after["user_switches"] == 0, f"{backend.name} has no user-level threads: {after}"


def test_head_of_the_status_page_has_headers_and_no_body(server: ServerProcess):
    with server.connect() as conn:
        conn.send(request("/server-status", method="HEAD"))
        head = conn.read_response(head_request=True)
        conn.send(request("/index.html"))
        after = conn.read_response()
    assert head.status == 200, head.describe()
    assert (head.header("Content-Type") or "").startswith("application/json")
    assert int(head.header("Content-Length") or 0) > 0
    assert head.body == b""
    assert after.status == 200 and after.body == FILES["/index.html"][0], "the HEAD leaked a body"


def test_status_path_option_moves_the_page_and_no_status_makes_it_an_ordinary_path(start_server, docroot: Docroot):
    moved = start_server(suite_args(docroot) + ["--status-path", "/stats/now"])
    with moved.connect() as conn:
        assert read_status(conn, "/stats/now?ignored=1")["status_requests"] == 1
        conn.send(request("/server-status"))
        assert conn.read_response().status == 404
    moved.check_clean_exit(moved.stop())

    plain = start_server(suite_args(docroot) + ["--no-status"])
    with plain.connect() as conn:
        conn.send(request("/server-status"))
        response = conn.read_response()
    assert response.status == 404, response.describe()
    result = plain.stop()
    stats = plain.check_clean_exit(result)
    assert stats["requests"] == 1 and stats["errors"] == 1 and stats["status_requests"] == 0, result.last_line
