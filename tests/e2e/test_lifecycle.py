"""The process contract of docs/interfaces.md: ready line, ready file, SIGTERM/SIGINT exit with
the stats line, --describe, --set validation, port conflicts, the built-in docroot."""

from __future__ import annotations

import json
import signal
import socket
import time
from pathlib import Path

import pytest

from e2e_client import request
from e2e_docroot import FILES, INDEX_SIZE, Docroot
from e2e_server import Backend, fetch, registry_path, run_once, suite_args

INDEX = FILES["/index.html"][0]


def test_ready_line_reports_loopback_by_default(start_server, docroot: Docroot):
    server = start_server(suite_args(docroot))
    assert server.host == "127.0.0.1", f"ready line host {server.host!r}: must bind loopback by default"
    assert 0 < server.port < 65536


def test_ready_file_holds_host_and_port(start_server, docroot: Docroot, tmp_path: Path):
    ready_file = tmp_path / "ready"
    server = start_server(suite_args(docroot) + ["--ready-file", str(ready_file)])
    assert ready_file.read_text() == f"{server.host}:{server.port}\n"


def test_sigterm_exits_zero_with_stats_line_counting_what_was_served(start_server, docroot: Docroot, backend: Backend):
    server = start_server(suite_args(docroot))
    sent = received = 0
    ok_requests = missing_requests = connections = 0
    # 4 keep-alive connections of 5 requests, 5 one-shot connections, 3 404s.
    for _ in range(4):
        with server.connect() as conn:
            connections += 1
            for path in ["/index.html", "/plain.txt", "/big.bin", "/hello?name=s", "/style.css"]:
                raw = request(path)
                conn.send(raw)
                sent += len(raw)
                response = conn.read_response()
                assert response.status == 200
                ok_requests += 1
            received += len(conn.received)
    for path in ["/index.html"] * 5 + ["/missing-1", "/missing-2", "/missing-3"]:
        with server.connect() as conn:
            connections += 1
            raw = request(path, close=True)
            conn.send(raw)
            sent += len(raw)
            response = conn.read_response()
            conn.wait_closed(5)
            received += len(conn.received)
            if response.status == 200:
                ok_requests += 1
            else:
                assert response.status == 404
                missing_requests += 1
    time.sleep(0.3)  # every connection is closed on our side; let the server notice
    result = server.stop(signal.SIGTERM)
    stats = server.check_clean_exit(result)
    total = ok_requests + missing_requests
    assert stats["requests"] == total, f"sent and answered {total} requests; stats: {result.last_line}"
    assert stats["connections"] == connections, f"opened {connections} connections; stats: {result.last_line}"
    assert stats["errors"] == missing_requests, (
        f"{missing_requests} requests were answered 404 (errors count 4xx/5xx); stats: {result.last_line}"
    )
    assert stats["bytes_sent"] == received, f"client received {received} bytes; stats: {result.last_line}"
    if "bytes_received" in stats:
        assert stats["bytes_received"] == sent, f"client sent {sent} bytes; stats: {result.last_line}"
    if "backend" in stats:
        assert stats["backend"] == backend.name


def test_sigint_exits_zero_with_stats_line(start_server, docroot: Docroot):
    server = start_server(suite_args(docroot))
    assert fetch(server, request("/index.html", close=True)).status == 200
    result = server.stop(signal.SIGINT)
    stats = server.check_clean_exit(result)
    assert stats["requests"] >= 1


def test_sigterm_with_idle_and_stalled_connections_still_exits_promptly(start_server, docroot: Docroot):
    # A short grace period: the stalled request holds the server until it ends.
    server = start_server(suite_args(docroot) + ["--idle-timeout", "60", "--grace", "0.5"])
    idle = server.connect()
    stalled = server.connect()
    silent = server.connect()
    try:
        idle.send(request("/index.html"))
        assert idle.read_response().status == 200
        stalled.send(b"GET /index.html HTTP/1.1\r\nHo")
        time.sleep(0.2)
        result = server.stop(signal.SIGTERM, timeout=10)
        server.check_clean_exit(result)
        assert result.elapsed_s < 10
    finally:
        for conn in (idle, stalled, silent):
            conn.close()


