"""The primitives chapter: one figure per microbenchmark family, drawn from a combined
``microbench.json`` (harness/microbench.py), the issue's target checks, and a table that puts our
figures next to von Leitner's 2003 ones ("Scalable Network Programming"). Absolute times do not
carry over twenty years of hardware; the table therefore compares ratios between primitives and
between sizes, and shows his absolute numbers only as context.

Entry points: ``FIGURES`` ((name, title, draw(doc) -> Figure) for each family), ``render_all(doc,
out_dir)``, ``leitner_rows(doc)`` with ``LEITNER_HEADER``, ``target_rows(doc)`` with
``TARGET_HEADER``. ``doc`` is ``harness.microbench.load(path)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from harness.microbench import check_targets, loglog_slope, lookup, series  # noqa: E402
from plots import save_figure, style  # noqa: E402

Doc = dict[str, Any]


# ------------------------------------------------------------------------------------ helpers

def format_ns(ns: float | None) -> str:
    """12.3 ns, 4.56 µs, 20.1 ms, 1.2 s."""
    if ns is None:
        return "–"
    for scale, unit in ((1e9, "s"), (1e6, "ms"), (1e3, "µs")):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


def subtitle(doc: Doc) -> str:
    s, c = doc.get("settings", {}), doc.get("context", {})
    parts = [f"{c.get('host_name', '?')}: {c.get('num_cpus', '?')} CPUs at {c.get('mhz_per_cpu', '?')} MHz",
             f"Linux {c.get('kernel', '?')}"]
    if s.get("cpus") is not None:
        parts.append(f"pinned to CPU {s['cpus']}")
    if s.get("repetitions"):
        parts.append(f"median of {s['repetitions']} repetition(s)")
    if s.get("smoke"):
        parts.append("SMOKE RUN (a few iterations: not for conclusions)")
    parts.append(f"measured {doc.get('created_utc', '?')}")
    return " · ".join(parts)


def new_figure(title: str, doc: Doc, ncols: int = 1, left: float = 0.08,
               wspace: float = 0.3) -> tuple[Figure, list[Axes]]:
    """The layout of style.new_figure, with the microbenchmark run as the subtitle."""
    fig, axes = plt.subplots(1, ncols, figsize=style.FIGSIZE, squeeze=False)
    fig.suptitle(title, fontsize=14, fontweight="bold", x=0.02, ha="left", y=0.975)
    fig.text(0.02, 0.925, subtitle(doc), fontsize=9, color="#444444", ha="left")
    fig.subplots_adjust(left=left, right=style.LEGEND_RIGHT, top=0.86, bottom=0.1, wspace=wspace)
    for ax in axes[0]:
        ax.grid(True, which="major", alpha=0.35)
        ax.grid(True, which="minor", alpha=0.12)
    return fig, list(axes[0])


def line_style(i: int) -> dict[str, Any]:
    cmap = plt.get_cmap("tab20")
    idx = (2 * i) % 20 + (1 if i >= 10 else 0)
    return {"color": cmap(idx), "marker": style.MARKERS[i % len(style.MARKERS)], "markersize": 5,
            "linewidth": 1.4}


def primitives_of(doc: Doc, family: str) -> list[str]:
    """The family's primitives in the order they were measured."""
    seen: list[str] = []
    for row in doc["benchmarks"]:
        if row["family"] == family and row["primitive"] not in seen:
            seen.append(row["primitive"])
    return seen


def log_axis(ax: Axes, axis: str = "y") -> None:
    (ax.set_yscale if axis == "y" else ax.set_xscale)("log")
    style.plain_log_ticks(ax, axis)


