"""One definition of every counter (docs/interfaces.md, "The counters"): the same scripted
traffic — good requests, a 404, rejected requests, connections cut short by their peer, one
ended by the header timeout, an idle one, and one still inside its request when the stop's grace
period runs out — produces the same counters on every backend, in the status page and in the
stats line. The expected values are computed from what the client sent and received, never
from the server, so every backend is held to the same numbers.
"""

from __future__ import annotations

import json
import shutil
import socket
import time
from dataclasses import dataclass

import pytest

from e2e_client import Connection, request
from e2e_docroot import Docroot
from e2e_server import Backend, ServerProcess, suite_settings

HEADER_TIMEOUT_S = 1.0
GRACE_S = 0.5
#: Counters that must match exactly; user_switches, uptime_s, pid and a backend's extra fields
#: describe the model, not the traffic.
COUNTERS = ("requests", "connections", "bytes_sent", "bytes_received", "errors", "errors_status",
            "errors_lost", "errors_timeout", "errors_cut", "errors_refused", "status_requests")


@dataclass
class Tally:
    """What the server must have counted, from the client's side."""

    requests: int = 0
    connections: int = 0
    bytes_sent: int = 0  # by the server: what the clients received
    bytes_received: int = 0  # by the server: what the clients sent
    errors_status: int = 0
    errors_lost: int = 0
    errors_timeout: int = 0
    errors_cut: int = 0
    status_requests: int = 0

    def counters(self) -> dict[str, int]:
        errors = self.errors_status + self.errors_lost + self.errors_timeout + self.errors_cut
        return {"requests": self.requests, "connections": self.connections,
                "bytes_sent": self.bytes_sent, "bytes_received": self.bytes_received,
                "errors": errors, "errors_status": self.errors_status,
                "errors_lost": self.errors_lost, "errors_timeout": self.errors_timeout,
                "errors_cut": self.errors_cut, "errors_refused": 0,
                "status_requests": self.status_requests}


class Client:
    """Opens connections and tallies every byte each way."""

    def __init__(self, server: ServerProcess, tally: Tally) -> None:
        self.server, self.tally = server, tally

    def connect(self) -> Connection:
        self.tally.connections += 1
        return self.server.connect()

    def send(self, conn: Connection, raw: bytes) -> None:
        conn.send(raw)
        self.tally.bytes_received += len(raw)

    def exchange(self, conn: Connection, raw: bytes, status: int, head: bool = False) -> None:
        """One request and its response, which must have `status`."""
        self.send(conn, raw)
        before = len(conn.received)
        response = conn.read_response(head_request=head)
        assert response.status == status, response.describe()
        self.tally.bytes_sent += len(conn.received) - before
        self.tally.requests += 1
        if status >= 400:
            self.tally.errors_status += 1

    def until_closed(self, conn: Connection) -> None:
        """Reads until the server closes (what comes is tallied; nothing should)."""
        rest, how = conn.read_until_close(5)
        assert how in ("eof", "reset") and rest == b"", (how, rest[:100])


def read_status(server: ServerProcess, tally: Tally) -> dict:
    with server.connect() as conn:
        conn.send(request("/server-status"))
        response = conn.read_response()
    tally.connections += 1
    tally.status_requests += 1
    assert response.status == 200, response.describe()
    return json.loads(response.body)


