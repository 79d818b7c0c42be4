"""Checks shared by the backend-specific tests: processes and threads from /proc, many
concurrent clients over real sockets, and the ab / wrk runs that must show zero failures."""

from __future__ import annotations

import os
import re
import signal
import resource
import selectors
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from e2e_client import Connection, request
from e2e_docroot import FILES
from e2e_server import Backend, ServerProcess, all_process_stats, assert_still_serving, fetch, load_backends

INDEX = FILES["/index.html"][0]
CLIENT_TIMEOUT_S = 90


def backend_named(name: str) -> Backend:
    """The registry entry of `name`; skips the test when it is not built or not selected."""
    backends, problem = load_backends()
    for backend in backends:
        if backend.name == name:
            assert backend.binary.is_file(), f"{backend.binary} listed but missing"
            return backend
    pytest.skip(f"backend {name!r} not available: {problem or 'not in the registry / HTTPBENCH_BACKENDS'}")


# -- processes and threads ----------------------------------------------------------------------


@dataclass(frozen=True)
class ProcessState:
    pid: int
    ppid: int
    state: str  # one letter of /proc/PID/stat: R, S, D, Z, ...


def children_of(pid: int) -> list[ProcessState]:
    """Every process whose parent is `pid`, zombies included."""
    return [ProcessState(p, pid, f[0]) for p, f in all_process_stats() if int(f[1]) == pid]


def zombies_of(pid: int) -> list[int]:
    return [p.pid for p in children_of(pid) if p.state == "Z"]


def live_children_of(pid: int) -> list[int]:
    return [p.pid for p in children_of(pid) if p.state != "Z"]


def thread_count(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/task").iterdir()))


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


# -- clients --------------------------------------------------------------------------------------


def hold_served_connections(server: ServerProcess, count: int) -> list[Connection]:
    """`count` keep-alive connections that have each had one request answered, so each is now
    held by a worker (process, thread) of the server."""
    held = []
    for _ in range(count):
        conn = server.connect()
        held.append(conn)
        conn.send(request("/index.html"))
        assert conn.read_response().body == INDEX
    return held


def waits_without_answer(conn: Connection, wait_s: float = 0.7) -> bool:
    """True when the server neither answers nor closes `conn` within `wait_s`."""
    early, how = conn.read_until_close(wait_s)
    return how == "timeout" and early == b""


def _complete_response(buffer: bytearray) -> tuple[int, bytes] | None:
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buffer[:end]).decode("latin-1")
    status = int(head.split(" ", 2)[1])
    length = int(re.search(r"(?im)^content-length:\s*(\d+)", head).group(1))
    if len(buffer) < end + 4 + length:
        return None
    return status, bytes(buffer[end + 4 : end + 4 + length])


def keep_alive_rounds(server: ServerProcess, count: int, rounds: int, timeout_s: float) -> float:
    """Opens `count` connections and, `rounds` times, sends one request on every connection and
    waits for every answer: all `count` connections are open and kept alive at once. Asserts
    every response is a 200 with the index page; returns the seconds it took."""
    started = time.monotonic()
    deadline = started + timeout_s
    socks: list[socket.socket] = []
    selector = selectors.DefaultSelector()
    try:
        for _ in range(count):
            sock = socket.create_connection((server.host, server.port), timeout=30)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setblocking(False)
            socks.append(sock)
        for round_number in range(rounds):
            buffers = {}
            for sock in socks:
                sock.sendall(request("/index.html"))  # small: fits the empty send buffer
                buffers[sock] = bytearray()
                selector.register(sock, selectors.EVENT_READ)
            pending = count
            while pending:
                remaining = deadline - time.monotonic()
                assert remaining > 0, (
                    f"round {round_number}: {pending} of {count} connections unanswered after {timeout_s}s"
                )
                for key, _ in selector.select(min(remaining, 1.0)):
                    sock = key.fileobj
                    chunk = sock.recv(65536)
                    assert chunk, f"round {round_number}: a connection was closed by the server"
                    buffers[sock] += chunk
                    done = _complete_response(buffers[sock])
                    if done is not None:
                        assert done == (200, INDEX), f"round {round_number}: got status {done[0]}"
                        selector.unregister(sock)
                        pending -= 1
    finally:
        selector.close()
        for sock in socks:
            sock.close()
    return time.monotonic() - started


def assert_holds_keep_alive_connections(server: ServerProcess, count: int,
                                        timeout_s: float = 180) -> dict:
    """`count` keep-alive connections open at once, each served twice within `timeout_s`; the
    server still serves afterwards and stops cleanly with exact counts (one extra connection
    and request: the still-serving check). Returns the stats line."""
    elapsed = keep_alive_rounds(server, count, rounds=2, timeout_s=timeout_s)
    assert_still_serving(server)
    stats = server.check_clean_exit(server.stop())
    assert stats["connections"] == count + 1 and stats["requests"] == 2 * count + 1, stats
    assert elapsed < timeout_s
    return stats


def concurrent_one_shot_requests(server: ServerProcess, count: int, timeout_s: float = 60) -> list[int]:
    """`count` clients connect at once, each sends one `Connection: close` request; returns the
    status each got (0 when the connection ended without a response)."""
    socks = [socket.create_connection((server.host, server.port), timeout=30) for _ in range(count)]
    selector = selectors.DefaultSelector()
    data = {}
    try:
        for sock in socks:
            sock.sendall(request("/index.html", close=True))
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ)
            data[sock] = bytearray()
        pending = count
        deadline = time.monotonic() + timeout_s
        while pending and time.monotonic() < deadline:
            for key, _ in selector.select(1.0):
                sock = key.fileobj
                try:
                    chunk = sock.recv(65536)
                except ConnectionResetError:
                    chunk = b""
                if chunk:
                    data[sock] += chunk
                else:
                    selector.unregister(sock)
                    pending -= 1
    finally:
        selector.close()
        for sock in socks:
            sock.close()
    statuses = []
    for sock in socks:
        done = _complete_response(data[sock])
        statuses.append(done[0] if done and done[1] == INDEX else 0)
    return statuses


