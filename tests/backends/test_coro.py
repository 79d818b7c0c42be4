"""httpd-coro: one C++20 coroutine per connection on one epoll loop (CPC's threaded code compiled
to event handlers). A suspended connection is its coroutine frame and nothing else: no stack, no
thread. So an idle keep-alive connection costs well under 1 KiB, frames are freed when their
connection ends, one connection that stops reading never stalls the others, and 10,000
keep-alive connections fit."""

from __future__ import annotations

import socket
import time

from backend_checks import (
    assert_ab_without_failures,
    assert_holds_keep_alive_connections,
    need_descriptors,
    rss_kb,
    thread_count,
)
from e2e_client import request
from event_loop_checks import assert_idle_connection_costs_at_most
from e2e_docroot import FILES, Docroot
from e2e_server import fetch
from user_threads_checks import check_descriptor_limit

NAME = "coro"
MANY = 10_000
INDEX = FILES["/index.html"][0]


def test_holds_10000_concurrent_keep_alive_connections(launch):
    need_descriptors(MANY)
    server = launch(NAME)
    assert_holds_keep_alive_connections(server, MANY)


def test_an_idle_keep_alive_connection_costs_at_most_1_kib(launch):
    # The target: a frame (connection object, waiter, locals) and no stack. fiber, with
    # a stack per connection, needs several KiB here.
    assert_idle_connection_costs_at_most(launch(NAME), 1024, MANY)


def test_frames_are_freed_so_rss_stays_flat_over_50000_connections(launch):
    server = launch(NAME)
    assert_ab_without_failures(server, requests=5_000, concurrency=20)  # pools reach their size
    before = rss_kb(server.pid)
    assert_ab_without_failures(server, requests=50_000, concurrency=20)
    after = rss_kb(server.pid)
    # A frame never freed would be >= 300 bytes x 50,000 = 15 MB.
    assert after - before <= 2048, f"RSS grew from {before} kB to {after} kB over 50,000 connections"
    stats = server.check_clean_exit(server.stop())
    assert stats["requests"] == 55_000 and stats["errors"] == 0, stats


def test_serves_every_connection_on_one_thread(launch):
    server = launch(NAME)
    assert_ab_without_failures(server, requests=2000, concurrency=50, keep_alive=True)
    assert thread_count(server.pid) == 1
    server.check_clean_exit(server.stop())


def test_a_client_that_stops_reading_does_not_stall_the_others(launch):
    server = launch(NAME)
    stuck = server.connect()
    try:
        stuck.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck.send(request("/big.bin") * 50)  # its coroutine waits on a full socket
        time.sleep(0.3)
        started = time.monotonic()
        for _ in range(50):
            assert fetch(server, request("/index.html")).body == INDEX
        assert time.monotonic() - started < 10
    finally:
        stuck.close()
    server.check_clean_exit(server.stop())


def test_past_its_descriptor_limit_it_says_so_closes_the_extra_connections_and_keeps_serving(docroot: Docroot):
    # Under a hard limit of 256 descriptors about 250 connections fit; 400 arrive at once. The
    # message comes from the core's acceptor, which drops what it cannot accept.
    stats = check_descriptor_limit(NAME, docroot, "out of file descriptors")
    assert stats["requests"] >= 10, stats
