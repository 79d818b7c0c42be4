#!/usr/bin/python3
"""A stand-in for build/servers/httpd-<backend> that follows the server contract of
docs/interfaces.md: prints ``listening on HOST:PORT`` once listening, and on SIGTERM prints one
``{"stats": ...}`` line and exits 0. It answers ``GET /server-status`` with a JSON object of
counters as the real servers do (requests grows by 100 per status request) and 404 to anything
else; the fake loadgen never connects.

Environment: FAKE_PID_DIR (write <pid>.server there), FAKE_SERVER_MODE = normal | never_ready |
ignore_term | crash (exit 3 at once), FAKE_SERVER_CHILD=1 (fork one child into the group).
"""
import json
import os
import signal
import socket
import sys
import threading
import time

mode = os.environ.get("FAKE_SERVER_MODE", "normal")
pid_dir = os.environ.get("FAKE_PID_DIR")
if pid_dir:
    open(os.path.join(pid_dir, f"{os.getpid()}.server"), "w").write(" ".join(sys.argv))
if mode == "crash":
    print("fake server: crashing on purpose", file=sys.stderr)
    sys.exit(3)
if os.environ.get("FAKE_SERVER_CHILD") == "1":
    child = os.fork()
    if child == 0:
        if pid_dir:
            open(os.path.join(pid_dir, f"{os.getpid()}.server-child"), "w").write("child")
        signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
        while True:
            time.sleep(1)

sock = socket.socket()
sock.bind(("127.0.0.1", 0))
sock.listen(16)
name = os.path.basename(sys.argv[0]).replace("httpd-", "")


def stop(*_):
    print(json.dumps({"stats": {"backend": name, "requests": 1234, "connections": 10, "bytes_sent": 1,
                                "bytes_received": 1, "errors": 0, "uptime_s": 0.1}}), flush=True)
    sys.exit(0)


def serve() -> None:
    served = 0
    while True:
        conn, _ = sock.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                data += chunk
            if data.startswith(b"GET /server-status"):
                served += 100
                body = json.dumps({"requests": served, "user_switches": 0, "status_requests": served // 100}).encode()
                head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            else:
                body, head = b"not found\n", b"HTTP/1.1 404 Not Found\r\n"
            conn.sendall(head + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)


threading.Thread(target=serve, daemon=True).start()
signal.signal(signal.SIGTERM, signal.SIG_IGN if mode == "ignore_term" else stop)
signal.signal(signal.SIGINT, stop)
if mode != "never_ready":
    print(f"listening on 127.0.0.1:{sock.getsockname()[1]}", flush=True)
while True:
    time.sleep(1)
