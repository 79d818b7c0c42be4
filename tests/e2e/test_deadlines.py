"""Deadlines a slow or hostile client cannot stretch (docs/interfaces.md, "Deadlines"), on every
backend: a request head must arrive whole within --header-timeout of its first byte however
slowly it trickles (slowloris), a response that makes no progress is abandoned after
--send-timeout, and the lingering close after a rejected request ends within its bound even
while the client keeps sending. Other clients are served meanwhile.

To keep the suite fast, one server per backend runs every scenario at once (the `outcome`
fixture, about 2 s); each test then checks its part of what happened.
"""

from __future__ import annotations

import json
import select
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from e2e_client import Connection, request
from e2e_server import Backend, ServerProcess, suite_settings

HEADER_TIMEOUT_S = 1.0
SEND_TIMEOUT_S = 1.0
IDLE_TIMEOUT_S = 5  # longer than every deadline tested here, so it never closes them first
LINGER_S = 0.5  # the core's linger_ms
#: "closed within the deadline + 1 s": the bound every closing is checked against.
SLACK_S = 1.0
SLOWLORIS = 20
TRICKLE_PERIOD_S = 0.2
BIG_FILE_BYTES = 10 * 1000 * 1000
INDEX = b"<html><body>deadlines</body></html>\n"
TCP_ESTABLISHED = 1


