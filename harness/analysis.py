"""From runs.jsonl to numbers: measured load, least-squares fits, flags, ranking, findings.

Definitions (Kerneis & Chroboczek 2009, §2):
  offered load l   — requests kept in flight by the closed-loop client (``-c``);
  measured load l_m = n · t_r / t over the kept window (reported by the loadgen), where n is
                     the number of requests, t_r their mean response time and t the window;
  slope            — least-squares slope of mean response time against offered load, in ms per
                     client: the paper's single figure of merit (smaller is faster).
Points are never dropped for looking odd; they are flagged:
  client_bound     — the loadgen was busy > 90 % of its CPU (idle polling excluded): the client limited the rate;
  load_shortfall   — l_m < 90 % of l: requests were not in flight for part of the run
                     (the somaxconn symptom of the paper's Fig. 1(a));
  errors           — the loadgen counted failed or wrong responses.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

SHORTFALL_RATIO = 0.9
CLIENT_BOUND_UTILIZATION = 0.9
LINEAR_R = 0.999


@dataclass(frozen=True)
class Fit:
    slope: float  # ms per client
    intercept: float  # ms
    r: float | None  # Pearson correlation; None when y is constant
    n: int


def least_squares(xs: list[float], ys: list[float]) -> Fit | None:
    """Ordinary least squares y = intercept + slope·x, with Pearson's r; None if x is constant."""
    n = len(xs)
    if n < 2 or len(set(xs)) < 2:
        return None
    mx = sum(xs) / n
    my = sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    slope = sxy / sxx
    intercept = my - slope * mx
    r = sxy / math.sqrt(sxx * syy) if syy > 0 else None
    return Fit(slope=slope, intercept=intercept, r=r, n=n)


def measured_load(n: int, mean_response_s: float, elapsed_s: float) -> float:
    """l_m = n · t_r / t (the paper's definition)."""
    return n * mean_response_s / elapsed_s if elapsed_s > 0 else 0.0


@dataclass
class Flag:
    backend: str
    offered_load: int
    repetition: int
    kind: str  # "client_bound", "load_shortfall", "errors"
    detail: str


@dataclass
class PointSummary:
    """One server at one offered load, averaged over repetitions."""

    backend: str
    kind: str
    category: str
    offered_load: int
    repetitions: int
    measured_load: float
    mean_response_ms: float
    mean_response_ms_stdev: float
    median_response_ms: float | None
    p50_ms: float | None
    p99_ms: float | None
    requests_per_second: float
    cpu_us_per_request: float | None
    ctx_switches_per_request: float | None
    ctx_voluntary_per_request: float | None
    ctx_involuntary_per_request: float | None
    requests_per_cpu_second: float | None
    peak_rss_mib: float | None
    pss_mib: float | None
    threads_max: int | None
    processes_max: int | None
    errors_total: int
    client_cpu_utilization: float | None
    flags: list[str] = field(default_factory=list)


@dataclass
class BackendSummary:
    backend: str
    kind: str
    category: str
    model: str
    fit_mean: Fit | None
    fit_median: Fit | None
    peak_rps: float
    peak_rps_level: int
    cpu_us_per_request: float | None  # median over levels
    ctx_switches_per_request: float | None  # median over levels
    peak_rss_mib: float | None
    peak_rss_level: int | None
    points: int
    flagged_points: int
    error_points: int
    skipped_levels: list[int]


@dataclass
class Analysis:
    run_dir: Path
    meta: dict[str, Any]
    points: list[PointSummary]
    backends: list[BackendSummary]  # ranked: smallest slope first
    flags: list[Flag]
    errors: list[dict[str, Any]]  # records with status "error"
    skipped: list[dict[str, Any]]
    records: list[dict[str, Any]]  # ok records

    def series(self, backend: str, attr: str) -> tuple[list[int], list[float]]:
        """(offered loads, values) of one backend, skipping missing values."""
        xs, ys = [], []
        for p in self.points:
            if p.backend == backend:
                v = getattr(p, attr)
                if v is not None and not (isinstance(v, float) and math.isnan(v)):
                    xs.append(p.offered_load)
                    ys.append(v)
        return xs, ys

    def backend(self, name: str) -> BackendSummary:
        return next(b for b in self.backends if b.backend == name)

    def raw_points(self, backend: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r["backend"] == backend]


def load_records(run_dir: Path) -> list[dict[str, Any]]:
    """runs.jsonl, keeping the last record of each point (a resumed error is superseded)."""
    by_key: dict[str, dict[str, Any]] = {}
    path = run_dir / "runs.jsonl"
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