def lines(ax: Axes, doc: Doc, family: str, param: str, label_fn: Callable[[str, list], str],
          only: list[str] | None = None, offset: int = 0) -> tuple[list, list[str], list[float]]:
    """One line per primitive of ``family`` against ``param``; returns handles, labels, values."""
    handles, labels, values = [], [], []
    for i, prim in enumerate(only or primitives_of(doc, family)):
        pts = series(doc, family, prim, param)
        if not pts:
            continue
        (h,) = ax.plot([n for n, _ in pts], [t for _, t in pts], **line_style(i + offset))
        handles.append(h)
        labels.append(label_fn(prim, pts))
        values += [t for _, t in pts]
    return handles, labels, values


def measured(doc: Doc, family: str) -> list[dict[str, Any]]:
    """The family's benchmark rows that have a time (skipped ones left out), fastest first."""
    return sorted((row for row in doc["benchmarks"] if row["family"] == family and row["ns_per_op"] is not None),
                  key=lambda row: row["ns_per_op"])


def bars(ax: Axes, rows: list[dict[str, Any]], notes: list[str], colors: list) -> None:
    """One horizontal bar per benchmark row (its primitive, its ns_per_op), top to bottom."""
    y = list(range(len(rows)))
    values = [row["ns_per_op"] for row in rows]
    ax.barh(y, values, color=colors, height=0.6)
    ax.set_yticks(y)
    ax.set_yticklabels([row["primitive"] for row in rows], fontsize=9)
    ax.invert_yaxis()
    for i, (v, note) in enumerate(zip(values, notes)):
        ax.annotate(note, (v, i), xytext=(4, 0), textcoords="offset points", va="center", ha="left",
                    fontsize=8.5)
    ax.grid(False, axis="y")


def errors_note(doc: Doc, family: str) -> str:
    """The skipped or failed benchmarks of a family, for the figure's footer."""
    errs = [f"{row['name']}: {row['error']}" for row in doc["benchmarks"]
            if row["family"] == family and row["error"]]
    return ("not measured: " + "; ".join(errs))[:400] if errs else ""


def color_key(fig: Figure, meanings: dict[str, str], title: str) -> None:
    """A legend of colour patches: ``meanings`` maps each bar colour to what it stands for."""
    handles = [plt.Rectangle((0, 0), 1, 1, color=color) for color in meanings]
    style.legend_right(fig, handles, list(meanings.values()), title=title)


def footer(fig: Figure, text: str) -> None:
    if text:
        fig.text(0.02, 0.02, text, fontsize=7.5, color="#666666", ha="left", wrap=True)


# ------------------------------------------------------------------------------------ figures

SPAWN_NAME = "fig_primitives_spawn"
SPAWN_TITLE = "Spawn: start one unit, run it to its end and reclaim it, with N of its kind alive"


def draw_spawn(doc: Doc) -> Figure:
    fig, (ax, ax_rel) = new_figure(SPAWN_TITLE, doc, ncols=2)
    prims = sorted(primitives_of(doc, "spawn"),
                   key=lambda p: (series(doc, "spawn", p, "alive") or [(0, float("inf"))])[0][1])
    handles, labels, values = lines(
        ax, doc, "spawn", "alive",
        lambda p, pts: f"{p}\n{format_ns(pts[0][1])} → {format_ns(pts[-1][1])} at {pts[-1][0]:,}",
        only=prims)
    if values:
        log_axis(ax)
    else:
        style.no_data(fig, ax, "no spawn benchmarks in this run")
    ax.set_xlabel("units of the same kind already alive")
    ax.set_ylabel("time per spawn (ns, wall clock), log scale")
    ax.set_title("(a) time per spawn", fontsize=10)
    for i, prim in enumerate(prims):
        pts = series(doc, "spawn", prim, "alive")
        if len(pts) >= 2 and pts[0][0] == 0:
            ax_rel.plot([n for n, _ in pts], [t / pts[0][1] for _, t in pts], **line_style(i))
    ax_rel.axhline(1.0, color="black", linewidth=0.8)
    ax_rel.set_xlabel("units of the same kind already alive")
    ax_rel.set_ylabel("time per spawn ÷ time with none alive")
    ax_rel.set_title("(b) does it get slower as more are alive? (1 = no)", fontsize=10)
    rel = [t / pts[0][1] for p in prims for pts in [series(doc, "spawn", p, "alive")]
           if pts and pts[0][0] == 0 for _, t in pts]
    if rel and max(rel) / max(min(rel), 1e-9) > 30:
        log_axis(ax_rel)
    for a in (ax, ax_rel):
        style.thousands(a, "x")
    style.legend_right(fig, handles, labels, title="primitive: none alive → most alive")
    footer(fig, errors_note(doc, "spawn"))
    return fig