def test_sigterm_during_a_large_download_exits_zero(start_server, docroot: Docroot):
    server = start_server(suite_args(docroot) + ["--grace", "0.5"])
    conn = server.connect()
    try:
        conn.send(request("/big.bin") * 20)
        assert conn.sock.recv(16).startswith(b"HTTP/1.")
        # The client stops reading: the server is blocked (or waiting) on a full socket.
        result = server.stop(signal.SIGTERM, timeout=15)
        server.check_clean_exit(result)
    finally:
        conn.close()


def test_max_conns_makes_extra_connections_wait_in_the_accept_queue(start_server, docroot: Docroot):
    limit = 4
    server = start_server(suite_args(docroot) + ["--max-conns", str(limit), "--idle-timeout", "30"])
    held = [server.connect() for _ in range(limit)]
    extra = None
    try:
        for conn in held:  # each of these is now accepted and being served
            conn.send(request("/index.html"))
            assert conn.read_response().body == INDEX
        extra = server.connect()
        extra.send(request("/plain.txt"))
        early, how = extra.read_until_close(0.7)
        assert how == "timeout" and early == b"", (
            f"connection beyond --max-conns={limit} should wait in the accept queue, got {early[:80]!r} ({how})"
        )
        held.pop().close()  # one slot frees up: the waiting connection is served
        response = extra.read_response()
        assert response.status == 200 and response.body == FILES["/plain.txt"][0], response.describe()
    finally:
        for conn in held + ([extra] if extra else []):
            conn.close()
    server.check_clean_exit(server.stop())


def test_defer_accept_serves_requests_and_never_hands_over_a_silent_connection(start_server, docroot: Docroot):
    server = start_server(suite_args(docroot) + ["--defer-accept", "30"])
    silent = server.connect()
    try:
        for close in (False, True):  # keep-alive and a new connection per request alike
            with server.connect() as conn:
                conn.send(request("/index.html", close=close))
                response = conn.read_response()
                assert response.status == 200 and response.body == INDEX, response.describe()
        time.sleep(0.3)
        result = server.stop(signal.SIGTERM)
    finally:
        silent.close()
    stats = server.check_clean_exit(result)
    assert stats["connections"] == 2, (
        f"two connections sent a request and one sent nothing: with --defer-accept only the two "
        f"reach the server; stats: {result.last_line}")
    assert stats["requests"] == 2, result.last_line


def test_server_keeps_no_stray_processes_after_exit(start_server, docroot: Docroot):
    server = start_server(suite_args(docroot))
    for _ in range(5):
        assert fetch(server, request("/index.html", close=True)).status == 200
    result = server.stop()
    assert not result.leftover_pids, f"processes of the server's group outlived it: {result.leftover_pids}"


def test_default_docroot_serves_the_305_byte_page(start_server):
    server = start_server(["--port", "0", "--idle-timeout", "2"])
    for target in ("/", "/index.html"):
        response = fetch(server, request(target))
        assert response.status == 200, f"GET {target} on the built-in docroot: {response.describe()}"
        assert len(response.body) == INDEX_SIZE, f"GET {target}: {len(response.body)} bytes, want {INDEX_SIZE}"
        assert response.header("Content-Length") == str(INDEX_SIZE)
        assert (response.header("Content-Type") or "").lower().startswith("text/html")
    assert fetch(server, request("/hello?name=x")).body == b"<h1>Hello x</h1>"
    assert fetch(server, request("/nope.html")).status == 404
    server.check_clean_exit(server.stop())


def test_ipv6_loopback_bind_is_reported_in_brackets(start_server, docroot: Docroot):
    try:
        probe = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        probe.bind(("::1", 0))
        probe.close()
    except OSError:
        pytest.skip("no IPv6 loopback here")
    server = start_server(suite_args(docroot) + ["--bind", "::1"])
    assert server.host == "::1"
    assert any(line.startswith("listening on [::1]:") for line in server.stdout_lines)
    conn = socket.create_connection(("::1", server.port), timeout=10)
    try:
        conn.sendall(request("/index.html", close=True))
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    finally:
        conn.close()
    assert data.startswith(b"HTTP/1.1 200") and data.endswith(INDEX)


