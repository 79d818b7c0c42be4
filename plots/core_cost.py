"""What the HTTP core costs: each backend's server CPU per request beside its reference server's
(the floor of its model, servers/reference/), both server-bound in the same run. The reference's
bar is the model's cost; what the backend spends above it is the core's (parsing, the docroot,
headers, counters, deadlines)."""

from __future__ import annotations

from matplotlib.figure import Figure

from plots import style

NAME = "core_cost"
TITLE = "What the HTTP core costs: each backend beside its model's floor"
MODEL_COLOR = "#9aa5b1"
CORE_COLOR = "#d9822b"


def _err(iv) -> list[list[float]]:
    lo, hi = iv.bounds()
    return [[iv.value - lo], [hi - iv.value]]


def draw(analysis, costs) -> Figure:
    fig, (ax, ax_ratio) = style.new_figure(TITLE, analysis, ncols=2)
    rows = [c for c in costs if c.backend_cpu is not None and c.reference_cpu is not None]
    if not rows:
        style.no_data(fig, ax, "no backend and its reference both have a valid point beyond the knee")
        return fig
    fig.subplots_adjust(left=0.11, right=0.97, wspace=0.45)
    ys = list(range(len(rows)))[::-1]
    for y, c in zip(ys, rows):
        floor = c.reference_cpu.value
        core = c.backend_cpu.value - floor
        ax.barh(y, floor, height=0.5, color=MODEL_COLOR, label="the model (its reference server)" if y == ys[0] else None)
        ax.barh(y, core, left=floor, height=0.5, color=CORE_COLOR if core >= 0 else "#1a7f37",
                label="the core (backend − reference)" if y == ys[0] else None)
        ax.errorbar(c.backend_cpu.value, y + 0.15, xerr=_err(c.backend_cpu), fmt="none", ecolor="black",
                    capsize=3, lw=1)
        ax.errorbar(floor, y - 0.15, xerr=_err(c.reference_cpu), fmt="none", ecolor="#333333", capsize=3, lw=1)
        share = f"{core / c.backend_cpu.value * 100:+.0f} %" if c.backend_cpu.value else ""
        ax.annotate(f"{c.backend_cpu.value:.1f} µs  (core {share})", (max(c.backend_cpu.bounds()[1], floor), y),
                    xytext=(4, -3), textcoords="offset points", fontsize=8)
    ax.set_yticks(ys, [f"{c.backend}\nvs {c.reference}" for c in rows], fontsize=8)
    ax.set_xlim(left=0, right=max(max(c.backend_cpu.bounds()[1], c.reference_cpu.bounds()[1]) for c in rows) * 1.35)
    ax.set_xlabel("server CPU time per request (µs, user + system)\nerror bars: 95 % intervals of the backend (above) "
                  "and of its reference (below)", fontsize=9)
    ax.set_title("(a) CPU per request, split into the model's and the core's", fontsize=10)
    ax.legend(loc="lower right", fontsize=8)

    with_ratio = [(y, c) for y, c in zip(ys, rows) if c.throughput_ratio is not None]
    for y, c in with_ratio:
        ax_ratio.errorbar(c.throughput_ratio.value, y, xerr=_err(c.throughput_ratio), fmt="o", color=CORE_COLOR,
                          ecolor="black", capsize=3)
    ax_ratio.axvline(1.0, color="#555555", lw=1)
    ax_ratio.axvline(0.95, color="#555555", lw=0.8, ls=":")
    ax_ratio.set_yticks(ys, [c.backend for c in rows], fontsize=8)
    ax_ratio.set_ylim(ax.get_ylim())
    lo = min([c.throughput_ratio.bounds()[0] for _, c in with_ratio] + [0.9])
    ax_ratio.set_xlim(lo - 0.05, max([c.throughput_ratio.bounds()[1] for _, c in with_ratio] + [1.0]) + 0.05)
    ax_ratio.set_xlabel("backend's saturated throughput / its reference's\n95 % intervals; solid line 1, dotted 0.95",
                        fontsize=9)
    ax_ratio.set_title("(b) throughput against the floor", fontsize=10)
    return fig