def _get(d: dict[str, Any] | None, *path: str) -> Any:
    for p in path:
        if not isinstance(d, dict):
            return None
        d = d.get(p)
    return d


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def record_flags(rec: dict[str, Any]) -> list[Flag]:
    lg = rec.get("loadgen", {})
    flags = []
    level = rec["offered_load"]
    util = _num(_get(lg, "client_cpu", "utilization"))
    if lg.get("client_bound") is True or (util is not None and util > CLIENT_BOUND_UTILIZATION):
        flags.append(Flag(rec["backend"], level, rec.get("repetition", 0), "client_bound",
                          f"client CPU {util * 100:.0f} %" if util is not None else "client CPU saturated"))
    ml = _num(lg.get("measured_load"))
    if ml is not None and ml < SHORTFALL_RATIO * level:
        flags.append(Flag(rec["backend"], level, rec.get("repetition", 0), "load_shortfall",
                          f"measured load {ml:.1f} < {SHORTFALL_RATIO:.0%} of {level}"))
    errs = _num(lg.get("errors_total")) or 0
    if errs > 0:
        kinds = {k: v for k, v in (lg.get("errors") or {}).items() if v}
        flags.append(Flag(rec["backend"], level, rec.get("repetition", 0), "errors",
                          f"{int(errs)} errors " + ", ".join(f"{k}={v}" for k, v in kinds.items())))
    return flags


def _mean(values: Iterable[float | None]) -> float | None:
    vs = [v for v in values if v is not None]
    return sum(vs) / len(vs) if vs else None


def _per_request(rec: dict[str, Any]) -> dict[str, float | None]:
    sm = rec.get("server_metrics") or {}
    served = _num(sm.get("requests_served")) or _num(_get(rec, "loadgen", "completed_total"))
    cpu = None
    if _num(sm.get("cpu_user_s")) is not None and _num(sm.get("cpu_sys_s")) is not None:
        cpu = sm["cpu_user_s"] + sm["cpu_sys_s"]
    vol, invol = _num(sm.get("ctx_voluntary")), _num(sm.get("ctx_involuntary"))
    out: dict[str, float | None] = {"cpu_us": None, "ctx": None, "ctx_vol": None, "ctx_invol": None, "eff": None}
    if served:
        if cpu is not None:
            out["cpu_us"] = cpu * 1e6 / served
            out["eff"] = served / cpu if cpu > 0 else None
        if vol is not None and invol is not None:
            out["ctx"] = (vol + invol) / served
            out["ctx_vol"] = vol / served
            out["ctx_invol"] = invol / served
    return out


def summarize_points(records: list[dict[str, Any]]) -> list[PointSummary]:
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for rec in records:
        groups.setdefault((rec["backend"], rec["offered_load"]), []).append(rec)
    out = []
    for (backend, level), recs in sorted(groups.items()):
        lgs = [r["loadgen"] for r in recs]
        per = [_per_request(r) for r in recs]
        means = [float(lg["mean_response_ms"]) for lg in lgs]
        rss = [_num(_get(r, "server_metrics", "peak_rss_kib")) for r in recs]
        flags = sorted({f.kind for r in recs for f in record_flags(r)})
        utils = [_num(_get(lg, "client_cpu", "utilization")) for lg in lgs]
        out.append(PointSummary(
            backend=backend,
            kind=recs[0].get("kind", "toy"),
            category=recs[0].get("category", "other"),
            offered_load=level,
            repetitions=len(recs),
            measured_load=_mean(_num(lg.get("measured_load")) for lg in lgs) or 0.0,
            mean_response_ms=sum(means) / len(means),
            mean_response_ms_stdev=statistics.stdev(means) if len(means) > 1 else 0.0,
            median_response_ms=_mean(_num(lg.get("median_response_ms")) for lg in lgs),
            p50_ms=_mean(_num(_get(lg, "percentiles_ms", "50")) for lg in lgs),
            p99_ms=_mean(_num(_get(lg, "percentiles_ms", "99")) for lg in lgs),
            requests_per_second=_mean(_num(lg.get("requests_per_second")) for lg in lgs) or 0.0,
            cpu_us_per_request=_mean(p["cpu_us"] for p in per),
            ctx_switches_per_request=_mean(p["ctx"] for p in per),
            ctx_voluntary_per_request=_mean(p["ctx_vol"] for p in per),
            ctx_involuntary_per_request=_mean(p["ctx_invol"] for p in per),
            requests_per_cpu_second=_mean(p["eff"] for p in per),
            peak_rss_mib=(max(v for v in rss if v is not None) / 1024) if any(v is not None for v in rss) else None,
            pss_mib=(lambda v: v / 1024 if v is not None else None)(
                _mean(_num(_get(r, "server_metrics", "pss_sum_kib")) for r in recs)),
            threads_max=max((int(_get(r, "server_metrics", "threads_max") or 0) for r in recs), default=None),
            processes_max=max((int(_get(r, "server_metrics", "processes_max") or 0) for r in recs), default=None),
            errors_total=int(sum(_num(lg.get("errors_total")) or 0 for lg in lgs)),
            client_cpu_utilization=_mean(utils),
            flags=flags,
        ))
    return out


