"""Median (p50) and 99th-percentile response time against offered load."""

from __future__ import annotations

from matplotlib.figure import Figure

from plots import style

NAME = "fig4_latency_percentiles"
TITLE = "Response-time percentiles against offered load"


def draw(analysis) -> Figure:
    fig, (ax50, ax99) = style.new_figure(TITLE, analysis, ncols=2)
    styles = style.server_styles(analysis)
    handles, labels = [], []
    values = []
    for b in analysis.backends:
        xs, ys = analysis.series(b.backend, "p50_ms")
        (h,) = ax50.plot(xs, ys, **styles[b.backend])
        values += ys
        xs, ys = analysis.series(b.backend, "p99_ms")
        ax99.plot(xs, ys, **styles[b.backend])
        values += ys
        handles.append(h)
        labels.append(b.backend)
    if not values:
        style.no_data(fig, ax50)
    for ax, what in ((ax50, "median (p50)"), (ax99, "99th percentile (p99)")):
        style.offered_axis(ax, analysis)
        log = style.auto_log(ax, values, ratio=30)
        ax.set_ylabel(f"{what} response time (ms)" + (", log scale" if log else ""))
        ax.set_title(what, fontsize=10)
        if not log:
            ax.set_ylim(bottom=0)
    # Same y range on both panels so p50 and p99 compare at a glance.
    lo = min(ax50.get_ylim()[0], ax99.get_ylim()[0])
    hi = max(ax50.get_ylim()[1], ax99.get_ylim()[1])
    ax50.set_ylim(lo, hi)
    ax99.set_ylim(lo, hi)
    style.legend_right(fig, handles, labels, title="server (ranked by slope)")
    return fig
