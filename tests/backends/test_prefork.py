"""httpd-prefork: a fixed pool of --workers processes, one connection each; when every worker is
busy the next connection waits in the backlog instead of failing; a dead worker is replaced."""

from __future__ import annotations

import signal

from backend_checks import (
    assert_burst_of_one_shot_requests_all_succeed,
    assert_killed_worker_is_replaced,
    assert_busy_pool_queues_a_connection,
    hold_served_connections,
    keep_alive_rounds,
    live_children_of,
    wait_until,
)
from e2e_client import request
from e2e_server import fetch

NAME = "prefork"


def test_pool_has_exactly_workers_processes_and_forks_none_per_connection(launch):
    server = launch(NAME, "--workers", "4")
    assert wait_until(lambda: len(live_children_of(server.pid)) == 4, 5), live_children_of(server.pid)
    pool = set(live_children_of(server.pid))
    for _ in range(200):
        assert fetch(server, request("/index.html", close=True)).status == 200
    assert set(live_children_of(server.pid)) == pool, "workers changed while serving"
    stats = server.check_clean_exit(server.stop())
    assert stats["connections"] == 200 and stats["requests"] == 200, stats


def test_connection_waits_while_every_worker_is_busy_and_is_served_when_one_frees(launch):
    assert_busy_pool_queues_a_connection(launch(NAME, "--workers", "2"))


def test_burst_of_200_concurrent_requests_on_2_workers_all_succeed(launch):
    assert_burst_of_one_shot_requests_all_succeed(launch(NAME, "--workers", "2"))


def test_max_conns_caps_the_pool(launch):
    server = launch(NAME, "--workers", "8", "--max-conns", "3")
    assert wait_until(lambda: len(live_children_of(server.pid)) == 3, 5), live_children_of(server.pid)


def test_dead_worker_is_replaced_and_serving_continues(launch):
    assert_killed_worker_is_replaced(launch(NAME, "--workers", "3"), workers=3)


def test_sigterm_ends_idle_workers_promptly(launch):
    server = launch(NAME, "--workers", "16")
    held = hold_served_connections(server, 8)
    try:
        result = server.stop(signal.SIGTERM)
        server.check_clean_exit(result)
        # Idle workers end at once; only a busy one would wait for the 2 s grace and be killed.
        assert result.elapsed_s < 1.5, f"stop took {result.elapsed_s:.1f}s"
    finally:
        for conn in held:
            conn.close()


def test_2000_concurrent_keep_alive_connections_with_2000_workers(launch):
    server = launch(NAME, "--workers", "2000")
    elapsed = keep_alive_rounds(server, 2000, rounds=2, timeout_s=90)
    assert elapsed < 90
    server.check_clean_exit(server.stop())
