"""Shared look of every figure: one colour and marker per server across all figures, the legend
outside the axes (never over data), flagged points ringed, log axes when the range calls for it."""

from __future__ import annotations

import math
from typing import Iterable

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

FIGSIZE = (11.0, 7.5)
MARKERS = ("o", "s", "^", "v", "D", "P", "X", "*", "h", "<", ">", "p", "d", "8")
FLAG_COLOR = "#d62728"
LEGEND_RIGHT = 0.70  # axes end here; the legend lives to the right


def server_styles(analysis) -> dict[str, dict]:
    """Stable style per server: ordered as ranked, toy servers solid, production dashed."""
    cmap = plt.get_cmap("tab20")
    every = list(analysis.backends) + list(getattr(analysis, "series_only", []))
    names = [b.backend for b in every]
    kinds = {b.backend: b.kind for b in every}
    out = {}
    for i, name in enumerate(names):
        # tab20 pairs (dark, light): use the dark ones first for contrast, then the light ones.
        idx = (2 * i) % 20 + (1 if i >= 10 else 0)
        production = kinds[name] == "production"
        out[name] = {
            "color": cmap(idx),
            "marker": MARKERS[i % len(MARKERS)],
            "linestyle": "--" if production else "-",
            "markerfacecolor": "white" if production else cmap(idx),
            "markersize": 5,
            "linewidth": 1.4,
        }
    return out


def new_figure(title: str, analysis, ncols: int = 1) -> tuple[Figure, list[Axes]]:
    fig, axes = plt.subplots(1, ncols, figsize=FIGSIZE, squeeze=False)
    fig.suptitle(title, fontsize=14, fontweight="bold", x=0.02, ha="left", y=0.975)
    text = subtitle(analysis)
    # One line across the page: about 165 characters fit at 9 pt; a long run name or pinning
    # note gets a smaller size instead of running off the edge.
    fig.text(0.02, 0.925, text, fontsize=min(9.0, 9.0 * 165 / max(len(text), 1)), color="#444444", ha="left")
    fig.subplots_adjust(left=0.07, right=LEGEND_RIGHT, top=0.86, bottom=0.1, wspace=0.28)
    for ax in axes[0]:
        ax.grid(True, which="major", alpha=0.35)
        ax.grid(True, which="minor", alpha=0.12)
    return fig, list(axes[0])


def subtitle(analysis) -> str:
    exp = analysis.meta.get("experiment", {})
    load = exp.get("load", {})
    parts = [f"run {analysis.meta.get('run_id', analysis.run_dir.name)}"]
    if load:
        parts.append(("keep-alive" if load.get("keep_alive") else "new connection per request"))
        if load.get("window_s"):
            parts.append(f"{load['window_s']:g} s kept per point after a warm-up")
        else:
            parts.append(f"{load.get('requests')} requests per point, first/last {load.get('discard')} discarded")
        parts.append(f"{load.get('repetitions')} repetition(s)")
    pin = analysis.meta.get("pinning", {})
    if pin:
        share = share_used(analysis.meta)
        limit = f" (capped at {share:.0%} of it)" if share is not None else " (uncapped)"
        if share is not None and exp.get("beside_reference"):
            limit = f" (capped at {share:.0%}; pairs at {2 * share:.0%})"
        parts.append(f"server on CPU {pin.get('server_cpus')}{limit}, client on CPU {pin.get('client_cpus')}")
    if exp.get("quick"):
        parts.append("QUICK RUN")
    return " · ".join(parts)


def share_used(meta: dict) -> float | None:
    """The CPU share every server was capped at, or None when the run was uncapped."""
    pin = meta.get("pinning", {})
    if "server_cpu_share_used" in pin:
        return pin["server_cpu_share_used"]
    share = pin.get("server_cpu_share")  # schema 1: the experiment's fixed share
    return share if isinstance(share, (int, float)) and share < 1.0 else None


def legend_right(fig: Figure, handles: list, labels: list[str], title: str | None = None,
                 extra: Iterable[tuple[object, str]] = ()) -> None:
    for h, l in extra:
        handles.append(h)
        labels.append(l)
    n = len(labels)
    fontsize = 8.5 if n <= 18 else 7

    def draw(size: float):
        return fig.legend(handles, labels, loc="upper left", bbox_to_anchor=(LEGEND_RIGHT + 0.01, 0.86),
                          fontsize=size, title=title, title_fontsize=min(9.0, size + 0.5), frameon=False,
                          handlelength=2.6, borderaxespad=0.0)

    # Long entries (a slope with its interval and r) would run off the page's right edge: the
    # legend gets smaller until it fits the figure.
    legend = draw(fontsize)
    renderer = fig.canvas.get_renderer()
    while fontsize > 5.0 and legend.get_window_extent(renderer).x1 > fig.bbox.x1:
        legend.remove()
        fontsize -= 0.5
        legend = draw(fontsize)


