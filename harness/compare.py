"""``harness compare RUN_A RUN_B``: did a change make a server faster or slower?

For every server in both runs, and for every load both runs measured, the ratio B / A of the
figure of merit with a 95 % bootstrap interval (each run's repetitions resampled independently),
and a verdict in the manner of Google Benchmark's compare.py and pyperf's compare_to:

* slope (ms per client, smaller is faster) and mean response time at each load: ``faster`` when
  the interval lies below 1, ``slower`` above 1, else ``no significant change``;
* throughput (requests/s, larger is faster): the other way round.

Only valid points count (see harness.analysis). Comparing runs from different machines, or with
different CPU shares, compares the machines too: the header says when the shares differ.
"""

from __future__ import annotations

import csv
import statistics
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from harness.analysis import Analysis, analyze
from harness.stats import Interval, line_of_medians, ratio_interval

FASTER, SLOWER, SAME = "faster", "slower", "no significant change"


@dataclass
class Change:
    server: str
    what: str  # "slope" or "mean response @ c=N" or "throughput @ c=N"
    a: float
    b: float
    ratio: float
    lo: float | None
    hi: float | None
    verdict: str


def _valid(a: Analysis, server: str) -> list[dict]:
    return [r for r in a.valid_records if r["backend"] == server]


def _verdict(iv: Interval, smaller_is_better: bool) -> str:
    lo, hi = iv.bounds()
    if iv.lo is None:
        return SAME  # one repetition: no interval, no claim
    if hi < 1:
        return FASTER if smaller_is_better else SLOWER
    if lo > 1:
        return SLOWER if smaller_is_better else FASTER
    return SAME


def _slope(g: dict[object, list[float]]) -> float | None:
    line = line_of_medians(g)
    return line.slope if line else None


def _median(g: dict[object, list[float]]) -> float | None:
    values = [v for vs in g.values() for v in vs]
    return statistics.median(values) if values else None


def compare_runs(run_a: Path, run_b: Path) -> tuple[list[Change], list[str]]:
    a, b = analyze(run_a), analyze(run_b)
    notes = []
    sa, sb = a.meta.get("pinning", {}).get("server_cpu_share_used"), b.meta.get("pinning", {}).get("server_cpu_share_used")
    if sa != sb:
        notes.append(f"the runs capped the servers differently ({sa} vs {sb}): ratios compare the caps too")
    ha, hb = a.meta.get("environment", {}).get("hostname"), b.meta.get("environment", {}).get("hostname")
    if ha != hb:
        notes.append(f"the runs come from different machines ({ha} vs {hb})")
    servers = [s.backend for s in a.backends + a.series_only
               if any(x.backend == s.backend for x in b.backends + b.series_only)]
    changes: list[Change] = []
    for server in servers:
        ra, rb = _valid(a, server), _valid(b, server)

        def groups(recs: list[dict], field: str) -> dict[int, list[float]]:
            out: dict[int, list[float]] = {}
            for r in recs:
                out.setdefault(r["offered_load"], []).append(float(r["loadgen"][field]))
            return out

        ga, gb = groups(ra, "mean_response_ms"), groups(rb, "mean_response_ms")
        common = sorted(set(ga) & set(gb))
        if len(common) >= 2:
            ca, cb = {k: ga[k] for k in common}, {k: gb[k] for k in common}
            iv = ratio_interval(cb, ca, _slope)
            va, vb = _slope(ca), _slope(cb)
            if iv is not None and va is not None and vb is not None:
                changes.append(Change(server, "slope (ms/client)", va, vb, iv.value, iv.lo, iv.hi, _verdict(iv, True)))
        ta, tb = groups(ra, "requests_per_second"), groups(rb, "requests_per_second")
        for level in common:
            for what, da, db, smaller in (("mean response (ms)", ga, gb, True), ("throughput (req/s)", ta, tb, False)):
                iv = ratio_interval({0: db[level]}, {0: da[level]}, _median)
                if iv is None:
                    continue
                changes.append(Change(server, f"{what} @ c={level}", statistics.median(da[level]),
                                      statistics.median(db[level]), iv.value, iv.lo, iv.hi, _verdict(iv, smaller)))
    only_a = sorted({s.backend for s in a.backends} - {s.backend for s in b.backends})
    only_b = sorted({s.backend for s in b.backends} - {s.backend for s in a.backends})
    if only_a:
        notes.append(f"only in {run_a.name}: {', '.join(only_a)}")
    if only_b:
        notes.append(f"only in {run_b.name}: {', '.join(only_b)}")
    return changes, notes


def print_changes(changes: list[Change], notes: list[str], run_a: Path, run_b: Path, out=sys.stdout) -> None:
    print(f"A = {run_a}\nB = {run_b}\nratio = B / A with its 95 % bootstrap interval", file=out)
    for n in notes:
        print(f"note: {n}", file=out)
    print(f"{'server':<15} {'figure':<26} {'A':>11} {'B':>11} {'B/A':>7} {'interval':>17}  verdict", file=out)
    for c in changes:
        ci = f"[{c.lo:.3f}, {c.hi:.3f}]" if c.lo is not None and c.hi is not None else "(1 repetition)"
        print(f"{c.server:<15} {c.what:<26} {c.a:>11.4g} {c.b:>11.4g} {c.ratio:>7.3f} {ci:>17}  {c.verdict}", file=out)
    slope_changes = [c for c in changes if c.what.startswith("slope")]
    if slope_changes:
        counts = {v: sum(1 for c in slope_changes if c.verdict == v) for v in (FASTER, SLOWER, SAME)}
        print(f"slopes: {counts[FASTER]} faster, {counts[SLOWER]} slower, {counts[SAME]} without a significant "
              f"change", file=out)


def write_csv(changes: list[Change], path: Path) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(asdict(changes[0]).keys()) if changes else ["server"])
        w.writeheader()
        for c in changes:
            w.writerow(asdict(c))
