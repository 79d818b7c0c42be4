"""A tiny, strict HTTP/1.x client over raw sockets for the end-to-end suite.

The suite must be able to send bytes no library would send (NUL bytes, 9 KiB request lines,
half requests, pipelined batches) and to see exactly what came back, so this module speaks to
the socket directly. Every socket operation is bounded by a timeout: a server that hangs makes
a test fail with a message, never makes the suite hang.
"""

from __future__ import annotations

import errno
import select
import socket
import struct
import time
from dataclasses import dataclass, field

#: Default bound on any single socket operation, in seconds. Generous because the two CPUs are
#: shared with other work; a correct server answers in milliseconds.
DEFAULT_TIMEOUT_S = 10.0

#: Guard against a server that never ends its header block.
MAX_HEAD_BYTES = 64 * 1024


class ProtocolError(AssertionError):
    """The server sent something that is not a well-formed HTTP/1.x response."""


@dataclass
class Response:
    """One parsed response. `head` is the raw status line + headers, including the blank line."""

    version: str
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    head: bytes
    #: True when the body was delimited by the connection closing (no Content-Length).
    body_until_close: bool = False

    def header(self, name: str) -> str | None:
        """The value of the first header called `name` (case-insensitive), or None."""
        lowered = name.lower()
        for key, value in self.headers:
            if key.lower() == lowered:
                return value
        return None

    def header_values(self, name: str) -> list[str]:
        lowered = name.lower()
        return [value for key, value in self.headers if key.lower() == lowered]

    def describe(self) -> str:
        """Short text for assertion messages."""
        body = self.body if len(self.body) <= 200 else self.body[:200] + b"..."
        return f"{self.head!r} + body({len(self.body)} bytes) {body!r}"