SWITCH_NAME = "fig_primitives_switch"
SWITCH_TITLE = "Switch: one round trip between two execution contexts"

#: Round trips that never enter the kernel.
USER_LEVEL = {"fiber", "coroutine", "st", "pth"}


def draw_switch(doc: Doc) -> Figure:
    fig, (ax,) = new_figure(SWITCH_TITLE, doc, left=0.16)
    rows = measured(doc, "switch")
    user, kernel = "#1f77b4", "#d62728"
    if rows:
        fastest, slowest = rows[0]["ns_per_op"], rows[-1]["ns_per_op"]
        bars(ax, rows, [f"{format_ns(r['ns_per_op'])}  ({r['ns_per_op'] / fastest:,.0f}×)" for r in rows],
             [user if r["primitive"] in USER_LEVEL else kernel for r in rows])
        log_axis(ax, "x")
        ax.set_xlim(right=slowest * 20)
    else:
        style.no_data(fig, ax, "no switch benchmarks in this run")
    ax.set_xlabel("time per round trip (ns, wall clock), log scale; (×) relative to the fastest")
    color_key(fig, {user: "user level (no system call)", kernel: "through the kernel"},
              title="kind of switch")
    footer(fig, errors_note(doc, "switch"))
    return fig


EVENTS_NAME = "fig_primitives_events"
EVENTS_TITLE = "Events: one wait reporting the one ready descriptor among N idle ones"


def draw_events(doc: Doc) -> Figure:
    fig, (ax,) = new_figure(EVENTS_TITLE, doc)

    def label(prim: str, pts: list) -> str:
        slope = loglog_slope([p for p in pts if p[0] >= 100])
        s = f", slope {slope:.2f}" if slope is not None else ""
        return f"{prim}\n{format_ns(pts[0][1])} at {pts[0][0]:,} → {format_ns(pts[-1][1])} at {pts[-1][0]:,}{s}"

    handles, labels, values = lines(ax, doc, "events", "idle", label)
    if values:
        log_axis(ax, "x")
        log_axis(ax)
    else:
        style.no_data(fig, ax, "no event benchmarks in this run")
    ax.set_xlabel("idle descriptors watched besides the ready one, log scale")
    ax.set_ylabel("ns per iteration (write a byte, wait, read it), log scale")
    style.legend_right(fig, handles, labels,
                       title="mechanism (slope: log–log, N ≥ 100;\n1 = linear, 0 = flat)")
    footer(fig, errors_note(doc, "events") or "select() stops at 1,000: it cannot watch descriptors "
           "at or above FD_SETSIZE (1024).")
    return fig


WRITE_NAME = "fig_primitives_write"
WRITE_TITLE = "Write side: a header and a 305-byte body over loopback TCP"


def draw_write(doc: Doc) -> Figure:
    fig, (ax,) = new_figure(WRITE_TITLE, doc, left=0.18)
    rows = measured(doc, "write")
    one, more = "#2ca02c", "#ff7f0e"
    if rows:
        segments = [r["counters"].get("segments") for r in rows]
        notes = [f"{format_ns(r['ns_per_op'])}, {seg:.2g} segment(s)" if seg is not None
                 else format_ns(r["ns_per_op"]) for r, seg in zip(rows, segments)]
        bars(ax, rows, notes, [one if seg is not None and round(seg) == 1 else more for seg in segments])
        ax.set_xlim(0, rows[-1]["ns_per_op"] * 1.35)
        style.thousands(ax, "x")
    else:
        style.no_data(fig, ax, "no write benchmarks in this run")
    ax.set_xlabel("time per response, sent and read back by the peer (wall clock, ns)")
    color_key(fig, {one: "one TCP segment per response", more: "more than one segment"},
              title="segments (sender's tcpi_segs_out)")
    footer(fig, errors_note(doc, "write"))
    return fig


