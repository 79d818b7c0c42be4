"""Context switches per request: the kernel's (counted per cgroup by a perf software counter, every
thread of the server) and the user-level ones of backends that schedule their own threads
(fiber, st, pth: from the server's status page)."""

from __future__ import annotations

from matplotlib.figure import Figure

from plots import style

NAME = "fig6_context_switches"
TITLE = "Server context switches per request against offered load"


def draw(analysis) -> Figure:
    fig, (ax_k, ax_u) = style.new_figure(TITLE, analysis, ncols=2)
    styles = style.server_styles(analysis)
    order = sorted(analysis.backends,
                   key=lambda b: (b.ctx_switches_per_request is None, b.ctx_switches_per_request or 0))
    handles, labels, kernel, user = [], [], [], []
    for b in order:
        xs, ys = analysis.series(b.backend, "ctx_switches_per_request")
        if not ys:
            continue
        (h,) = ax_k.plot(xs, ys, **styles[b.backend])
        kernel += ys
        uxs, uys = analysis.series(b.backend, "user_switches_per_request")
        if uys and max(uys) > 0:
            ax_u.plot(uxs, uys, **styles[b.backend])
            user += uys
        handles.append(h)
        pre = f" ({b.preemptions_per_request:.2f} preempted)" if b.preemptions_per_request is not None else ""
        extra = f", {b.user_switches_per_request:.2f} user-level" if b.user_switches_per_request else ""
        labels.append(f"{b.backend}: {b.ctx_switches_per_request or 0:.2f} kernel{pre}{extra}")
    if not kernel:
        style.no_data(fig, ax_k, "no context-switch counts in this run")
    if not user:
        style.no_data(fig, ax_u, "no server reported user-level switches")
    for ax, vals, what in ((ax_k, kernel, "(a) kernel context switches, all threads of the server"),
                           (ax_u, user, "(b) user-level switches (threads scheduled by the server)")):
        style.offered_axis(ax, analysis)
        log = style.auto_log(ax, vals, ratio=30)
        if not log:
            ax.set_ylim(bottom=0)
        ax.set_ylabel("switches per request" + (", log scale" if log else ""))
        ax.set_title(what, fontsize=10)
    style.legend_right(fig, handles, labels, title="server: medians (fewest first)")
    return fig
