"""Figures of the experiments that sweep something other than the offered load: idle
connections (von Leitner 2003), a dynamic page against its static twin (Fremlin 2008), 10,000
keep-alive connections (the SXE posts). Each ``draw_*`` takes a ``harness.cells.CellRun`` and
returns (file stem, Figure) pairs; the tables of the report are in plots/report.py."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from harness import leitner, sxe  # noqa: E402
from harness.cells import CellRun  # noqa: E402
from plots import style  # noqa: E402


def _new(title: str, run: CellRun, ncols: int) -> tuple[Figure, list]:
    fig, axes = plt.subplots(1, ncols, figsize=style.FIGSIZE, squeeze=False)
    fig.suptitle(title, fontsize=14, fontweight="bold", x=0.02, ha="left", y=0.975)
    exp = run.meta.get("experiment", {})
    share = style.share_used(run.meta)
    fig.text(0.02, 0.925, f"run {run.meta.get('run_id', run.run_dir.name)} · "
             f"{exp.get('load', {}).get('repetitions', '?')} repetition(s) · medians with 95 % intervals · server "
             + (f"capped at {share:.0%} of CPU {run.meta.get('pinning', {}).get('server_cpus', '?')}" if share
                else "uncapped"), fontsize=9, color="#444444")
    fig.subplots_adjust(left=0.08, right=style.LEGEND_RIGHT, top=0.86, bottom=0.1, wspace=0.3)
    for ax in axes[0]:
        ax.grid(True, alpha=0.35)
    return fig, list(axes[0])


def _err(iv, scale: float = 1.0) -> tuple[float, float, float]:
    lo, hi = iv.bounds()
    return iv.value * scale, (iv.value - lo) * scale, (hi - iv.value) * scale


def draw_idle(run: CellRun) -> list[tuple[str, Figure]]:
    fig, (ax_tp, ax_cpu) = _new("Serving beside idle connections (von Leitner 2003)", run, 2)
    handles, labels = [], []
    for i, b in enumerate(run.backends()):
        cells = [c for c in leitner.series(run, b) if c.requests_per_second is not None]
        if not cells:
            continue
        st = dict(marker=style.MARKERS[i % len(style.MARKERS)], color=plt.get_cmap("tab10")(i % 10), capsize=3)
        xs = [max(c.condition[0], 1) for c in cells]
        tp = [_err(c.requests_per_second) for c in cells]
        h = ax_tp.errorbar(xs, [v for v, _, _ in tp], yerr=[[lo for _, lo, _ in tp], [hi for _, _, hi in tp]], **st)
        cpu = [c for c in cells if c.cpu_us_per_request is not None]
        cv = [_err(c.cpu_us_per_request) for c in cpu]
        ax_cpu.errorbar([max(c.condition[0], 1) for c in cpu], [v for v, _, _ in cv],
                        yerr=[[lo for _, lo, _ in cv], [hi for _, _, hi in cv]], **st)
        handles.append(h)
        labels.append(f"{b} ({leitner.poller_of(run, b) or '?'})")
    for ax in (ax_tp, ax_cpu):
        ax.set_xscale("log")
        style.plain_log_ticks(ax, "x")
        ax.set_xlabel("idle keep-alive connections held (log scale; 0 drawn at 1)")
    ax_tp.set_ylim(bottom=0)
    style.thousands(ax_tp)
    ax_tp.set_ylabel("requests per second (active connections)")
    ax_tp.set_title("(a) throughput", fontsize=10)
    ax_cpu.set_yscale("log")
    style.plain_log_ticks(ax_cpu, "y")
    ax_cpu.set_ylabel("server CPU per request (µs, log scale)")
    ax_cpu.set_title("(b) CPU per request: flat = O(1) notification", fontsize=10)
    style.legend_right(fig, handles, labels, title="server (poller)")
    return [("fig_leitner_idle_connections", fig)]


def draw_dynamic(run: CellRun) -> list[tuple[str, Figure]]:
    fig, axes = _new("A dynamic page against a static file of the same bytes (Fremlin 2008)", run, 2)
    for ax, keep_alive in zip(axes, (False, True)):
        names = [b for b in run.backends() if run.cell(b, ("static", keep_alive))]
        names.sort(key=lambda b: -(run.cell(b, ("static", keep_alive)).requests_per_second.value))
        y = range(len(names))
        for offset, page, color in ((-0.2, "dynamic", "#1f77b4"), (0.2, "static", "#aaaaaa")):
            vals, errs, ys = [], [[], []], []
            for i, b in enumerate(names):
                c = run.cell(b, (page, keep_alive))
                if c is None or c.requests_per_second is None:
                    continue
                v, lo, hi = _err(c.requests_per_second)
                vals.append(v)
                errs[0].append(lo)
                errs[1].append(hi)
                ys.append(i + offset)
            ax.barh(ys, vals, height=0.38, xerr=errs, color=color, label=page, capsize=2)
        ax.set_yticks(list(y))
        ax.set_yticklabels(names, fontsize=8)
        ax.invert_yaxis()
        style.thousands(ax, "x")
        ax.set_xlabel("requests per second")
        ax.set_title("(a) a new connection per request" if not keep_alive else "(b) keep-alive", fontsize=10)
        ax.grid(False, axis="y")
    handles, labels = axes[0].get_legend_handles_labels()
    style.legend_right(fig, handles, ["dynamic /hello?name=…", "static file, same bytes"][:len(labels)],
                       title="page")
    return [("fig_fremlin_dynamic_page", fig)]


def draw_many(run: CellRun) -> list[tuple[str, Figure]]:
    fig, (ax_q, ax_c) = _new("10,000 keep-alive connections, 50 queries each (the SXE posts)", run, 2)
    cells = sorted((c for c in run.cells if c.requests_per_second is not None),
                   key=lambda c: -c.requests_per_second.value)
    names = [c.backend for c in cells]
    y = list(range(len(names)))
    q = [_err(c.requests_per_second) for c in cells]
    ax_q.barh(y, [v for v, _, _ in q], xerr=[[lo for _, lo, _ in q], [hi for _, _, hi in q]],
              color="#1f77b4", capsize=2, height=0.6)
    conn = [sxe.connections_per_second(run, b) for b in names]
    ax_c.barh([i for i, c in zip(y, conn) if c], [c.value for c in conn if c], color="#ff7f0e", height=0.6)
    for ax, what in ((ax_q, "queries per second"), (ax_c, "new connections per second (the ramp)")):
        ax.set_yticks(y)
        ax.set_yticklabels(names, fontsize=8)
        ax.invert_yaxis()
        style.thousands(ax, "x")
        ax.set_xlabel(what)
        ax.grid(False, axis="y")
    ax_q.set_title("(a) queries/s over 10,000 connections", fontsize=10)
    ax_c.set_title("(b) connections/s while they are opened", fontsize=10)
    return [("fig_sxe_many_connections", fig)]