SOCKET_NAME = "fig_primitives_socket_mmap"
SOCKET_TITLE = "socket(), connect() and accept() against open connections; mmap by size and by mappings"


def draw_socket(doc: Doc) -> Figure:
    fig, (ax_s, ax_f, ax_p) = new_figure(SOCKET_TITLE, doc, ncols=3, wspace=0.55)
    handles, labels, values = lines(
        ax_s, doc, "socket", "open",
        lambda p, pts: f"{p}()\n{format_ns(pts[0][1])} → {format_ns(pts[-1][1])} with {pts[-1][0]:,} open")
    if values:
        log_axis(ax_s)
        style.thousands(ax_s, "x")
    else:
        style.no_data(fig, ax_s, "no socket benchmarks")
    ax_s.set_xlabel("loopback connections open")
    ax_s.set_ylabel("time of the one call (ns), log scale")
    ax_s.set_title("(a) socket, connect, accept", fontsize=10)

    h, l, v = lines(ax_f, doc, "mmap", "bytes",
                    lambda p, pts: f"mmap+read+munmap of a file\n{format_ns(pts[0][1])} for {pts[0][0] // 1024} KiB → "
                                   f"{format_ns(pts[-1][1])} for {pts[-1][0] // 1024:,} KiB",
                    only=["file"], offset=len(handles))
    handles += h
    labels += l
    if v:
        log_axis(ax_f, "x")
        log_axis(ax_f)
    else:
        style.no_data(fig, ax_f, "no mmap-by-size benchmarks")
    ax_f.set_xlabel("bytes mapped, log scale")
    ax_f.set_ylabel("time per map, read a byte per page, unmap (ns), log scale")
    ax_f.set_title("(b) mmap of a file by size", fontsize=10)

    h, l, v = lines(ax_p, doc, "mmap", "mappings",
                    lambda p, pts: f"mmap+read+munmap of one page\n{format_ns(pts[0][1])} → {format_ns(pts[-1][1])} "
                                   f"among {pts[-1][0]:,} mappings",
                    only=["page"], offset=len(handles))
    handles += h
    labels += l
    if v:
        ax_p.set_ylim(0, max(v) * 1.3)
        style.thousands(ax_p, "x")
    else:
        style.no_data(fig, ax_p, "no mmap-among-mappings benchmarks")
    ax_p.set_xlabel("other mappings present")
    ax_p.set_ylabel("time per map+read+unmap of one page (ns)")
    ax_p.set_title("(c) mmap with many mappings", fontsize=10)
    style.legend_right(fig, handles, labels, title="call")
    footer(fig, errors_note(doc, "socket") or errors_note(doc, "mmap"))
    return fig


#: (file stem, title, draw(doc) -> Figure) for every family's figure, in chapter order.
FIGURES: tuple[tuple[str, str, Callable[[Doc], Figure]], ...] = (
    (SPAWN_NAME, SPAWN_TITLE, draw_spawn),
    (SWITCH_NAME, SWITCH_TITLE, draw_switch),
    (EVENTS_NAME, EVENTS_TITLE, draw_events),
    (WRITE_NAME, WRITE_TITLE, draw_write),
    (SOCKET_NAME, SOCKET_TITLE, draw_socket),
)


