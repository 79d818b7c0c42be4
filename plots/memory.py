"""Peak resident memory of the server (summed over its processes) against concurrency, and the
memory each extra connection costs (slope of the proportional set size against concurrency)."""

from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from harness.analysis import least_squares
from plots import style

NAME = "fig7_peak_memory"
TITLE = "Peak resident memory against concurrency"


def draw(analysis) -> Figure:
    fig, (ax, ax_per) = style.new_figure(TITLE, analysis, ncols=2)
    styles = style.server_styles(analysis)
    handles, labels, values = [], [], []
    per_client: list[tuple[str, float]] = []
    order = sorted(analysis.backends, key=lambda b: (b.peak_rss_mib is None, b.peak_rss_mib or 0))
    for b in order:
        xs, ys = analysis.series(b.backend, "peak_rss_mib")
        if not ys:
            continue
        (h,) = ax.plot(xs, ys, **styles[b.backend])
        values += ys
        handles.append(h)
        labels.append(f"{b.backend}: {b.peak_rss_mib:.1f} MiB at {b.peak_rss_level}")
        # Memory per connection: least-squares slope against concurrency of the proportional set
        # size (PSS splits shared pages between the processes of a pool, so the sum does not
        # swing with the number of pool processes as summed RSS does); RSS when PSS is missing.
        pxs, pys = analysis.series(b.backend, "pss_mib")
        if len(set(pxs)) < 2:
            pxs, pys = xs, ys
        fit = least_squares([float(x) for x in pxs], [y * 1024 for y in pys])
        if fit is not None:
            per_client.append((b.backend, fit.slope))
    if not values:
        style.no_data(fig, ax, "no memory measurements in this run")
    style.offered_axis(ax, analysis)
    ax.set_xlabel("concurrent clients (offered load)")
    log = style.auto_log(ax, values, ratio=20)
    if not log:
        ax.set_ylim(bottom=0)
    ax.set_ylabel("peak resident memory (MiB, all server processes)" + (", log scale" if log else ""))
    ax.set_title("(a) peak RSS against concurrency", fontsize=10)

    per_client.sort(key=lambda t: t[1])
    if per_client:
        names = [n for n, _ in per_client]
        slopes = [v for _, v in per_client]
        y = range(len(names))
        ax_per.barh(list(y), slopes, color=[styles[n]["color"] for n in names], height=0.6)
        ax_per.set_yticks(list(y))
        ax_per.set_yticklabels(names, fontsize=8)
        ax_per.invert_yaxis()
        ax_per.axvline(0, color="black", linewidth=0.8)
        span = max(abs(v) for v in slopes) or 1.0
        for i, v in enumerate(slopes):
            ax_per.annotate(f"{v:.1f}", (v, i), xytext=(4 if v >= 0 else -4, 0), textcoords="offset points",
                            va="center", ha="left" if v >= 0 else "right", fontsize=8)
        typical = sorted(abs(v) for v in slopes)[len(slopes) // 2] or 0.1
        if span > 10 * typical:
            # One pool that grows or shrinks its processes would squash every other bar: a
            # symmetric log scale keeps both its value and the small ones readable.
            ax_per.set_xscale("symlog", linthresh=1.0)
            ax_per.set_xlim(-span * 4 if min(slopes) < 0 else -1, span * 4 if max(slopes) > 0 else 1)
            ax_per.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        else:
            ax_per.set_xlim(min(0, min(slopes)) - 0.25 * span, max(0, max(slopes)) + 0.25 * span)
    else:
        style.no_data(fig, ax_per, "needs two or more loads")
    ax_per.grid(False, axis="y")
    ax_per.set_xlabel("KiB per client: least-squares slope of PSS against clients")
    ax_per.set_title("(b) memory per connection (proportional set size)", fontsize=10)
    style.legend_right(fig, handles, labels, title="server (smallest peak first)")
    return fig