def analyze(run_dir: Path) -> Analysis:
    run_dir = Path(run_dir)
    meta_path = run_dir / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    all_records = load_records(run_dir)
    ok = [r for r in all_records if r.get("status") == "ok" and isinstance(r.get("loadgen"), dict)
          and _num(r["loadgen"].get("mean_response_ms")) is not None]
    errors = [r for r in all_records if r.get("status") == "error"]
    skipped = [r for r in all_records if r.get("status") == "skipped"]
    points = summarize_points(ok)
    flags = [f for r in ok for f in record_flags(r)]
    targets = {t["label"]: t for t in meta.get("targets", [])}

    backends = []
    names = list(dict.fromkeys(r["backend"] for r in ok))
    for name in names:
        recs = [r for r in ok if r["backend"] == name]
        xs = [float(r["offered_load"]) for r in recs]
        fit_mean = least_squares(xs, [float(r["loadgen"]["mean_response_ms"]) for r in recs])
        med = [(float(r["offered_load"]), _num(r["loadgen"].get("median_response_ms"))) for r in recs]
        med = [(x, y) for x, y in med if y is not None]
        fit_median = least_squares([x for x, _ in med], [y for _, y in med]) if med else None
        pts = [p for p in points if p.backend == name]
        best = max(pts, key=lambda p: p.requests_per_second)
        cpu = [p.cpu_us_per_request for p in pts if p.cpu_us_per_request is not None]
        ctx = [p.ctx_switches_per_request for p in pts if p.ctx_switches_per_request is not None]
        rss_pts = [p for p in pts if p.peak_rss_mib is not None]
        rss_peak = max(rss_pts, key=lambda p: p.peak_rss_mib) if rss_pts else None
        backends.append(BackendSummary(
            backend=name,
            kind=recs[0].get("kind", "toy"),
            category=recs[0].get("category", "other"),
            model=recs[0].get("model") or targets.get(name, {}).get("model", ""),
            fit_mean=fit_mean,
            fit_median=fit_median,
            peak_rps=best.requests_per_second,
            peak_rps_level=best.offered_load,
            cpu_us_per_request=statistics.median(cpu) if cpu else None,
            ctx_switches_per_request=statistics.median(ctx) if ctx else None,
            peak_rss_mib=rss_peak.peak_rss_mib if rss_peak else None,
            peak_rss_level=rss_peak.offered_load if rss_peak else None,
            points=len(recs),
            flagged_points=len({(f.offered_load, f.repetition) for f in flags if f.backend == name}),
            error_points=sum(1 for r in errors if r["backend"] == name),
            skipped_levels=sorted({r["offered_load"] for r in skipped if r["backend"] == name}),
        ))
    backends.sort(key=lambda b: (b.fit_mean is None, b.fit_mean.slope if b.fit_mean else 0.0, b.backend))
    return Analysis(run_dir=run_dir, meta=meta, points=points, backends=backends, flags=flags,
                    errors=errors, skipped=skipped, records=ok)


# -- findings -----------------------------------------------------------------------------------

THREAD_CATEGORIES = ("user-level threads", "kernel threads")


def _fmt_slope(b: BackendSummary) -> str:
    assert b.fit_mean is not None
    return f"{b.fit_mean.slope:.4f} ms/client"


