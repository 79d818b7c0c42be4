"""Fig. 1 of Kerneis & Chroboczek: measured load against offered load, with the ideal diagonal.

A server that keeps every offered request in service sits on the diagonal (Fig. 1(b), after
tuning). A series run with a small accept queue (an unranked ``--backlog 128`` variant) shows
Fig. 1(a): however large the offered load, the measured load stays near the queue's length,
because the clients whose SYN was dropped wait outside the server. The right panel shows the
same as a ratio, where a shortfall is easier to see at low loads.
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
    for b in list(analysis.backends) + list(analysis.series_only):
        xs, ys = analysis.series(b.backend, "measured_load")
        st = dict(styles[b.backend])
        if not b.ranked:  # the Fig. 1(a) series: drawn heavier so it reads as the "before" curve
            st.update(linewidth=2.6, linestyle="-.", color="black", markerfacecolor="black")
        (h,) = ax.plot(xs, ys, label=b.backend, **st)
        ax_ratio.plot(xs, [y / x for x, y in zip(xs, ys)], **st)
        handles.append(h)
        labels.append(b.backend + ("  (series only, not ranked)" if not b.ranked else ""))
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
    ax.set_ylabel("measured load l_m (requests in service, time-averaged)")
    ax.set_title("(a) measured vs offered", fontsize=10)
    style.offered_axis(ax_ratio, analysis)
    ax_ratio.set_ylabel("measured / offered load (ratio)")
    ax_ratio.set_title("(b) ratio; 1 = every offered request in service", fontsize=10)
    style.legend_right(fig, handles, labels, title="server (ranked by slope)", extra=extra)
    return fig
