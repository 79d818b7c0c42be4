"""End-to-end tests of the load generator's edge cases (issue 12, item 6), each reproduced on
loopback: counts smaller than the thread count, interim and malformed responses, bodies longer
than announced, runs without a valid result, the open loop's connections, drops, timeouts and
warm-up, and httperf session files."""

from __future__ import annotations

import time

import pytest

from loadgen_e2e_support import ok_response


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


# --- Runs without a valid result ----------------------------------------------------------------

NO_VALID_RESULT = 3


def test_a_silent_server_gives_no_valid_result(scripted_server, run_loadgen):
    # Reads every request and never answers: no error within -d, every request incomplete.
    server = scripted_server(lambda i: (b"", 0.0, False))
    run = run_loadgen("-c", "20", "-k", "-d", "500ms", server.url())
    r = run.result
    assert r["errors_total"] == 0 and r["incomplete"] == 20 and r["completed"] == 0
    assert run.returncode == NO_VALID_RESULT
    assert "no valid result" in run.stderr


def test_every_request_failing_gives_no_valid_result(scripted_server, run_loadgen):
    server = scripted_server(lambda i: (b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n", 0, False))
    run = run_loadgen("-c", "2", "-k", "-n", "50", server.url())
    assert run.result["errors"]["bad_status"] == 50
    assert run.returncode == NO_VALID_RESULT


def test_good_responses_all_discarded_give_no_valid_result(scripted_server, run_loadgen):
    # Good responses outside the kept window (a warm-up longer than the run) are no result either.
    server = scripted_server(lambda i: (ok_response(), 0.0, False))
    run = run_loadgen("-c", "1", "-k", "-n", "20", "--warmup", "1h", server.url())
    r = run.result
    assert r["completed_total"] == 20 and r["completed"] == 0
    assert run.returncode == NO_VALID_RESULT


def test_a_run_with_some_good_responses_exits_zero(scripted_server, run_loadgen):
    server = scripted_server(lambda i: (ok_response(), 0.0, False) if i % 2 else
                             (b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n", 0, False))
    run = run_loadgen("-c", "1", "-k", "-n", "40", "--discard", "0", server.url())
    assert run.result["completed"] == 20 and run.result["errors_total"] == 20
    assert run.returncode == 0


# --- Interim responses and bare LF line endings -------------------------------------------------

def test_interim_1xx_responses_are_skipped(scripted_server, run_loadgen):
    interim = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"
    server = scripted_server(lambda i: (interim + ok_response(), 0.0, False))
    run = run_loadgen("-c", "2", "-k", "-n", "40", "--discard", "0", server.url())
    assert run.returncode == 0, run.stderr
    r = run.result
    assert r["errors_total"] == 0 and r["completed_total"] == 40
    assert r["document_length"] == len(b"hello world")


@pytest.mark.parametrize("keep_alive", [True, False], ids=["keep_alive", "new_connection"])
def test_bare_lf_line_endings_are_accepted_without_a_timeout(scripted_server, run_loadgen,
                                                             keep_alive):
    response = b"HTTP/1.1 200 OK\nContent-Length: 5\n\nhello"
    server = scripted_server(lambda i: (response, 0.0, not keep_alive))
    start = time.monotonic()
    run = run_loadgen("-c", "2", "-n", "40", "--discard", "0", "--timeout", "5s",
                      *(["-k"] if keep_alive else []), server.url())
    assert time.monotonic() - start < 3
    assert run.returncode == 0, run.stderr
    r = run.result
    assert r["errors_total"] == 0 and r["completed_total"] == 40


# --- Bodies longer than their Content-Length ----------------------------------------------------

HEAD_5 = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"


@pytest.mark.parametrize("late", [False, True], ids=["same_read", "later_read"])
@pytest.mark.parametrize("mode", [["-c", "1", "-n", "10", "-k"], ["-R", "20", "-n", "10", "-k"]],
                         ids=["closed_loop", "open_loop_idle_connection"])
def test_a_longer_body_is_one_wrong_length_on_the_response_that_carried_it(
        threaded_server, run_loadgen, late, mode):
    # Only the first response the server sends carries 3 bytes more than announced, in the
    # same write or 50 ms later. Either way it is counted once, as wrong_length, and the next
    # request is not blamed for it (it used to become a good response plus a wrong_length, or
    # a good response and a bad_response for the next request).
    answered = []

    def chunks(connection: int, request: int) -> list[tuple[float, bytes]]:
        answered.append(connection)
        if len(answered) == 1:
            return [(0.0, HEAD_5 + b"hello"), (0.05, b"+3!")] if late else \
                [(0.0, HEAD_5 + b"hello+3!")]
        return [(0.0, HEAD_5 + b"hello")]

    server = threaded_server(chunks=chunks)
    run = run_loadgen(*mode, "--discard", "0", server.url())
    assert run.returncode == 0, run.stderr
    r = run.result
    assert r["errors"]["wrong_length"] == 1 and r["errors_total"] == 1, r["errors"]
    assert r["completed_total"] == 9
    assert r["requests_started"] == r["completed_total"] + r["errors_total"] + r["incomplete"]
    assert r["per_url"]["/"] == {"ok": 9, "errors": 1, "timeouts": 0, "body_bytes": 45}