@dataclass
class Connection:
    """One client TCP connection with a read buffer that survives across pipelined responses."""

    host: str
    port: int
    timeout: float = DEFAULT_TIMEOUT_S
    sock: socket.socket = field(init=False)
    buffer: bytearray = field(init=False, default_factory=bytearray)
    #: Every byte received on this connection, for "the secret never appears" checks.
    received: bytearray = field(init=False, default_factory=bytearray)

    def __post_init__(self) -> None:
        self.sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        self.sock.settimeout(self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # -- sending -------------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_slowly(self, data: bytes, chunk: int = 1, pause_s: float = 0.002) -> None:
        """Sends `data` in `chunk`-byte writes with a pause between them (exercises resumable
        parsing over real reads)."""
        for offset in range(0, len(data), chunk):
            self.sock.sendall(data[offset : offset + chunk])
            time.sleep(pause_s)

    # -- receiving -----------------------------------------------------------------------------

    def _recv_more(self, what: str) -> bool:
        """Appends the next bytes to the buffer. Returns False on orderly EOF."""
        try:
            chunk = self.sock.recv(256 * 1024)
        except socket.timeout as exc:
            raise AssertionError(
                f"timed out after {self.timeout}s waiting for {what}; "
                f"buffered so far: {bytes(self.buffer[:300])!r}"
            ) from exc
        except ConnectionResetError as exc:
            raise AssertionError(
                f"connection reset by the server while waiting for {what}; "
                f"buffered so far: {bytes(self.buffer[:300])!r}"
            ) from exc
        if not chunk:
            return False
        self.buffer += chunk
        self.received += chunk
        return True

    def read_response(self, head_request: bool = False) -> Response:
        """Reads exactly one response. `head_request`: it answers a HEAD, so it has no body
        whatever Content-Length says."""
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end >= 0:
                break
            if len(self.buffer) > MAX_HEAD_BYTES:
                raise ProtocolError(f"no end of header block in {MAX_HEAD_BYTES} bytes")
            if not self._recv_more("a response header"):
                raise ProtocolError(
                    "connection closed before a complete response header; "
                    f"got {bytes(self.buffer)!r}"
                )
        head = bytes(self.buffer[: end + 4])
        del self.buffer[: end + 4]
        version, status, reason, headers = parse_head(head)

        no_body = head_request or status in (204, 304) or 100 <= status < 200
        length_text = None
        for key, value in headers:
            if key.lower() == "content-length":
                length_text = value
        if no_body:
            return Response(version, status, reason, headers, b"", head)
        if length_text is None:
            # Body delimited by close (RFC 9112 §6.3 rule 8).
            while self._recv_more("a close-delimited body"):
                pass
            body = bytes(self.buffer)
            self.buffer.clear()
            return Response(version, status, reason, headers, body, head, body_until_close=True)
        if not length_text.isdigit():
            raise ProtocolError(f"bad Content-Length {length_text!r} in {head!r}")
        length = int(length_text)
        while len(self.buffer) < length:
            if not self._recv_more(f"{length} body bytes"):
                raise ProtocolError(
                    f"connection closed after {len(self.buffer)} of {length} body bytes; "
                    f"head {head!r}"
                )
        body = bytes(self.buffer[:length])
        del self.buffer[:length]
        return Response(version, status, reason, headers, body, head)

    def read_until_close(self, timeout: float | None = None) -> tuple[bytes, str]:
        """Reads everything until the peer closes. Returns (bytes, how) where how is "eof",
        "reset" or "timeout"."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        data = bytearray(self.buffer)
        self.buffer.clear()
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return bytes(data), "timeout"
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(256 * 1024)
            except socket.timeout:
                return bytes(data), "timeout"
            except ConnectionResetError:
                return bytes(data), "reset"
            finally:
                self.sock.settimeout(self.timeout)
            if not chunk:
                return bytes(data), "eof"
            data += chunk
            self.received += chunk

    def wait_closed(self, timeout: float) -> tuple[bool, bytes, float]:
        """Waits up to `timeout` for the server to close. Returns (closed, extra bytes received,
        seconds waited)."""
        started = time.monotonic()
        data, how = self.read_until_close(timeout)
        return how in ("eof", "reset"), data, time.monotonic() - started

    def is_open(self, wait_s: float = 0.2) -> bool:
        """True when the server has not closed (nor sent anything) within `wait_s`."""
        readable, _, _ = select.select([self.sock], [], [], wait_s)
        if not readable:
            return True
        try:
            chunk = self.sock.recv(1, socket.MSG_PEEK)
        except ConnectionResetError:
            return False
        return bool(chunk)

    # -- closing -------------------------------------------------------------------------------

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def reset(self) -> None:
        """Closes with SO_LINGER 0: the kernel sends RST instead of FIN."""
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close()

    def __enter__(self) -> "Connection":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def parse_head(head: bytes) -> tuple[str, int, str, list[tuple[str, str]]]:
    """Parses a status line and header block (ending in CRLF CRLF) strictly."""
    lines = head[:-4].split(b"\r\n")
    status_line = lines[0].decode("latin-1")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise ProtocolError(f"bad status line {status_line!r}")
    version, status = parts[0], int(parts[1])
    if len(parts[1]) != 3:
        raise ProtocolError(f"status code is not 3 digits: {status_line!r}")
    reason = parts[2] if len(parts) == 3 else ""
    headers: list[tuple[str, str]] = []
    for raw in lines[1:]:
        line = raw.decode("latin-1")
        if ":" not in line or line[0] in " \t":
            raise ProtocolError(f"bad header line {line!r} in {head!r}")
        key, value = line.split(":", 1)
        if key != key.strip() or not key:
            raise ProtocolError(f"bad header name {key!r} in {head!r}")
        headers.append((key, value.strip(" \t")))
    return version, status, reason, headers


def request(
    path: str,
    method: str = "GET",
    version: str = "HTTP/1.1",
    headers: dict[str, str] | None = None,
    close: bool = False,
) -> bytes:
    """Builds request bytes. A Host header is added for HTTP/1.1 unless given."""
    lines = [f"{method} {path} {version}"]
    all_headers = dict(headers or {})
    if version == "HTTP/1.1" and not any(k.lower() == "host" for k in all_headers):
        all_headers["Host"] = "127.0.0.1"
    if close:
        all_headers["Connection"] = "close"
    lines += [f"{key}: {value}" for key, value in all_headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def is_connection_closed_error(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in (
        errno.ECONNRESET,
        errno.EPIPE,
        errno.ECONNABORTED,
    )
