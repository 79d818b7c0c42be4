"""Fig. 2 of Kerneis & Chroboczek: mean response time against offered load, with the
least-squares line through each server's per-load medians; the legend is ordered by rank (servers
whose slope intervals overlap share a rank) and gives the slope in ms per client with its 95 %
bootstrap interval and the correlation coefficient r over every valid point. Error bars are the
95 % intervals of the median; faint dots are single repetitions. When a few slow servers (fork,
say) squash the others against the axis, a second panel zooms on the rest."""

from __future__ import annotations

import statistics

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from plots import style

NAME = "fig2_response_time"
TITLE = "Mean response time against offered load, least-squares fits (Fig. 2)"
ZOOM_FACTOR = 2.5  # servers steeper than this × the median slope are left out of the zoom panel


def _draw_server(ax: Axes, analysis, b, st: dict, x_max: float) -> None:
    raw = analysis.raw_points(b.backend)
    if len({r["repetition"] for r in raw}) > 1:
        # every repetition as a faint dot, the median over repetitions as the marker
        ax.scatter([r["offered_load"] for r in raw], [r["loadgen"]["mean_response_ms"] for r in raw],
                   s=8, color=st["color"], alpha=0.35, zorder=2)
    pts = [p for p in analysis.points if p.backend == b.backend]
    xs = [p.offered_load for p in pts]
    ys = [p.mean_response_ms for p in pts]
    lo = [max(0.0, p.mean_response_ms - p.mean_response_ci[0]) if p.mean_response_ci[0] is not None else 0.0
          for p in pts]
    hi = [max(0.0, p.mean_response_ci[1] - p.mean_response_ms) if p.mean_response_ci[1] is not None else 0.0
          for p in pts]
    ax.errorbar(xs, ys, yerr=[lo, hi], linestyle="none", marker=st["marker"], color=st["color"],
                markerfacecolor=st["markerfacecolor"], markersize=6, capsize=3, elinewidth=1, zorder=3)
    fit = b.fit_mean
    if fit is not None:
        ax.plot([0, x_max], [fit.intercept, fit.intercept + fit.slope * x_max], color=st["color"],
                linestyle=st["linestyle"], linewidth=1.2, zorder=2)


def draw(analysis) -> Figure:
    fitted = [b for b in analysis.backends if b.fit_mean is not None]
    slopes = [b.fit_mean.slope for b in fitted]
    limit = ZOOM_FACTOR * statistics.median(slopes) if len(slopes) >= 4 else None
    outliers = [b for b in fitted if limit is not None and b.fit_mean.slope > limit]
    zoom = bool(outliers) and len(outliers) <= len(fitted) // 2
    fig, axes = style.new_figure(TITLE, analysis, ncols=2 if zoom else 1)
    styles = style.server_styles(analysis)
    lv = style.levels(analysis)
    x_max = max(lv) if lv else 1
    handles, labels = [], []
    for b in analysis.backends:  # already ranked by slope
        st = styles[b.backend]
        for i, ax in enumerate(axes):
            if i == 1 and b in outliers:
                continue
            _draw_server(ax, analysis, b, st, x_max)
        fit = b.fit_mean
        if fit is not None and b.slope is not None:
            r = f"r={b.r_all:.4f}" if b.r_all is not None else "r=n/a"
            ci = f" [{b.slope.lo:.4f}, {b.slope.hi:.4f}]" if b.slope.lo is not None else ""
            rank = f"{'=' if b.tied else ''}{b.rank}. " if b.rank else ""
            labels.append(f"{rank}{b.backend}: {fit.slope:.4f}{ci} ({r})")
        else:
            labels.append(f"{b.backend}: no fit (fewer than two loads with valid points)")
        handles.append(Line2D([], [], color=st["color"], marker=st["marker"], linestyle=st["linestyle"],
                              markerfacecolor=st["markerfacecolor"], markersize=6))
    if not analysis.backends:
        style.no_data(fig, axes[0])
    extra = []
    flagged = False
    for ax in axes:
        flagged = style.ring_flagged(ax, analysis, "mean_response_ms") or flagged
    if flagged:
        extra.append(style.flagged_handle())
    for ax in axes:
        ax.set_xlim(0, x_max * 1.03)
        ax.set_xlabel("offered load (concurrent clients)")
        ax.set_ylabel("mean response time (ms)")
    axes[0].set_ylim(bottom=0)
    if zoom:
        kept = [b for b in fitted if b not in outliers]
        top = max(max(analysis.series(b.backend, "mean_response_ms")[1] or [0]) for b in kept)
        top = max(top, max(b.fit_mean.intercept + b.fit_mean.slope * x_max for b in kept))
        axes[1].set_ylim(0, top * 1.05)
        axes[0].set_title("(a) all servers; smaller slope = faster", fontsize=10)
        axes[1].set_title("(b) zoom, without " + ", ".join(b.backend for b in outliers), fontsize=10)
    else:
        axes[0].set_title("smaller slope = faster server; lines are least-squares fits through the medians of valid points",
                          fontsize=10)
    style.legend_right(fig, handles, labels, title="rank. server: slope ms/client [95 % interval] (r)\n(= tied: intervals overlap)",
                       extra=extra)
    return fig
