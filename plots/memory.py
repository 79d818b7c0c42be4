"""Memory the way the papers mean it: bytes per held-open idle keep-alive connection (the SXE
posts' figure, measured as the growth of the server's proportional set size divided by the
connections held), and the peak memory charged to the server's cgroup during the load."""

from __future__ import annotations

from matplotlib.figure import Figure

from plots import style

NAME = "fig7_memory"
TITLE = "Memory per connection and peak memory"


def draw(analysis) -> Figure:
    fig, (ax_per, ax) = style.new_figure(TITLE, analysis, ncols=2)
    styles = style.server_styles(analysis)
    mem = sorted(((n, m) for n, m in analysis.memory.items() if m.get("bytes_per_connection") is not None),
                 key=lambda t: t[1]["bytes_per_connection"])
    if mem:
        names = [n for n, _ in mem]
        vals = [max(m["bytes_per_connection"], 1.0) for _, m in mem]
        y = list(range(len(names)))
        colors = [styles[n]["color"] if n in styles else "#888888" for n in names]
        ax_per.barh(y, vals, color=colors, height=0.6)
        ax_per.set_yticks(y)
        ax_per.set_yticklabels([f"{n} ({m['held']})" + (" *" if m.get("note") else "") for n, m in mem], fontsize=8)
        ax_per.invert_yaxis()
        for i, (n, m) in enumerate(mem):
            ax_per.annotate(f"{m['bytes_per_connection']:,.0f}", (vals[i], i), xytext=(4, 0),
                            textcoords="offset points", va="center", fontsize=8)
        if style.auto_log(ax_per, vals, axis="x", ratio=30):
            ax_per.set_xlim(right=max(vals) * 8)
        else:
            ax_per.set_xlim(0, max(vals) * 1.25)
        if any(m.get("note") for _, m in mem):
            ax_per.text(0.0, -0.12, "* pool pre-allocated at start: growth leaves out the pool itself",
                        transform=ax_per.transAxes, fontsize=7.5, color="#444444")
    else:
        style.no_data(fig, ax_per, "no idle-connection measurement in this run\n([memory] connections)")
    ax_per.grid(False, axis="y")
    ax_per.set_xlabel("bytes per idle keep-alive connection (connections held)")
    ax_per.set_title("(a) memory per held-open connection", fontsize=10)
    style.fit_left(fig, ax_per)  # "apache-prefork (64) *" must not lose its "apache-"

    handles, labels, values = [], [], []
    for b in sorted(analysis.backends, key=lambda b: (b.peak_memory_mib is None, b.peak_memory_mib or 0)):
        xs, ys = analysis.series(b.backend, "peak_memory_mib")
        if not ys:
            continue
        (h,) = ax.plot(xs, ys, **styles[b.backend])
        values += ys
        handles.append(h)
        labels.append(f"{b.backend}: {b.peak_memory_mib:.1f} MiB")
    if not values:
        style.no_data(fig, ax, "no memory measurements in this run")
    style.offered_axis(ax, analysis)
    log = style.auto_log(ax, values, ratio=20)
    if not log:
        ax.set_ylim(bottom=0)
    ax.set_ylabel("peak memory charged to the server (MiB)" + (", log scale" if log else ""))
    ax.set_title("(b) peak memory during the load (cgroup: user + kernel)", fontsize=10)
    style.legend_right(fig, handles, labels, title="server (smallest peak first)")
    return fig
