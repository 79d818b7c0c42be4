"""Server CPU time per request (user + system, whole process tree) and efficiency."""

from __future__ import annotations

from matplotlib.figure import Figure

from plots import style

NAME = "fig5_cpu_per_request"
TITLE = "Server CPU per request against offered load"


def draw(analysis) -> Figure:
    fig, (ax, ax_eff) = style.new_figure(TITLE, analysis, ncols=2)
    order = sorted(analysis.backends, key=lambda b: (b.cpu_us_per_request is None, b.cpu_us_per_request or 0))
    handles, labels, values, eff = style.plot_two_metrics(
        analysis, ax, ax_eff, order, "cpu_us_per_request", "requests_per_cpu_second",
        lambda b: f"{b.backend}: " + (f"{b.cpu_us_per_request:.1f} µs beyond the knee" if b.cpu_us_per_request is not None else "no valid point beyond the knee"))
    if not values:
        style.no_data(fig, ax, "no server CPU measurements in this run")
    for a in (ax, ax_eff):
        style.offered_axis(a, analysis)
    log = style.auto_log(ax, values)
    if not log:
        ax.set_ylim(bottom=0)
    ax.set_ylabel("server CPU time per request (µs, user + system)" + (", log scale" if log else ""))
    ax.set_title("(a) CPU cost of one request", fontsize=10)
    log = style.auto_log(ax_eff, eff)
    if not log:
        ax_eff.set_ylim(bottom=0)
        style.thousands(ax_eff)
    ax_eff.set_ylabel("efficiency (requests per server CPU-second)" + (", log scale" if log else ""))
    ax_eff.set_title("(b) efficiency", fontsize=10)
    style.legend_right(fig, handles, labels, title="server (cheapest first)")
    return fig
