"""The SXE posts (Hardy-Francis, 2010): 10,000 concurrent keep-alive connections ramped in, 50
queries each (500,000 in all), against nginx and node.js. Their table: connections/s (nginx
25,571, SXE 25,009: a tie), queries/s (nginx 24,810, SXE 59,171 then 78,437 optimized: 2.4–3.2×),
peak memory (nginx 20 MB, SXE 16 MB: a tie; node.js 148 MB). The `sxe2010` experiment runs
every backend that holds 10,000 connections and the production servers the same way; our
libev backend (SXE is built on libev) stands for SXE; the hand-written event loop (sped) when libev is not built.
"""

from __future__ import annotations

from pathlib import Path

from harness.cells import CellRun, cell_run, ratio
from harness.claims import AGREES, DISAGREES, INCONCLUSIVE, Claim
from harness.stats import Interval, bootstrap

PAPER = "Hardy-Francis 2010 (SXE)"
TIE = 1.25
SXE_OVER_NGINX = 2.0  # 59,171 / 24,810 = 2.4 (3.2 optimized): "at least twice"
STAND_INS = ("libev", "sped")  # SXE is built on libev; sped until a libev backend exists


def summarize(run_dir: Path) -> CellRun:
    return cell_run(run_dir, lambda r: (int(r["offered_load"]),))


def connections_per_second(run: CellRun, backend: str, valid_only: bool = True) -> Interval | None:
    vals = [r["loadgen"]["connects"] / r["loadgen"]["connect_phase_s"] for r in run.records
            if r["backend"] == backend and (r["_valid"] or not valid_only) and r["loadgen"].get("connect_phase_s")]
    return bootstrap(vals) if vals else None


def client_peak_kib(run: CellRun, backend: str) -> float | None:
    vals = [r["loadgen"].get("client_max_rss_kib") for r in run.records if r["backend"] == backend]
    vals = [v for v in vals if v]
    return max(vals) if vals else None


def _stand_in(run: CellRun) -> str | None:
    return next((b for b in STAND_INS if b in run.backends()), None)


def claims(run: CellRun) -> list[Claim]:
    sxe, out = _stand_in(run), []
    if sxe is None or "nginx" not in run.backends():
        return [Claim(PAPER, "SXE ties nginx on connections/s and serves 2.4× its queries/s.",
                      "needs sped (or libev) and nginx", "not measured", INCONCLUSIVE)]
    a = next(c for c in run.cells if c.backend == sxe)
    n = next(c for c in run.cells if c.backend == "nginx")
    cr = ratio(connections_per_second(run, sxe), connections_per_second(run, "nginx"))
    if cr is not None:
        lo, hi = cr.bounds()
        out.append(Claim(PAPER, "nginx and SXE accept new connections at the same rate (25,571 vs 25,009 per second).",
                         f"{sxe} ÷ nginx connections/s within a factor {TIE:g}", f"{sxe} / nginx = {cr.value:.2f} "
                         f"[{lo:.2f}, {hi:.2f}]", AGREES if lo >= 1 / TIE and hi <= TIE else
                         DISAGREES if hi < 1 / TIE or lo > TIE else INCONCLUSIVE, cr.value, cr.lo, cr.hi))
    qr = ratio(a.requests_per_second, n.requests_per_second)
    if qr is not None:
        lo, hi = qr.bounds()
        out.append(Claim(PAPER, "SXE serves 2.4× nginx's queries per second over 10,000 keep-alive connections "
                         "(59,171 vs 24,810; 78,437 optimized).", f"{sxe} ÷ nginx queries/s ≥ {SXE_OVER_NGINX:g}",
                         f"{sxe} / nginx = {qr.value:.2f} [{lo:.2f}, {hi:.2f}]",
                         AGREES if lo >= SXE_OVER_NGINX else DISAGREES if hi < SXE_OVER_NGINX else INCONCLUSIVE,
                         qr.value, qr.lo, qr.hi))
    if a.peak_memory_bytes and n.peak_memory_bytes:
        m = a.peak_memory_bytes / n.peak_memory_bytes
        out.append(Claim(PAPER, "SXE's and nginx's peak memory tie (16 MB vs 20 MB).",
                         f"{sxe} ÷ nginx peak memory within a factor 1.5",
                         f"{sxe} {a.peak_memory_bytes / 2**20:.1f} MiB, nginx {n.peak_memory_bytes / 2**20:.1f} MiB "
                         f"({m:.2f}×)", AGREES if 1 / 1.5 <= m <= 1.5 else DISAGREES))
    if "node" in run.backends():
        nd = next(c for c in run.cells if c.backend == "node")
        if nd.peak_memory_bytes and a.peak_memory_bytes:
            m = nd.peak_memory_bytes / a.peak_memory_bytes
            out.append(Claim(PAPER, "node.js needs about nine times SXE's memory (148 MB vs 16 MB).",
                             "node ÷ the event loop's peak memory ≥ 4", f"{m:.1f}×", AGREES if m >= 4 else DISAGREES))
    return out
