"""Fig. 1 of Kerneis & Chroboczek: measured load against offered load, with the ideal diagonal.

A server that keeps every offered request in flight sits on the diagonal; a curve that bends
away shows requests waiting outside the measurement (accept queue overflow, a saturated client).
The right panel shows the same as a ratio, where a shortfall is easier to see at low loads.
"""

from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from harness.analysis import SHORTFALL_RATIO
from plots import style

NAME = "fig1_measured_load"
TITLE = "Measured load against offered load (Fig. 1)"


def draw(analysis) -> Figure:
    fig, (ax, ax_ratio) = style.new_figure(TITLE, analysis, ncols=2)
    styles = style.server_styles(analysis)
    lv = style.levels(analysis)
    handles, labels = [], []
    for b in analysis.backends:
        xs, ys = analysis.series(b.backend, "measured_load")
        (h,) = ax.plot(xs, ys, label=b.backend, **styles[b.backend])
        ax_ratio.plot(xs, [y / x for x, y in zip(xs, ys)], **styles[b.backend])
        handles.append(h)
        labels.append(b.backend)
    if lv:
        top = max(lv)
        diag = Line2D([0, top], [0, top], color="black", linestyle=":", linewidth=1.2)
        ax.add_line(diag)
        handles.append(diag)
        labels.append("ideal: measured = offered")
        ax.set_xlim(0, top * 1.04)
        ax.set_ylim(0, top * 1.04)
        ax_ratio.axhline(1.0, color="black", linestyle=":", linewidth=1.2)
        ax_ratio.axhline(SHORTFALL_RATIO, color=style.FLAG_COLOR, linestyle="-.", linewidth=1)
        ax_ratio.text(lv[0], SHORTFALL_RATIO, f" flag threshold {SHORTFALL_RATIO:.0%}", color=style.FLAG_COLOR,
                      va="bottom", fontsize=8)
        ratios = [p.measured_load / p.offered_load for p in analysis.points]
        ax_ratio.set_ylim(min(0.5, min(ratios) - 0.05), max(1.05, max(ratios) + 0.02))
    else:
        style.no_data(fig, ax)
    extra = []
    if style.ring_flagged(ax, analysis, "measured_load"):
        extra.append(style.flagged_handle())
    ax.set_xlabel("offered load l (concurrent clients)")
    ax.set_ylabel("measured load l_m = n·t_r / t (requests in flight)")
    ax.set_title("(a) measured vs offered", fontsize=10)
    style.offered_axis(ax_ratio, analysis)
    ax_ratio.set_ylabel("measured / offered load (ratio)")
    ax_ratio.set_title("(b) ratio; 1 = every offered request in flight", fontsize=10)
    style.legend_right(fig, handles, labels, title="server (ranked by slope)", extra=extra)
    return fig