def render_all(doc: Doc, out_dir: Path) -> list[Path]:
    """Draws every figure into ``out_dir`` as PNG and PDF; returns the written paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return [path for name, _title, draw in FIGURES for path in save_figure(draw(doc), out_dir, name)]


# ------------------------------------------------------------------------- tables for the text

TARGET_HEADER = ["target (issue 13)", "measured", "verdict"]


def target_rows(doc: Doc) -> list[list[str]]:
    """The issue's microbenchmark targets, checked against this run."""
    return [[c.target, c.measured, c.verdict] for c in check_targets(doc)]


LEITNER_HEADER = ["comparison", "von Leitner 2003 (Linux 2.6)", "here", "verdict"]

#: His numbers, from the text of the talk (the graphs did not survive into the seed text).
#: "The fork-and-do-something latency on my notebook on Linux 2.6 is 200 microseconds."
LEITNER_FORK_US_NOTEBOOK = 200.0
#: "My Athlon XP 2000+ desktop can do 10.000 processes per second."
LEITNER_FORKS_PER_S_ATHLON = 10_000.0
#: "On Linux 2.6, vfork is actually slower (250 ms vs. 180 ms) than fork if the forking program
#: is a statically linked dietlibc program. For a small glibc program, the difference is 250 ms
#: vs. 320 ms." (his "ms" must be µs, given the 200 µs fork above; the ratio does not care).
LEITNER_VFORK_FORK_GLIBC = (250.0, 320.0)
LEITNER_VFORK_FORK_STATIC = (250.0, 180.0)

#: A ratio within this factor of 1 counts as "does not grow" (his O(1)).
FLAT = 2.0


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _largest(doc: Doc, family: str, prim: str, param: str) -> tuple[int, float] | None:
    pts = series(doc, family, prim, param)
    return pts[-1] if pts else None


def _flat_row(doc: Doc, label: str, family: str, prim: str, param: str, his: str,
              what: str) -> list[str]:
    base = lookup(doc, f"{family}/{prim}/{param}:0")
    top = _largest(doc, family, prim, param)
    r = _ratio(top[1], base) if top else None
    if r is None:
        return [label.format(n="N"), his, "not measured", "–"]
    return [label.format(n=f"{top[0]:,}"), his,
            f"{r:.2f} ({format_ns(base)} → {format_ns(top[1])} with {top[0]:,} {what})", flat_verdict(r)]


def flat_verdict(r: float) -> str:
    """His O(1) claims against a ratio (more ÷ none): within FLAT× of 1 agrees."""
    if r > FLAT:
        return "differs (grows)"
    return "agrees (flat)" if r >= 1 / FLAT else "differs (faster with more)"


def _growth_row(doc: Doc, label: str, prim: str, his: str) -> list[str]:
    pts = series(doc, "events", prim, "idle")
    small = next((p for p in pts if p[0] == 10), None)
    if not pts or small is None:
        return [label.format(n="N"), his, "not measured", "–"]
    top = pts[-1]
    slope = loglog_slope([p for p in pts if p[0] >= 100])
    linear = slope is not None and slope >= 0.8
    return [label.format(n=f"{top[0]:,}"), his,
            f"{top[1] / small[1]:,.0f} ({format_ns(small[1])} → {format_ns(top[1])}; log–log slope "
            f"{slope:.2f})" if slope is not None else f"{top[1] / small[1]:,.0f}",
            "agrees (grows linearly)" if linear else "differs (not linear)"]