# -- real clients -------------------------------------------------------------------------------


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed")
    return path


def _run(argv: list[str]) -> str:
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = proc.communicate(timeout=CLIENT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate(timeout=5)
        pytest.fail(f"{' '.join(argv)} did not finish within {CLIENT_TIMEOUT_S}s\n{out[-2000:]}")
    assert proc.returncode == 0, f"$ {' '.join(argv)} exited {proc.returncode}\n{out[-3000:]}"
    return out


def assert_ab_without_failures(server: ServerProcess, requests: int = 2000, concurrency: int = 50,
                               keep_alive: bool = False) -> None:
    argv = [_tool("ab"), *(["-k"] if keep_alive else []), "-n", str(requests), "-c", str(concurrency),
            "-s", "10", "-q", server.url("/index.html")]
    out = _run(argv)
    report = f"$ {' '.join(argv)}\n{out[-3000:]}"

    def field(name: str) -> int | None:
        match = re.search(rf"^{re.escape(name)}:\s+(\d+)", out, re.MULTILINE)
        return int(match.group(1)) if match else None

    assert field("Complete requests") == requests, report
    assert field("Failed requests") == 0, report
    assert field("Non-2xx responses") in (None, 0), report
    assert field("Write errors") in (None, 0), report
    if keep_alive:
        assert field("Keep-Alive requests") == requests, report


def assert_wrk_without_errors(server: ServerProcess, connections: int = 50, duration: str = "2s") -> None:
    argv = [_tool("wrk"), "-t1", f"-c{connections}", f"-d{duration}", "--timeout", "5s", server.url("/index.html")]
    out = _run(argv)
    report = f"$ {' '.join(argv)}\n{out}"
    assert "Socket errors" not in out, report
    assert "Non-2xx or 3xx responses" not in out, report
    match = re.search(r"(\d+) requests in", out)
    assert match and int(match.group(1)) > 0, report


def assert_busy_pool_queues_a_connection(server: ServerProcess) -> None:
    """On a pool of 2 workers both holding a keep-alive connection, a third connection gets no
    answer until one of them closes, and then it is served (it queues, it does not fail)."""
    held = hold_served_connections(server, 2)
    third = server.connect()
    try:
        third.send(request("/plain.txt"))
        assert waits_without_answer(third), "a third connection was answered with both workers busy"
        held.pop().close()
        response = third.read_response()
        assert response.status == 200, response.describe()
    finally:
        for conn in held + [third]:
            conn.close()
    server.check_clean_exit(server.stop())


def assert_burst_of_one_shot_requests_all_succeed(server: ServerProcess, count: int = 200) -> None:
    """`count` concurrent new-connection requests on a small pool all succeed, with no errors."""
    statuses = concurrent_one_shot_requests(server, count)
    assert statuses.count(200) == count, f"{count - statuses.count(200)} of {count} failed: {sorted(set(statuses))}"
    stats = server.check_clean_exit(server.stop())
    assert stats["errors"] == 0, stats


def need_descriptors(count: int) -> None:
    """This process must hold `count` client sockets: raises its soft RLIMIT_NOFILE (the
    conftest does too) or skips the test."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = count + 200
    if soft < wanted and (hard == resource.RLIM_INFINITY or hard > soft):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else wanted, hard))
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft < wanted:
        pytest.skip(f"RLIMIT_NOFILE {soft} is too low for {count} client connections")


def rss_kb(pid: int) -> int:
    """Resident set size of `pid` in kB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS in /proc/{pid}/status")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of `pid` so far (all its threads), in seconds (clock ticks)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def open_idle_keep_alive(server: ServerProcess, count: int, batch: int = 500) -> list[socket.socket]:
    """`count` connections that have each had one request answered and stay open, idle."""
    socks: list[socket.socket] = []
    try:
        for start in range(0, count, batch):
            group = [socket.create_connection((server.host, server.port), timeout=30) for _ in range(min(batch, count - start))]
            socks += group
            for sock in group:
                sock.sendall(request("/index.html"))
            for sock in group:
                data = b""
                while not data.endswith(FILES["/index.html"][0]):
                    chunk = sock.recv(65536)
                    assert chunk, "a keep-alive connection was closed by the server"
                    data += chunk
    except BaseException:
        for sock in socks:
            sock.close()
        raise
    return socks


def assert_killed_worker_is_replaced(server: ServerProcess, workers: int) -> None:
    """Kills one of the server's `workers` worker processes (SIGKILL): the core's supervisor must
    reap it, start another in its place, say so on stderr, and the server must go on serving."""
    assert wait_until(lambda: len(live_children_of(server.pid)) == workers, 5), live_children_of(server.pid)
    victim = live_children_of(server.pid)[0]
    os.kill(victim, signal.SIGKILL)  # a worker of the server the test started
    assert wait_until(
        lambda: victim not in live_children_of(server.pid) and len(live_children_of(server.pid)) == workers, 5
    ), f"pool not refilled after worker {victim} died: {live_children_of(server.pid)}"
    assert wait_until(lambda: not zombies_of(server.pid), 5), "the dead worker was not reaped"
    for _ in range(50):
        assert fetch(server, request("/index.html", close=True)).status == 200
    result = server.stop()
    server.check_clean_exit(result)
    assert any("restarting" in line for line in result.stderr), result.stderr