def test_every_tunable_choice_serves_requests(backend: Backend, start_server, docroot: Docroot):
    choices = [(t["name"], c) for t in backend.tunables for c in t.get("choices", [])]
    if not choices:
        pytest.skip(f"{backend.name} has no tunable with a list of choices")
    for key, value in choices:
        server = start_server(suite_args(docroot) + ["--set", f"{key}={value}"])
        with server.connect() as conn:
            paths = ["/index.html", "/big.bin", "/hello?name=t", "/plain.txt"]
            conn.send(b"".join(request(p) for p in paths))
            for path in paths:
                response = conn.read_response()
                assert response.status == 200, f"--set {key}={value}: {path}: {response.describe()}"
            conn.send(request("/nope"))
            assert conn.read_response().status == 404
        many = [server.connect() for _ in range(50)]
        try:
            for conn in many:
                conn.send(request("/index.html"))
            for conn in many:
                assert conn.read_response().body == INDEX, f"--set {key}={value}"
        finally:
            for conn in many:
                conn.close()
        server.check_clean_exit(server.stop())


def test_describe_prints_valid_json_matching_the_registry(backend: Backend):
    result = run_once(backend, ["--describe"])
    assert result.returncode == 0, result.stderr
    description = json.loads(result.stdout)
    assert description["name"] == backend.name
    for key in ("model", "summary"):
        assert isinstance(description.get(key), str) and description[key], f"--describe lacks {key}"
    assert isinstance(description.get("tunables"), list)
    for tunable in description["tunables"]:
        assert {"name", "default"} <= set(tunable), f"tunable without name/default: {tunable}"
        if tunable.get("choices"):
            assert tunable["default"] in tunable["choices"], tunable
    assert isinstance(description.get("max_connections", 1), int)
    for key, value in description.items():
        assert backend.entry.get(key) == value, (
            f"{registry_path()} disagrees with --describe on {key!r}: {backend.entry.get(key)!r} vs {value!r}"
        )
    assert Path(backend.entry["binary"]).name == f"httpd-{backend.name}"


def test_help_exits_zero_with_usage(backend: Backend):
    result = run_once(backend, ["--help"])
    assert result.returncode == 0
    assert b"--port" in result.stdout + result.stderr


def test_unknown_tunable_is_rejected_naming_the_key(backend: Backend):
    result = run_once(backend, ["--port", "0", "--set", "nosuchkey=1"])
    assert result.returncode != 0, "--set nosuchkey=1 was accepted"
    assert b"nosuchkey" in result.stdout + result.stderr, (
        f"error message does not name the key: {result.stderr!r} {result.stdout!r}"
    )
    assert b"listening on" not in result.stdout


def test_integer_tunable_outside_its_range_is_rejected_before_listening(backend: Backend):
    ranged = [t for t in backend.tunables if "max" in t]
    if not ranged:
        pytest.skip(f"{backend.name} has no integer tunable")
    for t in ranged:
        below = [str(int(t["min"]) - 1)] if int(t["min"]) > 0 else []
        for value in (*below, str(int(t["max"]) + 1), "x", "-3"):
            result = run_once(backend, ["--port", "0", "--set", f"{t['name']}={value}"], timeout=5)
            assert result.returncode == 2, f"--set {t['name']}={value} accepted"
            assert f"from {t['min']} to {t['max']}".encode() in result.stderr, result.stderr
            assert b"listening on" not in result.stdout


@pytest.mark.parametrize("args", [["--port", "notaport"], ["--port", "70000"], ["--no-such-option"], ["--idle-timeout", "-1"]])
def test_bad_command_line_is_rejected(backend: Backend, args: list[str]):
    # --port 0 first: should a bad option be accepted, the server must not take a real port.
    result = run_once(backend, ["--port", "0", *args], timeout=5)
    assert result.returncode != 0, f"{args} accepted"
    assert result.stderr.strip() or result.stdout.strip(), f"{args}: rejected without a message"


def test_missing_docroot_is_rejected(backend: Backend, tmp_path: Path):
    result = run_once(backend, ["--port", "0", "--docroot", str(tmp_path / "does-not-exist")])
    assert result.returncode != 0
    assert b"does-not-exist" in result.stdout + result.stderr, (result.stdout, result.stderr)


def test_port_already_in_use_exits_nonzero_with_clear_message(backend: Backend, docroot: Docroot):
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        result = run_once(backend, ["--port", str(port), "--docroot", str(docroot.root)])
    finally:
        holder.close()
    output = (result.stdout + result.stderr).decode("utf-8", "replace")
    assert result.returncode != 0, f"started on a port already in use; output {output!r}"
    assert "listening on" not in output
    assert str(port) in output or "in use" in output.lower(), f"unclear message: {output!r}"
