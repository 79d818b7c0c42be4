"""How steady is this machine's CPU? The floor under every interval a run can give.

A fixed loop (pure computation, no system calls, no memory traffic) runs pinned to one CPU and
counts its iterations in short windows. On bare metal with a fixed clock the counts agree to a
fraction of a percent; on a virtual machine whose host also runs other guests, or a laptop that
changes its clock, they do not — and a server measured there costs more CPU per request in a
slow second and less in a fast one, whatever the server does. So the coefficient of variation of
the counts is a lower bound on the spread of repetitions, and from it follows the narrowest 95 %
interval a median of n repetitions can have on this machine (``interval_floor``).

The loop is a lower bound: it does not see what slows the kernel's network stack and not
arithmetic (caches, memory shared with other guests). Measured on the 2-core VM this project is
developed on (2026-11): 2-s windows of the loop varied by 1–6 % at different times of one day,
while a capped server's 2-s windows varied by 4–14 %. docs/methodology.md ("How steady the
machine is") has the measurements and what they mean for the default experiment's intervals.
"""

from __future__ import annotations

import random
import statistics
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any



class SteadinessError(RuntimeError):
    pass


@dataclass
class Steadiness:
    cpu: int
    window_s: float
    windows: int
    cv: float  # coefficient of variation of the windows' rates (0.05 = 5 %)
    slowest: float  # slowest window's rate relative to the median (0.8 = 20 % slower)
    fastest: float
    rates: list[float]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(rates: list[float], cpu: int, window_s: float) -> Steadiness:
    if len(rates) < 2 or min(rates) <= 0:
        raise SteadinessError(f"the steadiness loop gave {len(rates)} usable windows")
    mid = statistics.median(rates)
    return Steadiness(cpu=cpu, window_s=window_s, windows=len(rates),
                      cv=statistics.stdev(rates) / statistics.fmean(rates),
                      slowest=min(rates) / mid, fastest=max(rates) / mid, rates=rates)


def window_for(seconds: float) -> float:
    """The window a probe of ``seconds`` counts in: 0.5 s, or a quarter of a shorter probe."""
    return min(0.5, seconds / 4)


def loop_path(build: Path) -> Path:
    return Path(build) / "servers" / "microbench" / "steady_loop"


def probe(build: Path, cpu: int = 0, seconds: float = 5.0, window_s: float = 0.5) -> Steadiness:
    """Run the compiled loop (servers/microbench/steady_loop.cpp; a loop in Python is no use:
    the interpreter's own speed jumps by half between windows here) on ``cpu`` for ``seconds``
    in windows of ``window_s``."""
    exe = loop_path(build)
    if not exe.exists():
        raise SteadinessError(f"{exe} is not built (make build-bench)")
    try:
        out = subprocess.run([str(exe), str(cpu), str(seconds), str(window_s)],
                             capture_output=True, text=True, timeout=seconds + 30, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        raise SteadinessError(f"the steadiness loop failed: {exc}") from None
    try:
        rates = [float(x) for x in out.stdout.split()]
    except ValueError:
        raise SteadinessError(f"the steadiness loop printed {out.stdout[:80]!r}") from None
    return summarize(rates, cpu, window_s)


def interval_floor(cv: float, repetitions: int, trials: int = 400, resamples: int = 400,
                   seed: int = 1) -> float:
    """The expected relative half-width of a 95 % percentile-bootstrap interval of the median of
    ``repetitions`` values that differ only by normal noise of coefficient ``cv`` — the interval
    the analysis would give a perfectly steady server on this machine. Simulated (seeded)."""
    if repetitions < 2 or cv <= 0:
        return 0.0
    rng = random.Random(seed)
    lo_i, hi_i = int(0.025 * resamples), int(0.975 * resamples) - 1
    widths = []
    for _ in range(trials):
        sample = [1.0 + rng.gauss(0.0, cv) for _ in range(repetitions)]
        meds = sorted(statistics.median(rng.choices(sample, k=repetitions)) for _ in range(resamples))
        widths.append((meds[hi_i] - meds[lo_i]) / 2)
    return statistics.median(widths)
