"""node.js as a production server: started through production.launch_spec like the others, it
serves the docroot byte-exact with the right headers, answers 404 and HEAD, keeps connections
alive, reports its requests on an nginx-style status page, runs as one process, and leaves no
process behind when stopped or when the harness is killed. Skipped when node is not installed."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import production
from harness.accounting import parse_nginx
from harness.metrics import session_members
from harness.server import ProcessGuard, ServerProcess, free_port

REPO = Path(__file__).resolve().parents[2]
PAGE = b"<html><body>" + b"n" * 280 + b"</body></html>\n"
NOTES = "plain text, not html\n".encode()


def node_or_skip() -> str:
    exe = production.installed().get("node")
    if exe is None:
        pytest.skip("node.js is not installed (make deps installs it)")
    return exe


@pytest.fixture
def docroot(tmp_path: Path) -> Path:
    root = tmp_path / "docroot"
    (root / "sub").mkdir(parents=True)
    (root / "index.html").write_bytes(PAGE)
    (root / "sub" / "notes.txt").write_bytes(NOTES)
    (tmp_path / "secret.txt").write_bytes(b"outside the docroot\n")
    (root / "escape.txt").symlink_to(tmp_path / "secret.txt")
    return root


@pytest.fixture
def node(tmp_path: Path, docroot: Path):
    exe = node_or_skip()
    spec = production.launch_spec("node", exe, tmp_path / "work", docroot, free_port())
    guard = ProcessGuard()
    server = ServerProcess(spec, None, tmp_path / "node.log", guard)
    server.start(timeout_s=20)
    try:
        yield server
    finally:
        server.stop()
        guard.kill_all()


def get(conn: http.client.HTTPConnection, path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    conn.request(method, path)
    resp = conn.getresponse()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()


def test_node_is_listed_as_an_installed_production_server_with_a_status_page():
    node_or_skip()
    assert production.PRODUCTION_SERVERS["node"].category == "event-driven"
    assert production.status_page("node") == ("/server-status", "nginx", 1)


def test_serves_files_byte_exact_with_type_and_length_on_one_kept_alive_connection(node: ServerProcess):
    conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=5)
    try:
        for path, body, kind in (("/index.html", PAGE, "text/html; charset=utf-8"),
                                 ("/", PAGE, "text/html; charset=utf-8"),
                                 ("/sub/notes.txt", NOTES, "text/plain; charset=utf-8"),
                                 ("/index.html?query=ignored", PAGE, "text/html; charset=utf-8")):
            status, headers, got = get(conn, path)
            assert (status, got) == (200, body), path
            assert headers["content-type"] == kind and headers["content-length"] == str(len(body)), headers
            assert headers.get("connection", "keep-alive").lower() == "keep-alive", headers
    finally:
        conn.close()


def test_head_has_the_length_and_no_body(node: ServerProcess):
    conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=5)
    try:
        status, headers, body = get(conn, "/index.html", "HEAD")
        assert (status, body, headers["content-length"]) == (200, b"", str(len(PAGE)))
        status, _, body = get(conn, "/index.html")  # the connection is still in step
        assert (status, body) == (200, PAGE)
    finally:
        conn.close()


def test_missing_files_and_symlinks_out_of_the_docroot_are_404_and_other_methods_405(node: ServerProcess):
    conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=5)
    try:
        for path in ("/missing.html", "/escape.txt", "/../secret.txt", "/sub/%2e%2e/%2e%2e/secret.txt"):
            status, _, body = get(conn, path)
            assert status == 404 and b"outside the docroot" not in body, path
        status, headers, _ = get(conn, "/index.html", "DELETE")
        assert status == 405 and headers["allow"] == "GET, HEAD"
    finally:
        conn.close()


def test_status_page_counts_requests_the_way_nginx_does(node: ServerProcess):
    conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=5)
    try:
        for _ in range(5):
            assert get(conn, "/index.html")[0] == 200
        status, _, body = get(conn, "/server-status")
        assert status == 200
        # nginx's convention: the status request itself is counted (STATUS_PAGES says 1); the
        # accepts are ours and the harness's readiness probe.
        assert parse_nginx(body.decode()) == {"connections": 2.0, "requests": 6.0}
    finally:
        conn.close()


def test_runs_as_one_process_and_sigterm_ends_it_cleanly(node: ServerProcess):
    assert [p.pid for p in session_members(node.pid)] == [node.pid]
    result = node.stop()
    assert (result.exit_code, result.killed, result.leftover_killed) == (0, False, 0)
    assert session_members(node.pid) == []


def test_a_killed_harness_leaves_no_node_process(tmp_path: Path, docroot: Path):
    exe = node_or_skip()
    # A stand-in for the harness: starts node the way peers and run do, prints its pid, waits.
    script = f"""
import sys, time
from pathlib import Path
from harness import production
from harness.server import ProcessGuard, ServerProcess, free_port
spec = production.launch_spec("node", {exe!r}, Path({str(tmp_path / 'work')!r}), Path({str(docroot)!r}), free_port())
server = ServerProcess(spec, None, Path({str(tmp_path / 'node.log')!r}), ProcessGuard())
server.start(timeout_s=20)
print(server.pid, flush=True)
time.sleep(60)
"""
    harness = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE, text=True)
    node_pid = None
    try:
        line = harness.stdout.readline()
        assert line.strip().isdigit(), f"the stand-in harness did not start node: {line!r}"
        node_pid = int(line)
        harness.send_signal(signal.SIGKILL)  # the stand-in this test started
        harness.wait(timeout=10)
        deadline = time.monotonic() + 5
        while session_members(node_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert session_members(node_pid) == [], "node outlived the harness that started it"
    finally:
        if harness.poll() is None:
            harness.kill()
            harness.wait()
        if node_pid is not None and session_members(node_pid):
            os.killpg(node_pid, signal.SIGKILL)  # node's own session, started by the stand-in
        harness.stdout.close()
