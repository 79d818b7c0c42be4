"""Hostile and broken clients: every backend answers with a clear status, never serves outside
the docroot, never crashes, and keeps serving other connections afterwards."""

from __future__ import annotations

import socket
import time

import pytest

from e2e_client import Connection, request
from e2e_docroot import FILES, SECRET_MARKER
from e2e_server import CLOSE_PROMPTLY_S, IDLE_TIMEOUT_S, ServerProcess, assert_still_serving

INDEX = FILES["/index.html"][0]
#: "closed after the idle timeout (≈2 s)": generous upper bound for shared CPUs.
IDLE_CLOSE_BOUND_S = 5.0


def exchange(server: ServerProcess, raw: bytes, wait_s: float = CLOSE_PROMPTLY_S):
    """Sends `raw` on a new connection, reads one response, then waits up to `wait_s` for the
    server to close (0: don't wait). Returns (response, closed, every byte received)."""
    with server.connect() as conn:
        try:
            conn.send(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before reading everything; read what came
        response = conn.read_response()
        closed = conn.wait_closed(wait_s)[0] if wait_s > 0 else False
        return response, closed, bytes(conn.received)


def assert_rejected(server: ServerProcess, raw: bytes, statuses: set[int], must_close: bool) -> None:
    response, closed, _ = exchange(server, raw, wait_s=CLOSE_PROMPTLY_S if must_close else 0)
    assert response.status in statuses, (
        f"request {raw[:120]!r}{'...' if len(raw) > 120 else ''}: want status in "
        f"{sorted(statuses)}, got {response.status} ({response.head!r})"
    )
    if must_close:
        assert closed, f"request {raw[:80]!r}: connection not closed within {CLOSE_PROMPTLY_S} s after {response.status}"
    assert_still_serving(server)


# -- malformed request lines ------------------------------------------------------------------

@pytest.mark.parametrize(
    "raw",
    [
        b"HELLO\r\n\r\n",
        b"GARBAGE GARBAGE GARBAGE GARBAGE\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",  # a TLS ClientHello
        b" GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET  /index.html  HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /index.html HTTP/1.1 extra\r\nHost: x\r\n\r\n",
        b"GET /index.html HTTQ/1.1\r\nHost: x\r\n\r\n",
        b"GET /index.html HTTP/x.y\r\nHost: x\r\n\r\n",
        b"\r\n\r\n\r\n\r\n\x7f\x7f\x7f\r\n\r\n",
    ],
    ids=["one-token", "four-tokens", "tls-hello", "leading-space", "double-spaces",
         "trailing-token", "bad-protocol-name", "non-numeric-version", "control-chars"],
)
def test_garbage_request_line_is_400_and_closes(server: ServerProcess, raw: bytes):
    assert_rejected(server, raw, {400}, must_close=True)


@pytest.mark.parametrize("raw", [b"GET /index.html\r\n\r\n", b"GET /\r\n\r\n"], ids=["file", "root"])
def test_missing_http_version_is_400(server: ServerProcess, raw: bytes):
    assert_rejected(server, raw, {400}, must_close=True)


@pytest.mark.parametrize("version", ["HTTP/2.0", "HTTP/3.0", "HTTP/9.9"])
def test_unsupported_major_version_is_505(server: ServerProcess, version: str):
    assert_rejected(server, f"GET /index.html {version}\r\nHost: x\r\n\r\n".encode(), {505}, must_close=True)


@pytest.mark.parametrize("version", ["HTTP/2", "HTTP/11", "HTTP/1.", "HTTP/"])
def test_version_not_in_digit_dot_digit_form_is_rejected(server: ServerProcess, version: str):
    # Not HTTP-version syntax (RFC 9112 §2.3): 400 is right; 505 is tolerated for "HTTP/2".
    assert_rejected(server, f"GET /index.html {version}\r\nHost: x\r\n\r\n".encode(), {400, 505}, must_close=True)


@pytest.mark.parametrize("method", ["FOO", "BREW", "PROPFIND", "XYZZY"])
def test_unknown_method_is_501(server: ServerProcess, method: str):
    assert_rejected(server, request("/index.html", method=method), {501}, must_close=False)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_known_but_unsupported_method_is_405_with_allow_header(server: ServerProcess, method: str):
    raw = request("/index.html", method=method, headers={"Content-Length": "0"})
    response, _, _ = exchange(server, raw, wait_s=0)
    assert response.status == 405, f"{method}: want 405, got {response.status} ({response.head!r})"
    allow = response.header("Allow")
    assert allow is not None, f"405 without an Allow header: {response.head!r}"
    allowed = {token.strip().upper() for token in allow.split(",")}
    assert {"GET", "HEAD"} <= allowed, f"Allow: {allow!r} should list GET and HEAD"
    assert method not in allowed
    assert_still_serving(server)


def test_post_with_body_is_405_and_next_pipelined_request_is_answered(server: ServerProcess):
    raw = request("/index.html", method="POST", headers={"Content-Length": "5"}) + b"hello" + request("/plain.txt")
    with server.connect() as conn:
        conn.send(raw)
        rejected = conn.read_response()
        assert rejected.status == 405, rejected.describe()
        rest, how = conn.read_until_close(1.0)
    # Closing after the 405 is fine; keeping the connection means the body was skipped and
    # the pipelined GET must be answered.
    if how == "timeout" or rest:
        assert rest.startswith(b"HTTP/1.1 200") and rest.endswith(FILES["/plain.txt"][0]), (
            f"after POST with a 5-byte body, the pipelined GET /plain.txt got {rest[:300]!r} ({how})"
        )
    assert_still_serving(server)


# -- limits -----------------------------------------------------------------------------------

def test_request_line_longer_than_8k_is_414(server: ServerProcess):
    raw = request("/" + "a" * (9 * 1024))
    assert_rejected(server, raw, {414}, must_close=True)


def test_request_line_far_longer_than_8k_is_414(server: ServerProcess):
    raw = request("/" + "b" * (64 * 1024))
    assert_rejected(server, raw, {414}, must_close=True)


def test_header_block_larger_than_8k_is_431(server: ServerProcess):
    headers = {f"X-Filler-{i}": "h" * 100 for i in range(100)}  # ~11 KiB
    assert_rejected(server, request("/index.html", headers=headers), {431}, must_close=True)


def test_single_header_larger_than_8k_is_431(server: ServerProcess):
    raw = request("/index.html", headers={"X-Big": "z" * (9 * 1024)})
    assert_rejected(server, raw, {431}, must_close=True)


def test_endless_header_block_is_cut_off_with_431(server: ServerProcess):
    # Headers keep coming in small writes; the server must stop at its limit, not buffer forever.
    with server.connect() as conn:
        conn.send(b"GET /index.html HTTP/1.1\r\nHost: x\r\n")
        try:
            for i in range(400):
                conn.send(f"X-Drip-{i}: {'d' * 40}\r\n".encode())
        except (BrokenPipeError, ConnectionResetError):
            pass
        response = conn.read_response()
    assert response.status == 431, response.describe()
    assert_still_serving(server)


# -- NUL bytes and other forbidden bytes ------------------------------------------------------

@pytest.mark.parametrize(
    "raw",
    [
        b"GET /index.html\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /index\x00.html HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GE\x00T /index.html HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /index.html HTTP/1.1\x00\r\nHost: x\r\n\r\n",
        b"GET /index.html HTTP/1.1\r\nHost: x\r\nX-Evil: a\x00b\r\n\r\n",
        b"GET /index.html HTTP/1.1\r\nHost: x\r\nX-Ev\x00il: ab\r\n\r\n",
        b"GET /index.html HTTP/1.1\r\n\x00\r\n\r\n",
    ],
    ids=["path-end", "path-middle", "method", "version", "header-value", "header-name", "header-line"],
)
def test_nul_byte_in_request_line_or_headers_is_400(server: ServerProcess, raw: bytes):
    assert_rejected(server, raw, {400}, must_close=True)


@pytest.mark.parametrize("target", ["/index.html%00", "/index.html%00.txt", "/%00", "/subdir/%00index.html"])
def test_encoded_nul_in_path_never_serves_a_file(server: ServerProcess, target: str):
    assert_rejected(server, request(target), {400, 404}, must_close=False)


@pytest.mark.parametrize("target", ["/%zz", "/index.html%4", "/%", "/%%32%65"])
def test_malformed_percent_escape_is_rejected_or_not_found(server: ServerProcess, target: str):
    assert_rejected(server, request(target), {400, 404}, must_close=False)


@pytest.mark.parametrize(
    "raw",
    [
        b"GET /index.html HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n",
        b"GET /index.html HTTP/1.1\r\nHost: x\r\n: no-name\r\n\r\n",
    ],
    ids=["no-colon", "empty-name"],
)
def test_malformed_header_line_is_400(server: ServerProcess, raw: bytes):
    assert_rejected(server, raw, {400}, must_close=True)


# -- traversal --------------------------------------------------------------------------------

TRAVERSALS = [
    "/../secret.txt",
    "/..%2fsecret.txt",
    "/..%2Fsecret.txt",
    "/%2e%2e/secret.txt",
    "/%2E%2E/secret.txt",
    "/%2E%2E%2Fsecret.txt",
    "/%2e%2e%2f%2e%2e%2fsecret.txt",
    "/.%2e/secret.txt",
    "/%2e./secret.txt",
    "/./../secret.txt",
    "//../secret.txt",
    "/../../../../../../../../secret.txt",
    "/subdir/../../secret.txt",
    "/subdir/%2e%2e/%2e%2e/secret.txt",
    "/subdir/..%2f..%2fsecret.txt",
    "/index.html/../../secret.txt",
    "/..\\secret.txt",
    "/..%5csecret.txt",
    "/..%5Csecret.txt",
    "/%c0%ae%c0%ae/secret.txt",
    "/%c0%ae%c0%ae%c0%afsecret.txt",
    "/%e0%80%ae%e0%80%ae/secret.txt",
    "/..%c0%afsecret.txt",
    "/%252e%252e/secret.txt",
    "/%252e%252e%252fsecret.txt",
    "/..;/secret.txt",
    "/..",
    "/../",
    "/link-out",
    "/dir-out/secret2.txt",
    "/dir-out/",
    "/subdir/../link-out",
    "/%6c%69%6e%6b-out",
    "/etc/passwd",
    "/../../../../etc/passwd",
    "/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "secret.txt",
    "../secret.txt",
    "http://127.0.0.1/../secret.txt",
    "/proc/self/environ",
]


@pytest.mark.parametrize("target", TRAVERSALS)
def test_traversal_never_escapes_docroot(server: ServerProcess, target: str):
    for method in ("GET", "HEAD"):
        raw = f"{method} {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
        with server.connect() as conn:
            conn.send(raw)
            everything, _how = conn.read_until_close(5)
        assert SECRET_MARKER not in everything, f"{method} {target!r} served the secret: {everything[:300]!r}"
        assert b"root:x:0:0" not in everything, f"{method} {target!r} served /etc/passwd"
        assert everything.startswith(b"HTTP/1."), f"{method} {target!r}: no response, got {everything[:100]!r}"
        status = int(everything.split(b" ", 2)[1])
        assert status in (400, 403, 404), f"{method} {target!r}: want 400/403/404, got {everything[:200]!r}"
    assert_still_serving(server)


def test_traversals_pipelined_on_one_connection_never_leak(server: ServerProcess):
    targets = [t for t in TRAVERSALS if t.startswith("/")]
    with server.connect() as conn:
        conn.send(b"".join(request(t) for t in targets) + request("/index.html", close=True))
        everything, _ = conn.read_until_close(10)
    assert SECRET_MARKER not in everything
    assert everything.count(b"HTTP/1.") >= 1
    assert_still_serving(server)


# -- bodies and transfer codings --------------------------------------------------------------

def test_get_with_content_length_body_is_skipped_and_next_request_answered(server: ServerProcess):
    body = b"this body belongs to the GET and must be skipped"
    raw = request("/index.html", headers={"Content-Length": str(len(body))}) + body + request("/plain.txt")
    with server.connect() as conn:
        conn.send(raw)
        first = conn.read_response()
        second = conn.read_response()
    assert first.status == 200 and first.body == INDEX, first.describe()
    assert second.status == 200 and second.body == FILES["/plain.txt"][0], (
        f"after a GET with a {len(body)}-byte body the pipelined GET /plain.txt got {second.describe()}"
    )


def test_get_body_arriving_in_pieces_is_skipped(server: ServerProcess):
    body = b"0123456789" * 300  # 3000 bytes, sent in three writes
    with server.connect() as conn:
        conn.send(request("/index.html", headers={"Content-Length": str(len(body))}) + body[:100])
        time.sleep(0.05)
        conn.send(body[100:1500])
        time.sleep(0.05)
        conn.send(body[1500:] + request("/style.css"))
        first = conn.read_response()
        second = conn.read_response()
    assert first.status == 200 and first.body == INDEX, first.describe()
    assert second.status == 200 and second.body == FILES["/style.css"][0], second.describe()


def test_body_that_looks_like_a_request_is_not_executed(server: ServerProcess):
    smuggled = request("/plain.txt")
    raw = request("/index.html", headers={"Content-Length": str(len(smuggled))}) + smuggled + request("/style.css")
    with server.connect() as conn:
        conn.send(raw)
        first = conn.read_response()
        second = conn.read_response()
    assert first.body == INDEX
    assert second.body == FILES["/style.css"][0], "a request inside a GET body was answered"


@pytest.mark.parametrize("value", ["abc", "-1", "1.5", "0x10", "5, 6"])
def test_invalid_content_length_is_400_and_closes(server: ServerProcess, value: str):
    raw = request("/index.html", headers={"Content-Length": value})
    assert_rejected(server, raw, {400}, must_close=True)


def test_conflicting_content_lengths_are_400_and_close(server: ServerProcess):
    # Two framings for one message is how requests get smuggled (RFC 9112 §6.3 rule 5).
    raw = b"GET /index.html HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 30\r\n\r\nhello" + request("/plain.txt")
    assert_rejected(server, raw, {400}, must_close=True)


def test_chunked_transfer_encoding_on_get_is_rejected_and_closes(server: ServerProcess):
    raw = request("/index.html", headers={"Transfer-Encoding": "chunked"}) + b"5\r\nhello\r\n0\r\n\r\n"
    assert_rejected(server, raw, {400, 501}, must_close=True)


def test_chunked_plus_content_length_is_rejected_and_closes(server: ServerProcess):
    raw = (
        request("/index.html", headers={"Transfer-Encoding": "chunked", "Content-Length": "4"})
        + b"0\r\n\r\n"
        + request("/plain.txt")
    )
    assert_rejected(server, raw, {400, 501}, must_close=True)


# -- clients that stall, vanish or reset --------------------------------------------------------

def test_silent_client_is_closed_after_idle_timeout(server: ServerProcess):
    with server.connect() as conn:
        closed, data, waited = conn.wait_closed(IDLE_CLOSE_BOUND_S + 1)
    assert closed, f"a connection that sent nothing was still open after {waited:.1f}s (idle timeout {IDLE_TIMEOUT_S}s)"
    assert waited <= IDLE_CLOSE_BOUND_S, f"closed only after {waited:.1f}s"
    assert waited >= IDLE_TIMEOUT_S * 0.5, f"closed after {waited:.2f}s, before the {IDLE_TIMEOUT_S}s idle timeout"
    assert data == b"" or data.startswith(b"HTTP/1.1 408") or data.startswith(b"HTTP/1.0 408"), data[:100]
    assert_still_serving(server)


def test_half_request_then_stall_is_closed_after_idle_timeout(server: ServerProcess):
    with server.connect() as conn:
        conn.send(b"GET /index.html HTTP/1.1\r\nHost: x\r\n")
        closed, data, waited = conn.wait_closed(IDLE_CLOSE_BOUND_S + 1)
    assert closed, f"a stalled half request was still open after {waited:.1f}s"
    assert waited <= IDLE_CLOSE_BOUND_S, f"closed only after {waited:.1f}s"
    assert data == b"" or b" 408 " in data.split(b"\r\n", 1)[0], f"unexpected bytes {data[:100]!r}"
    assert_still_serving(server)


def test_keep_alive_connection_idle_after_a_request_is_closed_after_idle_timeout(server: ServerProcess):
    with server.connect() as conn:
        conn.send(request("/index.html"))
        assert conn.read_response().body == INDEX
        closed, data, waited = conn.wait_closed(IDLE_CLOSE_BOUND_S + 1)
    assert closed and waited <= IDLE_CLOSE_BOUND_S, f"idle keep-alive connection open after {waited:.1f}s"
    assert data == b""


def test_stalled_clients_do_not_block_other_clients(server: ServerProcess):
    stalled = [server.connect() for _ in range(5)]
    try:
        for conn in stalled:
            conn.send(b"GET /index.html HTTP/1.1\r\nHo")
        started = time.monotonic()
        for _ in range(5):
            assert_still_serving(server)
        assert time.monotonic() - started < 1.5, "serving was delayed by stalled clients"
    finally:
        for conn in stalled:
            conn.close()


def test_client_that_vanishes_mid_request_does_not_disturb_the_server(server: ServerProcess):
    for _ in range(10):
        conn = server.connect()
        conn.send(b"GET /index.html HTTP/1.1\r\nHost: x\r\nX-Partial: ab")
        conn.close()
    assert_still_serving(server)


def test_client_that_resets_mid_request_does_not_disturb_the_server(server: ServerProcess):
    for _ in range(10):
        conn = server.connect()
        conn.send(b"GET /index.html HTTP/1.1\r\nHost")
        conn.reset()
    assert_still_serving(server)


def test_client_that_resets_mid_response_does_not_disturb_the_server(server: ServerProcess):
    for _ in range(10):
        conn = server.connect()
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        conn.send(request("/big.bin") + request("/big.bin"))
        first = conn.sock.recv(16)
        assert first.startswith(b"HTTP/1."), first
        conn.reset()
    assert_still_serving(server)


def test_client_that_closes_without_reading_a_large_response_does_not_disturb_the_server(server: ServerProcess):
    for _ in range(10):
        conn = server.connect()
        conn.send(request("/big.bin") * 4)
        conn.close()  # unread data: the server's writes hit EPIPE/ECONNRESET (SIGPIPE ignored?)
    time.sleep(0.2)
    assert_still_serving(server)


def test_client_that_connects_and_resets_immediately_does_not_disturb_the_server(server: ServerProcess):
    for _ in range(20):
        Connection(server.host, server.port).reset()
    assert_still_serving(server)
