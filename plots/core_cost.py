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
BELOW_COLOR = "#1a7f37"


def _err(iv) -> list[list[float]]:  # asymmetric error bar of an Interval
    lo, hi = iv.bounds()
    return [[iv.value - lo], [hi - iv.value]]


def draw(analysis, costs) -> Figure:
    fig, (ax, ax_ratio) = style.new_figure(TITLE, analysis, ncols=2)
    rows = [c for c in costs if c.backend_cpu is not None and c.reference_cpu is not None]
    if not rows:
        style.no_data(fig, ax, "no backend and its reference both have a valid point beyond the knee")
        return fig
    fig.subplots_adjust(left=0.11, right=0.97, wspace=0.45, bottom=0.24)
    ys = list(range(len(rows)))[::-1]
    # Relative to the model's floor (the reference = 1), so that fork's ~400 µs and an event
    # loop's ~20 µs share one readable axis; the absolute figures are written beside each bar.
    labelled = set()

    def bar(y, left, width, color, label, **kw):
        ax.barh(y, width, left=left, height=0.5, color=color,
                label=label if label not in labelled else None, **kw)
        labelled.add(label)

    right = 1.0
    for y, c in zip(ys, rows):
        floor = c.reference_cpu.value
        ratio = c.backend_cpu.value / floor if floor else float("nan")
        lo, hi = c.backend_cpu.bounds()
        lo_r, hi_r = lo / floor, hi / floor
        if c.cpu_ratio is not None and c.cpu_ratio.value > 0:
            # Side by side: the backend relative to its floor pair by pair (1 / the table's
            # ratio), not the quotient of two medians taken over different moments.
            r_lo, r_hi = c.cpu_ratio.bounds()
            ratio, lo_r, hi_r = 1 / c.cpu_ratio.value, 1 / r_hi, 1 / r_lo
        bar(y, 0, min(1.0, ratio), MODEL_COLOR, "the model: its reference server (= 1)")
        if ratio >= 1:
            bar(y, 1.0, ratio - 1, CORE_COLOR, "the core: backend − reference")
        else:
            bar(y, ratio, 1 - ratio, "white", "backend below its floor (noise, or a floor doing more than "
                "its model needs)", edgecolor=BELOW_COLOR, hatch="///")
        ax.errorbar(ratio, y, xerr=[[ratio - lo_r], [hi_r - ratio]], fmt="none", ecolor="black", capsize=3, lw=1)
        # Side by side, the core's cost is the median of the pairs' differences (the table's).
        core = c.core_cpu.value if c.cpu_ratio is not None and c.core_cpu is not None else c.backend_cpu.value - floor
        ax.annotate(f"{c.backend_cpu.value:.1f} vs {floor:.1f} µs ({core:+.1f})", (max(ratio, 1.0, hi_r), y),
                    xytext=(4, -3), textcoords="offset points", fontsize=8)
        right = max(right, hi_r, ratio)
    ax.axvline(1.0, color="#555555", lw=0.8)
    ax.set_yticks(ys, [f"{c.backend}\nvs {c.reference}" for c in rows], fontsize=8)
    ax.set_xlim(0, right * 1.55)
    paired_only = all(c.cpu_ratio is not None for c in rows)
    ax.set_xlabel("server CPU per request relative to the reference's (user + system)\n" + (
        "pair by pair (side by side); error bars: 95 % intervals; beside each: each server's own µs"
        if paired_only else "error bars: the backend's 95 % interval"), fontsize=9)
    ax.set_title("(a) CPU per request: the model's floor and the core above it", fontsize=10)
    ax.legend(loc="upper left", bbox_to_anchor=(0.0, -0.17), fontsize=7.5, frameon=False)

    # Side by side (beside_reference): the reference's CPU per request over the backend's, pair
    # by pair; one at a time: the saturated throughputs' ratio.
    with_ratio = [(y, c, c.cpu_ratio or c.throughput_ratio) for y, c in zip(ys, rows)
                  if (c.cpu_ratio or c.throughput_ratio) is not None]
    for y, c, iv in with_ratio:
        ax_ratio.errorbar(iv.value, y, xerr=_err(iv), fmt="o" if c.cpu_ratio is not None else "s",
                          color=CORE_COLOR, ecolor="black", capsize=3)
    ax_ratio.axvline(1.0, color="#555555", lw=1)
    ax_ratio.axvline(0.95, color="#555555", lw=0.8, ls=":")
    ax_ratio.set_yticks(ys, [c.backend for c in rows], fontsize=8)
    ax_ratio.set_ylim(ax.get_ylim())
    lo = min([iv.bounds()[0] for _, _, iv in with_ratio] + [0.9])
    ax_ratio.set_xlim(lo - 0.05, max([iv.bounds()[1] for _, _, iv in with_ratio] + [1.0]) + 0.05)
    kinds = {c.cpu_ratio is not None for _, c, _ in with_ratio}
    if kinds == {True}:
        ax_ratio.set_xlabel("reference's CPU per request / the backend's,\nmeasured side by side, pair by pair; "
                            "95 % intervals;\nsolid line 1, dotted 0.95", fontsize=9)
        ax_ratio.set_title("(b) the backend against its floor, at once", fontsize=10)
    else:
        ax_ratio.set_xlabel("backend's saturated throughput / its reference's" + (
            "\n(circles: reference's CPU/request / backend's, side by side)" if True in kinds else "")
            + "\n95 % intervals; solid line 1, dotted 0.95", fontsize=9)
        ax_ratio.set_title("(b) throughput against the floor", fontsize=10)
    return fig
