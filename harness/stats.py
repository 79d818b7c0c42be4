"""Statistics a reviewer accepts: medians over repetitions, percentile-bootstrap 95 % intervals,
and a ranking that merges servers whose intervals overlap.

Repetitions combine by the median (robust to one disturbed repetition). An interval is the
percentile bootstrap: resample the repetitions (within each offered load, for a slope), recompute
the figure, and take the 2.5th and 97.5th percentiles of the resampled figures (Efron &
Tibshirani, ch. 13). The resampling is seeded, so a report is reproducible from its data.
"""

from __future__ import annotations

import math
import random
import statistics
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

RESAMPLES = 2000
LEVEL = 0.95
SEED = 20091  # fixed: the same data always give the same intervals


@dataclass(frozen=True)
class Interval:
    """A figure with its bootstrap interval; ``lo``/``hi`` are None with fewer than 2 values."""

    value: float
    lo: float | None = None
    hi: float | None = None

    @property
    def half_width_rel(self) -> float | None:
        """Half the interval's width relative to the value (0.05 = ±5 %)."""
        if self.lo is None or self.hi is None or self.value == 0:
            return None
        return (self.hi - self.lo) / 2 / abs(self.value)

    def overlaps(self, other: "Interval") -> bool:
        a_lo, a_hi = self.bounds()
        b_lo, b_hi = other.bounds()
        return a_lo <= b_hi and b_lo <= a_hi

    def bounds(self) -> tuple[float, float]:
        lo = self.lo if self.lo is not None else self.value
        hi = self.hi if self.hi is not None else self.value
        return lo, hi

    def excludes(self, x: float) -> bool:
        """The interval lies wholly above or below ``x`` (an A/A ratio's interval excluding 1
        says the run is biased beyond its own intervals). A figure without an interval (fewer
        than two values) excludes nothing: one value cannot tell a bias from noise."""
        if self.lo is None or self.hi is None:
            return False
        return self.lo > x or self.hi < x

    def reach_from(self, x: float) -> float:
        """How far the interval reaches from ``x`` on its wider side (an A/A ratio's from 1:
        the differences the run does not resolve)."""
        lo, hi = self.bounds()
        return max(x - lo, hi - x)

    def as_dict(self) -> dict[str, float | None]:
        return {"value": self.value, "lo": self.lo, "hi": self.hi}


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile of already sorted values, ``q`` in [0, 1]."""
    if not sorted_values:
        raise ValueError("no values")
    pos = q * (len(sorted_values) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def _interval(estimates: list[float], value: float, level: float) -> Interval:
    finite = sorted(e for e in estimates if e is not None and math.isfinite(e))
    if len(finite) < 2:
        return Interval(value)
    tail = (1 - level) / 2
    return Interval(value, percentile(finite, tail), percentile(finite, 1 - tail))


def bootstrap(values: Sequence[float], stat: Callable[[Sequence[float]], float] = median,
              resamples: int = RESAMPLES, level: float = LEVEL, seed: int = SEED) -> Interval:
    """``stat(values)`` with its percentile-bootstrap interval."""
    values = list(values)
    if not values:
        raise ValueError("no values")
    value = stat(values)
    if len(values) < 2:
        return Interval(value)
    rng = random.Random(seed)
    n = len(values)
    estimates = [stat([values[rng.randrange(n)] for _ in range(n)]) for _ in range(resamples)]
    return _interval(estimates, value, level)


def bootstrap_groups(groups: Mapping[object, Sequence[float]],
                     stat: Callable[[dict[object, list[float]]], float | None],
                     resamples: int = RESAMPLES, level: float = LEVEL, seed: int = SEED) -> Interval | None:
    """A figure computed from several groups of repetitions (e.g. one group per offered load),
    with an interval from resampling each group independently (a stratified bootstrap)."""
    data = {k: list(v) for k, v in groups.items() if len(v) > 0}
    value = stat(data)
    if value is None:
        return None
    if all(len(v) < 2 for v in data.values()):
        return Interval(value)
    rng = random.Random(seed)
    estimates: list[float] = []
    for _ in range(resamples):
        sample = {k: [v[rng.randrange(len(v))] for _ in range(len(v))] for k, v in data.items()}
        e = stat(sample)
        if e is not None:
            estimates.append(e)
    return _interval(estimates, value, level)


@dataclass(frozen=True)
class Line:
    slope: float
    intercept: float
    r: float | None  # Pearson's r; None when y is constant
    n: int


def least_squares(xs: Sequence[float], ys: Sequence[float]) -> Line | None:
    """Ordinary least squares y = intercept + slope·x; None when x has fewer than 2 values."""
    n = len(xs)
    if n < 2 or len(set(xs)) < 2:
        return None
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    slope = sxy / sxx
    r = sxy / math.sqrt(sxx * syy) if syy > 0 else None
    return Line(slope=slope, intercept=my - slope * mx, r=r, n=n)


def line_of_medians(groups: Mapping[object, Sequence[float]]) -> Line | None:
    """The least-squares line through the median of each group (x = the group's key)."""
    keys = sorted(k for k, v in groups.items() if len(v) > 0)  # type: ignore[type-var]
    return least_squares([float(k) for k in keys], [median(groups[k]) for k in keys])  # type: ignore[arg-type]


def slope_interval(groups: Mapping[float, Sequence[float]], **kw) -> tuple[Line | None, Interval | None]:
    """The line through the medians and its slope's stratified-bootstrap interval."""
    line = line_of_medians(groups)
    if line is None:
        return None, None

    def slope(sample: dict[object, list[float]]) -> float | None:
        fit = line_of_medians(sample)
        return fit.slope if fit else None

    return line, bootstrap_groups(groups, slope, **kw)


def ratio_interval(a: Mapping[object, Sequence[float]], b: Mapping[object, Sequence[float]],
                   stat: Callable[[dict[object, list[float]]], float | None], **kw) -> Interval | None:
    """stat(a) / stat(b), each side resampled independently."""
    tagged = {("a", k): v for k, v in a.items()}
    tagged.update({("b", k): v for k, v in b.items()})

    def ratio(sample: dict[object, list[float]]) -> float | None:
        sa = {k[1]: v for k, v in sample.items() if k[0] == "a"}  # type: ignore[index]
        sb = {k[1]: v for k, v in sample.items() if k[0] == "b"}  # type: ignore[index]
        va, vb = stat(sa), stat(sb)
        if va is None or vb is None or vb == 0:
            return None
        return va / vb

    return bootstrap_groups(tagged, ratio, **kw)


def difference_interval(a: Mapping[object, Sequence[float]], b: Mapping[object, Sequence[float]],
                        stat: Callable[[dict[object, list[float]]], float | None], **kw) -> Interval | None:
    """stat(a) - stat(b), each side resampled independently."""
    tagged = {("a", k): v for k, v in a.items()}
    tagged.update({("b", k): v for k, v in b.items()})

    def difference(sample: dict[object, list[float]]) -> float | None:
        sa = {k[1]: v for k, v in sample.items() if k[0] == "a"}  # type: ignore[index]
        sb = {k[1]: v for k, v in sample.items() if k[0] == "b"}  # type: ignore[index]
        va, vb = stat(sa), stat(sb)
        if va is None or vb is None:
            return None
        return va - vb

    return bootstrap_groups(tagged, difference, **kw)


@dataclass(frozen=True)
class Ranked:
    name: str
    rank: int  # 1 = best; servers sharing a rank are tied
    tied: bool


def rank_with_ties(items: Sequence[tuple[str, Interval]], smaller_is_better: bool = True) -> list[Ranked]:
    """Order by value; a server joins the current rank group when its interval overlaps the
    interval of the group's best member, otherwise it opens the next group. Comparing with the
    group's first member (not the last one joined) keeps a chain of small overlaps from merging
    servers that clearly differ."""
    ordered = sorted(items, key=lambda it: it[1].value if smaller_is_better else -it[1].value)
    groups: list[list[str]] = []
    leader: Interval | None = None
    for name, iv in ordered:
        if leader is not None and iv.overlaps(leader):
            groups[-1].append(name)
        else:
            groups.append([name])
            leader = iv
    out: list[Ranked] = []
    for i, g in enumerate(groups, 1):
        out.extend(Ranked(name, i, len(g) > 1) for name in g)
    return out
