"""Smoke checks of every reference server in backends.json ("references"; servers/reference/).

A reference is the floor of one concurrency model, not an HTTP server: it answers every request
head with the core's answer for the default page. So these checks are not the conformance suite
(which never sees a reference): they check that the floor sends the same bytes as its backend's
core (Date value aside), keeps a connection alive or closes it as the core would, answers
pipelined and split heads, survives ab and wrk, and stops on SIGTERM with status 0.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from typing import Iterator

import pytest

from e2e_client import Connection, request
from e2e_server import (
    CLOSE_PROMPTLY_S,
    Backend,
    ServerProcess,
    load_backends,
    load_references,
    processes_in_group,
    registry_path,
    run_once,
)

REFERENCES, REFERENCES_PROBLEM = load_references()
CATEGORIES = {"process", "thread", "user-thread", "event"}
CLIENT_TIMEOUT_S = 90

# The request kinds whose answers differ in their Connection header.
REQUESTS = {
    "http11": request("/index.html"),
    "http11_close": request("/index.html", close=True),
    "http10": request("/index.html", version="HTTP/1.0"),
    "http10_keep_alive": request("/index.html", version="HTTP/1.0", headers={"Connection": "keep-alive"}),
}


def without_date_value(raw: bytes) -> bytes:
    return re.sub(rb"\r\nDate: [^\r]*\r\n", b"\r\nDate: (any)\r\n", raw, count=1)


def read_answer(conn: Connection) -> bytes:
    """One response as the bytes that came over the wire (head and body)."""
    response = conn.read_response()
    return response.head + response.body


@pytest.fixture(scope="module", params=REFERENCES or [None], ids=[r.name for r in REFERENCES] or ["no-references"])
def reference(request: pytest.FixtureRequest) -> Backend:
    if request.param is None:
        if REFERENCES_PROBLEM is None:
            pytest.skip(f"HTTPBENCH_BACKENDS={os.environ.get('HTTPBENCH_BACKENDS')!r} selects no backend that has a reference")
        pytest.fail(f"no reference to test: {REFERENCES_PROBLEM}", pytrace=False)
    assert request.param.binary.is_file(), f"{request.param.binary} listed but missing"
    return request.param


@pytest.fixture(scope="module")
def core_answers(reference: Backend) -> dict[str, bytes]:
    """What the reference's own backend (the full core) answers to each request kind on its
    built-in docroot."""
    entries = json.loads(registry_path().read_text())["backends"]
    entry = next((e for e in entries if e["name"] == reference.entry["reference_for"]), None)
    assert entry is not None, f"{reference.name} names {reference.entry['reference_for']!r}, not a built backend"
    backend = ServerProcess(Backend(entry["name"], registry_path().parent / entry["binary"], entry), ["--port", "0"])
    backend.start()
    try:
        answers = {}
        for kind, raw in REQUESTS.items():
            with backend.connect() as conn:
                conn.send(raw)
                answers[kind] = read_answer(conn)
        return answers
    finally:
        backend.stop()


@pytest.fixture(scope="module")
def reference_server(reference: Backend) -> Iterator[ServerProcess]:
    proc = ServerProcess(reference, ["--port", "0"]).start()
    try:
        yield proc
    finally:
        proc.stop()


def assert_same_as_core(got: bytes, expected: bytes, kind: str) -> None:
    assert len(got) == len(expected), f"{kind}: {len(got)} bytes, the core sends {len(expected)}\n{got!r}\n{expected!r}"
    assert without_date_value(got) == without_date_value(expected), f"{kind}:\n{got!r}\n{expected!r}"


def test_keep_alive_connection_gets_the_cores_bytes_three_times(reference_server, core_answers):
    with reference_server.connect() as conn:
        for _ in range(3):
            conn.send(REQUESTS["http11"])
            assert_same_as_core(read_answer(conn), core_answers["http11"], "HTTP/1.1 keep-alive")
        assert conn.is_open(), "an HTTP/1.1 connection was closed after its third response"


@pytest.mark.parametrize("kind", ["http10", "http11_close"])
def test_request_that_ends_the_connection_is_answered_then_closed(reference_server, core_answers, kind):
    with reference_server.connect() as conn:
        conn.send(REQUESTS[kind])
        assert_same_as_core(read_answer(conn), core_answers[kind], kind)
        closed, extra, waited = conn.wait_closed(CLOSE_PROMPTLY_S)
        assert closed and not extra, f"{kind}: not closed within {CLOSE_PROMPTLY_S}s (extra {extra!r})"


def test_http10_keep_alive_request_is_answered_and_kept_open(reference_server, core_answers):
    with reference_server.connect() as conn:
        for _ in range(2):
            conn.send(REQUESTS["http10_keep_alive"])
            assert_same_as_core(read_answer(conn), core_answers["http10_keep_alive"], "HTTP/1.0 keep-alive")
        assert conn.is_open()


def test_two_pipelined_heads_in_one_write_are_answered_twice(reference_server, core_answers):
    with reference_server.connect() as conn:
        conn.send(REQUESTS["http11"] * 2)
        for _ in range(2):
            assert_same_as_core(read_answer(conn), core_answers["http11"], "pipelined")
        assert conn.is_open()


def test_heads_beyond_one_read_one_batch_and_the_send_buffer_are_all_answered_in_order(reference_server, core_answers):
    # 10,000 heads (440 KiB) outgrow the 4 KiB read buffer and the 64 replies of one writev, and
    # their 4.4 MB of answers, read late through a small receive buffer, outgrow the socket's send
    # buffer: an event-driven reference must wait for writability and go on where it stopped.
    count = 10_000
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(30)
    with sock:
        sock.connect((reference_server.host, reference_server.port))
        sock.sendall(REQUESTS["http11"] * (count - 1) + REQUESTS["http11_close"])
        time.sleep(0.2)
        data = bytearray()
        while chunk := sock.recv(1 << 20):
            data += chunk
    expected = core_answers["http11"] * (count - 1) + core_answers["http11_close"]
    assert len(data) == len(expected), f"{len(data)} bytes, expected {len(expected)}"
    assert re.sub(rb"\r\nDate: [^\r]*\r\n", b"", bytes(data)) == re.sub(rb"\r\nDate: [^\r]*\r\n", b"", expected)


def test_head_whose_end_is_split_across_writes_is_answered_once(reference_server, core_answers):
    raw = REQUESTS["http11"]
    with reference_server.connect() as conn:
        conn.send(raw[:-3])
        time.sleep(0.05)  # two segments: the server reads "\r" and "\n\r\n" separately
        assert conn.is_open(0.1), "answered or closed before the head was complete"
        conn.send(raw[-3:])
        assert_same_as_core(read_answer(conn), core_answers["http11"], "split head")
        assert conn.is_open(0.2), "sent more than one answer, or closed"


def run_tool(argv: list[str]) -> str:
    if shutil.which(argv[0]) is None:
        pytest.skip(f"{argv[0]} is not installed")
    done = subprocess.run(argv, capture_output=True, text=True, timeout=CLIENT_TIMEOUT_S)
    report = f"$ {' '.join(argv)}\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}"
    assert done.returncode == 0, report
    return report


def test_ab_new_connection_per_request_completes_without_failures(reference_server):
    report = run_tool(["ab", "-n", "2000", "-c", "50", "-s", "10", "-q", reference_server.url("/index.html")])
    assert re.search(r"^Complete requests:\s+2000$", report, re.MULTILINE), report
    assert re.search(r"^Failed requests:\s+0$", report, re.MULTILINE), report
    assert "Non-2xx responses" not in report, report


def test_wrk_keep_alive_reports_no_errors(reference_server):
    report = run_tool(["wrk", "-t1", "-c50", "-d2s", "--timeout", "5s", reference_server.url("/index.html")])
    assert "Socket errors" not in report and "Non-2xx or 3xx responses" not in report, report
    match = re.search(r"(\d+) requests in", report)
    assert match and int(match.group(1)) > 0, report


def test_sigterm_with_an_idle_connection_open_exits_zero_and_leaves_no_process(reference: Backend):
    proc = ServerProcess(reference, ["--port", "0"]).start()
    try:
        with proc.connect() as conn:
            conn.send(REQUESTS["http11"])
            conn.read_response()  # its server (a child, a thread, a fiber) now waits for more
            proc.proc.send_signal(signal.SIGTERM)
            returncode = proc.proc.wait(10)
            leftovers = processes_in_group(proc.pid)
            deadline = time.monotonic() + 3
            while leftovers and time.monotonic() < deadline:
                time.sleep(0.05)
                leftovers = processes_in_group(proc.pid)
    finally:
        result = proc.stop()
    assert returncode == 0, result.describe()
    assert not leftovers, f"processes {leftovers} outlived {reference.name}"


def test_describe_names_the_reference_its_backend_and_category(reference: Backend):
    done = run_once(reference, ["--describe"])
    assert done.returncode == 0, done.stderr
    described = json.loads(done.stdout)
    assert described["reference"] is True and described["name"] == reference.name
    assert described["name"] == f"ref-{reference.entry['reference_for']}"
    assert described["category"] in CATEGORIES
    assert described["reference_for"] in {b["name"] for b in json.loads(registry_path().read_text())["backends"]}


def test_backend_iteration_of_the_e2e_suites_never_yields_a_reference():
    backends, _ = load_backends()
    assert not {b.name for b in backends} & {r.name for r in REFERENCES}
    assert not [b.name for b in backends if b.entry.get("reference")]
