"""The server's costs over the loadgen's kept window, and nothing else.

The loadgen discards a warm-up (or the first and last samples) and reports its kept window as
absolute CLOCK_MONOTONIC times (``window_start_ns``, ``window_end_ns``). While it runs, a sampler
thread reads the server's cgroup counters every ``interval_s`` (CPU time, throttling, memory,
context switches) and, every few samples, the server's status page (requests, user-level
switches). Cumulative counters are linear in time at steady load, so the value at each window
bound is interpolated between the two samples around it; the difference is the window's share.
Start-up, warm-up, ramp-down and shutdown are excluded, and every process and thread the
server ever had is included (the cgroup counts them all).

A status page reading is timed at the midpoint of its request and response, so its error is
at most half a round trip (well under a millisecond on loopback, against windows of seconds).
"""

from __future__ import annotations

import http.client
import json
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from harness.cgroup import Reading, ServerCgroup


# -- status pages ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StatusReading:
    t_ns: int
    counters: dict[str, float]


def parse_httpbench(body: str) -> dict[str, float]:
    """Our servers' ``/server-status``: one JSON object of the core's counters."""
    obj = json.loads(body)
    return {k: float(v) for k, v in obj.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def parse_nginx(body: str) -> dict[str, float]:
    """nginx ``stub_status``: 'Active connections: N / server accepts handled requests / A H R'."""
    m = re.search(r"accepts\s+handled\s+requests\s+(\d+)\s+(\d+)\s+(\d+)", body)
    if not m:
        raise ValueError("not an nginx stub_status page")
    return {"connections": float(m.group(1)), "requests": float(m.group(3))}


def parse_mod_status(body: str) -> dict[str, float]:
    """Apache / lighttpd ``mod_status?auto``: 'Total Accesses: N' lines."""
    out: dict[str, float] = {}
    for line in body.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "Total Accesses":
            out["requests"] = float(value.strip())
    if "requests" not in out:
        raise ValueError("no 'Total Accesses' line in the mod_status page")
    return out


PARSERS: dict[str, Callable[[str], dict[str, float]]] = {
    "httpbench": parse_httpbench,
    "nginx": parse_nginx,
    "mod_status": parse_mod_status,
}


@dataclass
class StatusClient:
    """Fetches one server's status page over a kept-alive loopback connection.

    ``self_counted`` says how many of the page's own fetches the server's request counter
    already includes when it answers (nginx counts the status request itself; Apache and
    lighttpd count a request when it ends; our servers count status requests apart). The
    harness subtracts its own fetches so that ``requests`` counts only the load's requests.
    """

    host: str
    port: int
    path: str
    kind: str = "httpbench"
    self_counted: int = 0  # fetches counted by the reading: n (this one included) - 1 + self_counted
    timeout_s: float = 0.5
    fetches: int = 0
    _conn: http.client.HTTPConnection | None = None

    def read(self) -> StatusReading:
        t0 = time.monotonic_ns()
        body = self._get()
        t1 = time.monotonic_ns()
        self.fetches += 1
        counters = PARSERS[self.kind](body)
        if "requests" in counters and self.kind != "httpbench":
            counters["requests"] -= self.fetches - 1 + self.self_counted
        return StatusReading(t_ns=(t0 + t1) // 2, counters=counters)

    def _get(self) -> str:
        for attempt in (0, 1):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)
            try:
                self._conn.request("GET", self.path, headers={"Host": "localhost", "User-Agent": "httpbench-harness"})
                resp = self._conn.getresponse()
                body = resp.read().decode(errors="replace")
                if resp.status != 200:
                    raise OSError(f"status page {self.path} answered {resp.status}")
                if resp.getheader("Connection", "").lower() == "close":
                    self.close()
                return body
            except (OSError, http.client.HTTPException):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


# -- the sampler -------------------------------------------------------------------------------


@dataclass
class WindowSampler:
    """Reads ``cgroup`` every ``interval_s`` and ``status`` every ``status_every`` samples, in
    a thread, until ``stop``."""

    cgroup: ServerCgroup | None
    status: StatusClient | None = None
    interval_s: float = 0.02
    status_every: int = 3
    readings: list[Reading] = field(default_factory=list)
    status_readings: list[StatusReading] = field(default_factory=list)
    status_errors: int = 0
    last_status_error: str | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self.sample()
        self._thread = threading.Thread(target=self._loop, name="window-sampler", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        n = 0
        while not self._stop.wait(self.interval_s):
            n += 1
            self.sample(with_status=n % self.status_every == 0)

    def sample(self, with_status: bool = True) -> None:
        if self.cgroup is not None:
            self.readings.append(self.cgroup.read())
        # A server without a status page (404, or no HTTP answer) is asked twice, then left alone.
        if with_status and self.status is not None and self.status_errors < 2:
            try:
                self.status_readings.append(self.status.read())
            except (OSError, ValueError, http.client.HTTPException) as exc:
                self.status_errors += 1
                self.last_status_error = str(exc)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.sample()
        if self.status is not None:
            self.status.close()


def interpolate(points: list[tuple[int, float]], t: int) -> float | None:
    """Value of a cumulative counter at ``t`` by linear interpolation between the samples
    around it; ``None`` when ``t`` is outside the sampled span."""
    if not points or t < points[0][0] or t > points[-1][0]:
        return None
    lo, hi = 0, len(points) - 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if points[mid][0] <= t:
            lo = mid
        else:
            hi = mid
    (t0, v0), (t1, v1) = points[lo], points[hi]
    if t1 == t0:
        return v0
    return v0 + (v1 - v0) * (t - t0) / (t1 - t0)


def window_delta(points: list[tuple[int, float]], start_ns: int, end_ns: int) -> float | None:
    a, b = interpolate(points, start_ns), interpolate(points, end_ns)
    return None if a is None or b is None else b - a


def _bracket_gap_ms(times: list[int], t: int) -> float | None:
    """Width of the sampling interval that contains ``t`` (the interpolation's resolution)."""
    for t0, t1 in zip(times, times[1:]):
        if t0 <= t <= t1:
            return (t1 - t0) / 1e6
    return None


def window_metrics(sampler: WindowSampler, start_ns: int, end_ns: int, share: float | None,
                   cpus: int) -> dict[str, Any]:
    """The server's costs over [start_ns, end_ns] (see the module docstring)."""
    window_s = (end_ns - start_ns) / 1e9
    out: dict[str, Any] = {"window_s": round(window_s, 6), "source": "cgroup"}
    rs = sampler.readings

    def series(attr: str) -> list[tuple[int, float]]:
        return [(r.t_ns, float(getattr(r, attr))) for r in rs if getattr(r, attr) is not None]

    cpu = window_delta(series("cpu_ns"), start_ns, end_ns)
    if cpu is None or window_s <= 0:
        out["source"] = None
        out["problem"] = "the cgroup samples do not cover the loadgen's kept window"
        return out
    allowance_s = (share if share is not None else float(cpus)) * window_s
    out["cpu_s"] = round(cpu / 1e9, 6)
    for name, attr in (("cpu_user_s", "cpu_user_ns"), ("cpu_sys_s", "cpu_sys_ns"), ("throttled_s", "throttled_ns")):
        d = window_delta(series(attr), start_ns, end_ns)
        out[name] = None if d is None else round(d / 1e9, 6)
    for name, attr in (("periods", "nr_periods"), ("throttled_periods", "nr_throttled"),
                       ("ctx_switches", "ctx_switches"), ("preemptions", "preemptions")):
        d = window_delta(series(attr), start_ns, end_ns)
        out[name] = None if d is None else round(d, 1)
    out["cpu_allowance_s"] = round(allowance_s, 6)
    out["utilization"] = round(cpu / 1e9 / allowance_s, 4) if allowance_s > 0 else None
    mem = [r.memory_bytes for r in rs if r.memory_bytes is not None]
    out["memory_max_sampled_bytes"] = max(mem) if mem else None
    times = [r.t_ns for r in rs]
    gaps = [g for g in (_bracket_gap_ms(times, start_ns), _bracket_gap_ms(times, end_ns)) if g is not None]
    out["samples"] = len(rs)
    out["bound_resolution_ms"] = round(max(gaps), 3) if gaps else None
    st = sampler.status_readings
    if st:
        status: dict[str, Any] = {}
        keys = sorted({k for s in st for k in s.counters})
        for key in keys:
            d = window_delta([(s.t_ns, s.counters[key]) for s in st if key in s.counters], start_ns, end_ns)
            if d is not None:
                status[key] = round(d, 1)
        out["status"] = status
        out["status_samples"] = len(st)
    if sampler.status_errors:
        out["status_errors"] = sampler.status_errors
        out["status_last_error"] = sampler.last_status_error
    return out
