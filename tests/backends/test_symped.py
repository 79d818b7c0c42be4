"""httpd-symped: --workers SPED processes forked after listen, each with its own epoll. Each of the
three accept modes (shared socket, EPOLLEXCLUSIVE, one SO_REUSEPORT socket per process) serves,
and the stats line's accepts_per_process adds up to the connections; a dead worker is replaced;
10,000 keep-alive connections fit, at a small cost in memory each."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from backend_checks import (
    assert_holds_keep_alive_connections,
    assert_killed_worker_is_replaced,
    backend_named,
    need_descriptors,
    open_idle_keep_alive,
    rss_kb,
    INDEX,
    assert_ab_without_failures,
    assert_wrk_without_errors,
    concurrent_one_shot_requests,
    live_children_of,
    wait_until,
)
from e2e_client import request
from e2e_server import fetch, run_once

NAME = "symped"
MODES = ["shared", "exclusive", "reuseport"]
MANY = 10_000


def epoll_fds(pid: int) -> int:
    count = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            if os.readlink(fd) == "anon_inode:[eventpoll]":
                count += 1
        except OSError:
            pass
    return count


def listening_socket_inodes(pid: int, port: int) -> set[int]:
    """Inodes of the sockets listening on `port` that `pid` holds open."""
    listening = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                listening.add(int(fields[9]))
    held = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inode = int(target[len("socket:[") : -1])
            if inode in listening:
                held.add(inode)
    return held


@pytest.mark.parametrize("mode", MODES)
def test_each_accept_mode_serves_and_accepts_per_process_add_up(launch, mode: str):
    server = launch(NAME, "--workers", "4", "--set", f"accept={mode}")
    assert wait_until(lambda: len(live_children_of(server.pid)) == 4, 5), live_children_of(server.pid)
    statuses = concurrent_one_shot_requests(server, 300)
    assert statuses.count(200) == 300, f"{300 - statuses.count(200)} of 300 failed in accept={mode}"
    for path in ("/index.html", "/big.bin", "/hello?name=symped"):
        with server.connect() as conn:
            for _ in range(3):
                conn.send(request(path))
                assert conn.read_response().status == 200
    stats = server.check_clean_exit(server.stop())
    per_process = stats["accepts_per_process"]
    assert stats["accept_mode"] == mode
    assert len(per_process) == 4, stats
    assert sum(per_process) == stats["connections"] == 303, stats
    assert stats["requests"] == 309 and stats["errors"] == 0, stats


def test_reuseport_gives_every_process_its_own_socket_and_a_share_of_connections(launch):
    server = launch(NAME, "--workers", "4", "--set", "accept=reuseport")
    assert wait_until(lambda: len(live_children_of(server.pid)) == 4, 5)
    sockets = [listening_socket_inodes(child, server.port) for child in live_children_of(server.pid)]
    assert all(len(s) == 1 for s in sockets), f"each worker must hold exactly one listening socket: {sockets}"
    assert len(set().union(*sockets)) == 4, f"workers share a listening socket: {sockets}"
    statuses = concurrent_one_shot_requests(server, 400)
    assert statuses.count(200) == 400
    stats = server.check_clean_exit(server.stop())
    # The kernel hashes connections over the 4 sockets: each gets some (400 connections make a
    # process with none astronomically unlikely).
    assert all(n > 0 for n in stats["accepts_per_process"]), stats


@pytest.mark.parametrize("mode", ["shared", "exclusive"])
def test_shared_socket_modes_use_one_listening_socket_and_an_epoll_per_worker(launch, mode: str):
    server = launch(NAME, "--workers", "3", "--set", f"accept={mode}")
    assert wait_until(lambda: len(live_children_of(server.pid)) == 3, 5)
    children = live_children_of(server.pid)
    assert wait_until(lambda: all(epoll_fds(c) == 1 for c in children), 5), [epoll_fds(c) for c in children]
    assert epoll_fds(server.pid) == 0, "the parent only supervises: it must not hold an epoll"
    sockets = set().union(*(listening_socket_inodes(c, server.port) for c in children))
    assert len(sockets) == 1, sockets
    assert fetch(server, request("/index.html")).body == INDEX
    server.check_clean_exit(server.stop())


def test_a_killed_worker_is_replaced_and_serving_continues(launch):
    assert_killed_worker_is_replaced(launch(NAME, "--workers", "2"), workers=2)


def test_sigterm_stops_every_worker_and_prints_one_stats_line(launch):
    server = launch(NAME, "--workers", "4")
    held = [server.connect() for _ in range(20)]
    try:
        for conn in held:
            conn.send(request("/index.html"))
            assert conn.read_response().status == 200
        result = server.stop()
    finally:
        for conn in held:
            conn.close()
    server.check_clean_exit(result)
    assert sum(1 for line in result.stdout if line.startswith('{"stats"')) == 1, result.stdout
    assert result.elapsed_s < 5, result.describe()


def test_unknown_accept_mode_is_rejected():
    result = run_once(backend_named(NAME), ["--port", "0", "--set", "accept=roundrobin"])
    assert result.returncode != 0
    assert b"accept" in result.stderr, result.stderr


@pytest.mark.parametrize("mode", MODES)
def test_ab_and_wrk_complete_without_failures(launch, mode: str):
    server = launch(NAME, "--set", f"accept={mode}")
    assert_ab_without_failures(server, requests=2000, concurrency=50)
    assert_ab_without_failures(server, requests=2000, concurrency=50, keep_alive=True)
    assert_wrk_without_errors(server, connections=50, duration="2s")
    stats = server.check_clean_exit(server.stop())
    assert stats["errors"] == 0, stats
    assert sum(stats["accepts_per_process"]) == stats["connections"], stats


def test_holds_10000_concurrent_keep_alive_connections(launch):
    need_descriptors(MANY)
    server = launch(NAME)
    stats = assert_holds_keep_alive_connections(server, MANY)
    assert sum(stats["accepts_per_process"]) == MANY + 1, stats


def test_an_idle_keep_alive_connection_costs_at_most_2_kib_of_user_memory(launch):
    """RSS of all workers, so kernel socket buffers are not counted (they are not in RSS)."""
    need_descriptors(MANY)
    server = launch(NAME, "--set", "accept=reuseport")
    assert wait_until(lambda: len(live_children_of(server.pid)) == 2, 5)
    for _ in range(20):  # warm both workers up (buffer pools, page cache of the binary)
        assert fetch(server, request("/index.html")).status == 200
    time.sleep(0.2)
    pids = [server.pid, *live_children_of(server.pid)]
    before = sum(rss_kb(p) for p in pids)
    socks = open_idle_keep_alive(server, MANY)
    try:
        time.sleep(0.5)
        after = sum(rss_kb(p) for p in pids)
    finally:
        for sock in socks:
            sock.close()
    per_connection = (after - before) * 1024 / MANY
    assert per_connection <= 2048, f"{per_connection:.0f} bytes of RSS per idle connection ({before} -> {after} kB)"
    server.check_clean_exit(server.stop())
