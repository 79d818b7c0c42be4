"""HTTP/1.x conformance of every backend: what a well-behaved client sees."""

from __future__ import annotations

import email.utils
import re
import threading
import time
import urllib.parse

import pytest

from e2e_client import Connection, request
from e2e_docroot import FILES, INDEX_SIZE
from e2e_server import CLOSE_PROMPTLY_S, ServerProcess, fetch

INDEX = FILES["/index.html"][0]
RFC1123 = re.compile(
    r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} "
    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$"
)


def quoted(path: str) -> str:
    return urllib.parse.quote(path, safe="/")


def assert_serves(response, url_path: str) -> None:
    expected = FILES[url_path][0]
    assert response.status == 200, f"{url_path}: {response.describe()}"
    assert response.header("Content-Length") == str(len(expected)), response.describe()
    assert response.body == expected, f"{url_path}: body differs ({len(response.body)} bytes)"


@pytest.mark.parametrize("url_path", sorted(FILES))
def test_get_serves_each_file_byte_exact_with_content_length(server: ServerProcess, url_path: str):
    assert_serves(fetch(server, request(quoted(url_path))), url_path)


def test_index_page_is_305_bytes(server: ServerProcess):
    response = fetch(server, request("/index.html"))
    assert response.status == 200
    assert len(response.body) == INDEX_SIZE


@pytest.mark.parametrize("url_path", sorted(FILES))
def test_content_type_follows_extension(server: ServerProcess, url_path: str):
    allowed = FILES[url_path][1]
    content_type = fetch(server, request(quoted(url_path))).header("Content-Type")
    assert content_type is not None, f"{url_path}: no Content-Type"
    media_type = content_type.split(";")[0].strip().lower()
    assert media_type in allowed, f"{url_path}: Content-Type {content_type!r}, want one of {allowed}"


@pytest.mark.parametrize("url_path", ["/index.html", "/edge-at.bin", "/big.bin"])
def test_head_has_content_length_but_no_body(server: ServerProcess, url_path: str):
    # HEAD then GET on one connection: if the HEAD leaked a body, the second read would find
    # body bytes instead of a status line.
    with server.connect() as conn:
        conn.send(request(url_path, method="HEAD"))
        head = conn.read_response(head_request=True)
        conn.send(request("/plain.txt"))
        after = conn.read_response()
    assert head.status == 200, head.describe()
    assert head.header("Content-Length") == str(len(FILES[url_path][0])), head.describe()
    assert head.header("Content-Type") is not None
    assert head.header("Date") is not None
    assert_serves(after, "/plain.txt")


def test_head_and_pipelined_get_of_large_file_do_not_mix(server: ServerProcess):
    with server.connect() as conn:
        conn.send(request("/big.bin", method="HEAD") + request("/big.bin") + request("/index.html"))
        head = conn.read_response(head_request=True)
        big = conn.read_response()
        index = conn.read_response()
    assert head.status == 200 and head.body == b""
    assert_serves(big, "/big.bin")
    assert_serves(index, "/index.html")


def test_date_header_is_rfc1123_and_current(server: ServerProcess):
    response = fetch(server, request("/index.html"))
    dates = response.header_values("Date")
    assert len(dates) == 1, f"want exactly one Date header: {response.head!r}"
    assert RFC1123.match(dates[0]), f"Date {dates[0]!r} is not RFC 1123 (IMF-fixdate)"
    sent = email.utils.parsedate_to_datetime(dates[0]).timestamp()
    assert abs(sent - time.time()) < 5, f"Date {dates[0]!r} is not the current time"


def test_http11_keep_alive_serves_several_requests_on_one_connection(server: ServerProcess):
    paths = ["/index.html", "/plain.txt", "/big.bin", "/style.css", "/index.html"] * 2
    with server.connect() as conn:
        for path in paths:
            conn.send(request(path))
            response = conn.read_response()
            assert_serves(response, path)
            assert (response.header("Connection") or "").lower() != "close", response.describe()
        assert conn.is_open(), "server closed a keep-alive HTTP/1.1 connection"


