"""End-to-end tests of the load generator's edge cases (issue 12, item 6), each reproduced on
loopback: counts smaller than the thread count, interim and malformed responses, bodies longer
than announced, runs without a valid result, the open loop's connections, drops, timeouts and
warm-up, and httperf session files."""

from __future__ import annotations

import time

import pytest


# --- Quotas smaller than the thread count -------------------------------------------------------

@pytest.mark.parametrize("args,started", [
    (["-t", "4", "-c", "4", "-k", "-n", "2"], 2),
    (["-t", "3", "-c", "3", "-n", "1"], 1),
    (["-t", "2", "-R", "100", "-n", "1", "-k"], 1),
    (["-t", "2", "--session-rate", "20", "--sessions", "1", "--session-bursts", "1",
      "--burst-length", "2"], 2),
], ids=["closed_keep_alive", "closed_new_connections", "open", "sessions"])
def test_fewer_requests_than_threads_ends_after_exactly_those_requests(real_server, run_loadgen,
                                                                       args, started):
    # A thread given a quota of 0 used to run until -d or the hard cap, unlimited.
    start = time.monotonic()
    run = run_loadgen(*args, "--hard-cap", "4s", "--discard", "0", real_server.url())
    assert time.monotonic() - start < 3
    assert run.returncode == 0, run.stderr
    r = run.result
    assert r["hard_cap_reached"] is False
    assert r["requests_started"] == started and r["completed_total"] == started
    assert r["threads"] <= started
