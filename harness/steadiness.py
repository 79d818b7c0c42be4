"""How steady is this machine's CPU? The floor under every interval a run can give.

Two fixed loops run pinned to one CPU, one after the other, and count their iterations in short
windows: integer arithmetic (no system calls, no memory traffic: it sees the clock and the time
the host takes away) and a pointer chase through half the CPU's L2 cache (every step waits for
the cache: it also sees a host whose other guests share the core's caches, or a virtual CPU moved
to a cold core). On bare metal with a fixed clock both agree to a fraction of a percent between
windows; on a shared host they do not — and a server measured there costs more CPU per request
in a slow second and less in a fast one, whatever the server does. So the larger of the two
loops' coefficients of variation is a lower bound on the spread of repetitions, and from it
follows the narrowest 95 % interval a median of n repetitions can have on this machine
(``interval_floor``).

Measured on the 2-core VM this project is developed on (2026-11-30): the arithmetic loop varied
0.7–1.1 % between 0.5-s windows while the 1 MiB chase varied 7–23 % in the same minutes; a
capped sped's CPU per request in 2-s windows followed the chase (correlation -0.95 over 11
windows) and varied 5–14 % between repetitions. The arithmetic loop alone had said the machine
was steady. docs/methodology.md ("How steady the machine is") has the measurements.
"""

from __future__ import annotations

import dataclasses
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
    """One loop's windows, or (from ``probe``) the less steady of the two loops, with both CVs."""

    cpu: int
    window_s: float
    windows: int
    cv: float  # coefficient of variation of the windows' rates (0.05 = 5 %)
    slowest: float  # slowest window's rate relative to the median (0.8 = 20 % slower)
    fastest: float
    rates: list[float]
    loop: str = "arithmetic"  # which loop these windows are: "arithmetic" or "cache"
    arithmetic_cv: float | None = None  # both loops' CVs, when both ran
    cache_cv: float | None = None
    cache_kib: int | None = None  # the chase's working set

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(rates: list[float], cpu: int, window_s: float, loop: str = "arithmetic") -> Steadiness:
    if len(rates) < 2 or min(rates) <= 0:
        raise SteadinessError(f"the steadiness loop gave {len(rates)} usable windows")
    mid = statistics.median(rates)
    return Steadiness(cpu=cpu, window_s=window_s, windows=len(rates),
                      cv=statistics.stdev(rates) / statistics.fmean(rates),
                      slowest=min(rates) / mid, fastest=max(rates) / mid, rates=rates, loop=loop)


def combine(arithmetic: Steadiness, cache: Steadiness, cache_kib: int) -> Steadiness:
    """The less steady loop's windows, with both loops' CVs: the floor follows the worse."""
    worse = cache if cache.cv >= arithmetic.cv else arithmetic
    return dataclasses.replace(worse, arithmetic_cv=arithmetic.cv, cache_cv=cache.cv,
                               cache_kib=cache_kib)


def cache_working_set_kib(cpu: int = 0, sysfs: Path = Path("/sys/devices/system/cpu")) -> int:
    """Half the L2 cache of ``cpu`` (sysfs), the working set of the chase: it fits the cache, so
    only someone else's use of the cache (or a move to a cold one) slows it. 1 MiB if unknown."""
    base = sysfs / f"cpu{cpu}" / "cache"
    try:
        for index in sorted(base.glob("index*")):
            if (index / "level").read_text().strip() == "2" and \
                    (index / "type").read_text().strip() in ("Unified", "Data"):
                size = (index / "size").read_text().strip().upper()  # "2048K"
                units = {"K": 1, "M": 1024}
                kib = int(size[:-1]) * units[size[-1]] if size[-1] in units else int(size) // 1024
                if kib >= 64:
                    return kib // 2
    except (OSError, ValueError):
        pass
    return 1024


def window_for(seconds: float) -> float:
    """The window a probe of ``seconds`` counts in: 0.5 s, or an eighth of a shorter probe (each
    of the two loops gets half the time and at least four windows)."""
    return min(0.5, seconds / 8)


def loop_path(build: Path) -> Path:
    return Path(build) / "servers" / "microbench" / "steady_loop"


def run_loop(build: Path, cpu: int, seconds: float, window_s: float, working_set_kib: int = 0) -> Steadiness:
    """Run the compiled loop (servers/microbench/steady_loop.cpp; a loop in Python is no use:
    the interpreter's own speed jumps by half between windows here) on ``cpu`` for ``seconds``
    in windows of ``window_s``: arithmetic, or with ``working_set_kib`` the cache chase."""
    exe = loop_path(build)
    if not exe.exists():
        raise SteadinessError(f"{exe} is not built (make build-bench)")
    argv = [str(exe), str(cpu), str(seconds), str(window_s)] + ([str(working_set_kib)] if working_set_kib else [])
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        raise SteadinessError(f"the steadiness loop failed: {exc}") from None
    try:
        rates = [float(x) for x in out.stdout.split()]
    except ValueError:
        raise SteadinessError(f"the steadiness loop printed {out.stdout[:80]!r}") from None
    return summarize(rates, cpu, window_s, "cache" if working_set_kib else "arithmetic")


def probe(build: Path, cpu: int = 0, seconds: float = 5.0, window_s: float = 0.5) -> Steadiness:
    """Both loops on ``cpu``, half of ``seconds`` each, in windows of ``window_s`` (at least two
    windows per loop); the result is the less steady one (``combine``)."""
    half = max(seconds / 2, 2 * window_s)
    kib = cache_working_set_kib(cpu)
    return combine(run_loop(build, cpu, half, window_s), run_loop(build, cpu, half, window_s, kib), kib)


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
