"""Throughput (completed requests per second in the kept window) against offered load."""

from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from plots import style

NAME = "fig3_throughput"
TITLE = "Throughput against offered load"


def draw(analysis) -> Figure:
    fig, (ax,) = style.new_figure(TITLE, analysis)
    styles = style.server_styles(analysis)
    handles, labels = [], []
    order = sorted(analysis.backends, key=lambda b: -b.peak_rps)
    for b in order:
        xs, ys = analysis.series(b.backend, "requests_per_second")
        (h,) = ax.plot(xs, ys, **styles[b.backend])
        handles.append(h)
        labels.append(f"{b.backend}: peak {b.peak_rps:,.0f}/s at {b.peak_rps_level}")
    if not order:
        style.no_data(fig, ax)
    extra = []
    if style.ring_flagged(ax, analysis, "requests_per_second"):
        extra.append(style.flagged_handle())
    style.offered_axis(ax, analysis)
    ax.set_ylim(bottom=0)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.set_ylabel("throughput (requests per second)")
    ax.set_title("closed loop: throughput = offered load / mean response time", fontsize=10)
    style.legend_right(fig, handles, labels, title="server (highest peak first)", extra=extra)
    return fig