def findings(a: Analysis) -> list[str]:
    """Plain sentences, every number computed from the run."""
    out: list[str] = []
    fitted = [b for b in a.backends if b.fit_mean is not None]
    if not fitted:
        return ["No server has two or more offered loads measured, so no slope could be fitted."]
    best, worst = fitted[0], fitted[-1]
    out.append(f"Smallest slope (fastest): {best.backend} ({best.category}), {_fmt_slope(best)}; "
               f"largest: {worst.backend} ({worst.category}), {_fmt_slope(worst)}"
               + (f" — {worst.fit_mean.slope / best.fit_mean.slope:.1f}× steeper." if best.fit_mean.slope > 0 else "."))

    def best_in(cats: tuple[str, ...], kind: str | None = None) -> BackendSummary | None:
        for b in fitted:
            if b.category in cats and (kind is None or b.kind == kind):
                return b
        return None

    ev = best_in(("event-driven",), "toy") or best_in(("event-driven",))
    th = best_in(THREAD_CATEGORIES, "toy") or best_in(THREAD_CATEGORIES)
    if ev and th:
        ratio = th.fit_mean.slope / ev.fit_mean.slope if ev.fit_mean.slope > 0 else float("inf")
        if ratio >= 1.0:
            verdict = (f"events are as fast or faster than threads here: the best thread-based server "
                       f"has a {ratio:.2f}× larger slope")
        else:
            verdict = (f"the best thread-based server is faster here: the best event-driven server has a "
                       f"{1 / ratio:.2f}× larger slope")
        caveats = []
        for b in (ev, th):
            cb = len({(f.offered_load, f.repetition) for f in a.flags if f.backend == b.backend})
            if cb:
                caveats.append(f"{b.backend} has {cb} flagged point(s) of {b.points}")
        caution = (f" Caution: {'; '.join(caveats)}, so its slope may partly measure the client or the "
                   f"accept queue rather than the concurrency model.") if caveats else ""
        out.append(f"Are events fast? Best event-driven: {ev.backend}, {_fmt_slope(ev)}; best thread-based: "
                   f"{th.backend} ({th.category}), {_fmt_slope(th)} — {verdict}.{caution}")
    for cat in ("event-driven", "user-level threads", "kernel threads", "processes"):
        members = [b for b in fitted if b.category == cat]
        if len(members) > 1:
            out.append(f"{cat.capitalize()}: " + ", ".join(f"{b.backend} {b.fit_mean.slope:.4f}" for b in members)
                       + " ms/client.")

    rs = [b for b in fitted if b.fit_mean.r is not None]
    linear = [b for b in rs if b.fit_mean.r > LINEAR_R]
    if rs:
        sentence = (f"Linearity: {len(linear)} of {len(rs)} servers have r > {LINEAR_R} between mean response "
                    f"time and offered load (the paper found r > 0.999 for all but Apache)")
        low = sorted((b for b in rs if b.fit_mean.r <= LINEAR_R), key=lambda b: b.fit_mean.r)
        if low:
            sentence += "; lowest: " + ", ".join(f"{b.backend} r = {b.fit_mean.r:.4f}" for b in low[:4])
        out.append(sentence + ".")

    prod = [b for b in fitted if b.kind == "production"]
    toy = [b for b in fitted if b.kind == "toy"]
    if prod and toy:
        pm = statistics.median(b.fit_mean.slope for b in prod)
        tm = statistics.median(b.fit_mean.slope for b in toy)
        word = "slower" if pm > tm else "faster"
        out.append(f"Production servers are {word} than our servers overall: median slope {pm:.4f} vs "
                   f"{tm:.4f} ms/client; best production server {prod[0].backend} ({prod[0].fit_mean.slope:.4f}).")
    names = {b.backend: b for b in fitted}
    if "fork" in names and "thread" in names and names["thread"].fit_mean.slope > 0:
        f, t = names["fork"], names["thread"]
        out.append(f"Process per connection (fork, {f.fit_mean.slope:.4f} ms/client) vs thread per connection "
                   f"(thread, {t.fit_mean.slope:.4f} ms/client): fork's slope is "
                   f"{f.fit_mean.slope / t.fit_mean.slope:.2f}× thread's.")

    top = max(a.backends, key=lambda b: b.peak_rps)
    low_tp = min(a.backends, key=lambda b: b.peak_rps)
    out.append(f"Peak throughput: {top.backend} {top.peak_rps:,.0f} requests/s at {top.peak_rps_level} clients; "
               f"lowest peak: {low_tp.backend} {low_tp.peak_rps:,.0f} requests/s.")
    cpu = [b for b in a.backends if b.cpu_us_per_request is not None]
    if cpu:
        c_lo = min(cpu, key=lambda b: b.cpu_us_per_request)
        c_hi = max(cpu, key=lambda b: b.cpu_us_per_request)
        out.append(f"Server CPU per request (median over loads): least {c_lo.backend} "
                   f"{c_lo.cpu_us_per_request:.1f} µs, most {c_hi.backend} {c_hi.cpu_us_per_request:.1f} µs.")
    mem = [b for b in a.backends if b.peak_rss_mib is not None]
    if mem:
        m_lo = min(mem, key=lambda b: b.peak_rss_mib)
        m_hi = max(mem, key=lambda b: b.peak_rss_mib)
        sentence = (f"Peak memory (resident, summed over the server's processes): smallest {m_lo.backend} "
                    f"{m_lo.peak_rss_mib:.1f} MiB, largest {m_hi.backend} {m_hi.peak_rss_mib:.1f} MiB "
                    f"at {m_hi.peak_rss_level} clients")
        pss = next((p.pss_mib for p in a.points
                    if p.backend == m_hi.backend and p.offered_load == m_hi.peak_rss_level), None)
        if pss is not None and pss < 0.8 * m_hi.peak_rss_mib:
            sentence += (f"; RSS counts pages shared between processes once per process, and {m_hi.backend}'s "
                         f"proportional share (PSS) at the end of that load was {pss:.1f} MiB")
        out.append(sentence + ".")

    by_kind: dict[str, list[Flag]] = {}
    for f in a.flags:
        by_kind.setdefault(f.kind, []).append(f)
    total = len(a.records)
    if "client_bound" in by_kind:
        fl = by_kind["client_bound"]
        out.append(f"Client-bound points: {len(fl)} of {total} (client busy above "
                   f"{CLIENT_BOUND_UTILIZATION:.0%}); there the client, not the server, limited the rate: "
                   + _flag_list(fl) + ".")
    if "load_shortfall" in by_kind:
        fl = by_kind["load_shortfall"]
        somax = a.meta.get("environment", {}).get("somaxconn")
        out.append(f"Measured load below {SHORTFALL_RATIO:.0%} of offered load at {len(fl)} of {total} points "
                   f"(somaxconn is {somax}): " + _flag_list(fl) + ".")
    if "errors" in by_kind:
        fl = by_kind["errors"]
        out.append(f"Points with failed or wrong responses: {len(fl)}: " + _flag_list(fl) + ".")
    if not a.flags:
        out.append(f"No point was client-bound, fell short of its offered load or saw errors ({total} points).")
    if a.errors:
        out.append(f"{len(a.errors)} point(s) failed to run: "
                   + ", ".join(f"{r['backend']}@{r['offered_load']}" for r in a.errors[:8])
                   + ("…" if len(a.errors) > 8 else "") + " (see runs.jsonl for the messages).")
    if a.skipped:
        out.append(f"{len(a.skipped)} point(s) skipped because the load exceeds the backend's max_connections: "
                   + ", ".join(f"{r['backend']}@{r['offered_load']}" for r in a.skipped[:8]) + ".")
    return [s for s in out if s]


