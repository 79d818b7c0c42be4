"""httpd-uring: the SPED model on one io_uring. While it serves, its only system call is
io_uring_enter (no epoll, poll or select; far fewer calls than requests); an idle keep-alive
connection holds no buffer; large files go through splice to slow readers without stalling the
others; 10,000 keep-alive connections fit; and a kernel that refuses what it needs is named in
one line at start."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from backend_checks import (
    assert_ab_without_failures,
    assert_holds_keep_alive_connections,
    backend_named,
    need_descriptors,
    wait_until,
)
from e2e_client import request
from event_loop_checks import assert_idle_connection_costs_at_most
from e2e_docroot import FILES, Docroot
from e2e_server import Backend, ServerProcess, fetch
from user_threads_checks import check_descriptor_limit

NAME = "uring"
MANY = 10_000
INDEX = FILES["/index.html"][0]
READINESS_CALLS = {"epoll_wait", "epoll_pwait", "epoll_pwait2", "epoll_ctl", "poll", "ppoll", "select", "pselect6"}


def strace_or_skip() -> str:
    path = shutil.which("strace")
    if path is None:
        pytest.skip("strace is not installed")
    return path


def test_holds_10000_concurrent_keep_alive_connections(launch):
    need_descriptors(MANY)
    server = launch(NAME)
    assert_holds_keep_alive_connections(server, MANY)


def test_an_idle_keep_alive_connection_costs_at_most_1_kib(launch):
    # Received bytes land in a shared ring of provided buffers and are copied out at once: an
    # idle connection holds its state and a receive request in the kernel, no buffer.
    assert_idle_connection_costs_at_most(launch(NAME), 1024, MANY)


def _strace_table(path: Path) -> dict[str, int]:
    """`strace -c` output: calls by system call name."""
    calls = {}
    for line in path.read_text().splitlines():
        fields = line.split()
        if len(fields) >= 5 and fields[0][0].isdigit() and fields[-1] != "total":
            calls[fields[-1]] = int(fields[3])
    return calls


def _calls_under_strace(name: str, docroot: Docroot, tmp_path: Path) -> tuple[dict[str, int], int]:
    """httpd-`name` under `strace -c -f`, served 5,000 keep-alive requests by ab, stopped:
    its system calls by name (start-up included) and the requests its stats line counts."""
    strace = strace_or_skip()
    backend = backend_named(name)
    trace = tmp_path / f"strace-{name}.txt"
    wrapped = Backend(name, Path(strace), backend.entry)
    args = ["-f", "-c", "-o", str(trace), str(backend.binary), "--port", "0", "--docroot", str(docroot.root)]
    server = ServerProcess(wrapped, args).start()
    try:
        assert_ab_without_failures(server, requests=5000, concurrency=50, keep_alive=True)
        # SIGTERM to the server itself (strace's one child): strace then reports and exits.
        children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
        assert len(children) == 1, children
        os.kill(int(children[0]), signal.SIGTERM)
        assert wait_until(lambda: not server.alive(), 15)
    finally:
        result = server.stop()
    stats = server.check_clean_exit(result)
    return _strace_table(trace), stats["requests"]


def test_serving_makes_no_readiness_calls_and_fewer_system_calls_per_request_than_sped(docroot: Docroot, tmp_path: Path):
    calls, requests = _calls_under_strace(NAME, docroot, tmp_path)
    assert calls.get("io_uring_enter", 0) > 0, calls
    assert not READINESS_CALLS & calls.keys(), f"readiness system calls: {READINESS_CALLS & calls.keys()}"
    # sped needs a read and a writev per request, and an epoll_wait whenever it runs dry; here
    # one io_uring_enter submits the sends and reaps whatever completed meanwhile (about two
    # per request when nothing else completes in between, far fewer under load).
    sped_calls, sped_requests = _calls_under_strace("sped", docroot, tmp_path)
    ours = sum(calls.values()) / requests
    theirs = sum(sped_calls.values()) / sped_requests
    assert ours < theirs, f"{ours:.2f} system calls per request, sped {theirs:.2f}: {calls}"


@pytest.mark.parametrize(
    "call, error, named",
    [
        ("io_uring_setup", "ENOSYS", "io_uring_setup"),
        ("io_uring_setup", "EINVAL", "IORING_SETUP_DEFER_TASKRUN"),
        ("io_uring_register", "EINVAL", "provided-buffer ring"),
    ],
)
def test_a_kernel_that_refuses_a_feature_is_named_in_one_line_at_start(call: str, error: str, named: str, tmp_path: Path):
    # strace's fault injection plays the older or restricted kernel: the call fails as it would.
    strace = strace_or_skip()
    backend = backend_named(NAME)
    argv = [strace, "-f", "-o", str(tmp_path / "trace"), "-e", f"trace={call}", "-e", f"inject={call}:error={error}",
            str(backend.binary), "--port", "0"]
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    stderr = proc.stderr.strip().splitlines()
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    assert len(stderr) == 1 and named in stderr[0] and "refuses" in stderr[0], stderr


def test_a_client_that_stops_reading_a_large_file_does_not_stall_the_others(launch):
    server = launch(NAME)
    stuck = server.connect()
    try:
        stuck.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck.send(request("/big.bin") * 50)  # its splices wait for room in a full socket
        time.sleep(0.3)
        started = time.monotonic()
        for _ in range(50):
            assert fetch(server, request("/index.html")).body == INDEX
        assert fetch(server, request("/big.bin")).body == FILES["/big.bin"][0]
        assert time.monotonic() - started < 10
    finally:
        stuck.close()
    server.check_clean_exit(server.stop())


def small_window_socket(server: ServerProcess) -> socket.socket:
    """A connection whose receive buffer is set small before the handshake, so the window it
    offers stays small and a 300 KiB response cannot be sent in one go."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(10)
    sock.connect((server.host, server.port))
    return sock


