"""Many clients at once: every backend holds hundreds of keep-alive connections."""

from __future__ import annotations

import selectors
import socket
import time

from e2e_client import ProtocolError, parse_head, request
from e2e_docroot import FILES, Docroot
from e2e_server import Backend, ServerProcess, assert_still_serving, suite_args

CONNECTIONS = 500
ROUNDS = ["/index.html", "/hello?name=c{i}", "/plain.txt", "/index.html"]
ROUND_TIMEOUT_S = 30.0


def expected_body(template: str, i: int) -> bytes:
    path = template.format(i=i)
    if path.startswith("/hello"):
        return f"<h1>Hello c{i}</h1>".encode()
    return FILES[path][0]


def complete_response(buffer: bytearray) -> tuple[int, bytes] | None:
    """(status, body) when `buffer` holds one whole response, else None."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    _, status, _, headers = parse_head(bytes(buffer[: end + 4]))
    lengths = [v for k, v in headers if k.lower() == "content-length"]
    if not lengths:
        raise ProtocolError(f"response without Content-Length on a keep-alive connection: {bytes(buffer[:end])!r}")
    total = end + 4 + int(lengths[0])
    if len(buffer) < total:
        return None
    if len(buffer) > total:
        raise ProtocolError(f"{len(buffer) - total} unexpected bytes after the response")
    return status, bytes(buffer[end + 4 : total])


def test_500_concurrent_keep_alive_connections_all_succeed(start_server, docroot: Docroot, backend: Backend):
    # Its own server with a long idle timeout: with a process or thread per connection, setting
    # up 500 of them may take longer than the suite's 2 s timeout on a slow (e.g. ASan) build,
    # and the first connections would then be closed, correctly, as idle.
    server = start_server(suite_args(docroot) + ["--idle-timeout", "60"])
    count = min(CONNECTIONS, backend.max_connections)
    socks: list[socket.socket] = []
    selector = selectors.DefaultSelector()
    try:
        for _ in range(count):
            sock = socket.create_connection((server.host, server.port), timeout=10)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            socks.append(sock)
        # Every round sends one request on every connection, then waits for all the answers:
        # all `count` connections are open and active at the same time.
        for template in ROUNDS:
            for i, sock in enumerate(socks):
                sock.sendall(request(template.format(i=i)))
            buffers = {sock.fileno(): bytearray() for sock in socks}
            index_of = {sock.fileno(): i for i, sock in enumerate(socks)}
            for sock in socks:
                sock.setblocking(False)
                selector.register(sock, selectors.EVENT_READ)
            pending = len(socks)
            deadline = time.monotonic() + ROUND_TIMEOUT_S
            while pending:
                remaining = deadline - time.monotonic()
                assert remaining > 0, (
                    f"round {template}: {pending} of {count} connections got no complete "
                    f"response within {ROUND_TIMEOUT_S}s"
                )
                for key, _ in selector.select(min(remaining, 1.0)):
                    sock = key.fileobj
                    fd = sock.fileno()
                    i = index_of[fd]
                    chunk = sock.recv(65536)
                    assert chunk, f"round {template}: connection #{i} closed by the server"
                    buffers[fd] += chunk
                    done = complete_response(buffers[fd])
                    if done is not None:
                        status, body = done
                        assert status == 200, f"round {template}: #{i} got {status}"
                        assert body == expected_body(template, i), f"round {template}: #{i} wrong body"
                        selector.unregister(sock)
                        pending -= 1
            for sock in socks:
                sock.setblocking(True)
                sock.settimeout(10)
    finally:
        selector.close()
        for sock in socks:
            sock.close()
    assert_still_serving(server)
    server.check_clean_exit(server.stop())


def test_burst_of_new_connections_is_accepted(server: ServerProcess):
    # 300 connects before the first request: the accept queue fills, nothing is refused.
    socks = [socket.create_connection((server.host, server.port), timeout=10) for _ in range(300)]
    try:
        for sock in socks:
            sock.sendall(request("/index.html", close=True))
        for i, sock in enumerate(socks):
            data = bytearray()
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
            assert data.startswith(b"HTTP/1.1 200") or data.startswith(b"HTTP/1.0 200"), f"#{i}: {bytes(data[:100])!r}"
            assert data.endswith(FILES["/index.html"][0]), f"#{i}: truncated response"
    finally:
        for sock in socks:
            sock.close()
