"""RFC 9112's request syntax at its edges, on every backend: the Host rule (§3.2), versions
HTTP/1.2 to 1.9 (processed as 1.1, RFC 9110 §2.5), bare LF line ends (§2.2: accepted) and bare
CR (rejected). docs/interfaces.md, "HTTP behaviour worth knowing"."""

from __future__ import annotations

import pytest

from e2e_docroot import FILES
from e2e_server import CLOSE_PROMPTLY_S, ServerProcess, assert_still_serving

INDEX = FILES["/index.html"][0]


def exchange(server: ServerProcess, raw: bytes):
    """Sends `raw` on a new connection, reads one response, and sees whether the server then
    closes within CLOSE_PROMPTLY_S. Returns (response, closed)."""
    with server.connect() as conn:
        conn.send(raw)
        response = conn.read_response()
        closed = conn.wait_closed(CLOSE_PROMPTLY_S)[0]
    return response, closed


@pytest.mark.parametrize(
    "raw",
    [
        b"GET /index.html HTTP/1.1\r\n\r\n",
        b"GET /index.html HTTP/1.1\r\nUser-Agent: t\r\nConnection: keep-alive\r\n\r\n",
        b"GET http://127.0.0.1/index.html HTTP/1.1\r\n\r\n",  # absolute form needs Host too
        b"GET /index.html HTTP/1.9\r\n\r\n",  # processed as 1.1
    ],
    ids=["bare", "other-headers", "absolute-form", "http-1.9"],
)
def test_http11_request_without_host_is_400_and_closes(server: ServerProcess, raw: bytes):
    response, closed = exchange(server, raw)
    assert response.status == 400, f"{raw!r}: {response.describe()}"
    assert closed, f"{raw!r}: connection still open after the 400"
    assert_still_serving(server)


@pytest.mark.parametrize("version", ["HTTP/1.1", "HTTP/1.0"])
def test_two_host_fields_are_400_in_any_version(server: ServerProcess, version: str):
    raw = f"GET /index.html {version}\r\nHost: a\r\nhost: a\r\n\r\n".encode()
    response, closed = exchange(server, raw)
    assert response.status == 400, response.describe()
    assert closed
    assert_still_serving(server)


@pytest.mark.parametrize("value", ["a b", "a/b", "user@a", "a\\b"], ids=["space", "slash", "userinfo", "backslash"])
def test_host_that_is_not_a_host_and_port_is_400(server: ServerProcess, value: str):
    response, closed = exchange(server, f"GET /index.html HTTP/1.1\r\nHost: {value}\r\n\r\n".encode())
    assert response.status == 400, f"Host: {value!r}: {response.describe()}"
    assert closed


def test_http10_request_without_host_is_served(server: ServerProcess):
    response, closed = exchange(server, b"GET /index.html HTTP/1.0\r\n\r\n")
    assert response.status == 200 and response.body == INDEX, response.describe()
    assert closed, "HTTP/1.0 without keep-alive closes after the response"


@pytest.mark.parametrize("host", ["127.0.0.1", "example.org:8080", "[::1]:80", ""], ids=["ipv4", "name-port", "ipv6", "empty"])
def test_http11_request_with_one_valid_host_is_served(server: ServerProcess, host: str):
    # An empty Host is what a client sends for a target without an authority (RFC 9110 §7.2).
    with server.connect() as conn:
        conn.send(f"GET /index.html HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        response = conn.read_response()
        assert response.status == 200 and response.body == INDEX, f"Host: {host!r}: {response.describe()}"
        assert conn.is_open(), "an HTTP/1.1 response keeps the connection"


def test_http19_is_answered_as_http11_with_keep_alive(server: ServerProcess):
    with server.connect() as conn:
        conn.send(b"GET /index.html HTTP/1.9\r\nHost: x\r\n\r\nGET /plain.txt HTTP/1.9\r\nHost: x\r\n\r\n")
        first, second = conn.read_response(), conn.read_response()
    assert first.version == "HTTP/1.1" and first.status == 200 and first.body == INDEX, first.describe()
    assert first.header("Connection") is None, "1.9 is kept alive as 1.1 is"
    assert second.status == 200 and second.body == FILES["/plain.txt"][0], second.describe()


def test_bare_lf_line_ends_are_accepted(server: ServerProcess):
    with server.connect() as conn:
        conn.send(b"GET /index.html HTTP/1.1\nHost: x\n\nGET /plain.txt HTTP/1.1\r\nHost: x\n\r\n")
        first, second = conn.read_response(), conn.read_response()
    assert first.status == 200 and first.body == INDEX, first.describe()
    assert second.status == 200 and second.body == FILES["/plain.txt"][0], second.describe()


@pytest.mark.parametrize(
    "raw",
    [b"GET /index.html HTTP/1.1\rHost: x\r\n\r\n", b"GET /index.html HTTP/1.1\r\nHost: x\rX: y\r\n\r\n"],
    ids=["request-line", "header"],
)
def test_bare_cr_is_400(server: ServerProcess, raw: bytes):
    response, closed = exchange(server, raw)
    assert response.status == 400, response.describe()
    assert closed

