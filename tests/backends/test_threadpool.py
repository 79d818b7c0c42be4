"""httpd-threadpool: a fixed pool of --workers threads fed through a bounded queue; when every
worker is busy connections wait in the queue and, beyond `--set queue=N`, in the kernel backlog:
they queue, never fail."""

from __future__ import annotations

import signal

from backend_checks import (
    assert_burst_of_one_shot_requests_all_succeed,
    assert_busy_pool_queues_a_connection,
    backend_named,
    hold_served_connections,
    keep_alive_rounds,
    thread_count,
    wait_until,
    waits_without_answer,
)
from e2e_client import request
from e2e_server import fetch, run_once

NAME = "threadpool"


def test_pool_has_exactly_workers_threads_and_creates_none_per_connection(launch):
    server = launch(NAME, "--workers", "4")
    # The ready line comes before the backend starts its threads.
    assert wait_until(lambda: thread_count(server.pid) == 5, 5), "want 4 workers plus the acceptor"
    for _ in range(200):
        assert fetch(server, request("/index.html", close=True)).status == 200
    assert thread_count(server.pid) == 5
    stats = server.check_clean_exit(server.stop())
    assert stats["connections"] == 200 and stats["requests"] == 200, stats


def test_connection_waits_while_every_worker_is_busy_and_is_served_when_one_frees(launch):
    assert_busy_pool_queues_a_connection(launch(NAME, "--workers", "2"))


def test_beyond_the_queue_bound_connections_wait_in_the_backlog_in_order(launch):
    server = launch(NAME, "--workers", "2", "--set", "queue=1")
    held = hold_served_connections(server, 2)
    queued = server.connect()
    in_backlog = server.connect()
    try:
        queued.send(request("/plain.txt"))
        in_backlog.send(request("/style.css"))
        assert waits_without_answer(queued) and waits_without_answer(in_backlog, 0.1)
        held.pop().close()
        assert queued.read_response().status == 200
        assert waits_without_answer(in_backlog, 0.5), "the backlog connection overtook a worker"
        held.pop().close()
        assert in_backlog.read_response().status == 200
    finally:
        for conn in held + [queued, in_backlog]:
            conn.close()
    server.check_clean_exit(server.stop())


def test_burst_of_200_concurrent_requests_on_2_workers_all_succeed(launch):
    assert_burst_of_one_shot_requests_all_succeed(launch(NAME, "--workers", "2", "--set", "queue=4"))


def test_sigterm_ends_idle_and_queued_connections_promptly(launch):
    server = launch(NAME, "--workers", "4")
    held = hold_served_connections(server, 4)
    waiting = server.connect()
    try:
        waiting.send(request("/index.html"))
        result = server.stop(signal.SIGTERM)
        server.check_clean_exit(result)
        assert result.elapsed_s < 1.5, f"stop took {result.elapsed_s:.1f}s"
    finally:
        for conn in held + [waiting]:
            conn.close()


def test_bad_queue_bound_and_too_small_stack_are_rejected():
    threadpool = backend_named(NAME)
    for args, word in ((["--set", "queue=0"], b"queue"), (["--set", "queue=x"], b"queue"),
                       (["--stack-size", "8k"], b"stack")):
        result = run_once(threadpool, ["--port", "0", *args])
        assert result.returncode != 0, f"{args} accepted"
        assert word in result.stderr, result.stderr


def test_2000_concurrent_keep_alive_connections_with_2000_workers(launch):
    server = launch(NAME, "--workers", "2000")
    elapsed = keep_alive_rounds(server, 2000, rounds=2, timeout_s=90)
    assert elapsed < 90
    server.check_clean_exit(server.stop())
