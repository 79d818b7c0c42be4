"""The papers' claims, one by one, checked against a run.

Each claim is a sentence of the paper, the figure of this run that tests it (with its 95 %
bootstrap interval) and a verdict computed from that interval:

* agrees        — the interval lies on the paper's side of the claim's threshold;
* disagrees     — it lies entirely on the other side;
* inconclusive  — it straddles the threshold, or the servers the claim needs are missing.

Thresholds are written next to each claim ("several times" = at least 2×; "similar" = within a
factor 1.25 either way; "as fast as" = at most 1.2× the slope). ``[experiment] claims`` in an
experiment file names the claim sets its report checks.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from harness.analysis import Analysis, BackendSummary
from harness.stats import Interval, line_of_medians, ratio_interval

AGREES, DISAGREES, INCONCLUSIVE = "agrees", "disagrees", "inconclusive"
SIMILAR = 1.25  # "similar" / "equally": within a factor 1.25 either way
SEVERAL = 2.0  # "several times"
AS_FAST = 1.2  # "as fast as": at most 1.2× the other's slope

# The paper's toy servers and the backends that stand for them here: fork, NPTL (thread), Pth,
# ST, and CPC's compiled events (coro when it is built, else the hand-written event loop, sped).
PAPER_THREADS = ("thread", "pth", "st")
EVENT_TOYS = ("coro", "sped")
THREAD_CATEGORIES = ("user-level threads", "kernel threads")


@dataclass
class Claim:
    paper: str
    statement: str  # the paper's words
    test: str  # how this run tests it
    figure: str  # our number(s), with intervals
    verdict: str
    value: float | None = None
    lo: float | None = None
    hi: float | None = None


def _groups(a: Analysis, name: str) -> dict[int, list[float]]:
    out: dict[int, list[float]] = {}
    for r in a.valid_records:
        if r["backend"] == name:
            out.setdefault(r["offered_load"], []).append(float(r["loadgen"]["mean_response_ms"]))
    return out


def _slope(g: dict[object, list[float]]) -> float | None:
    line = line_of_medians(g)
    return line.slope if line else None


def slope_ratio(a: Analysis, num: str, den: str) -> Interval | None:
    """slope(num) / slope(den) with a bootstrap interval (each server resampled independently);
    None when either slope is not positive (a ratio of such slopes says nothing)."""
    ga, gb = _groups(a, num), _groups(a, den)
    if len(ga) < 2 or len(gb) < 2:
        return None
    sa, sb = _slope(ga), _slope(gb)
    if sa is None or sb is None or sa <= 0 or sb <= 0:
        return None
    return ratio_interval(ga, gb, _slope)


def _iv(iv: Interval, spec: str = ".2f", unit: str = "") -> str:
    if iv.lo is None or iv.hi is None:
        return f"{iv.value:{spec}}{unit}"
    return f"{iv.value:{spec}}{unit} [{iv.lo:{spec}}, {iv.hi:{spec}}]"


def at_least(iv: Interval | None, threshold: float) -> str:
    if iv is None:
        return INCONCLUSIVE
    lo, hi = iv.bounds()
    return AGREES if lo >= threshold else DISAGREES if hi < threshold else INCONCLUSIVE


def at_most(iv: Interval | None, threshold: float) -> str:
    if iv is None:
        return INCONCLUSIVE
    lo, hi = iv.bounds()
    return AGREES if hi <= threshold else DISAGREES if lo > threshold else INCONCLUSIVE


def within(iv: Interval | None, factor: float) -> str:
    if iv is None:
        return INCONCLUSIVE
    lo, hi = iv.bounds()
    if lo >= 1 / factor and hi <= factor:
        return AGREES
    if hi < 1 / factor or lo > factor:
        return DISAGREES
    return INCONCLUSIVE


def _claim(statement: str, test: str, figure: str, verdict: str, iv: Interval | None = None) -> Claim:
    return Claim(paper="Kerneis & Chroboczek 2009", statement=statement, test=test, figure=figure, verdict=verdict,
                 value=iv.value if iv else None, lo=iv.lo if iv else None, hi=iv.hi if iv else None)


def _missing(statement: str, test: str, names: str) -> Claim:
    return _claim(statement, test, f"not measured: {names}", INCONCLUSIVE)


def kerneis2009(a: Analysis) -> list[Claim]:
    """The claims of "Are events fast?" that a run of the Kerneis experiment can check."""
    ranked = {b.backend: b for b in a.backends if b.slope is not None}
    ev = [ranked[n] for n in EVENT_TOYS if n in ranked]
    toys = [ranked[n] for n in ("fork", *PAPER_THREADS) if n in ranked] + ev[:1]  # the paper's set
    out: list[Claim] = []

    # 1. ST best of the toy servers.
    st = ranked.get("st")
    s1 = "ST yielded excellent results: the lowest slope of the toy servers (fork, NPTL, Pth, ST, events)."
    t1 = "st's slope interval lies below every other toy server's (agrees); shares the best rank (inconclusive)"
    if st is None or len(toys) < 2:
        out.append(_missing(s1, t1, "st"))
    else:
        others = [b for b in toys if b.backend != "st"]
        best_other = min(others, key=lambda b: b.slope.value)
        below = all(st.slope.bounds()[1] < b.slope.bounds()[0] for b in others)
        beaten = [b for b in others if b.slope.bounds()[1] < st.slope.bounds()[0]]
        verdict = AGREES if below else DISAGREES if beaten else INCONCLUSIVE
        out.append(_claim(s1, t1, f"st {_iv(st.slope, '.4f')} ms/client; best other toy {best_other.backend} "
                          f"{_iv(best_other.slope, '.4f')}" + (f"; beaten by {', '.join(b.backend for b in beaten)}"
                                                                if beaten else ""), verdict, st.slope))

    # 2. fork several times slower than every other model.
    s2 = "The implementation using fork was slower than any other implementation — several times."
    t2 = f"fork's slope / the slowest other toy server's slope ≥ {SEVERAL:g} (interval)"
    fork = ranked.get("fork")
    others = [b for b in toys if b.backend != "fork"]
    if fork is None or not others:
        out.append(_missing(s2, t2, "fork"))
    else:
        slowest = max(others, key=lambda b: b.slope.value)
        iv = slope_ratio(a, "fork", slowest.backend)
        out.append(_claim(s2, t2, f"fork / {slowest.backend} = {_iv(iv)}×" if iv else "no positive slopes to compare",
                          at_least(iv, SEVERAL), iv))

    # 3. NPTL ≈ Pth.
    s3 = "Pth yielded results similar to those of NPTL."
    t3 = f"slope ratio thread (NPTL) / pth within a factor {SIMILAR:g} either way"
    iv = slope_ratio(a, "thread", "pth") if "thread" in ranked and "pth" in ranked else None
    out.append(_claim(s3, t3, f"thread / pth = {_iv(iv)}×", within(iv, SIMILAR), iv) if iv
               else _missing(s3, t3, "thread and pth with positive slopes"))

    # 4. Events as fast as the fastest threads.
    s4 = "Event-driven programs are as fast as the fastest user-space thread libraries."
    t4 = f"best event-driven toy server's slope / best thread-based toy server's ≤ {AS_FAST:g}"
    ev = [b for b in ranked.values() if b.kind == "toy" and b.category == "event-driven"]
    th = [b for b in ranked.values() if b.kind == "toy" and b.category in THREAD_CATEGORIES]
    if not ev or not th:
        out.append(_missing(s4, t4, "an event-driven and a thread-based toy server"))
    else:
        e = min(ev, key=lambda b: b.slope.value)
        t = min(th, key=lambda b: b.slope.value)
        iv = slope_ratio(a, e.backend, t.backend)
        out.append(_claim(s4, t4, f"{e.backend} / {t.backend} = {_iv(iv)}×" if iv else "no positive slopes to compare", at_most(iv, AS_FAST), iv))

    # 5. Production servers slower than the toys.
    s5 = "The production servers were generally slower than the toy servers."
    t5 = ("most production servers' slope intervals lie above the median slope of the paper's toy servers "
          "(fork, thread, pth, st and the event toy)")
    prod = [b for b in a.backends if b.kind == "production" and b.slope is not None]
    paper_toys = toys
    if not prod or len(paper_toys) < 2:
        out.append(_missing(s5, t5, "production servers or toy servers"))
    else:
        median_toy = statistics.median(b.slope.value for b in paper_toys)
        above = [b for b in prod if b.slope.bounds()[0] > median_toy]
        below = [b for b in prod if b.slope.bounds()[1] < median_toy]
        verdict = AGREES if len(above) > len(prod) / 2 else DISAGREES if len(below) > len(prod) / 2 else INCONCLUSIVE
        out.append(_claim(s5, t5, f"median toy slope {median_toy:.4f} ms/client; slower: "
                          f"{', '.join(b.backend for b in above) or 'none'}; faster: "
                          f"{', '.join(b.backend for b in below) or 'none'} (of {len(prod)})", verdict))

    # 6. Apache prefork ≈ worker.
    s6 = "Apache's process-pool (prefork) and thread-pool (worker) implementations performed equally poorly."
    t6 = f"slope ratio apache-prefork / apache-worker within a factor {SIMILAR:g} either way"
    if "apache-prefork" in ranked and "apache-worker" in ranked:
        iv = slope_ratio(a, "apache-prefork", "apache-worker")
        out.append(_claim(s6, t6, f"prefork / worker = {_iv(iv)}×" if iv else "no positive slopes to compare", within(iv, SIMILAR), iv))
    else:
        out.append(_missing(s6, t6, "apache-prefork, apache-worker"))

    # 7. Apache slowest among production servers.
    s7 = "Apache turned out to be the slowest amongst the production servers."
    t7 = "every Apache MPM's slope interval lies above every other production server's"
    apaches = [b for b in prod if b.backend.startswith("apache")]
    rest = [b for b in prod if not b.backend.startswith("apache")]
    if not apaches or not rest:
        out.append(_missing(s7, t7, "Apache and another production server"))
    else:
        above_all = all(ap.slope.bounds()[0] > o.slope.bounds()[1] for ap in apaches for o in rest)
        below_any = any(ap.slope.bounds()[1] < o.slope.bounds()[0] for ap in apaches for o in rest)
        fastest_rest = max(rest, key=lambda b: b.slope.value)
        out.append(_claim(s7, t7, ", ".join(f"{b.backend} {_iv(b.slope, '.4f')}" for b in apaches)
                          + f"; slowest other: {fastest_rest.backend} {_iv(fastest_rest.slope, '.4f')}",
                          AGREES if above_all else DISAGREES if below_any else INCONCLUSIVE))

    # 8. Linearity.
    s8 = "With the exception of Apache, the correlation between mean response time and offered load is above 0.999."
    t8 = "r over every valid point, for every ranked server except Apache: all above 0.999 (agrees), fewer than half (disagrees)"
    rs = [b for b in a.backends if b.r_all is not None and not b.backend.startswith("apache")]
    if rs:
        good = [b for b in rs if b.r_all > 0.999]
        verdict = AGREES if len(good) == len(rs) else DISAGREES if len(good) < len(rs) / 2 else INCONCLUSIVE
        worst = min(rs, key=lambda b: b.r_all)
        out.append(_claim(s8, t8, f"{len(good)} of {len(rs)} above 0.999; lowest {worst.backend} r = {worst.r_all:.4f}",
                          verdict))
    else:
        out.append(_missing(s8, t8, "fitted servers"))

    out.append(fig1a_claim(a))
    return out


def _backlog(b: BackendSummary, a: Analysis) -> int | None:
    for t in a.meta.get("targets", []):
        if t.get("label") == b.backend:
            args = list(t.get("args") or [])
            if "--backlog" in args and args.index("--backlog") + 1 < len(args):
                try:
                    return int(args[args.index("--backlog") + 1])
                except ValueError:
                    return None
    return None


def fig1a_claim(a: Analysis) -> Claim:
    """Fig. 1(a): with an accept queue of 128 the measured load is capped near 130 whatever the
    offered load; with a large queue (Fig. 1(b)) it follows the offered load."""
    statement = ("However large the offered load, the measured load never exceeded roughly 130 with somaxconn "
                 "at 128; raising it removed the limit (Fig. 1).")
    test = ("at the heaviest load the small-backlog series keeps less than half the offered load in service, "
            "while the same server with the raised backlog keeps at least 90 %")
    for b in a.series_only:
        backlog = _backlog(b, a)
        base_name = next((r.get("base_backend") for r in a.records if r["backend"] == b.backend), None)
        if backlog is None or base_name is None:
            continue
        base = next((p for p in a.backends if p.backend == base_name), None)
        xs, ys = a.series(b.backend, "measured_load")
        if base is None or not xs:
            continue
        top = max(xs)
        capped = ys[xs.index(top)]
        bxs, bys = a.series(base_name, "measured_load")
        raised = bys[bxs.index(top)] if top in bxs else None
        if raised is None:
            continue
        cap_ok = capped < 0.5 * top
        raised_ok = raised >= 0.9 * top
        verdict = AGREES if cap_ok and raised_ok else DISAGREES if capped >= 0.9 * top else INCONCLUSIVE
        series = ", ".join(f"{y:.0f} at {x}" for x, y in zip(xs, ys))
        return _claim(statement, test, f"{b.backend} (backlog {backlog}): measured load {series}; "
                      f"{base_name} (backlog 4096): {raised:.0f} at {top}", verdict)
    return _missing(statement, test, "a series with a small --backlog (a [[servers.variant]] with ranked = false)")


CLAIM_SETS: dict[str, Callable[[Analysis], list[Claim]]] = {"kerneis2009": kerneis2009}


def claims_for(a: Analysis) -> list[Claim]:
    names = (a.meta.get("experiment") or {}).get("claims") or []
    out: list[Claim] = []
    for name in names:
        fn = CLAIM_SETS.get(name)
        if fn is not None:
            out.extend(fn(a))
    return out


def write_claims(claims: list[Claim], path: Path) -> Path:
    path.write_text(json.dumps([asdict(c) for c in claims], indent=2) + "\n")
    return path


def tally(claims: list[Claim]) -> dict[str, int]:
    out = {AGREES: 0, DISAGREES: 0, INCONCLUSIVE: 0}
    for c in claims:
        out[c.verdict] += 1
    return out