@pytest.fixture(scope="module")
def deadline_docroot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("deadlines")
    (root / "index.html").write_bytes(INDEX)
    with open(root / "big.bin", "wb") as f:  # 10 MB: far more than the socket buffers hold
        f.write(bytes(range(256)) * (BIG_FILE_BYTES // 256) + bytes(BIG_FILE_BYTES % 256))
    return root


def deadline_args(root: Path) -> list[str]:
    return ["--port", "0", "--docroot", str(root), "--idle-timeout", str(IDLE_TIMEOUT_S),
            "--header-timeout", str(HEADER_TIMEOUT_S), "--send-timeout", str(SEND_TIMEOUT_S)]


# -- the clients ---------------------------------------------------------------------------------


def slowloris(server: ServerProcess, count: int, cap_s: float = 6.0) -> list[float | None]:
    """`count` connections that send the start of a head, then one more header byte every
    0.25 s, never finishing it. Returns, per connection, the seconds from its first byte until
    the server closed it (None: still open after `cap_s`)."""
    socks, first_byte = [], []
    for _ in range(count):
        sock = socket.create_connection((server.host, server.port), timeout=5)
        sock.sendall(b"GET /index.html HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        first_byte.append(time.monotonic())
        socks.append(sock)
    closed: list[float | None] = [None] * count
    next_byte = time.monotonic() + 0.25
    try:
        while any(c is None for c in closed) and time.monotonic() - first_byte[0] < cap_s:
            open_ = [s for i, s in enumerate(socks) if closed[i] is None]
            readable, _, _ = select.select(open_, [], [], 0.02)
            now = time.monotonic()
            for sock in readable:
                i = socks.index(sock)
                try:
                    gone = sock.recv(4096) == b""
                except OSError:
                    gone = True
                if gone:
                    closed[i] = now - first_byte[i]
            if now >= next_byte:
                next_byte = now + 0.25
                for i, sock in enumerate(socks):
                    if closed[i] is None:
                        try:
                            sock.send(b"a")
                        except OSError:
                            closed[i] = now - first_byte[i]
    finally:
        for sock in socks:
            sock.close()
    return closed


def normal_clients(server: ServerProcess, count: int) -> list[tuple[int, float]]:
    """`count` ordinary requests, one new connection each: (status, seconds to the answer)."""
    out = []
    for _ in range(count):
        started = time.monotonic()
        with server.connect(timeout=8) as conn:
            conn.send(request("/index.html", close=True))
            response = conn.read_response()
        ok = response.status == 200 and response.body == INDEX
        out.append((response.status if ok else -1, time.monotonic() - started))
    return out


def tcp_state(sock: socket.socket) -> int:
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)[0]


def non_reader(server: ServerProcess, cap_s: float = 6.0) -> float | None:
    """Asks for 10 MB and never reads. Returns the seconds from the request until the server
    abandoned the connection (it resets it: a close with unsent data would never reach a client
    whose window is shut), or None."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    sock.settimeout(5)
    sock.connect((server.host, server.port))
    try:
        sock.sendall(request("/big.bin"))
        sent = time.monotonic()
        while time.monotonic() - sent < cap_s:
            if tcp_state(sock) != TCP_ESTABLISHED:
                return time.monotonic() - sent
            time.sleep(0.02)
        return None
    finally:
        sock.close()


def idle_keep_alive(server: ServerProcess, count: int) -> list[Connection]:
    """`count` keep-alive connections that made one request and now wait: they hold deadlines
    an idle timeout away, so a loop that keeps every deadline in one list ordered by last
    activity finds a shorter deadline queued behind them."""
    conns = []
    for _ in range(count):
        conn = server.connect()
        conn.send(request("/index.html"))
        conn.read_response()
        conns.append(conn)
    return conns


def trickle_after_400(server: ServerProcess, cap_s: float = 6.0) -> tuple[int, float | None]:
    """Sends a bad request, reads the 400, then keeps sending 100 bytes every 0.2 s (three idle
    keep-alive connections are open). Returns (status, seconds from the response until the
    server closed, or None)."""
    idle = idle_keep_alive(server, 3)
    try:
        with server.connect() as conn:
            conn.send(b"BLAH\r\n\r\n")
            status = conn.read_response().status
            answered = time.monotonic()
            while time.monotonic() - answered < cap_s:
                try:
                    conn.sock.send(b"x" * 100)
                except OSError:
                    return status, time.monotonic() - answered
                time.sleep(TRICKLE_PERIOD_S)
            return status, None
    finally:
        for conn in idle:
            conn.close()


def silent_after_400(server: ServerProcess) -> tuple[int, bool]:
    """Sends a bad request, reads the 400, then sends nothing, its connection left open (three
    idle keep-alive connections are open too). Returns (status, whether the server had closed
    the connection when probed at the linger bound + 1 s): a probe byte to a closed socket is
    answered with a reset, and the next send fails."""
    idle = idle_keep_alive(server, 3)
    try:
        with server.connect() as conn:
            conn.send(b"BLAH\r\n\r\n")
            status = conn.read_response().status
            time.sleep(LINGER_S + SLACK_S - 0.2)
            try:
                conn.sock.send(b"x")
                time.sleep(0.2)
                conn.sock.send(b"x")
            except OSError:
                return status, True
            return status, False
    finally:
        for conn in idle:
            conn.close()


def read_status(server: ServerProcess) -> dict:
    with server.connect() as conn:
        conn.send(request("/server-status"))
        response = conn.read_response()
    assert response.status == 200, response.describe()
    return json.loads(response.body)


# -- every scenario at once, one server per backend ---------------------------------------------


@dataclass
class Outcome:
    slowloris: list[float | None] = field(default_factory=list)
    normal: list[tuple[int, float]] = field(default_factory=list)
    non_reader: float | None = None
    trickle: tuple[int, float | None] = (0, None)
    silent: tuple[int, bool] = (0, False)
    status: dict = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def outcome(backend: Backend, deadline_docroot: Path) -> Outcome:
    server = ServerProcess(backend, deadline_args(deadline_docroot) + suite_settings(backend)).start()
    result = Outcome()

    def run(name: str, body) -> threading.Thread:
        def target() -> None:
            try:
                setattr(result, name, body())
            except Exception as exc:  # reported by the test that checks this scenario
                result.failures.append(f"{name}: {exc!r}")
        thread = threading.Thread(target=target, name=name)
        thread.start()
        return thread

    try:
        threads = [run("slowloris", lambda: slowloris(server, SLOWLORIS)),
                   run("non_reader", lambda: non_reader(server)),
                   run("trickle", lambda: trickle_after_400(server)),
                   run("silent", lambda: silent_after_400(server))]
        time.sleep(0.3)  # the slow clients hold their connections now
        threads.append(run("normal", lambda: normal_clients(server, 10)))
        for thread in threads:
            thread.join(20)
        time.sleep(0.2)  # let a thread-per-connection server count its last close
        result.status = read_status(server)
    finally:
        stopped = server.stop()
    server.check_clean_exit(stopped)
    return result


def failures_of(outcome: Outcome, name: str) -> list[str]:
    return [f for f in outcome.failures if f.startswith(name + ":")]


def test_slowloris_heads_are_closed_within_the_header_timeout(outcome: Outcome):
    assert not failures_of(outcome, "slowloris"), outcome.failures
    assert len(outcome.slowloris) == SLOWLORIS
    still_open = sum(1 for t in outcome.slowloris if t is None)
    assert still_open == 0, (
        f"{still_open} of {SLOWLORIS} connections trickling one header byte every 0.25 s were still "
        f"open after 6 s (--header-timeout {HEADER_TIMEOUT_S})"
    )
    latest = max(t for t in outcome.slowloris if t is not None)
    earliest = min(t for t in outcome.slowloris if t is not None)
    assert latest <= HEADER_TIMEOUT_S + SLACK_S, f"a slow head was closed only after {latest:.2f} s"
    assert earliest >= HEADER_TIMEOUT_S * 0.8, f"a slow head was closed after {earliest:.2f} s, before its deadline"


def test_normal_clients_are_served_while_slow_heads_are_open(outcome: Outcome):
    assert not failures_of(outcome, "normal"), outcome.failures
    assert len(outcome.normal) == 10
    assert all(status == 200 for status, _ in outcome.normal), outcome.normal
    slowest = max(took for _, took in outcome.normal)
    assert slowest <= HEADER_TIMEOUT_S + SLACK_S, f"an ordinary request took {slowest:.2f} s"


def test_client_that_never_reads_is_reset_within_the_send_timeout(outcome: Outcome):
    assert not failures_of(outcome, "non_reader"), outcome.failures
    took = outcome.non_reader
    assert took is not None, f"a client that never reads a 10 MB response was still connected after 6 s (--send-timeout {SEND_TIMEOUT_S})"
    assert took <= SEND_TIMEOUT_S + SLACK_S, f"abandoned only after {took:.2f} s"
    assert took >= SEND_TIMEOUT_S * 0.8, f"abandoned after {took:.2f} s, before the send timeout"


def test_client_trickling_after_a_400_is_closed_within_the_linger_bound(outcome: Outcome):
    assert not failures_of(outcome, "trickle"), outcome.failures
    status, took = outcome.trickle
    assert status == 400
    assert took is not None, "a client that keeps sending after a 400 kept its connection for 6 s"
    assert took <= LINGER_S + SLACK_S, f"the lingering close lasted {took:.2f} s"


def test_silent_client_after_a_400_is_closed_within_the_linger_bound(outcome: Outcome):
    assert not failures_of(outcome, "silent"), outcome.failures
    status, closed = outcome.silent
    assert status == 400
    assert closed, f"a silent client was still connected {LINGER_S + SLACK_S:.1f} s after its 400"


def test_deadlines_count_as_timeouts(outcome: Outcome):
    # Every slow head and the non-reader ended inside a request by a deadline; the two 400s are
    # the only answered errors; nothing was lost by a peer or cut.
    status = outcome.status
    assert status.get("errors_timeout") == SLOWLORIS + 1, status
    assert status.get("errors_status") == 2, status
    assert status.get("errors_lost") == 0 and status.get("errors_cut") == 0, status
    assert status.get("errors") == SLOWLORIS + 3, status


def test_a_pool_as_small_as_the_slow_clients_still_serves_others(start_server, backend: Backend,
                                                                  deadline_docroot: Path):
    """prefork and threadpool give each connection a worker: with --workers 4 and four slowloris
    connections every worker is taken, and ordinary clients wait only until the header timeout
    frees them (issue 12: with 64 workers, 64 such connections stopped the server)."""
    if not backend.entry.get("workers_bound_connections"):
        pytest.skip(f"{backend.name}'s --workers does not bound its connections")
    workers = 4
    server = start_server(deadline_args(deadline_docroot) + ["--workers", str(workers)])
    slow: list[float | None] = []
    thread = threading.Thread(target=lambda: slow.extend(slowloris(server, workers)))
    thread.start()
    time.sleep(0.3)
    normal = normal_clients(server, 3)
    thread.join(20)
    assert all(status == 200 for status, _ in normal), normal
    assert max(took for _, took in normal) <= HEADER_TIMEOUT_S + SLACK_S, normal
    assert slow and all(t is not None and t <= HEADER_TIMEOUT_S + SLACK_S for t in slow), slow
    server.check_clean_exit(server.stop())