def test_http11_connection_close_closes_after_the_response(server: ServerProcess):
    with server.connect() as conn:
        conn.send(request("/index.html", close=True))
        response = conn.read_response()
        closed, extra, _ = conn.wait_closed(CLOSE_PROMPTLY_S)
    assert_serves(response, "/index.html")
    assert closed, f"connection still open {CLOSE_PROMPTLY_S} s after a 'Connection: close' response"
    assert extra == b"", f"bytes after the response: {extra[:100]!r}"


def test_http11_connection_close_response_says_close(server: ServerProcess):
    response = fetch(server, request("/index.html", close=True))
    assert (response.header("Connection") or "").lower() == "close", response.describe()


@pytest.mark.parametrize("value", ["close", "CLOSE", "Close", "Upgrade, close", "keep-alive, close"])
def test_connection_header_name_and_value_are_case_insensitive(server: ServerProcess, value: str):
    with server.connect() as conn:
        conn.send(f"GET /index.html HTTP/1.1\r\nhost: x\r\nconnection: {value}\r\n\r\n".encode())
        response = conn.read_response()
        closed, _, _ = conn.wait_closed(CLOSE_PROMPTLY_S)
    assert_serves(response, "/index.html")
    assert closed, f"'connection: {value}' did not close the connection"


def test_http10_closes_by_default(server: ServerProcess):
    with server.connect() as conn:
        conn.send(b"GET /index.html HTTP/1.0\r\n\r\n")
        response = conn.read_response()
        closed, extra, _ = conn.wait_closed(CLOSE_PROMPTLY_S)
    assert_serves(response, "/index.html")
    assert response.version in ("HTTP/1.0", "HTTP/1.1")
    assert closed, f"HTTP/1.0 request without keep-alive: connection still open after {CLOSE_PROMPTLY_S} s"
    assert extra == b""


def test_http10_keep_alive_keeps_connection_open_and_says_so(server: ServerProcess):
    with server.connect() as conn:
        for path in ["/index.html", "/plain.txt", "/big.bin"]:
            conn.send(f"GET {path} HTTP/1.0\r\nConnection: keep-alive\r\n\r\n".encode())
            response = conn.read_response()
            assert_serves(response, path)
            assert (response.header("Connection") or "").lower() == "keep-alive", (
                f"HTTP/1.0 keep-alive response lacks 'Connection: keep-alive': {response.head!r}"
            )
        assert conn.is_open(), "server closed an HTTP/1.0 keep-alive connection"
        conn.send(b"GET /style.css HTTP/1.0\r\n\r\n")
        assert_serves(conn.read_response(), "/style.css")
        closed, _, _ = conn.wait_closed(CLOSE_PROMPTLY_S)
        assert closed, "HTTP/1.0 request without keep-alive did not close the connection"


def pipelined_paths(count: int) -> list[str]:
    """A mix of static files and uniquely named hello pages, so order is checkable."""
    cycle = ["/index.html", "/hello?name=n{i}", "/plain.txt", "/hello?name=n{i}", "/style.css"]
    return [cycle[i % len(cycle)].format(i=i) for i in range(count)]


def assert_pipelined_response(response, path: str, index: int) -> None:
    if path.startswith("/hello"):
        name = path.split("=", 1)[1]
        assert response.status == 200, f"#{index} {path}: {response.describe()}"
        assert response.body == f"<h1>Hello {name}</h1>".encode(), (
            f"response #{index} out of order: for {path} got {response.body!r}"
        )
    else:
        assert response.status == 200, f"#{index} {path}: {response.describe()}"
        assert response.body == FILES[path][0], f"response #{index} out of order (for {path})"


def test_pipelined_requests_are_answered_completely_and_in_order(server: ServerProcess):
    paths = pipelined_paths(50)
    with server.connect() as conn:
        conn.send(b"".join(request(p) for p in paths))
        for i, path in enumerate(paths):
            assert_pipelined_response(conn.read_response(), path, i)
        assert conn.is_open()