def _flag_list(flags: list[Flag], limit: int = 6) -> str:
    items = sorted({(f.backend, f.offered_load) for f in flags})
    text = ", ".join(f"{b}@{lvl}" for b, lvl in items[:limit])
    return text + (f" and {len(items) - limit} more" if len(items) > limit else "")


# -- CSV ----------------------------------------------------------------------------------------

SUMMARY_FIELDS = [
    "backend", "kind", "category", "offered_load", "repetitions", "measured_load", "mean_response_ms",
    "mean_response_ms_stdev", "median_response_ms", "p50_ms", "p99_ms", "requests_per_second",
    "cpu_us_per_request", "ctx_switches_per_request", "requests_per_cpu_second", "peak_rss_mib", "pss_mib",
    "threads_max", "processes_max", "errors_total", "client_cpu_utilization", "flags",
    "slope_ms_per_client", "intercept_ms", "r",
]


def write_summary_csv(a: Analysis, path: Path) -> Path:
    """One row per server and offered load, with the server's fit repeated on each row."""
    fits = {b.backend: b.fit_mean for b in a.backends}
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=SUMMARY_FIELDS)
        w.writeheader()
        for p in a.points:
            row = {k: v for k, v in asdict(p).items() if k in SUMMARY_FIELDS}
            row["flags"] = ";".join(p.flags)
            fit = fits.get(p.backend)
            row["slope_ms_per_client"] = fit.slope if fit else ""
            row["intercept_ms"] = fit.intercept if fit else ""
            row["r"] = fit.r if fit and fit.r is not None else ""
            for k, v in row.items():
                if isinstance(v, float):
                    row[k] = f"{v:.6g}"
            w.writerow(row)
    return path