def read_until_the_end(sock: socket.socket) -> tuple[bytes, str]:
    """Everything the socket yields, and how it ended: 'eof' or 'reset'."""
    data = bytearray()
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        return bytes(data), "reset"
    return bytes(data), "eof"


# With --sendfile-threshold above big.bin's 300 KiB, the answers to PIPELINED big.bin requests
# (the last one asking to close) go out of memory as sendmsg calls, the last with the close
# linked behind it; 6 MB is more than loopback's send buffer takes at once, so that send is
# partial at first and the kernel retries it as the client reads.
PIPELINED = 20
LAST_RESPONSES = b"".join(request("/big.bin") for _ in range(PIPELINED - 1)) + request("/big.bin", close=True)


def test_last_responses_too_big_for_the_socket_are_sent_whole_before_the_linked_close(launch):
    server = launch(NAME, "--sendfile-threshold", "1048576")
    slow = small_window_socket(server)
    try:
        slow.sendall(LAST_RESPONSES)
        time.sleep(0.3)  # the send waits for room; others are served meanwhile
        assert fetch(server, request("/index.html", version="HTTP/1.0")).body == INDEX
        data, ended = read_until_the_end(slow)
    finally:
        slow.close()
    body = FILES["/big.bin"][0]
    assert ended == "eof" and data.count(b"HTTP/1.1 200 OK\r\n") == PIPELINED, (len(data), ended)
    assert data.endswith(body) and len(data) > PIPELINED * len(body), len(data)
    stats = server.check_clean_exit(server.stop())
    assert stats["errors"] == 0 and stats["requests"] == PIPELINED + 1, stats


def test_a_client_that_never_reads_its_last_responses_is_reset_within_the_send_timeout(launch):
    # The same linked send and close, but the client does not read: the send deadline cancels
    # the send and the linked close with it, and the socket is reset (SO_LINGER 0) and closed.
    server = launch(NAME, "--sendfile-threshold", "1048576", "--send-timeout", "1")
    stuck = small_window_socket(server)
    try:
        stuck.sendall(LAST_RESPONSES)
        time.sleep(2.5)  # the send timeout (1 s) and the loop's timer; read only after it
        assert fetch(server, request("/index.html", version="HTTP/1.0")).body == INDEX
        data, ended = read_until_the_end(stuck)  # had the server waited, this gets it all
    finally:
        stuck.close()
    assert ended == "reset" and len(data) < PIPELINED * len(FILES["/big.bin"][0]), (len(data), ended)
    stats = server.check_clean_exit(server.stop())
    assert stats["errors_timeout"] == 1 and stats["bytes_sent"] >= len(data), stats


def test_pipelined_large_and_small_files_arrive_whole_and_in_order(launch):
    # Splices and sendmsg alternate on one connection; the responses must not interleave.
    server = launch(NAME)
    paths = ["/big.bin", "/index.html", "/big.bin", "/plain.txt"] * 5
    conn = server.connect()
    try:
        conn.send(b"".join(request(p) for p in paths))
        for path in paths:
            response = conn.read_response()
            assert response.status == 200 and response.body == FILES[path][0], path
    finally:
        conn.close()
    stats = server.check_clean_exit(server.stop())
    assert stats["errors"] == 0, stats


def test_past_its_descriptor_limit_it_says_so_closes_the_extra_connections_and_keeps_serving(docroot: Docroot):
    # Under a hard limit of 256 descriptors about 250 connections fit; 400 arrive at once. The
    # multishot accept fails with EMFILE; the core's acceptor drops the connection and says so.
    stats = check_descriptor_limit(NAME, docroot, "out of file descriptors")
    assert stats["requests"] >= 10, stats
