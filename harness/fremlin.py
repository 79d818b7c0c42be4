"""Fremlin (2008), "Serving dynamic webpages in less than a millisecond": a dynamic page
(<h1>Hello NAME</h1>, HTML-escaped) served on one core at rates close to a static file's. The
`fremlin2008` experiment measures every backend on /hello?name=TLUG and on a static file of
exactly the same bytes, with and without keep-alive (production servers serve the static twin).
"""

from __future__ import annotations

from pathlib import Path

from harness.cells import CellRun, cell_run, ratio
from harness.claims import AGREES, DISAGREES, INCONCLUSIVE, Claim

PAPER = "Fremlin 2008"
WELL_UNDER_MS = 1.0  # "in less than a millisecond": server CPU per dynamic request
CLOSE = 0.9  # "close to the static ones": dynamic ÷ static requests/s at least 0.9


def summarize(run_dir: Path) -> CellRun:
    return cell_run(run_dir, lambda r: (r.get("page", "static"), bool(r.get("keep_alive", False))))


def claims(run: CellRun) -> list[Claim]:
    out = []
    toys = [b for b in run.backends() if any(c.backend == b and c.kind == "toy" for c in run.cells)]
    dyn = [c for c in run.cells if c.condition[0] == "dynamic" and c.cpu_us_per_request is not None and c.valid]
    if dyn:
        worst = max(dyn, key=lambda c: c.cpu_us_per_request.bounds()[1])
        hi = worst.cpu_us_per_request.bounds()[1] / 1000
        lo = min(c.cpu_us_per_request.bounds()[0] for c in dyn) / 1000
        verdict = AGREES if hi < WELL_UNDER_MS else DISAGREES if min(
            c.cpu_us_per_request.bounds()[0] for c in dyn) / 1000 >= WELL_UNDER_MS else INCONCLUSIVE
        out.append(Claim(PAPER, "A dynamic page can be served in (well) under a millisecond on one core.",
                         f"server CPU per dynamic request below {WELL_UNDER_MS:g} ms for every backend (interval)",
                         f"{len(dyn)} cells from {lo * 1000:.0f} to {hi * 1000:.0f} µs; most: {worst.backend} "
                         f"({'keep-alive' if worst.condition[1] else 'new connections'})", verdict))
    else:
        out.append(Claim(PAPER, "A dynamic page can be served in under a millisecond.", "", "not measured", INCONCLUSIVE))
    for keep_alive in (False, True):
        close, far, unknown = [], [], []
        for b in toys:
            d, s = run.cell(b, ("dynamic", keep_alive)), run.cell(b, ("static", keep_alive))
            if not d or not s or not d.valid or not s.valid:
                continue
            r = ratio(d.requests_per_second, s.requests_per_second)
            if r is None:
                continue
            lo, hi = r.bounds()
            (close if lo >= CLOSE else far if hi < CLOSE else unknown).append(f"{b} {r.value:.2f}")
        if not (close or far or unknown):
            continue
        verdict = AGREES if not far and not unknown else DISAGREES if len(far) > len(toys) / 2 else INCONCLUSIVE
        mode = "keep-alive" if keep_alive else "a new connection per request"
        out.append(Claim(PAPER, f"The dynamic page is served at rates close to the static file's ({mode}).",
                         f"dynamic ÷ static requests/s ≥ {CLOSE:g} for every backend (interval)",
                         "close: " + (", ".join(close) or "none") + "; below: " + (", ".join(far) or "none")
                         + ("; unclear: " + ", ".join(unknown) if unknown else ""), verdict))
    return out
