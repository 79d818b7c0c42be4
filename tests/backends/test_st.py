"""httpd-st: one State Threads thread per connection on ST's poll()-based scheduler. It holds
10,000 keep-alive connections, says clearly when it runs out of descriptors (and keeps serving),
and runs as --workers processes under a supervising parent, like ST's own example server."""

from __future__ import annotations

from backend_checks import (
    assert_holds_keep_alive_connections,
    assert_killed_worker_is_replaced,
    need_descriptors,
    assert_ab_without_failures,
    live_children_of,
    wait_until,
)
from e2e_docroot import Docroot
from user_threads_checks import check_descriptor_limit

NAME = "st"
MANY = 10_000


def test_holds_10000_concurrent_keep_alive_connections(launch):
    need_descriptors(MANY)
    server = launch(NAME)
    assert_holds_keep_alive_connections(server, MANY)


def test_past_its_descriptor_limit_it_says_so_closes_the_extra_connections_and_keeps_serving(docroot: Docroot):
    # Under a hard limit of 256 descriptors about 250 connections fit; 400 arrive at once.
    stats = check_descriptor_limit(NAME, docroot, "out of file descriptors")
    assert stats["errors"] >= 100, stats


def test_workers_run_as_processes_sharing_the_listening_socket(launch):
    server = launch(NAME, "--workers", "3")
    assert wait_until(lambda: len(live_children_of(server.pid)) == 3, 5), "want 3 worker processes under the parent"
    assert_ab_without_failures(server, requests=2000, concurrency=50)
    assert_ab_without_failures(server, requests=2000, concurrency=50, keep_alive=True)
    stats = server.check_clean_exit(server.stop())
    assert stats["requests"] == 4000 and stats["errors"] == 0, stats


def test_a_killed_worker_is_replaced_and_serving_continues(launch):
    assert_killed_worker_is_replaced(launch(NAME, "--workers", "2"), workers=2)
