"""httpd-pipeline: WatPipe's stages as threads (accept, read, write-wait, --workers writers) with
bounded, batched queues between them. Pipelined responses come back in order under load (also
with the smallest batches and queues, which exercise every hand-off and back-pressure path),
real clients see no failures, and 10,000 keep-alive connections fit."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from backend_checks import (
    assert_holds_keep_alive_connections,
    need_descriptors,
    INDEX,
    concurrent_one_shot_requests,
    thread_count,
    wait_until,
)
from e2e_client import Connection, request
from e2e_docroot import FILES
from e2e_server import fetch

NAME = "pipeline"
MANY = 10_000


def mixed_requests(client: int, round_number: int) -> list[tuple[bytes, bool, int, bytes]]:
    """(request, is HEAD, expected status, expected body): small and large files (writev and
    sendfile), dynamic pages whose body names the request, a 404 and a HEAD, in one burst."""
    out = []
    for i in range(12):
        name = f"c{client}r{round_number}i{i}"
        kind = (client + round_number + i) % 6
        if kind == 0:
            out.append((request(f"/hello?name={name}"), False, 200, f"<h1>Hello {name}</h1>".encode()))
        elif kind == 1:
            out.append((request("/index.html"), False, 200, INDEX))
        elif kind == 2:
            out.append((request(f"/missing-{name}"), False, 404, None))
        elif kind == 3:
            out.append((request("/index.html", method="HEAD"), True, 200, b""))
        elif kind == 4:
            path = "/big.bin" if i % 4 == 0 else "/edge-at.bin"
            out.append((request(path), False, 200, FILES[path][0]))
        else:
            out.append((request("/plain.txt"), False, 200, FILES["/plain.txt"][0]))
    return out


def pipelined_clients_in_order(server, clients: int, rounds: int) -> list[str]:
    """`clients` threads each send `rounds` bursts of pipelined requests on one keep-alive
    connection and check every response, in order. Returns the failures."""
    failures: list[str] = []

    def client(number: int) -> None:
        try:
            with Connection(server.host, server.port, timeout=30) as conn:
                for r in range(rounds):
                    burst = mixed_requests(number, r)
                    conn.send(b"".join(raw for raw, _, _, _ in burst))
                    for k, (raw, head, status, body) in enumerate(burst):
                        response = conn.read_response(head_request=head)
                        if response.status != status or (body is not None and response.body != body):
                            failures.append(f"client {number} round {r} response {k}: wanted {status} "
                                            f"for {raw.split(b' ')[1]!r}, got {response.status} "
                                            f"{response.body[:60]!r}")
                            return
        except Exception as exc:  # noqa: BLE001 — reported with the client number
            failures.append(f"client {number}: {exc!r}")

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return failures


@pytest.mark.parametrize("settings", [[], ["--set", "batch=1", "--set", "queue=1"],
                                      ["--set", "batch=64", "--set", "queue=4", "--workers", "1"]],
                         ids=["defaults", "batch1-queue1", "batch64-queue4-1writer"])
def test_pipelined_responses_stay_in_order_under_load(launch, settings: list[str]):
    server = launch(NAME, *settings)
    failures = pipelined_clients_in_order(server, clients=48, rounds=8)
    assert not failures, "\n".join(failures[:10])
    stats = server.check_clean_exit(server.stop())
    assert stats["requests"] == 48 * 8 * 12, stats


def test_has_one_thread_per_stage_and_workers_writers(launch):
    server = launch(NAME, "--workers", "6")
    # main (waits for the stop) + accept + read + write-wait + 6 writers
    assert wait_until(lambda: thread_count(server.pid) == 10, 5), thread_count(server.pid)
    for _ in range(100):
        assert fetch(server, request("/index.html", close=True)).status == 200
    assert thread_count(server.pid) == 10, "threads are created per connection"
    server.check_clean_exit(server.stop())


def test_a_client_that_stops_reading_does_not_stall_the_others(launch):
    server = launch(NAME, "--workers", "1")
    stuck = server.connect()
    try:
        stuck.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck.send(request("/big.bin") * 50)  # its output waits in stage 3
        time.sleep(0.3)
        started = time.monotonic()
        for _ in range(50):
            assert fetch(server, request("/index.html")).body == INDEX
        assert time.monotonic() - started < 10
    finally:
        stuck.close()
    server.check_clean_exit(server.stop())


def test_burst_of_500_concurrent_requests_with_tiny_queues_all_succeed(launch):
    server = launch(NAME, "--set", "queue=2", "--set", "batch=2")
    statuses = concurrent_one_shot_requests(server, 500)
    assert statuses.count(200) == 500, f"{500 - statuses.count(200)} of 500 failed"
    stats = server.check_clean_exit(server.stop())
    assert stats["errors"] == 0 and stats["connections"] == 500, stats


def test_holds_10000_concurrent_keep_alive_connections(launch):
    need_descriptors(MANY)
    server = launch(NAME)
    assert_holds_keep_alive_connections(server, MANY)