def leitner_rows(doc: Doc) -> list[list[str]]:
    """Rows of LEITNER_HEADER: his 2003 figures and claims next to this run's, as ratios."""
    rows = []
    fork = lookup(doc, "spawn/fork/alive:0")
    if fork is not None:
        rows.append(["fork+exit+wait, small parent, none alive (absolute: context only)",
                     f"{LEITNER_FORK_US_NOTEBOOK:.0f} µs notebook; {1e6 / LEITNER_FORKS_PER_S_ATHLON:.0f} µs "
                     "Athlon XP 2000+",
                     f"{format_ns(fork)} ({LEITNER_FORK_US_NOTEBOOK * 1e3 / fork:.1f}× his notebook)",
                     "– (hardware differs)"])
    else:
        rows.append(["fork+exit+wait, small parent, none alive", "200 µs notebook", "not measured", "–"])

    vfork = lookup(doc, "spawn/vfork/alive:0")
    glibc = LEITNER_VFORK_FORK_GLIBC[0] / LEITNER_VFORK_FORK_GLIBC[1]
    static = LEITNER_VFORK_FORK_STATIC[0] / LEITNER_VFORK_FORK_STATIC[1]
    r = _ratio(vfork, fork)
    rows.append(["vfork ÷ fork (dynamically linked glibc program)",
                 f"{glibc:.2f} (glibc: 250 vs 320); {static:.2f} (static dietlibc: 250 vs 180)",
                 f"{r:.2f} ({format_ns(vfork)} vs {format_ns(fork)})" if r is not None else "not measured",
                 "–" if r is None else ("agrees (vfork faster, as his glibc case)" if r < 1
                                        else "differs (vfork slower here)")])

    rows.append(_flat_row(doc, "fork with {n} processes alive ÷ none alive", "spawn", "fork", "alive",
                          "≈1: \"Linux scales O(1) in all benchmarks\"", "alive"))
    rows.append(_flat_row(doc, "pthread_create with {n} threads alive ÷ none alive", "spawn",
                          "pthread_64kib_stack", "alive", "≈1: \"Linux scales O(1) in all benchmarks\"", "alive"))
    rows.append(_growth_row(doc, "poll wait, {n} idle ÷ 10 idle", "poll",
                            "grows: \"the wasted effort rises linearly with the number of file descriptors\""))
    rows.append(_growth_row(doc, "select wait, {n} idle ÷ 10 idle", "select",
                            "grows (his text says it of poll; select scans its bit vectors the same way)"))
    epoll = [(n, t) for n, t in series(doc, "events", "epoll", "idle") if n >= 10]
    if len(epoll) >= 2:
        r = epoll[-1][1] / epoll[0][1]
        rows.append([f"epoll wait, {epoll[-1][0]:,} idle ÷ {epoll[0][0]:,} idle",
                     "≈1: \"the recommended API for event notification in Linux 2.6\"; O(1)",
                     f"{r:.2f} ({format_ns(epoll[0][1])} → {format_ns(epoll[-1][1])})", flat_verdict(r)])
    else:
        rows.append(["epoll wait, 10,000 idle ÷ 10 idle", "≈1", "not measured", "–"])
    rows.append(_flat_row(doc, "socket() with {n} descriptors open ÷ none", "socket", "socket", "open",
                          "≈1: lowest free descriptor by bit vector: \"this scales well\"", "open"))
    rows.append(_flat_row(doc, "connect() with {n} connections open ÷ none", "socket", "connect", "open",
                          "≈1: \"Linux scales O(1) in all benchmarks\"", "open"))
    rows.append(_flat_row(doc, "mmap of one page among {n} mappings ÷ none", "mmap", "page", "mappings",
                          "≈1 on 2.6 (\"Linux 2.4 scales badly for mmap\")", "mappings"))

    segs = {p: next((row["counters"].get("segments") for row in doc["benchmarks"]
                     if row["name"] == f"write/{p}"), None)
            for p in ("write_write", "writev", "cork_write_write")}
    if all(v is not None for v in segs.values()):
        here = " : ".join(f"{segs[p]:.2g}" for p in segs)
        agree = [round(segs[p]) for p in segs] == [2, 1, 1]
        rows.append(["TCP segments per response: write+write : writev : TCP_CORK",
                     "2 : 1 : 1 (\"one TCP packet for the header and ... a fresh one for the body\")",
                     here, "agrees" if agree else "differs"])
    else:
        rows.append(["TCP segments per response: write+write : writev : TCP_CORK", "2 : 1 : 1",
                     "not measured", "–"])
    return rows
