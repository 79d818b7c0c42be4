"""von Leitner (2003), "Scalable Network Programming": does serving get slower as more
connections are alive? The `leitner2003` experiment holds 10 to 10,000 idle keep-alive
connections beside 100 active ones and measures sped with each of its pollers (select, poll,
epoll): the claim is that epoll (the kernel's O(1) event notification) stays flat while poll and
select, which hand the kernel every descriptor on every wait, degrade linearly.
"""

from __future__ import annotations

from pathlib import Path

from harness.cells import Cell, CellRun, cell_run, ratio
from harness.claims import AGREES, DISAGREES, INCONCLUSIVE, Claim
from harness.microbench import loglog_slope

PAPER = "von Leitner 2003"
FLAT = 1.5  # "stays flat": at most 1.5× the CPU per request with the most idle connections
GROWS = 2.0  # "degrades": at least 2× the CPU per request with the most idle connections


def summarize(run_dir: Path) -> CellRun:
    return cell_run(run_dir, lambda r: (int(r.get("idle_connections", 0)),))


def series(run: CellRun, backend: str) -> list[Cell]:
    """The server's cells ordered by idle connections."""
    return sorted((c for c in run.cells if c.backend == backend), key=lambda c: c.condition[0])


def poller_of(run: CellRun, backend: str) -> str | None:
    """select / poll / epoll / uring from the target's --set poller= (sped's default is epoll)."""
    for t in run.meta.get("targets", []):
        if t.get("label") == backend:
            args = list(t.get("args") or [])
            for i, a in enumerate(args):
                if a.startswith("poller="):
                    return a.split("=", 1)[1]
                if a == "--set" and i + 1 < len(args) and args[i + 1].startswith("poller="):
                    return args[i + 1].split("=", 1)[1]
            if t.get("backend") == "sped":
                return "epoll"
            if t.get("backend") == "uring":
                return "uring"
    return None


def growth(run: CellRun, backend: str):
    """CPU per request with the most idle connections ÷ with the fewest (an interval), and the
    two idle counts."""
    cells = [c for c in series(run, backend) if c.cpu_us_per_request is not None and c.valid]
    if len(cells) < 2:
        return None, None, None
    lo, hi = cells[0], cells[-1]
    return ratio(hi.cpu_us_per_request, lo.cpu_us_per_request), lo.condition[0], hi.condition[0]


def claims(run: CellRun) -> list[Claim]:
    out = []
    by_poller: dict[str, list[str]] = {}
    for b in run.backends():
        p = poller_of(run, b)
        if p:
            by_poller.setdefault(p, []).append(b)

    def figure(b: str) -> tuple[str, object]:
        g, n0, n1 = growth(run, b)
        if g is None:
            return f"{b}: fewer than two valid idle counts", None
        text = f"{b}: {g.value:.2f}× [{g.lo:.2f}, {g.hi:.2f}] from {n0:,} to {n1:,} idle" if g.lo is not None \
            else f"{b}: {g.value:.2f}× from {n0:,} to {n1:,} idle"
        return text, g

    for poller in ("epoll", "uring"):
        for b in by_poller.get(poller, []):
            text, g = figure(b)
            lo, hi = g.bounds() if g else (None, None)
            verdict = INCONCLUSIVE if g is None else AGREES if hi <= FLAT else DISAGREES if lo > FLAT else INCONCLUSIVE
            out.append(Claim(PAPER, f"Event notification in O(1) ({poller}) does not get slower as more idle "
                             "connections are alive.",
                             f"server CPU per request with the most idle connections ÷ with the fewest ≤ {FLAT:g}",
                             text, verdict, g.value if g else None, lo, hi))
    for poller in ("poll", "select"):
        for b in by_poller.get(poller, []):
            text, g = figure(b)
            lo, hi = g.bounds() if g else (None, None)
            verdict = INCONCLUSIVE if g is None else AGREES if lo >= GROWS else DISAGREES if hi < GROWS else INCONCLUSIVE
            cells = [c for c in series(run, b) if c.cpu_us_per_request is not None and c.valid]
            base = cells[0].cpu_us_per_request.value if cells else 0
            slope = loglog_slope([(c.condition[0], c.cpu_us_per_request.value - base) for c in cells[1:]])
            if slope is not None:
                text += f"; the extra cost grows as idle^{slope:.2f}"
            out.append(Claim(PAPER, f"{poller}() scans every descriptor on every wait, so serving degrades linearly "
                             "with the idle connections alive.",
                             f"server CPU per request with the most idle connections ÷ with the fewest ≥ {GROWS:g}",
                             text, verdict, g.value if g else None, lo, hi))
    if not out:
        out.append(Claim(PAPER, "epoll stays flat while poll and select degrade linearly.",
                         "needs sped with --set poller=select|poll|epoll", "not measured", INCONCLUSIVE))
    return out