def fit_left(fig: Figure, ax: Axes) -> None:
    """Widens the figure's left margin until `ax`'s tick labels (long server names on a bar
    chart's y axis) start inside the figure, instead of being cut at its left edge."""
    renderer = fig.canvas.get_renderer()
    left = fig.subplotpars.left
    while left < 0.3 and ax.get_tightbbox(renderer).x0 < fig.bbox.x0:
        left += 0.01
        fig.subplots_adjust(left=left)


def flagged_handle() -> tuple[Line2D, str]:
    h = Line2D([], [], linestyle="none", marker="o", markersize=10, markerfacecolor="none",
               markeredgecolor=FLAG_COLOR, markeredgewidth=1.4)
    return h, "point left out (not server-bound,\nload shortfall or errors; see report)"


def ring_flagged(ax: Axes, analysis, attr: str, scale: float = 1.0) -> bool:
    """Circle the aggregated points of ranked servers with no valid repetition; return whether
    any were drawn."""
    ranked = {b.backend for b in analysis.backends}
    xs, ys = [], []
    for p in analysis.points:
        v = getattr(p, attr)
        if p.backend in ranked and p.valid_repetitions == 0 and v is not None:
            xs.append(p.offered_load)
            ys.append(v * scale)
    if xs:
        ax.scatter(xs, ys, s=110, facecolors="none", edgecolors=FLAG_COLOR, linewidths=1.3, zorder=5)
    return bool(xs)


def auto_log(ax: Axes, values: Iterable[float], axis: str = "y", ratio: float = 30.0) -> bool:
    """Use a log scale when positive values span more than ``ratio``×."""
    vs = [v for v in values if v is not None and math.isfinite(v)]
    if len(vs) >= 2 and min(vs) > 0 and max(vs) / min(vs) > ratio:
        (ax.set_yscale if axis == "y" else ax.set_xscale)("log")
        plain_log_ticks(ax, axis)
        return True
    return False


def levels(analysis) -> list[int]:
    return sorted({p.offered_load for p in analysis.points})


def offered_axis(ax: Axes, analysis, log: bool | None = None) -> None:
    """x axis: offered load, log when the levels span more than 30× (1 … 1000)."""
    lv = levels(analysis)
    if log is None:
        log = len(lv) >= 2 and lv[0] > 0 and lv[-1] / lv[0] > 30
    if log:
        ax.set_xscale("log")
        plain_log_ticks(ax, "x")
    ax.set_xlabel("offered load (concurrent clients)" + (", log scale" if log else ""))


def no_data(fig: Figure, ax: Axes, text: str = "no data in this run") -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", fontsize=12, color="#888888")


def plain_log_ticks(ax: Axes, axis: str) -> None:
    """Label a log axis 0.1, 1, 10, 100 … instead of 10^-1, 10^0, …"""
    target = ax.yaxis if axis == "y" else ax.xaxis
    lo, hi = (ax.get_ylim() if axis == "y" else ax.get_xlim())
    decades = math.log10(hi / lo) if lo > 0 and hi > lo else 0.0
    # 1-2-5 ticks when they fit the axis length; only powers of ten when labels would collide.
    pos = ax.get_position()
    length_in = (pos.height * ax.figure.get_figheight()) if axis == "y" else (pos.width * ax.figure.get_figwidth())
    subs = (1.0, 2.0, 5.0) if 3 * decades + 1 <= length_in * 2.0 else (1.0,)
    target.set_major_locator(LogLocator(base=10, subs=subs))
    target.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.10g}"))
    target.set_minor_formatter(NullFormatter())


def thousands(ax: Axes, axis: str = "y") -> None:
    """Linear axis labels with thousands separators (25,000 rather than 25000)."""
    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.10g}"))


def plot_two_metrics(analysis, ax_a, ax_b, order, metric_a: str, metric_b: str, label):
    """One line per server in each of two panels (`metric_a` on `ax_a`, `metric_b` on `ax_b`),
    servers in `order`, skipping those without `metric_a`. Returns the legend handles and labels
    (`label(backend)` each) and every plotted value of each panel, for axis scaling."""
    styles = server_styles(analysis)
    handles, labels, values_a, values_b = [], [], [], []
    for b in order:
        xs, ys = analysis.series(b.backend, metric_a)
        if not ys:
            continue
        (h,) = ax_a.plot(xs, ys, **styles[b.backend])
        values_a += ys
        xs, ys = analysis.series(b.backend, metric_b)
        ax_b.plot(xs, ys, **styles[b.backend])
        values_b += ys
        handles.append(h)
        labels.append(label(b))
    return handles, labels, values_a, values_b