def test_pipelined_large_files_are_answered_in_order(server: ServerProcess):
    paths = ["/big.bin", "/index.html", "/edge-at.bin", "/edge-below.bin", "/big.bin", "/plain.txt"]
    with server.connect() as conn:
        conn.send(b"".join(request(p) for p in paths))
        for path in paths:
            assert_serves(conn.read_response(), path)


def test_pipelined_burst_larger_than_socket_buffers_is_answered_in_order(server: ServerProcess):
    # The client writes 2000 requests while reading; the server must apply back-pressure
    # (stop reading while its writes block) without losing or reordering anything.
    paths = pipelined_paths(2000)
    payload = b"".join(request(p) for p in paths)
    with server.connect() as conn:
        errors: list[BaseException] = []

        def send() -> None:
            try:
                conn.send(payload)
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        for i, path in enumerate(paths):
            assert_pipelined_response(conn.read_response(), path, i)
        sender.join(10)
        assert not errors, f"sending the burst failed: {errors[0]!r}"


def test_last_pipelined_request_with_connection_close_ends_the_connection(server: ServerProcess):
    with server.connect() as conn:
        conn.send(request("/index.html") + request("/plain.txt") + request("/style.css", close=True))
        for path in ["/index.html", "/plain.txt", "/style.css"]:
            assert_serves(conn.read_response(), path)
        closed, extra, _ = conn.wait_closed(CLOSE_PROMPTLY_S)
    assert closed and extra == b""


def test_large_file_is_byte_exact_repeatedly_on_one_connection(server: ServerProcess):
    with server.connect() as conn:
        for path in ["/big.bin", "/big.bin", "/index.html", "/edge-at.bin", "/big.bin"]:
            conn.send(request(path))
            assert_serves(conn.read_response(), path)


def test_large_files_read_late_are_byte_exact(server: ServerProcess):
    # 2.4 MB of pipelined responses that the client does not read at first: the socket buffers
    # fill, the server's writes (and sendfile) come up short and must resume exactly.
    paths = ["/big.bin", "/index.html"] * 8
    with server.connect() as conn:
        conn.send(b"".join(request(p) for p in paths))
        time.sleep(0.5)
        for path in paths:
            assert_serves(conn.read_response(), path)


@pytest.mark.parametrize(
    ("query", "greeting"),
    [
        ("name=World", "World"),
        ("name=a+b", "a b"),
        ("name=%41%42c", "ABc"),
        ("name=%3Cscript%3E%26%22%27", "&lt;script&gt;&amp;&quot;&#39;"),
        ("name=%3Cb%3Ebold%3C%2Fb%3E", "&lt;b&gt;bold&lt;/b&gt;"),
        ("name=%26lt%3B", "&amp;lt;"),
        ("name=Bob&x=1", "Bob"),
    ],
    ids=["plain", "plus-is-space", "percent-decoded", "script-quote-amp", "tags", "no-double-decode", "other-params"],
)
def test_hello_page_greets_by_decoded_and_escaped_name(server: ServerProcess, query: str, greeting: str):
    response = fetch(server, request(f"/hello?{query}"))
    expected = f"<h1>Hello {greeting}</h1>".encode()
    assert response.status == 200, response.describe()
    assert response.body == expected, f"GET /hello?{query}: want {expected!r}, got {response.body!r}"
    assert response.header("Content-Length") == str(len(expected))
    assert (response.header("Content-Type") or "").lower().startswith("text/html")


def test_hello_page_escapes_a_name_that_grows_fourfold(server: ServerProcess):
    # 1000 '<' become 4000 bytes of '&lt;': the response builder must size the page for the
    # escaped name, not the raw one. (The core caps decoded names at 1024 bytes.)
    response = fetch(server, request("/hello?name=" + "%3C" * 1000))
    expected = ("<h1>Hello " + "&lt;" * 1000 + "</h1>").encode()
    assert response.status == 200, response.describe()
    assert response.body == expected, f"{len(response.body)} bytes, want {len(expected)}"
    assert response.header("Content-Length") == str(len(expected))


