"""Helpers of the loadgen end-to-end tests: real servers on loopback and tiny scripted servers
that misbehave on purpose. (A uniquely named module: other test directories have a conftest.py
too, so `from conftest import ...` would be ambiguous when pytest runs them together.)"""

from __future__ import annotations

import os
import selectors
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

REPO = Path(__file__).resolve().parents[2]
INDEX_HTML = (
    b"<html><head><title>httpbench</title></head><body>"
    + b"x" * (305 - 64)
    + b"</body></html>\n"
)
assert len(INDEX_HTML) == 305


def build_dir() -> Path:
    """The build directory under test: $HTTPBENCH_BUILD, default <repo>/build."""
    return Path(os.environ.get("HTTPBENCH_BUILD", REPO / "build"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen | None = None, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s")


def stop_process_group(proc: subprocess.Popen) -> None:
    """Stops a server started with start_new_session=True: SIGTERM to its group, then SIGKILL."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


@dataclass
class Server:
    name: str
    port: int

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def make_docroot(base: Path) -> Path:
    """index.html (the 305-byte page) and big.bin (102,400 bytes) under base/www."""
    root = base / "www"
    root.mkdir()
    (root / "index.html").write_bytes(INDEX_HTML)
    (root / "big.bin").write_bytes(bytes(range(256)) * 400)
    # h2o drops to 'nobody' when started as root: everything it reads must be world-readable.
    for p in (base, root, *root.iterdir()):
        p.chmod(0o755)
    return root


def start_h2o(base: Path, port: int, root: Path) -> subprocess.Popen:
    conf = base / "h2o.conf"
    conf.write_text(
        f"listen:\n  host: 127.0.0.1\n  port: {port}\nnum-threads: 1\n"
        f"hosts:\n  default:\n    paths:\n      /:\n        file.dir: {root}\n"
    )
    return subprocess.Popen(["h2o", "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=open(base / "h2o.log", "wb"), start_new_session=True)


def start_lighttpd(base: Path, port: int, root: Path) -> subprocess.Popen:
    conf = base / "lighttpd.conf"
    conf.write_text(
        f'server.bind = "127.0.0.1"\nserver.port = {port}\nserver.document-root = "{root}"\n'
        f"server.max-keep-alive-requests = 1000000\nserver.max-fds = 16384\n"
        f'server.errorlog = "{base}/lighttpd-error.log"\nindex-file.names = ("index.html")\n'
    )
    return subprocess.Popen(["lighttpd", "-D", "-f", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=open(base / "lighttpd.log", "wb"), start_new_session=True)


Responder = Callable[[int], "tuple[bytes, float, bool]"]
"""Given the request number (from 0, over all connections), returns (bytes to send, seconds to
stall before sending, close the connection afterwards)."""


def ok_response(body: bytes = b"hello world", close: bool = False) -> bytes:
    head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n"
    if close:
        head += "Connection: close\r\n"
    return head.encode() + b"\r\n" + body


@dataclass(kw_only=True)
class LoopbackServer:
    """What the scripted servers below share: a listening socket on 127.0.0.1 with an ephemeral
    port, the daemon threads that serve it, and the stop flag they poll. A subclass's start()
    calls _listen() and _spawn() and returns self; stop() ends every thread."""

    port: int = 0
    _sock: socket.socket | None = field(default=None, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _threads: list[threading.Thread] = field(default_factory=list, repr=False)

    def _listen(self, backlog: int, timeout: float) -> socket.socket:
        """Listens on 127.0.0.1 with `backlog`; `timeout` is the listener's accept timeout in
        seconds (0: non-blocking). Sets `port`."""
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(backlog)
        self._sock.settimeout(timeout)
        self.port = self._sock.getsockname()[1]
        return self._sock

    def _spawn(self, target: Callable[..., None], *args: object) -> None:
        """Runs target(*args) in a daemon thread that stop() joins."""
        t = threading.Thread(target=target, args=args, daemon=True)
        t.start()
        self._threads.append(t)

    def _accepted(self) -> Iterator[socket.socket]:
        """Connections as a blocking listener with a timeout accepts them, until stop()."""
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            yield conn

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        self._stop.set()
        for t in list(self._threads):
            t.join(timeout=5)
        if self._sock is not None:
            self._sock.close()


@dataclass
class ScriptedServer(LoopbackServer):
    """A single-threaded server: reads requests, answers each per `responder`, in arrival order.
    A stall blocks every connection, like an overloaded single-process server."""

    responder: Responder
    requests: int = 0

    def start(self) -> "ScriptedServer":
        self._listen(1024, timeout=0.0)
        self._spawn(self._run)
        return self

    def _run(self) -> None:
        assert self._sock is not None
        sel = selectors.DefaultSelector()
        sel.register(self._sock, selectors.EVENT_READ, None)
        pending: dict[socket.socket, bytes] = {}

        def drop(conn: socket.socket) -> None:
            sel.unregister(conn)
            pending.pop(conn, None)
            conn.close()

        while not self._stop.is_set():
            for key, _ in sel.select(timeout=0.05):
                if key.data is None:
                    try:
                        conn, _ = self._sock.accept()
                    except BlockingIOError:
                        continue
                    conn.setblocking(True)
                    pending[conn] = b""
                    sel.register(conn, selectors.EVENT_READ, "conn")
                    continue
                conn = key.fileobj  # type: ignore[assignment]
                try:
                    data = conn.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    drop(conn)
                    continue
                pending[conn] += data
                close = False
                while b"\r\n\r\n" in pending[conn] and not close:
                    _, pending[conn] = pending[conn].split(b"\r\n\r\n", 1)
                    payload, stall, close = self.responder(self.requests)
                    self.requests += 1
                    if stall:
                        time.sleep(stall)
                    try:
                        conn.sendall(payload)
                    except OSError:
                        close = True
                if close:
                    drop(conn)
        for key in list(sel.get_map().values()):
            if key.data == "conn":
                key.fileobj.close()  # type: ignore[union-attr]
        sel.close()


@dataclass
class Request:
    """A request as a ThreadedServer received it."""

    at: float  # time.monotonic() when the server took it up
    connection: int
    method: str
    target: str
    body: bytes


def no_delay(connection: int, request: int) -> float:
    """ThreadedServer's default: every response at once."""
    return 0.0


@dataclass
class ThreadedServer(LoopbackServer):
    """A server with one thread per connection, so a delayed response delays only its own
    connection. It reads requests with their Content-Length bodies and logs them.
    `delay(connection_number, request_number_on_it)` gives the seconds to wait before
    answering; every response is ok_response() (without the body for HEAD). A response with
    "Connection: close" closes the connection after it."""

    delay: Callable[[int, int], float] = no_delay
    chunks: Callable[[int, int], list[tuple[float, bytes]]] | None = None
    """If given: (seconds to wait, bytes to send) pieces that make up the answer instead."""
    log: list["Request"] = field(default_factory=list)
    """Every request received, in order."""

    def start(self) -> "ThreadedServer":
        self._listen(1024, timeout=0.05)
        self._spawn(self._accept_loop)
        return self

    def _accept_loop(self) -> None:
        for number, conn in enumerate(self._accepted()):
            self._spawn(self._serve, conn, number)

    def _serve(self, conn: socket.socket, number: int) -> None:
        conn.settimeout(0.05)
        buffered = b""
        served = 0

        def more() -> bool:
            nonlocal buffered
            while not self._stop.is_set():
                try:
                    data = conn.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    return False
                buffered += data
                return bool(data)
            return False

        with conn:
            while True:
                while b"\r\n\r\n" not in buffered:
                    if not more():
                        return
                head, buffered = buffered.split(b"\r\n\r\n", 1)
                lines = head.split(b"\r\n")
                method, target = lines[0].split(b" ")[:2]
                length = 0
                for line in lines[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                while len(buffered) < length:
                    if not more():
                        return
                body, buffered = buffered[:length], buffered[length:]
                self.log.append(Request(time.monotonic(), number, method.decode(),
                                        target.decode(), body))
                if self.chunks is not None:
                    pieces = self.chunks(number, served)
                else:
                    response = ok_response()
                    if method == b"HEAD":
                        response = response[:response.index(b"\r\n\r\n") + 4]
                    pieces = [(self.delay(number, served), response)]
                served += 1
                for wait, payload in pieces:
                    if wait and self._stop.wait(wait):
                        return
                    try:
                        conn.sendall(payload)
                    except OSError:
                        return
                if b"\r\nConnection: close\r\n" in pieces[-1][1]:
                    return


@dataclass
class SlowAcceptServer(LoopbackServer):
    """The mechanism of Kerneis & Chroboczek's Fig. 1(a): a listen backlog of `backlog` and
    `workers` threads, each accepting one connection, answering its one request after
    `service_s` and closing it. At most `workers` connections are served at a time; the accept
    queue holds a few more; further SYNs are dropped and the clients retry them after 1 s, 3 s…"""

    workers: int
    backlog: int
    service_s: float

    def start(self) -> "SlowAcceptServer":
        self._listen(self.backlog, timeout=0.05)
        for _ in range(self.workers):
            self._spawn(self._work)
        return self

    def _work(self) -> None:
        for conn in self._accepted():
            with conn:
                conn.settimeout(1.0)
                try:
                    data = b""
                    while b"\r\n\r\n" not in data:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                    if self._stop.wait(self.service_s):
                        return
                    conn.sendall(ok_response(close=True))
                except OSError:
                    pass