def run_mix(server: ServerProcess, tally: Tally) -> Connection:
    """The traffic; returns the connection left inside a request for the stop to cut."""
    client = Client(server, tally)
    # A head that never ends: closed by --header-timeout (an error of kind timeout).
    slow = client.connect()
    client.send(slow, b"GET /index.html HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    tally.errors_timeout += 1

    with client.connect() as conn:  # keep-alive: four GETs (one a 404) and a HEAD
        for path, status in (("/index.html", 200), ("/plain.txt", 200), ("/hello?name=mix", 200),
                             ("/no-such-file", 404)):
            client.exchange(conn, request(path), status)
        client.exchange(conn, request("/index.html", method="HEAD"), 200, head=True)
    for _ in range(3):  # one request per connection
        with client.connect() as conn:
            client.exchange(conn, request("/style.css", close=True), 200)
            client.until_closed(conn)
    with client.connect() as conn:  # HTTP/1.0 needs no Host
        client.exchange(conn, b"GET /plain.txt HTTP/1.0\r\n\r\n", 200)
        client.until_closed(conn)
    for raw in (b"GET /index.html HTTP/1.1\r\nUser-Agent: no-host\r\n\r\n", b"BLAH\r\n\r\n"):
        with client.connect() as conn:  # rejected: 400, then a lingering close
            client.exchange(conn, raw, 400)
            client.until_closed(conn)
    for _ in range(2):  # half a request, then the client closes: lost
        conn = client.connect()
        client.send(conn, b"GET /index.html HTTP/1.1\r\nHo")
        time.sleep(0.05)
        conn.close()
        tally.errors_lost += 1
    conn = client.connect()  # half a request, then a reset: lost
    client.send(conn, b"GET /plain.txt HTTP/1.1\r\nHost: x\r\n")
    time.sleep(0.1)
    conn.reset()
    tally.errors_lost += 1
    client.connect().close()  # a connection that never sends: no request, no error

    closed, _, waited = slow.wait_closed(HEADER_TIMEOUT_S + 3)
    assert closed, f"the never-ending head was still open after {waited:.1f} s"
    slow.close()
    time.sleep(0.3)  # a thread- or process-per-connection server counts its last closes

    # Inside a request at the stop: the grace period runs out on it (kind cut).
    cut = client.connect()
    client.send(cut, b"GET /index.html HTTP/1.1\r\nHost: x\r\n")
    return cut


def test_the_same_traffic_gives_the_same_counters_on_every_backend(start_server, docroot: Docroot,
                                                                     backend: Backend):
    server = start_server(["--port", "0", "--docroot", str(docroot.root), "--idle-timeout", "5",
                           "--header-timeout", str(HEADER_TIMEOUT_S), "--grace", str(GRACE_S)])
    tally = Tally()
    cut = None
    try:
        cut = run_mix(server, tally)
        time.sleep(0.2)  # the server has read the bytes of the connection to cut
        status = read_status(server, tally)
    finally:
        stopped = server.stop()
        if cut is not None:
            cut.close()
    stats = server.check_clean_exit(stopped)
    # The status page was read with the connection to cut already open (counted, and its bytes)
    # but not yet cut: the stop cuts it when the grace period runs out.
    want_status = tally.counters()
    tally.errors_cut += 1
    want_stats = tally.counters()
    got_status = {k: status.get(k) for k in COUNTERS}
    got_stats = {k: stats.get(k) for k in COUNTERS}
    assert got_status == want_status, f"status page of {backend.name}: {got_status}\nwant {want_status}"
    assert got_stats == want_stats, (
        f"stats line of {backend.name}: {got_stats}\nwant {want_stats}\n{stopped.last_line}"
    )


class LimitedServer(ServerProcess):
    """A server started under `prlimit --nofile=N:N`, which execs it (same pid): with the hard
    limit that low, the server cannot raise its descriptor limit past it."""

    def __init__(self, backend: Backend, args: list[str], files: int) -> None:
        self.files = files  # before ServerProcess.__init__, which builds the command
        super().__init__(backend, args)

    @property
    def command(self) -> list[str]:
        return ["prlimit", f"--nofile={self.files}:{self.files}", str(self.backend.binary), *self.args]


@pytest.mark.skipif(shutil.which("prlimit") is None, reason="prlimit (util-linux) is not installed")
def test_connections_past_the_descriptor_limit_are_counted_and_refused_ones_are_errors(backend: Backend):
    """Every connection the server accepts is counted, served or not (issue 12: at a 128-fd
    limit st counted the connections it dropped and the others did not count them at all)."""
    clients = 150
    server = LimitedServer(backend, ["--port", "0", "--idle-timeout", "5", *suite_settings(backend)], 64).start()
    answered = 0
    try:
        socks = []
        for _ in range(clients):  # all connected at once: more than 64 descriptors' worth
            sock = socket.create_connection((server.host, server.port), timeout=3)
            sock.sendall(request("/index.html", close=True))
            socks.append(sock)
        for sock in socks:  # each read, then closed, in turn: a server that waits can go on
            try:
                answered += sock.recv(64).startswith(b"HTTP/1.1 200")
            except OSError:
                pass  # reset: refused
            sock.close()
    finally:
        stopped = server.stop()
    stats = server.check_clean_exit(stopped)
    assert stats["connections"] == clients, f"{clients} connections accepted by the kernel: {stopped.last_line}"
    assert stats["requests"] == answered, stopped.last_line
    assert stats["errors"] == stats["errors_refused"] == clients - answered, stopped.last_line
