"""Accounting over the kept window: interpolation of cumulative counters at the window's bounds,
status pages, and a real burning process read through its cgroup."""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
import time

import pytest

from harness.accounting import (StatusClient, WindowSampler, interpolate, parse_httpbench, parse_mod_status,
                                parse_nginx, window_delta, window_metrics)
from harness.cgroup import Reading, ServerCgroup, available


def test_interpolation_is_exact_for_a_counter_growing_at_a_steady_rate():
    points = [(t, 3.0 * t) for t in range(0, 1000, 100)]
    assert interpolate(points, 250) == pytest.approx(750.0)
    assert interpolate(points, 0) == 0.0
    assert window_delta(points, 150, 850) == pytest.approx(2100.0)


def test_interpolation_refuses_bounds_outside_the_samples():
    points = [(100, 1.0), (200, 2.0)]
    assert interpolate(points, 50) is None and interpolate(points, 201) is None
    assert window_delta(points, 50, 150) is None


def test_window_metrics_reads_cpu_throttling_switches_and_status_over_the_window_only():
    s = WindowSampler(cgroup=None)
    # 0.25 CPU-seconds per second, one switch per ms, from t = 0 to 4 s; a burst of 1 s of CPU
    # before the window (start-up) that must not count.
    for i in range(0, 41):
        t = i * 100_000_000
        cpu = 1_000_000_000 + 250_000_000 * i // 10 if i else 0
        s.readings.append(Reading(t_ns=t, cpu_ns=cpu, nr_periods=i * 25, nr_throttled=i * 20,
                                  throttled_ns=i * 75_000_000, memory_bytes=1 << 20, ctx_switches=100 * i,
                                  preemptions=30 * i))
    from harness.accounting import StatusReading

    s.status_readings = [StatusReading(t_ns=i * 200_000_000, counters={"requests": 500.0 * i, "user_switches": 1000.0 * i})
                         for i in range(0, 21)]
    m = window_metrics(s, 1_000_000_000, 3_000_000_000, share=0.25, cpus=1)
    assert m["window_s"] == 2.0
    assert m["cpu_s"] == pytest.approx(0.5)
    assert m["utilization"] == pytest.approx(1.0)
    assert m["ctx_switches"] == pytest.approx(2000)
    assert m["preemptions"] == pytest.approx(600)
    assert m["throttled_s"] == pytest.approx(1.5)
    assert m["status"] == {"requests": 5000.0, "user_switches": 10000.0}
    assert m["bound_resolution_ms"] == pytest.approx(100.0)


def test_status_pages_are_parsed():
    assert parse_httpbench('{"requests": 12, "user_switches": 3, "pid": 7, "ok": true}') == {
        "requests": 12.0, "user_switches": 3.0, "pid": 7.0}
    nginx = "Active connections: 1 \nserver accepts handled requests\n 16 16 31 \nReading: 0 Writing: 1 Waiting: 0 \n"
    assert parse_nginx(nginx) == {"connections": 16.0, "requests": 31.0}
    assert parse_mod_status("Total Accesses: 42\nTotal kBytes: 1\n") == {"requests": 42.0}
    with pytest.raises(ValueError):
        parse_nginx("<html>not found</html>")


def test_the_status_client_does_not_count_its_own_requests():
    counted = {"requests": 0}

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):  # noqa: N802 - like nginx, the status request is counted before it is answered
            counted["requests"] += 1
            body = (f"Active connections: 1 \nserver accepts handled requests\n 1 1 {counted['requests']} \n"
                    "Reading: 0 Writing: 1 Waiting: 0 \n").encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        client = StatusClient("127.0.0.1", srv.server_address[1], "/server-status", "nginx", self_counted=1)
        first = client.read().counters["requests"]
        counted["requests"] += 7  # seven requests of the load
        second = client.read().counters["requests"]
        client.close()
    finally:
        srv.shutdown()
    assert second - first == 7


def _task_cpu_ns(pid: int) -> int:
    """CPU time of a single-threaded process so far, in ns (/proc/PID/schedstat)."""
    return int(open(f"/proc/{pid}/schedstat").read().split()[0])


@pytest.mark.skipif(not available()[0], reason="cgroups unavailable")
def test_a_server_burning_cpu_is_charged_exactly_its_cpu_time_in_the_window():
    cg = ServerCgroup(f"test-acct-{os.getpid()}", share=0.5, cpus=[0])
    burner = subprocess.Popen(["taskset", "-c", "0", sys.executable, "-c", "while True: pass"], preexec_fn=cg.enter)
    sampler = WindowSampler(cg)
    try:
        sampler.start()
        time.sleep(0.3)
        own_start, start = _task_cpu_ns(burner.pid), time.monotonic_ns()
        time.sleep(1.0)
        own_end, end = _task_cpu_ns(burner.pid), time.monotonic_ns()
        time.sleep(0.1)
        sampler.stop()
    finally:
        burner.kill()
        burner.wait()
        cg.close()
    m = window_metrics(sampler, start, end, share=0.5, cpus=1)
    own = (own_end - own_start) / 1e9
    assert m["window_s"] == pytest.approx(1.0, rel=0.01)
    assert m["cpu_s"] == pytest.approx(own, abs=0.02)  # what the process itself ran, to within the sampling
    assert m["utilization"] == pytest.approx(own / 0.5, abs=0.04) and m["utilization"] <= 1.05
    assert m["bound_resolution_ms"] < 60