def test_hello_page_with_a_name_over_the_limit_is_a_clear_client_error(server: ServerProcess):
    with server.connect() as conn:
        conn.send(request("/hello?name=" + "%22" * 2500) + request("/index.html"))
        response = conn.read_response()
        assert 400 <= response.status < 500, response.describe()
        if (response.header("Connection") or "").lower() != "close":
            assert_serves(conn.read_response(), "/index.html")


def test_hello_page_answers_head_without_body(server: ServerProcess):
    with server.connect() as conn:
        conn.send(request("/hello?name=h", method="HEAD") + request("/hello?name=g"))
        head = conn.read_response(head_request=True)
        after = conn.read_response()
    assert head.status == 200 and head.header("Content-Length") == str(len(b"<h1>Hello h</h1>"))
    assert after.body == b"<h1>Hello g</h1>", after.describe()


@pytest.mark.parametrize(
    ("target", "url_path"),
    [
        ("/file%20with%20space.txt", "/file with space.txt"),
        ("/%69ndex.html", "/index.html"),
        ("/%69%6E%64%65%78%2E%68%74%6D%6C", "/index.html"),
        ("/subdir/page%2Ehtml", "/subdir/page.html"),
    ],
)
def test_percent_encoded_path_serves_the_decoded_file(server: ServerProcess, target: str, url_path: str):
    assert_serves(fetch(server, request(target)), url_path)


@pytest.mark.parametrize(("target", "url_path"), [("/", "/index.html"), ("/subdir/", "/subdir/index.html")])
def test_directory_path_serves_its_index_html(server: ServerProcess, target: str, url_path: str):
    assert_serves(fetch(server, request(target)), url_path)


@pytest.mark.parametrize("target", ["/index.html?x=1", "/index.html?", "/./index.html", "/subdir/../index.html"])
def test_equivalent_targets_serve_the_same_file(server: ServerProcess, target: str):
    assert_serves(fetch(server, request(target)), "/index.html")


def test_missing_file_is_404_and_connection_stays_usable(server: ServerProcess):
    with server.connect() as conn:
        conn.send(request("/no-such-file.html"))
        missing = conn.read_response()
        assert missing.status == 404, missing.describe()
        assert missing.header("Content-Length") is not None, "404 without Content-Length"
        conn.send(request("/index.html"))
        assert_serves(conn.read_response(), "/index.html")
        conn.send(request("/subdir/missing/deeper.txt"))
        assert conn.read_response().status == 404


def test_head_of_missing_file_is_404_without_body(server: ServerProcess):
    with server.connect() as conn:
        conn.send(request("/nope", method="HEAD") + request("/index.html"))
        missing = conn.read_response(head_request=True)
        after = conn.read_response()
    assert missing.status == 404
    assert_serves(after, "/index.html")


def test_request_sent_one_byte_at_a_time_is_answered(server: ServerProcess):
    with server.connect() as conn:
        conn.send_slowly(request("/index.html", headers={"User-Agent": "slow", "Accept": "*/*"}))
        assert_serves(conn.read_response(), "/index.html")
        conn.send_slowly(request("/plain.txt"), chunk=7)
        assert_serves(conn.read_response(), "/plain.txt")


def test_request_split_inside_crlf_crlf_is_answered(server: ServerProcess):
    raw = request("/index.html")
    with server.connect() as conn:
        for cut in (len(raw) - 3, len(raw) - 2, len(raw) - 1):
            conn.send(raw[:cut])
            time.sleep(0.05)
            conn.send(raw[cut:])
            assert_serves(conn.read_response(), "/index.html")


def test_many_headers_within_limit_are_accepted(server: ServerProcess):
    headers = {f"X-Header-{i}": "v" * 40 for i in range(60)}  # ~3.5 KiB, under 8 KiB
    assert_serves(fetch(server, request("/index.html", headers=headers)), "/index.html")


def test_successive_connections_each_get_served(server: ServerProcess):
    for _ in range(30):
        conn = Connection(server.host, server.port)
        try:
            conn.send(request("/index.html", close=True))
            assert_serves(conn.read_response(), "/index.html")
        finally:
            conn.close()
