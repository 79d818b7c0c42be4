"""From runs.jsonl to numbers: validity, medians with intervals, fits, ranking, findings.

Definitions (Kerneis & Chroboczek 2009, §2):
  offered load l   — requests kept in flight by the closed-loop client (``-c``);
  measured load l_m — the time-average of requests in service over the kept window, reported by
                     the loadgen (the paper's n · t_r / t with t_r the servicing time);
  slope            — least-squares slope of mean response time against offered load, in ms per
                     client: the paper's single figure of merit (smaller is faster).

A point (one server, one load, one repetition) is VALID when it measured the server:
  server_not_saturated — beyond the knee, the server used less than ``server_min`` (90 %) of its
                     CPU allowance in the kept window: something else (usually the client) limited it;
  client_busy      — beyond the knee, the client was more than ``client_max`` (60 %) busy;
  load_shortfall   — l_m < 90 % of l: requests were not in service for part of the window
                     (the somaxconn symptom of the paper's Fig. 1(a));
  errors           — the loadgen counted failed or wrong responses.
The knee of a server is the lightest load at which its median throughput reaches 80 % of its
highest: below it the server waits for requests by design, so low utilization is not a fault.
Invalid points are kept, drawn ringed and listed, but left out of fits, intervals and rankings.
Repetitions combine by the median; every figure of merit carries a 95 % bootstrap interval.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

from harness.cgroup import burst_requests
from harness.record import CONTROL_SUFFIX, CONTROLS_FILE
from harness.record import number as _num
from harness.stats import (Interval, Line, bootstrap, bootstrap_groups, difference_interval, least_squares,
                           rank_with_ties, ratio_interval, slope_interval)

SHORTFALL_RATIO = 0.9
KNEE_THROUGHPUT = 0.8
SERVER_MIN = 0.9
CLIENT_MAX = 0.6
CLIENT_BOUND_UTILIZATION = 0.9  # the loadgen's own client_bound flag (> 90 % busy)
LINEAR_R = 0.999

Fit = Line  # the fit of a server: slope (ms/client), intercept (ms), r, n

FLAG_TEXT = {
    "server_not_saturated": "server below its CPU allowance (something else limited it)",
    "client_busy": "client too busy (it, not the server, may have limited the rate)",
    "load_shortfall": "measured load below 90 % of offered load",
    "load_mismatch": "the paper's n·t_r/t below 90 % of the time-averaged measured load (clients waited outside "
                     "the response times counted)",
    "errors": "failed or wrong responses",
}


def measured_load(n: int, mean_response_s: float, elapsed_s: float) -> float:
    """l_m = n · t_r / t (the paper's definition)."""
    return n * mean_response_s / elapsed_s if elapsed_s > 0 else 0.0


@dataclass
class Flag:
    backend: str
    offered_load: int
    repetition: int
    kind: str  # a key of FLAG_TEXT
    detail: str


@dataclass
class PointSummary:
    """One server at one offered load: medians over its valid repetitions (over all of them,
    flagged, when none is valid)."""

    backend: str
    kind: str
    category: str
    offered_load: int
    repetitions: int
    valid_repetitions: int
    measured_load: float
    mean_response_ms: float
    mean_response_ci: tuple[float | None, float | None]
    mean_response_ms_stdev: float | None
    median_response_ms: float | None
    p50_ms: float | None
    p99_ms: float | None
    requests_per_second: float
    cpu_us_per_request: float | None
    ctx_switches_per_request: float | None
    preemptions_per_request: float | None  # of those switches, away from a task that could run
    user_switches_per_request: float | None
    requests_per_cpu_second: float | None
    server_utilization: float | None
    client_cpu_utilization: float | None
    peak_memory_mib: float | None
    errors_total: int
    beyond_knee: bool
    flags: list[str] = field(default_factory=list)


@dataclass
class BackendSummary:
    backend: str
    kind: str
    category: str
    model: str
    ranked: bool
    fit_mean: Fit | None  # line through the per-load medians of valid points
    slope: Interval | None
    r_all: float | None  # Pearson's r over every valid point (not the medians)
    throughput: Interval | None  # requests/s at saturation: the best load's median
    peak_rps: float
    peak_rps_level: int
    cpu: Interval | None  # server CPU µs per request, beyond the knee
    cpu_us_per_request: float | None
    ctx_switches_per_request: float | None
    preemptions_per_request: float | None
    user_switches_per_request: float | None
    peak_memory_mib: float | None
    memory_per_connection: dict[str, Any] | None
    knee_level: int | None
    points: int
    flagged_points: int
    error_points: int
    skipped_levels: list[int]
    rank: int | None = None
    tied: bool = False


@dataclass
class Analysis:
    run_dir: Path
    meta: dict[str, Any]
    points: list[PointSummary]  # every server, ranked or not
    backends: list[BackendSummary]  # ranked servers, best rank first
    series_only: list[BackendSummary]  # servers drawn for a figure (e.g. Fig. 1(a)), never ranked
    flags: list[Flag]  # of ranked servers' points
    errors: list[dict[str, Any]]
    skipped: list[dict[str, Any]]
    records: list[dict[str, Any]]  # ok records of every server
    memory: dict[str, dict[str, Any]]

    def series(self, backend: str, attr: str) -> tuple[list[int], list[float]]:
        """(offered loads, values) of one server, skipping missing values."""
        xs, ys = [], []
        for p in self.points:
            if p.backend == backend:
                v = getattr(p, attr)
                if v is not None and not (isinstance(v, float) and math.isnan(v)):
                    xs.append(p.offered_load)
                    ys.append(v)
        return xs, ys

    def backend(self, name: str) -> BackendSummary:
        return next(b for b in self.backends + self.series_only if b.backend == name)

    def raw_points(self, backend: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r["backend"] == backend]

    def point_flags(self, backend: str, level: int) -> list[Flag]:
        return [f for f in self.flags if f.backend == backend and f.offered_load == level]

    @property
    def server_bound(self) -> bool | None:
        return self.meta.get("server_bound")

    @property
    def valid_records(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r.get("_valid")]


def load_records(run_dir: Path, name: str = "runs.jsonl") -> list[dict[str, Any]]:
    """runs.jsonl (or another file of records, such as controls.jsonl), keeping the last record
    of each point (a resumed error is superseded)."""
    by_key: dict[str, dict[str, Any]] = {}
    path = run_dir / name
    if not path.exists():
        return []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            continue  # a line torn by a kill
        key = rec.get("key") or f"{rec.get('backend')}|{rec.get('offered_load')}|{rec.get('repetition')}"
        by_key[key] = rec
    return list(by_key.values())


def load_memory(run_dir: Path) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    path = run_dir / "memory.jsonl"
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if rec.get("status") == "ok":
                out[rec["backend"]] = rec
    return out


def _get(d: dict[str, Any] | None, *path: str) -> Any:
    for p in path:
        if not isinstance(d, dict):
            return None
        d = d.get(p)
    return d


def _median(values: Iterable[float | None]) -> float | None:
    vs = [v for v in values if v is not None]
    return statistics.median(vs) if vs else None


# -- per record ----------------------------------------------------------------------------------


def per_request(rec: dict[str, Any]) -> dict[str, float | None]:
    """Server costs per completed request in the kept window."""
    sm = rec.get("server_metrics") or {}
    lg = rec.get("loadgen") or {}
    n = _num(lg.get("completed"))
    out: dict[str, float | None] = {"cpu_us": None, "ctx": None, "preempt": None, "user_sw": None, "eff": None}
    cpu = _num(sm.get("cpu_s"))
    if cpu is None and _num(sm.get("cpu_user_s")) is not None and _num(sm.get("cpu_sys_s")) is not None:
        cpu = sm["cpu_user_s"] + sm["cpu_sys_s"]  # schema-1 records
        served = _num(sm.get("requests_served")) or _num(lg.get("completed_total"))
        n = served
    if n:
        if cpu is not None:
            out["cpu_us"] = cpu * 1e6 / n
            out["eff"] = n / cpu if cpu > 0 else None
        ctx = _num(sm.get("ctx_switches"))
        if ctx is None and _num(sm.get("ctx_voluntary")) is not None:
            ctx = sm["ctx_voluntary"] + (sm.get("ctx_involuntary") or 0)
        if ctx is not None:
            out["ctx"] = ctx / n
        if _num(sm.get("preemptions")) is not None:
            out["preempt"] = sm["preemptions"] / n
    status = sm.get("status") or {}
    if _num(status.get("user_switches")) is not None and _num(status.get("requests")):
        out["user_sw"] = status["user_switches"] / status["requests"]
    return out


def client_utilization(rec: dict[str, Any]) -> float | None:
    """How busy the client CPU was: for a point measured beside another (``beside``), both
    loadgens together, since they shared it."""
    together = _num(rec.get("clients_utilization"))
    return together if together is not None else _num(_get(rec.get("loadgen"), "client_cpu", "utilization"))


def server_utilization(rec: dict[str, Any]) -> float | None:
    """The server's CPU over its allowance: for a point measured beside another in one shared
    cap, the pair's (a server that needs less than half lets the other use the rest, so it is
    the shared cap that tells whether the pair was server-bound)."""
    pair = _num(rec.get("pair_utilization"))
    return pair if pair is not None else _num(_get(rec, "server_metrics", "utilization"))


def knee_levels(records: list[dict[str, Any]]) -> dict[str, int]:
    """Per server: the lightest load whose median throughput reaches KNEE_THROUGHPUT of the
    server's highest median throughput."""
    by: dict[str, dict[int, list[float]]] = {}
    for r in records:
        rps = _num(_get(r, "loadgen", "requests_per_second"))
        if rps is not None:
            by.setdefault(r["backend"], {}).setdefault(r["offered_load"], []).append(rps)
    out = {}
    for name, levels in by.items():
        med = {lvl: statistics.median(v) for lvl, v in levels.items()}
        top = max(med.values())
        out[name] = min(lvl for lvl, v in med.items() if v >= KNEE_THROUGHPUT * top)
    return out


def record_flags(rec: dict[str, Any], beyond_knee: bool, server_min: float = SERVER_MIN,
                 client_max: float = CLIENT_MAX) -> list[Flag]:
    lg = rec.get("loadgen", {})
    level = rec["offered_load"]
    rep = rec.get("repetition", 0)
    flags = []
    su, cu = server_utilization(rec), client_utilization(rec)
    if beyond_knee and su is not None and su < server_min:
        flags.append(Flag(rec["backend"], level, rep, "server_not_saturated",
                          f"server used {su:.0%} of its CPU allowance (< {server_min:.0%})"))
    if beyond_knee and cu is not None and cu > client_max:
        flags.append(Flag(rec["backend"], level, rep, "client_busy", f"client {cu:.0%} busy (> {client_max:.0%})"))
    ml = _num(lg.get("measured_load"))
    if ml is not None and ml < SHORTFALL_RATIO * level:
        flags.append(Flag(rec["backend"], level, rep, "load_shortfall",
                          f"measured load {ml:.1f} < {SHORTFALL_RATIO:.0%} of {level}"))
    # Little's law, closed loop: with l requests always in service, n·t_r/t = l. When it falls
    # well short of the time-averaged load, clients spent time that no kept response time shows
    # (e.g. connections the server's kernel completed but the server never accepted), so the
    # point's response time understates what its clients waited.
    nt = _num(lg.get("measured_load_nt"))
    if lg.get("mode", "closed") == "closed" and nt is not None and ml is not None and ml >= SHORTFALL_RATIO * level \
            and nt < SHORTFALL_RATIO * ml:
        flags.append(Flag(rec["backend"], level, rep, "load_mismatch",
                          f"n·t_r/t = {nt:.0f} < {SHORTFALL_RATIO:.0%} of the time-averaged {ml:.0f}"))
    errs = _num(lg.get("errors_total")) or 0
    if errs > 0:
        kinds = {k: v for k, v in (lg.get("errors") or {}).items() if v}
        flags.append(Flag(rec["backend"], level, rep, "errors",
                          f"{int(errs)} errors " + ", ".join(f"{k}={v}" for k, v in kinds.items())))
    return flags


# -- aggregation ---------------------------------------------------------------------------------


def summarize_points(records: list[dict[str, Any]], knees: dict[str, int]) -> list[PointSummary]:
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for rec in records:
        groups.setdefault((rec["backend"], rec["offered_load"]), []).append(rec)
    out = []
    for (backend, level), recs in sorted(groups.items()):
        valid = [r for r in recs if r["_valid"]]
        use = valid or recs
        lgs = [r["loadgen"] for r in use]
        per = [per_request(r) for r in use]
        means = [float(lg["mean_response_ms"]) for lg in lgs]
        ci = bootstrap(means) if len(means) > 1 else Interval(means[0])
        mem = [_num(_get(r, "server_metrics", "peak_memory_bytes")) for r in use]
        mem += [(_num(_get(r, "server_metrics", "peak_rss_kib")) or 0) * 1024 or None for r in use]
        memv = [m for m in mem if m]
        out.append(PointSummary(
            backend=backend, kind=recs[0].get("kind", "toy"), category=recs[0].get("category", "other"),
            offered_load=level, repetitions=len(recs), valid_repetitions=len(valid),
            measured_load=_median(_num(lg.get("measured_load")) for lg in lgs) or 0.0,
            mean_response_ms=statistics.median(means), mean_response_ci=(ci.lo, ci.hi),
            mean_response_ms_stdev=statistics.stdev(means) if len(means) > 1 else None,
            median_response_ms=_median(_num(lg.get("median_response_ms")) for lg in lgs),
            p50_ms=_median(_num(_get(lg, "percentiles_ms", "50")) for lg in lgs),
            p99_ms=_median(_num(_get(lg, "percentiles_ms", "99")) for lg in lgs),
            requests_per_second=_median(_num(lg.get("requests_per_second")) for lg in lgs) or 0.0,
            cpu_us_per_request=_median(p["cpu_us"] for p in per),
            ctx_switches_per_request=_median(p["ctx"] for p in per),
            preemptions_per_request=_median(p["preempt"] for p in per),
            user_switches_per_request=_median(p["user_sw"] for p in per),
            requests_per_cpu_second=_median(p["eff"] for p in per),
            server_utilization=_median(server_utilization(r) for r in use),
            client_cpu_utilization=_median(client_utilization(r) for r in use),
            peak_memory_mib=max(memv) / 2**20 if memv else None,
            errors_total=int(sum(_num(lg.get("errors_total")) or 0 for lg in (r["loadgen"] for r in recs))),
            beyond_knee=level >= knees.get(backend, 0),
            flags=sorted({f for r in recs for f in r["_flags"]}),
        ))
    return out


def _groups(recs: list[dict[str, Any]], value) -> dict[int, list[float]]:
    out: dict[int, list[float]] = {}
    for r in recs:
        v = value(r)
        if v is not None:
            out.setdefault(r["offered_load"], []).append(v)
    return out


def summarize_backend(name: str, recs: list[dict[str, Any]], points: list[PointSummary], meta: dict[str, Any],
                      errors: list[dict[str, Any]], skipped: list[dict[str, Any]], knee: int | None,
                      memory: dict[str, Any] | None) -> BackendSummary:
    valid = [r for r in recs if r["_valid"]]
    targets = {t["label"]: t for t in meta.get("targets", [])}
    resp = _groups(valid, lambda r: float(r["loadgen"]["mean_response_ms"]))
    fit, slope = slope_interval(resp) if len(resp) >= 2 else (None, None)
    all_fit = least_squares([float(r["offered_load"]) for r in valid],
                            [float(r["loadgen"]["mean_response_ms"]) for r in valid])
    pts = [p for p in points if p.backend == name]
    best = max(pts, key=lambda p: p.requests_per_second)
    sat = [r for r in valid if knee is not None and r["offered_load"] >= knee]
    rps = _groups(sat, lambda r: _num(r["loadgen"].get("requests_per_second")))
    throughput = bootstrap_groups(rps, lambda g: max(statistics.median(v) for v in g.values()) if g else None) \
        if rps else None
    cpu_groups = _groups(sat, lambda r: per_request(r)["cpu_us"])
    cpu = bootstrap_groups(cpu_groups, lambda g: statistics.median([x for v in g.values() for x in v]) if g else None) \
        if cpu_groups else None
    ctx = [per_request(r)["ctx"] for r in (sat or valid)]
    preempt = [per_request(r)["preempt"] for r in (sat or valid)]
    usw = [per_request(r)["user_sw"] for r in (sat or valid)]
    mem = [p.peak_memory_mib for p in pts if p.peak_memory_mib is not None]
    flagged = {(r["offered_load"], r.get("repetition", 0)) for r in recs if not r["_valid"]}
    return BackendSummary(
        backend=name, kind=recs[0].get("kind", "toy"), category=recs[0].get("category", "other"),
        model=recs[0].get("model") or targets.get(name, {}).get("model", ""),
        ranked=recs[0].get("ranked", True),
        fit_mean=fit, slope=slope, r_all=all_fit.r if all_fit else None, throughput=throughput,
        peak_rps=best.requests_per_second, peak_rps_level=best.offered_load,
        cpu=cpu, cpu_us_per_request=cpu.value if cpu else None,
        ctx_switches_per_request=_median(ctx), preemptions_per_request=_median(preempt),
        user_switches_per_request=_median(usw),
        peak_memory_mib=max(mem) if mem else None, memory_per_connection=memory, knee_level=knee,
        points=len(recs), flagged_points=len(flagged),
        error_points=sum(1 for r in errors if r["backend"] == name),
        skipped_levels=sorted({r["offered_load"] for r in skipped if r["backend"] == name}),
    )


def analyze(run_dir: Path) -> Analysis:
    run_dir = Path(run_dir)
    meta_path = run_dir / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    validity = _get(meta, "experiment", "validity") or {}
    server_min = validity.get("server_min", SERVER_MIN)
    client_max = validity.get("client_max", CLIENT_MAX)
    all_records = load_records(run_dir)
    ok = [r for r in all_records if r.get("status") == "ok" and isinstance(r.get("loadgen"), dict)
          and _num(r["loadgen"].get("mean_response_ms")) is not None]
    errors = [r for r in all_records if r.get("status") == "error"]
    skipped = [r for r in all_records if r.get("status") == "skipped"]
    knees = knee_levels(ok)
    flags: list[Flag] = []
    for r in ok:
        fl = record_flags(r, r["offered_load"] >= knees.get(r["backend"], 0), server_min, client_max)
        r["_flags"] = [f.kind for f in fl]
        r["_valid"] = not fl
        if r.get("ranked", True):
            flags.extend(fl)
    points = summarize_points(ok, knees)
    memory = load_memory(run_dir)
    summaries = []
    for name in dict.fromkeys(r["backend"] for r in ok):
        recs = [r for r in ok if r["backend"] == name]
        summaries.append(summarize_backend(name, recs, points, meta, errors, skipped, knees.get(name),
                                           memory.get(name)))
    ranked = [b for b in summaries if b.ranked]
    series_only = [b for b in summaries if not b.ranked]
    with_slope = [(b.backend, b.slope) for b in ranked if b.slope is not None]
    ranks = {r.name: r for r in rank_with_ties(with_slope)}
    for b in ranked:
        if b.backend in ranks:
            b.rank, b.tied = ranks[b.backend].rank, ranks[b.backend].tied
    ranked.sort(key=lambda b: (b.rank is None, b.slope.value if b.slope else 0.0, b.backend))
    return Analysis(run_dir=run_dir, meta=meta, points=points, backends=ranked, series_only=series_only,
                    flags=flags, errors=errors, skipped=skipped, records=ok, memory=memory)


# -- what the HTTP core costs ----------------------------------------------------------------------


@dataclass
class CoreCost:
    """A backend beside its reference server (the floor of its model), both server-bound in one
    run: the reference's CPU per request is the model's cost, the difference the core's."""

    backend: str
    reference: str
    backend_cpu: Interval | None  # server CPU µs per request beyond the knee
    reference_cpu: Interval | None
    core_cpu: Interval | None  # backend_cpu - reference_cpu
    throughput_ratio: Interval | None  # backend's saturated throughput / the reference's
    # Measured side by side ([servers] beside_reference): the reference's CPU per request over
    # the backend's, pair by pair (the "≥ 0.95× its floor"); core_cpu is then the
    # median of the pairs' differences. None when the two were measured one at a time.
    cpu_ratio: Interval | None = None
    pairs: int = 0  # saturated pairs measured side by side


def _saturated(a: "Analysis", b: BackendSummary) -> list[dict[str, Any]]:
    return [r for r in a.records if r["backend"] == b.backend and r.get("_valid")
            and b.knee_level is not None and r["offered_load"] >= b.knee_level]


def _median_of_all(groups: dict[Any, list[float]]) -> float | None:
    values = [x for v in groups.values() for x in v]
    return statistics.median(values) if values else None


def _best_median(groups: dict[Any, list[float]]) -> float | None:
    return max(statistics.median(v) for v in groups.values()) if groups else None


def _side_by_side(sat_b: list[dict[str, Any]], sat_r: list[dict[str, Any]], ref_name: str
                  ) -> list[tuple[float, float]]:
    """(backend's, reference's) server CPU µs per request of each point the two were measured
    at together (same load and repetition, each ``beside`` the other), both valid and saturated."""
    refs = {(x["offered_load"], x.get("repetition", 0)): x for x in sat_r if x.get("beside")}
    out = []
    for x in sat_b:
        y = refs.get((x["offered_load"], x.get("repetition", 0)))
        if x.get("beside") != ref_name or y is None or y.get("beside") != x["backend"]:
            continue
        cb, cr = per_request(x).get("cpu_us"), per_request(y).get("cpu_us")
        if cb is not None and cr is not None:
            out.append((cb, cr))
    return out


def burst_backlog(rec: dict[str, Any]) -> tuple[float, float] | None:
    """For a capped point: (the requests its server could serve in one burst of its cap, the
    requests its loadgen could have ready for that burst), ``cgroup.burst_requests`` with the
    server's part of the quota (half a pair's shared one) and the loadgen's CPU per request less
    its idle polling. The first above the second: the server ran dry inside each burst. The
    loadgen's rate is its best, so this errs towards not saying so. None where the record
    lacks a cap or a figure."""
    lg = rec.get("loadgen") or {}
    cc = lg.get("client_cpu") or {}
    shared = rec.get("shared_cap") or {}
    # a point beside another: the pair's cap, half of each period's quota each; else its own
    burst = (_num(shared.get("quota_us")) / 2 if _num(shared.get("quota_us"))
             else _num((rec.get("cgroup") or {}).get("quota_us")))
    server_us = per_request(rec)["cpu_us"]
    n, connections = _num(lg.get("completed_total")), _num(lg.get("concurrency"))
    user, system = _num(cc.get("user_s")), _num(cc.get("sys_s"))
    if not burst or not server_us or not n or connections is None or user is None or system is None:
        return None
    client_us = (user + system - (_num(cc.get("idle_polling_s")) or 0.0)) * 1e6 / n
    if client_us <= 0:
        return None
    return burst_requests(burst, server_us, client_us, connections)


def dry_bursts(records: list[dict[str, Any]]) -> tuple[int, int]:
    """How many of ``records`` ran dry inside their cap's bursts (``burst_backlog``), of how many
    could be judged."""
    judged = [b for b in map(burst_backlog, records) if b is not None]
    return sum(1 for served, ready in judged if served > ready), len(judged)


def core_cost_records(a: "Analysis", costs: list[CoreCost]) -> list[dict[str, Any]]:
    """The points the core-cost figures of ``costs`` come from: each backend's and each
    reference's valid points at or beyond its knee."""
    names = {name for c in costs for name in (c.backend, c.reference)}
    return [r for b in a.backends + a.series_only if b.backend in names for r in _saturated(a, b)]


def core_costs(a: "Analysis") -> list[CoreCost]:
    """Each backend of the run whose reference server was measured too, in ranking order."""
    targets = {t["label"]: t for t in a.meta.get("targets", [])}
    summaries = {b.backend: b for b in a.backends + a.series_only}
    out = []
    for b in a.backends + [s for s in a.series_only if targets.get(s.backend, {}).get("kind") != "reference"]:
        ref_name = next((label for label, t in targets.items()
                         if t.get("kind") == "reference" and t.get("reference_for") == b.backend), None)
        if ref_name is None or ref_name not in summaries:
            continue
        r = summaries[ref_name]
        sat_b, sat_r = _saturated(a, b), _saturated(a, r)
        paired = _side_by_side(sat_b, sat_r, ref_name)
        if paired:
            diffs = [cb - cr for cb, cr in paired]
            ratios = [cr / cb for cb, cr in paired if cb > 0]
            out.append(CoreCost(
                backend=b.backend, reference=ref_name, backend_cpu=b.cpu, reference_cpu=r.cpu,
                core_cpu=bootstrap(diffs), throughput_ratio=None,
                cpu_ratio=bootstrap(ratios) if ratios else None, pairs=len(paired)))
            continue
        cpu_b = _groups(sat_b, lambda x: per_request(x)["cpu_us"])
        cpu_r = _groups(sat_r, lambda x: per_request(x)["cpu_us"])
        rps_b = _groups(sat_b, lambda x: _num(x["loadgen"].get("requests_per_second")))
        rps_r = _groups(sat_r, lambda x: _num(x["loadgen"].get("requests_per_second")))
        out.append(CoreCost(
            backend=b.backend, reference=ref_name, backend_cpu=b.cpu, reference_cpu=r.cpu,
            core_cpu=difference_interval(cpu_b, cpu_r, _median_of_all) if cpu_b and cpu_r else None,
            throughput_ratio=ratio_interval(rps_b, rps_r, _best_median) if rps_b and rps_r else None))
    return out


@dataclass
class ControlRatio:
    """A reference measured beside a second instance of itself ([servers] beside_control): its
    CPU per request over the other instance's, pair by pair, at the loads the core-cost page
    uses. It should be 1; its interval is what the run can resolve."""

    reference: str
    ratio: Interval
    pairs: int


def control_ratio(a: "Analysis") -> ControlRatio | None:
    """The A/A control of a side-by-side run (controls.jsonl), or None when it has none."""
    records = [r for r in load_records(a.run_dir, CONTROLS_FILE)
               if r.get("status") == "ok" and isinstance(r.get("loadgen"), dict)]
    validity = _get(a.meta, "experiment", "validity") or {}
    server_min, client_max = validity.get("server_min", SERVER_MIN), validity.get("client_max", CLIENT_MAX)
    knees = {b.backend: b.knee_level for b in a.backends + a.series_only}
    by_point: dict[tuple[int, int], dict[str, dict[str, Any]]] = {}
    for r in records:
        if record_flags(r, True, server_min, client_max):
            continue
        by_point.setdefault((r["offered_load"], r.get("repetition", 0)), {})[r["backend"]] = r
    ratios, name = [], None
    for (level, _), pair in sorted(by_point.items()):
        again = next((k for k in pair if k.endswith(CONTROL_SUFFIX)), None)
        if again is None or again.removesuffix(CONTROL_SUFFIX) not in pair:
            continue
        name = again.removesuffix(CONTROL_SUFFIX)
        knee = knees.get(name)
        if knee is not None and level < knee:
            continue
        first, second = per_request(pair[name]).get("cpu_us"), per_request(pair[again]).get("cpu_us")
        if first and second:
            ratios.append(first / second)
    if not ratios or name is None:
        return None
    return ControlRatio(reference=name, ratio=bootstrap(ratios), pairs=len(ratios))


# -- validity summary ------------------------------------------------------------------------------


def excluded_counts(a: Analysis) -> tuple[int, int, dict[str, int]]:
    """(points of ranked servers, how many were left out, count per reason)."""
    ranked = [r for r in a.records if r.get("ranked", True)]
    out = [r for r in ranked if not r["_valid"]]
    reasons: dict[str, int] = {}
    for r in out:
        for k in r["_flags"]:
            reasons[k] = reasons.get(k, 0) + 1
    return len(ranked), len(out), reasons


# -- findings -----------------------------------------------------------------------------------


def _fmt_iv(iv: Interval | None, spec: str = ".4f", unit: str = "") -> str:
    if iv is None:
        return "–"
    if iv.lo is None or iv.hi is None:
        return f"{iv.value:{spec}}{unit}"
    return f"{iv.value:{spec}}{unit} [{iv.lo:{spec}}, {iv.hi:{spec}}]"


def findings(a: Analysis) -> list[str]:
    """Plain sentences, every number computed from the run."""
    out: list[str] = []
    total, left_out, reasons = excluded_counts(a)
    if total:
        out.append(f"Valid points: {total - left_out} of {total} ({left_out / total:.0%} left out"
                   + (": " + ", ".join(f"{FLAG_TEXT[k]} {v}" for k, v in sorted(reasons.items())) if reasons else "")
                   + "). Fits, intervals and the ranking use the valid points only.")
    fitted = [b for b in a.backends if b.slope is not None]
    if not fitted:
        out.append("No server has valid points at two or more loads, so no slope could be fitted.")
        return out
    groups: dict[int, list[BackendSummary]] = {}
    for b in fitted:
        if b.rank is not None:
            groups.setdefault(b.rank, []).append(b)
    out.append(f"The {len(fitted)} ranked servers fall into {len(groups)} rank groups (servers whose 95 % "
               f"intervals of the slope overlap share a rank): "
               + "; ".join(f"{k}. " + ", ".join(b.backend for b in g) for k, g in sorted(groups.items())) + ".")
    best, worst = fitted[0], fitted[-1]
    out.append(f"Smallest slope (fastest): {best.backend} ({best.category}), {_fmt_iv(best.slope)} ms/client; "
               f"largest: {worst.backend} ({worst.category}), {_fmt_iv(worst.slope)} ms/client"
               + (f" — {worst.slope.value / best.slope.value:.1f}× steeper." if best.slope.value > 0 else "."))
    wide = [b for b in fitted if (b.slope.half_width_rel or 0) > 0.05]
    if any(b.slope.half_width_rel is None for b in fitted):
        out.append("Some slopes have no interval (a single repetition at each load): "
                   + ", ".join(b.backend for b in fitted if b.slope.half_width_rel is None) + ".")
    elif wide:
        out.append("Slopes whose 95 % interval is wider than ±5 %: "
                   + ", ".join(f"{b.backend} ±{b.slope.half_width_rel:.1%}" for b in wide) + ".")
    else:
        out.append("Every slope's 95 % interval is within ±5 % of the slope.")
    rs = [b for b in fitted if b.r_all is not None]
    if rs:
        linear = [b for b in rs if b.r_all > LINEAR_R]
        low = sorted((b for b in rs if b.r_all <= LINEAR_R), key=lambda b: b.r_all)
        out.append(f"Linearity: {len(linear)} of {len(rs)} servers have r > {LINEAR_R} between mean response time "
                   f"and offered load over their valid points (the paper found r > 0.999 for all but Apache)"
                   + ("; lowest: " + ", ".join(f"{b.backend} r = {b.r_all:.4f}" for b in low[:4]) if low else "")
                   + ".")
    for attr, what, spec, unit in (("throughput", "Throughput at saturation: highest", ",.0f", " requests/s"),
                                   ("cpu", "Server CPU per request beyond the knee: most", ".1f", " µs")):
        have = [b for b in a.backends if getattr(b, attr) is not None]
        if have:
            hi = max(have, key=lambda b: getattr(b, attr).value)
            lo = min(have, key=lambda b: getattr(b, attr).value)
            out.append(f"{what} {hi.backend} {_fmt_iv(getattr(hi, attr), spec)}{unit}, "
                       f"{'lowest' if attr == 'throughput' else 'least'} {lo.backend} "
                       f"{_fmt_iv(getattr(lo, attr), spec)}{unit}.")
    mem = [(n, m) for n, m in a.memory.items() if m.get("bytes_per_connection") is not None]
    if mem:
        lo = min(mem, key=lambda t: t[1]["bytes_per_connection"])
        hi = max(mem, key=lambda t: t[1]["bytes_per_connection"])
        out.append(f"Memory per idle keep-alive connection (growth of the server's proportional set size / "
                   f"connections held): least {lo[0]} {lo[1]['bytes_per_connection']:,.0f} bytes, most {hi[0]} "
                   f"{hi[1]['bytes_per_connection']:,.0f} bytes.")
    if a.errors:
        out.append(f"{len(a.errors)} point(s) failed to run: "
                   + ", ".join(f"{r['backend']}@{r['offered_load']}" for r in a.errors[:8])
                   + ("…" if len(a.errors) > 8 else "") + " (see runs.jsonl for the messages).")
    if a.skipped:
        out.append(f"{len(a.skipped)} point(s) skipped because the load exceeds the backend's max_connections: "
                   + ", ".join(f"{r['backend']}@{r['offered_load']}" for r in a.skipped[:8]) + ".")
    return out


# -- CSV ----------------------------------------------------------------------------------------

SUMMARY_FIELDS = [
    "backend", "kind", "category", "offered_load", "repetitions", "valid_repetitions", "measured_load",
    "mean_response_ms", "mean_response_ci_lo", "mean_response_ci_hi", "mean_response_ms_stdev",
    "median_response_ms", "p50_ms", "p99_ms", "requests_per_second", "cpu_us_per_request",
    "ctx_switches_per_request", "preemptions_per_request", "user_switches_per_request", "requests_per_cpu_second",
    "server_utilization",
    "client_cpu_utilization", "peak_memory_mib", "errors_total", "beyond_knee", "flags",
    "slope_ms_per_client", "slope_ci_lo", "slope_ci_hi", "intercept_ms", "r",
]


def write_summary_csv(a: Analysis, path: Path) -> Path:
    """One row per server and offered load, with the server's fit repeated on each row. A
    standard deviation is left empty where there is one repetition."""
    fits = {b.backend: b for b in a.backends + a.series_only}
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=SUMMARY_FIELDS)
        w.writeheader()
        for p in a.points:
            row: dict[str, Any] = {k: v for k, v in asdict(p).items() if k in SUMMARY_FIELDS}
            row["mean_response_ci_lo"], row["mean_response_ci_hi"] = p.mean_response_ci
            row["flags"] = ";".join(p.flags)
            b = fits.get(p.backend)
            fit = b.fit_mean if b else None
            row["slope_ms_per_client"] = fit.slope if fit else None
            row["slope_ci_lo"] = b.slope.lo if b and b.slope else None
            row["slope_ci_hi"] = b.slope.hi if b and b.slope else None
            row["intercept_ms"] = fit.intercept if fit else None
            row["r"] = b.r_all if b else None
            for k, v in row.items():
                if v is None:
                    row[k] = ""
                elif isinstance(v, float):
                    row[k] = f"{v:.6g}"
            w.writerow(row)
    return path
