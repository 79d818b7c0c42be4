"""End-to-end tests of the load generator's edge cases (issue 12, item 6), each reproduced on
loopback: counts smaller than the thread count, interim and malformed responses, bodies longer
than announced, runs without a valid result, the open loop's connections, drops, timeouts and
warm-up, and httperf session files."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

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


# --- The open loop ------------------------------------------------------------------------------

def test_open_loop_keeps_minus_c_connections(threaded_server, run_loadgen):
    # 200 requests/s of 50 ms each need 10 connections; with -c 5 the others wait (from their
    # intended times) instead of opening more, as wrk2 keeps its -c connections.
    server = threaded_server(lambda connection, request: 0.05)
    run = run_loadgen("-R", "200", "-c", "5", "-k", "-d", "1s", server.url())
    assert run.returncode == 0, run.stderr
    r = run.result
    assert r["concurrency"] == 5
    assert r["connects"] == 5
    assert r["percentiles_ms"]["max"] > 100  # queued behind the five


def test_open_loop_dropped_arrivals_are_failed_requests(threaded_server, run_loadgen):
    server = threaded_server(lambda connection, request: 0.1)
    run = run_loadgen("-R", "500", "--max-connections", "1", "-k", "--max-pending", "5",
                      "-n", "100", "--discard", "0", server.url())
    r = run.result
    assert r["dropped_requests"] > 50
    assert r["errors"]["dropped"] == r["dropped_requests"]
    assert r["errors_total"] >= r["dropped_requests"]
    assert r["requests_started"] == 100
    assert r["requests_started"] == r["completed_total"] + r["errors_total"] + r["incomplete"]


def test_open_loop_timeout_runs_from_the_intended_time(threaded_server, run_loadgen):
    # Arrivals every 50 ms, responses of 200 ms on one connection: requests queue. A request
    # intended 50 ms before it could be sent has only 250 ms left, so no good response is ever
    # slower than the 300 ms timeout (measured from the intended time, as latency is).
    server = threaded_server(lambda connection, request: 0.2)
    run = run_loadgen("-R", "20", "--max-connections", "1", "-k", "-n", "12",
                      "--timeout", "300ms", "--discard", "0", server.url())
    r = run.result
    assert r["completed_total"] >= 1
    assert r["errors"]["read_timeout"] >= 1
    assert r["percentiles_ms"]["max"] < 300 + 30  # the timeout sweep runs every 15 ms


def test_open_loop_warmup_and_cooldown_default_to_times(real_server, run_loadgen):
    # 2,000 arrivals at 2,000/s: 1 s. --discard 1000 used to drop half of it; the defaults are
    # now min(1000/rate, 5% of the run) = 50 ms at each end, a window of exactly 0.9 s.
    run = run_loadgen("-R", "2000", "-n", "2000", "-k", real_server.url())
    assert run.returncode == 0, run.stderr
    r = run.result
    assert r["discarded_each_end"] == 0
    assert r["warmup_s"] == pytest.approx(0.05) and r["cooldown_s"] == pytest.approx(0.05)
    assert r["window_start_ns"] - r["run_start_ns"] == 50_000_000
    assert r["window_end_ns"] - r["run_start_ns"] == 950_000_000
    assert r["elapsed_s"] == pytest.approx(0.9, abs=1e-9)
    # 1,800 arrivals fall in the window; a few fewer are counted there when the machine is busy
    # (1,753 once, in a fresh make test running four test processes beside ASan servers). The
    # old default's window held at most ~1,000.
    assert 1700 <= r["completed"] <= 1820
    assert r["completed"] + r["warmup_dropped"] + r["cooldown_dropped"] == r["completed_total"]


# --- httperf session files ----------------------------------------------------------------------

DATA = Path(__file__).parent / "data"


def test_every_httperf_wsesslog_construct_sends_exactly_the_files_requests(threaded_server,
                                                                           run_loadgen):
    server = threaded_server()
    run = run_loadgen("--session-rate", "20", "--sessions", "3", "--think-time", "10ms",
                      "--wsesslog", str(DATA / "every-construct.wsesslog"), "--discard", "0",
                      server.url())
    assert run.returncode == 0, run.stderr
    r = run.result
    assert r["sessions"]["completed"] == 3 and r["sessions"]["failed"] == 0
    assert r["completed_total"] == 13 and r["errors_total"] == 0
    sent = sorted((q.method, q.target, q.body) for q in server.log)
    assert sent == sorted([
        ("GET", "/index.html", b""), ("GET", "/style.css", b""), ("GET", "/logo.png", b""),
        ("POST", "/form.html", b"name=a b&x=1"), ("GET", "/thanks.html", b""),
        ("POST", "/post", b"Multiline\ndata"), ("PUT", "/note", b"line one\nline two"),
        ("HEAD", "/page", b""), ("DELETE", "/gone", b""), ("OPTIONS", "/what", b""),
        ("TRACE", "/echo", b""),
        ("GET", "/first-line-indented", b""), ("POST", "/same-burst", b"its\t'"),
    ])
    assert r["per_url"]["PUT /note"]["ok"] == 1



def test_sessions_of_two_threads_interleave(threaded_server, run_loadgen):
    # 20 sessions/s over two threads: one every 50 ms, not two every 100 ms.
    server = threaded_server()
    run = run_loadgen("-t", "2", "--session-rate", "20", "--sessions", "8", "--session-bursts",
                      "1", "--burst-length", "1", "--discard", "0", server.url())
    assert run.returncode == 0, run.stderr
    assert run.result["threads"] == 2
    times = sorted(q.at for q in server.log)
    assert len(times) == 8
    gaps = [b - a for a, b in zip(times, times[1:])]
    # Not interleaved, the two threads would start together: gaps of ~0 and ~100 ms, four of
    # the seven near 0. A start late on a loaded machine shortens one gap of ~50 ms (seen: 24.8
    # ms; and 3.1 ms when one thread's first session came 47 ms late, under a parallel make test).
    assert sum(gap < 0.0125 for gap in gaps) <= 1, gaps
    assert 0.035 < statistics.median(gaps) < 0.065, gaps


def _burst_requests(server, *paths: str):
    return [q for q in server.log if q.target in paths]


@pytest.mark.parametrize("options,connections", [
    ([], 1),                                                      # pipelined (httperf's default)
    (["--max-piped-calls", "1", "--session-connections", "3"], 3),  # separate connections
], ids=["pipelined", "separate_connections"])
def test_a_bursts_objects_are_sent_together_after_its_first_reply(threaded_server, run_loadgen,
                                                                  tmp_path, options,
                                                                  connections):
    # httperf sends a burst's first request, then all its other requests at once when the first
    # reply is in (loadgen used to send them one after another).
    log = tmp_path / "burst.wsesslog"
    log.write_text("/page\n\t/a\n\t/b\n\t/c\n")
    server = threaded_server(lambda connection, request: 0.1)
    run = run_loadgen("--session-rate", "10", "--sessions", "1", "--wsesslog", str(log),
                      "--discard", "0", *options, server.url())
    assert run.returncode == 0, run.stderr
    assert run.result["sessions"]["completed"] == 1 and run.result["completed_total"] == 4
    page = _burst_requests(server, "/page")[0]
    objects = _burst_requests(server, "/a", "/b", "/c")
    assert len(objects) == 3
    assert len({q.connection for q in objects}) == connections
    assert min(q.at for q in objects) - page.at > 0.09  # after /page's reply
    if connections == 1:
        # Pipelined on the session's connection: the server, one thread per connection,
        # answers them one after another, so the last one's latency, from the moment the
        # three were sent together, is three service times (one if sent one at a time).
        assert objects[0].connection == page.connection
        assert run.result["percentiles_ms"]["max"] > 250
    else:
        # Three connections, three server threads: taken up together, not 100 ms apart.
        assert max(q.at for q in objects) - min(q.at for q in objects) < 0.03


def test_a_burst_after_a_connection_close_reply_uses_separate_connections(threaded_server,
                                                                          run_loadgen,
                                                                          tmp_path):
    # The manual: when the first reply says "Connection: close", the burst's other requests
    # go on separate connections (up to --session-connections, 4 by default).
    log = tmp_path / "burst.wsesslog"
    log.write_text("/page\n\t/a\n\t/b\n\t/c\n")
    server = threaded_server(chunks=lambda connection, request: [(0.05, ok_response(close=True))])
    run = run_loadgen("--session-rate", "10", "--sessions", "1", "--wsesslog", str(log),
                      "--discard", "0", server.url())
    assert run.returncode == 0, run.stderr
    r = run.result
    assert r["sessions"]["completed"] == 1 and r["completed_total"] == 4 and r["errors_total"] == 0
    objects = _burst_requests(server, "/a", "/b", "/c")
    assert len({q.connection for q in objects}) == 3
    # Sent together, not each after the previous reply (50 ms).
    assert max(q.at for q in objects) - min(q.at for q in objects) < 0.03
