"""Context switches of the server per request, voluntary (blocking) and involuntary (preempted)."""

from __future__ import annotations

from matplotlib.figure import Figure

from plots import style

NAME = "fig6_context_switches"
TITLE = "Server context switches per request against offered load"


def draw(analysis) -> Figure:
    fig, (ax_v, ax_i) = style.new_figure(TITLE, analysis, ncols=2)
    order = sorted(analysis.backends,
                   key=lambda b: (b.ctx_switches_per_request is None, b.ctx_switches_per_request or 0))
    handles, labels, vol, inv = style.plot_two_metrics(
        analysis, ax_v, ax_i, order, "ctx_voluntary_per_request", "ctx_involuntary_per_request",
        lambda b: f"{b.backend}: median {b.ctx_switches_per_request:.2f} total")
    if not vol:
        style.no_data(fig, ax_v, "no context-switch counts in this run")
    for ax, vals, what in ((ax_v, vol, "voluntary (the server blocked)"),
                           (ax_i, inv, "involuntary (the server was preempted)")):
        style.offered_axis(ax, analysis)
        log = style.auto_log(ax, vals, ratio=30)
        if not log:
            ax.set_ylim(bottom=0)
        ax.set_ylabel("context switches per request" + (", log scale" if log else ""))
        ax.set_title(what, fontsize=10)
    style.legend_right(fig, handles, labels, title="server (fewest first)")
    return fig
