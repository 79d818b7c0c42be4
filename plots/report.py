"""The PDF report: title page with the environment, method, every figure, ranking, findings.

Every number on every page comes from meta.json, the experiment copy and runs.jsonl of the run
directory; nothing is typed by hand. ``build_report`` also writes figures/*.png, figures/*.pdf,
summary.csv and ranking.csv next to report.pdf.
"""

from __future__ import annotations

import csv
import re
import statistics
import textwrap
from pathlib import Path
from typing import Any, Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.backends.backend_pdf import PdfPages  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from harness.analysis import (  # noqa: E402
    FLAG_TEXT,
    KNEE_THROUGHPUT,
    SHORTFALL_RATIO,
    Analysis,
    analyze,
    control_ratio,
    core_cost_records,
    core_costs,
    dry_bursts,
    excluded_counts,
    findings,
    write_summary_csv,
)
from harness.claims import Claim, claims_for, tally, write_claims  # noqa: E402
from harness.loadgen import DEFAULT_SPIN_US  # noqa: E402
from harness.stats import Interval  # noqa: E402
from plots import FIGURES, core_cost  # noqa: E402
from plots.style import FLAG_COLOR, share_used  # noqa: E402

PAGE = (11.0, 8.5)  # landscape letter; figures use the same width
WRAP = 126  # characters per line of body text at 9.5 pt on an 11-inch page
TITLE_WRAP = 70  # characters per line of a page title at 16 pt bold


class TextPage:
    """Headings, wrapped paragraphs and tables laid out top to bottom; text that does not fit
    continues on a new page with the same title. ``figs`` holds every page made."""

    BOTTOM = 0.06  # the footer lives below this

    def __init__(self, title: str, footer: str = ""):
        self.title = title
        self.footer = footer
        self.figs: list[Figure] = []
        self._new_page(title)

    def _new_page(self, title: str) -> None:
        self.fig = plt.figure(figsize=PAGE)
        self.figs.append(self.fig)
        # A long title (an experiment's own) wraps instead of running off the page.
        lines = textwrap.wrap(title, width=TITLE_WRAP) or [""]
        self.fig.text(0.05, 0.95, "\n".join(lines), fontsize=16, fontweight="bold", va="top")
        if self.footer:
            self.fig.text(0.05, 0.025, self.footer, fontsize=7.5, color="#666666")
        self.y = 0.89 - (len(lines) - 1) * self._line_h(16)

    def _ensure(self, height: float) -> None:
        if self.y - height < self.BOTTOM and self.y < 0.88:
            self._new_page(self.title + " (continued)")

    @staticmethod
    def _line_h(size: float) -> float:
        return size / 72 / PAGE[1] * 1.35

    def heading(self, text: str, keep_with: float = 0.0) -> None:
        """``keep_with``: the height of what follows and must stay on the heading's page (a
        table), when it fits on one; otherwise three lines of text."""
        self._ensure(0.047 + max(3 * self._line_h(9.5), keep_with))  # never a heading alone at the bottom
        self.y -= 0.012
        self.fig.text(0.05, self.y, text, fontsize=12, fontweight="bold", va="top")
        self.y -= 0.035

    def paragraph(self, text: str, size: float = 9.5, indent: float = 0.05, bullet: str = "",
                  width: int = WRAP, color: str = "black", bold: bool = False) -> None:
        lines = textwrap.wrap(text, width=width - len(bullet)) or [""]
        line_h = self._line_h(size)
        self._ensure(line_h * (len(lines) + 0.35))
        for i, line in enumerate(lines):
            prefix = bullet if i == 0 else " " * len(bullet)
            self.fig.text(indent, self.y, prefix + line, fontsize=size, va="top", family="DejaVu Sans",
                          color=color, fontweight="bold" if bold else "normal")
            self.y -= line_h
        self.y -= line_h * 0.35

    TABLE_GAP = 0.02  # below a table

    @staticmethod
    def _table_body(header: list[str], rows: list[list[str]], row_h: float) -> tuple[int, float]:
        """(lines of the header, height of header and rows)."""
        header_lines = max(h.count("\n") + 1 for h in header)
        return header_lines, row_h * (len(rows) + header_lines)

    @classmethod
    def table_height(cls, header: list[str], rows: list[list[str]], row_h: float) -> float:
        """The page height table() takes for these rows, its gap included (0 without rows:
        callers draw no table then)."""
        return cls._table_body(header, rows, row_h)[1] + cls.TABLE_GAP if rows else 0.0

    def table(self, header: list[str], rows: list[list[str]], col_widths: list[float],
              size: float = 8.5, row_h: float = 0.028) -> None:
        header_lines, height = self._table_body(header, rows, row_h)
        self._ensure(height + self.TABLE_GAP)
        ax = self.fig.add_axes([0.05, self.y - height, 0.9, height])
        ax.axis("off")
        tbl = ax.table(cellText=rows, colLabels=header, colWidths=col_widths, loc="upper left",
                       cellLoc="left", colLoc="left", bbox=[0, 0, 1, 1])
        tbl.auto_set_font_size(False)
        tbl.set_fontsize(size)
        for (r, _c), cell in tbl.get_celld().items():
            if r == 0:
                cell.set_height(cell.get_height() * header_lines)
            cell.set_edgecolor("#bbbbbb")
            cell.set_linewidth(0.5)
            if r == 0:
                cell.set_facecolor("#e8e8e8")
                cell.set_text_props(fontweight="bold")
            elif r % 2 == 0:
                cell.set_facecolor("#f7f7f7")
        self.y -= height + self.TABLE_GAP

    def rows_that_fit(self, row_h: float, header_lines: int = 1) -> int:
        """Table rows that fit on what is left of this page (at least a few)."""
        return max(3, int((self.y - self.BOTTOM - 0.02) / row_h) - header_lines)


def _fmt(v, spec: str = ".3g", none: str = "–") -> str:
    if v is None:
        return none
    return format(v, spec)


def _version_number(text: str) -> str:
    """'nginx version: nginx/1.22.1' → '1.22.1'."""
    m = re.search(r"(\d+\.\d+(?:\.\d+)?)", text or "")
    return m.group(1) if m else (text or "?")[:30]


def _footer(a: Analysis) -> str:
    return f"httpbench · run {a.meta.get('run_id', a.run_dir.name)} · generated from {a.run_dir}"


def title_page(a: Analysis) -> list[Figure]:
    meta = a.meta
    exp = meta.get("experiment", {})
    env = meta.get("environment", {})
    page = TextPage(f"httpbench: {exp.get('title', 'benchmark report')}", _footer(a))
    if share_used(meta) is None:
        page.paragraph("This run was not server-bound: the servers ran uncapped, so where one client core "
                       "saturates first, its ranking measures the client, not the servers.", size=11,
                       color=FLAG_COLOR, bold=True)
    status = meta.get("status", "unknown")
    page.paragraph(
        f"Run {meta.get('run_id', a.run_dir.name)}, started {meta.get('created', '?')}, finished "
        f"{meta.get('finished', '?')} ({status}; {meta.get('wall_s', '?')} s of measurement). "
        f"{len(a.records)} points measured, {len(a.errors)} failed, {len(a.skipped)} skipped, "
        f"{len(a.backends)} server{'' if len(a.backends) == 1 else 's'}."
        + ("  This was a --quick smoke run: numbers are indicative only." if exp.get("quick") else ""), size=10.5)
    if exp.get("description"):
        page.paragraph(exp["description"], size=10)
    if exp.get("paper"):
        page.paragraph(f"Reproduces: {exp['paper']}.", size=10)
    page.heading("Environment")
    versions = env.get("production_versions", {}) or {}
    rows = [
        ["kernel", f"{env.get('kernel', '?')}  ({env.get('os', '')})"],
        ["CPU", f"{env.get('cpu_model', '?')}, {env.get('cores', '?')} cores, "
                f"{env.get('memory_mib', '?')} MiB memory"],
        ["frequency governor", str(env.get("governor", "?"))],
        *([["idle CPUs", idle_text(env)]] if env.get("idle") else []),
        ["pinning", f"server on CPU {meta.get('pinning', {}).get('server_cpus', '?')}, client on CPU "
                    f"{meta.get('pinning', {}).get('client_cpus', '?')} (taskset)"
                    + (f"; every server capped at {share_used(meta):.0%} of its CPU (own cgroup)"
                       if share_used(meta) is not None else "; servers uncapped")],
        ["net.core.somaxconn", str(env.get("somaxconn", "?"))],
        ["tcp_tw_reuse / port range", f"{env.get('tcp_tw_reuse', '?')} / {env.get('ip_local_port_range', '?')}"],
        ["open files (soft / hard)", f"{env.get('nofile_soft', '?')} / {env.get('nofile_hard', '?')}"],
        ["load average at start", load_at_start(env)],
        ["compiler", str(env.get("compiler", "?"))],
        ["git revision", str(env.get("git_revision", "?"))],
        ["python / matplotlib", f"{env.get('python', '?')} / {env.get('matplotlib', '?')}"],
        ["production servers", "; ".join(f"{k} {_version_number(v)}" for k, v in versions.items()) or "none"],
    ]
    page.table(["item", "value"], rows, [0.25, 0.75], size=9, row_h=0.032)
    page.heading("Command")
    page.paragraph(meta.get("command_line", "?") + f"   (experiment file copied to {a.run_dir}/experiment.toml)",
                   size=9)
    notes = meta.get("notes") or []
    if notes:
        page.heading("Notes")
        for n in notes[:6]:
            page.paragraph(n, size=9, bullet="• ")
    return page.figs


def _pools_sentence(exp: dict, ours: list[dict], prod: list[dict]) -> str:
    """How many workers each fixed pool ran (the runner's Target.workers): a process or thread
    pool's size decides how its clients beyond the pool wait (in the accept queue), so the
    report says it."""
    by_size: dict[int | None, list[str]] = {}
    for t in ours:
        if t.get("pool"):
            # As the runner launched it; a run recorded before targets carried it: the experiment's.
            by_size.setdefault(t.get("workers", exp.get("pool")), []).append(t["label"])
    parts = [f"{', '.join(labels)}: {'the backend default (--workers)' if size is None else f'{size} workers'}"
             for size, labels in by_size.items()]
    apache = [t["label"] for t in prod if t.get("pool")]
    if apache:
        parts.append(f"{' and '.join(apache)}: {exp.get('apache_pool', 64)} (apache_pool)")
    return f" Fixed pools: {'; '.join(parts)}." if parts else ""


def _spin_phrase(load: dict) -> str:
    """How the loadgen waited ([load] spin_us, or its default): it decides whether the server is
    charged for waking its client (docs/methodology.md, "Which client")."""
    spin = load.get("spin_us")
    if spin is None:
        return (f", polling up to {DEFAULT_SPIN_US} µs before it sleeps (the loadgen's default), so a server is "
                "hardly ever charged for waking it (docs/methodology.md, \"Which client\")")
    if spin == 0:
        return (", sleeping as soon as it has nothing to read (spin_us = 0, as wrk does: each wake-up of it is "
                "charged to the server that wrote)")
    return f", polling {spin} µs before it sleeps (spin_us; the loadgen's default is {DEFAULT_SPIN_US})"


def method_page(a: Analysis) -> list[Figure]:
    meta = a.meta
    exp = meta.get("experiment", {})
    load = exp.get("load", {})
    pin = meta.get("pinning", {})
    page = TextPage("Method", _footer(a))
    targets = meta.get("targets", [])
    toy = [t for t in targets if t.get("kind") == "toy" and t.get("ranked", True)]
    prod = [t for t in targets if t.get("kind") == "production"]
    extra = [t for t in targets if not t.get("ranked", True) and t.get("kind") != "reference"]
    refs = [t for t in targets if t.get("kind") == "reference"]
    levels = load.get("levels", [])
    page.heading("What was run")
    page.paragraph(
        f"{len(toy)} of our servers (the same HTTP core with one concurrency backend each: "
        f"{', '.join(t['label'] for t in toy) or 'none'}) and {len(prod)} production servers "
        f"({', '.join(t['label'] for t in prod) or 'none'}), each at {len(levels)} offered loads "
        f"({', '.join(map(str, levels))} concurrent clients), {load.get('repetitions', '?')} repetition(s), the "
        f"points of each repetition in a freshly shuffled order (seed {meta.get('shuffle_seed', '?')}): "
        f"{len(a.records) + len(a.errors) + len(a.skipped)} points in all."
        + (f" Drawn but not ranked: {', '.join(t['label'] + ' (' + ' '.join(t.get('args') or []) + ')' for t in extra)}."
           if extra else "")
        + (f" Reference servers, the floor of a model (servers/reference/: the least a server of that model does "
           f"to answer the same request with the same bytes), measured like the others and set beside their "
           f"backends, never ranked: {', '.join(t['label'] + ' (' + t.get('reference_for', '?') + ')' for t in refs)}."
           if refs else "")
        + _pools_sentence(exp, toy + extra + refs, prod))
    kind = exp.get("kind", "load-sweep")
    if kind == "idle-connections":
        page.paragraph(f"Each point also holds {', '.join(f'{n:,}' for n in load.get('idle_connections', []))} idle "
                       "keep-alive connections to the server (each served one request first, then left open) while "
                       "the load runs on its own connections: does serving get slower as more connections are alive?")
    elif kind == "dynamic-page":
        page.paragraph(f"Our servers are measured on the dynamic page {exp.get('dynamic_page')} and on a static file "
                       "holding exactly its bytes; production servers serve the static file. Both with a new "
                       "connection per request and with keep-alive.")
    elif kind == "many-connections":
        page.paragraph(f"The loadgen opens the connections over {load.get('ramp_s') or 0:g} s (--ramp), keeps them "
                       "alive and sends the requests over them; connections/s is the connections over the time to "
                       "the last connect, queries/s the completed requests over the kept window.")
    window = (f"a warm-up chosen per point (two response times at that load, 0.3–6 s), then a kept window of "
              f"{load['window_s']:g} s" if load.get("window_s") else
              f"{load.get('requests', '?')} requests per point, the first and last {load.get('discard', '?')} "
              f"discarded (the paper's rule)")
    page.paragraph(
        f"Each point starts a fresh server in its own cgroup, pinned to CPU {pin.get('server_cpus', '?')}, waits "
        f"until it accepts, then runs the project's load generator pinned to CPU {pin.get('client_cpus', '?')}: an "
        f"ab-style self-clocking closed loop keeping exactly l requests in flight, "
        + ("reusing connections (keep-alive)" if load.get("keep_alive") else
           "opening a new connection for every request (as ApacheBench did in the paper)")
        + f", {window}, request timeout {load.get('timeout_s', '?')} s"
        + _spin_phrase(load)
        + ". Every response is verified (status, length, body). The server is then stopped with SIGTERM (SIGKILL "
        "after a grace period); anything left in its cgroup is killed by pid.")
    page.heading("Server-bound: the CPU cap")
    share = share_used(meta)
    cal = meta.get("calibration") or {}
    if share is not None:
        lim = pin.get("server_cpu_limit", {})
        how = (f"chosen by a calibration before the run: every server was probed at {cal.get('trial_share', 0.25):.0%} "
               f"of a CPU at {cal.get('level', '?')} clients; the client was busiest against {cal.get('fastest', '?')}, "
               f"and the share is the {cal.get('rule', 'largest share keeping the client at most half busy')} "
               f"({len(cal.get('probes') or [])} probes, in meta.json)" if cal.get("method") == "auto"
               else "fixed by the experiment file")
        page.paragraph(
            f"Every server was capped at {share:.0%} of one CPU by the CFS bandwidth controller "
            f"({lim.get('quota_us', '?')} µs every {lim.get('period_us', '?')} µs), {how}. This stands in for the "
            f"paper's server clocked 3.7 times slower than its client: the server, not the client, is the "
            f"bottleneck, so a slope compares servers. Throttling adds pauses of up to a period to single requests."
            + _throttling_sentence(pin.get("cap_throttling") or {}))
        pair = pin.get("server_cpu_limit_beside_reference")
        if pair:
            page.paragraph(
                f"Side by side ([servers] beside_reference): each backend ran at the same time as its reference "
                f"server, one loadgen each, in one cgroup capped at {2 * share:.0%} ({pair.get('quota_us', '?')} µs "
                f"every {pair.get('period_us', '?')} µs; a child cgroup each with equal weight, both under "
                f"SCHED_BATCH; which starts first alternates by repetition). A pair's points are valid when the two "
                f"together used the shared cap and their two loadgens together left the client CPU free enough; "
                f"compare a pair by CPU per request (the page \"What the HTTP core costs\"): its throughputs and "
                f"response times also depend on how the two shared the cap.")
    else:
        page.paragraph("The servers were NOT capped (" + (cal.get("reason") or "see the notes on the first page")
                       + "). Where the client saturates first, differences between servers shrink to what each "
                       "server costs the client.", color=FLAG_COLOR)
    page.heading("What was measured (over the kept window only)")
    page.paragraph(
        "From the load generator: completed requests n and the kept window t, mean response time (connect "
        "included, as ab), the measured load l_m (the time-average of requests in service during the window; "
        "the paper's n·t_r/t with t_r the servicing time, never above the offered load), throughput, "
        "percentiles, errors by kind, and the client's own CPU use.", bullet="• ")
    page.paragraph(
        "From the server's cgroup, sampled every 20 ms and interpolated at the window's bounds: CPU time of "
        "every process and thread the server ever had (ns, no ticks), throttling, peak memory charged (user and "
        "kernel), kernel context switches (a perf software counter bound to the cgroup) and, of those, the "
        "preemptions (a sched_switch tracepoint counted where the task could still run). From the server's "
        "status page (our servers; nginx's stub_status): its own request count and user-level switches.",
        bullet="• ")
    page.paragraph(
        f"Memory per connection ({exp.get('memory_connections', 0)} idle keep-alive connections, each served once "
        f"and held): growth of the server's proportional set size divided by the connections held (the SXE posts' "
        f"figure).", bullet="• ")
    page.heading("Which points count")
    val = exp.get("validity") or {}
    page.paragraph(
        f"A server's knee is the lightest load at which its median throughput reaches {KNEE_THROUGHPUT:.0%} of its "
        f"highest. A point at or beyond the knee counts only if the server used at least "
        f"{val.get('server_min', 0.9):.0%} of its CPU allowance in the window and the client at most "
        f"{val.get('client_max', 0.6):.0%} of its CPU; every point also needs a measured load of at least "
        f"{SHORTFALL_RATIO:.0%} of the offered load and no failed response. Other points are drawn ringed and "
        f"listed with the reason, and left out of fits, intervals and rankings.")
    page.heading("Statistics")
    steadiness_paragraph(page, meta, observed_spread(a))
    if kind != "load-sweep":
        page.paragraph("Repetitions combine by the median; every figure carries a 95 % percentile-bootstrap interval "
                       "(2,000 resamples of the repetitions, seeded). Claims get a verdict from those intervals.")
        return page.figs
    page.paragraph(
        "Repetitions combine by the median. A server's slope is the least-squares line through the median of "
        "each load; its 95 % interval is a percentile bootstrap (2,000 resamples of the repetitions within each "
        "load, seeded). Throughput is the median at the best load beyond the knee, CPU per request the median "
        "over the points beyond the knee, each with the same bootstrap. The ranking orders servers by slope and "
        "gives one rank to a server and every following server whose interval overlaps its interval (tied).")
    return page.figs


def observed_spread(a: Analysis) -> tuple[float, float, float] | None:
    """How much the repetitions of one point differed in this run: the median, smallest and
    largest relative standard deviation of mean response time over the points with at least two
    repetitions."""
    rel = sorted(p.mean_response_ms_stdev / p.mean_response_ms for p in a.points
                 if p.mean_response_ms_stdev is not None and p.mean_response_ms > 0)
    if not rel:
        return None
    return statistics.median(rel), rel[0], rel[-1]


def steadiness_text(meta: dict[str, Any], spread: tuple[float, float, float] | None = None
                    ) -> tuple[str, bool] | None:
    """The machine's own variation (meta.json's ``steadiness``, harness/steadiness.py) in one
    paragraph, beside how much the run's repetitions differed (``spread``), and whether the
    machine alone keeps intervals wider than ±5 %."""
    st = meta.get("steadiness")
    if not st:
        return None
    if st.get("error"):
        return f"How steady the machine was could not be measured: {st['error']}.", False
    floor = st.get("interval_floor") or 0.0
    if st.get("cache_cv") is not None and st.get("arithmetic_cv") is not None:
        loops = (f"two fixed loops ran on CPU {st['cpu']} in windows of {st['window_s']:g} s: integer arithmetic, "
                 f"whose rate varied by {st['arithmetic_cv']:.1%}, and a pointer chase through "
                 f"{st.get('cache_kib', '?')} KiB (half the L2 cache), which varied by {st['cache_cv']:.1%} "
                 f"(coefficients of variation; the {st.get('loop', 'cache')} loop's slowest window "
                 f"{st['slowest'] - 1:+.0%}, fastest {st['fastest'] - 1:+.0%} of the median)")
    else:  # a run recorded before the cache loop existed
        loops = (f"a fixed loop (integer arithmetic, no system calls) ran on CPU {st['cpu']} for {st['windows']} "
                 f"windows of {st['window_s']:g} s; its rate varied by {st['cv']:.1%} (coefficient of variation; "
                 f"slowest window {st['slowest'] - 1:+.0%}, fastest {st['fastest'] - 1:+.0%} of the median)")
    reps = st.get("repetitions")
    if isinstance(reps, int) and reps < 2:
        consequence = (f"so with a single repetition no figure has an interval, and any one of them may be off by "
                       f"about ±{2 * st['cv']:.0%} (twice that variation), however steady the server.")
    else:
        consequence = (f"so with {reps if reps is not None else '?'} repetitions a median's 95 % interval can "
                       f"hardly be narrower than ±{floor:.1%}, however steady the server.")
    text = (f"How steady the machine was: before the run, {loops}. A server on this machine varies at least as "
            f"much from one window to the next (a server's kernel work waits on the caches as the chase does), "
            + consequence)
    if spread is not None:
        text += (f" In this run the repetitions of one point differed by a median {spread[0]:.1%} in mean response "
                 f"time (relative standard deviation; {spread[1]:.1%} to {spread[2]:.1%} across points).")
    return text, floor > 0.05


def steadiness_paragraph(page: "TextPage", meta: dict[str, Any],
                         spread: tuple[float, float, float] | None = None) -> None:
    out = steadiness_text(meta, spread)
    if out is not None:
        page.paragraph(out[0], color=FLAG_COLOR if out[1] else "black")


def _iv(iv: Interval | None, spec: str, scale: float = 1.0) -> str:
    if iv is None:
        return "–"
    if iv.lo is None or iv.hi is None:
        return format(iv.value * scale, spec)
    return f"{iv.value * scale:{spec}} [{iv.lo * scale:{spec}}–{iv.hi * scale:{spec}}]"


def ranking_rows(a: Analysis) -> list[list[str]]:
    rows = []
    for b in a.backends:
        mem = b.memory_per_connection or {}
        rows.append([
            (("=" if b.tied else "") + str(b.rank)) if b.rank else "–",
            b.backend,
            b.category + (" (prod.)" if b.kind == "production" else ""),
            _iv(b.slope, ".4f"),
            _fmt(b.slope.half_width_rel * 100 if b.slope and b.slope.half_width_rel is not None else None, ".1f"),
            _fmt(b.r_all, ".4f"),
            _iv(b.throughput, ",.0f"),
            _iv(b.cpu, ".1f"),
            _fmt(b.ctx_switches_per_request, ".2f")
            + (f" ({b.preemptions_per_request:.2f})" if b.preemptions_per_request is not None else ""),
            _fmt(mem.get("bytes_per_connection"), ",.0f"),
            f"{b.points - b.flagged_points}/{b.points}" + (f", {b.error_points} failed" if b.error_points else ""),
        ])
    return rows


def _throttling_sentence(t: dict) -> str:
    """What the run's probe said of this kernel's throttling (meta.json's pinning.cap_throttling,
    harness.cgroup.throttling_summary)."""
    if not t.get("measured"):
        return ""
    if not t.get("per_task"):
        return (f" This kernel takes a throttled server off its CPU as a whole ({t['switches_per_period']:g} switches "
                f"per period with {t['tasks']} runnable tasks), whatever its number of threads or processes.")
    return (f" This kernel stops a throttled server's tasks one by one ({t['switches_per_period']:g} switches per "
            f"period with {t['tasks']} runnable tasks): a server with many runnable threads or processes pays a "
            f"switch per task and period on top of its requests, a single-threaded loop does not, so the cap "
            f"weighs more on the many-task models (the ranking's preempted switches per request show it; "
            f"docs/methodology.md, \"What the cap costs a server of many tasks\").")

RANKING_HEADER = ["#", "server", "model", "slope ms/client\n[95 % interval]", "±%", "r",
                  "throughput req/s\n[95 % interval]", "CPU µs/request\n[95 % interval]",
                  "switches/req\n(preempted)", "bytes per\nidle conn.", "valid /\npoints"]


def ranking_pages(a: Analysis) -> list[Figure]:
    rows = ranking_rows(a) or [["–"] * len(RANKING_HEADER)]
    page = TextPage("Ranking by slope (Fig. 2's figure of merit)", _footer(a))
    groups = len({b.rank for b in a.backends if b.rank})
    page.paragraph(f"Servers ordered by the slope of mean response time against offered load; '=' marks servers "
                   f"tied with the server above because their 95 % intervals overlap ({groups} rank groups). "
                   "Throughput, CPU and switches are taken at or beyond each server's knee; the switches are the "
                   "kernel's, with the preemptions among them in parentheses (the cap's throttling, see the method "
                   "page; user-level switches are in the context-switch figure). Per-point numbers are in "
                   "summary.csv; the figures behind each claim are on the next page.", size=9.5)
    widths = [0.03, 0.1, 0.14, 0.15, 0.035, 0.05, 0.13, 0.13, 0.105, 0.07, 0.06]
    while rows:
        n = page.rows_that_fit(0.03, header_lines=2)
        page.table(RANKING_HEADER, rows[:n], widths, size=8, row_h=0.03)
        rows = rows[n:]
    return page.figs


CORE_COST_HEADER = ["backend", "reference", "backend CPU µs/req\n[95 % interval]",
                    "floor's CPU µs/req\n[95 % interval]", "the core's cost µs\n[95 % interval]",
                    "core's share\nof the backend", "reference's CPU /\nbackend's*"]


def core_cost_rows(costs) -> list[list[str]]:
    rows = []
    for c in costs:
        share = (c.core_cpu.value / c.backend_cpu.value * 100
                 if c.core_cpu is not None and c.backend_cpu is not None and c.backend_cpu.value else None)
        rows.append([c.backend, c.reference, _iv(c.backend_cpu, ".1f"), _iv(c.reference_cpu, ".1f"),
                     _iv(c.core_cpu, "+.1f"), _fmt(share, ".0f") + (" %" if share is not None else ""),
                     _against_floor(c)])
    return rows


def _against_floor(c) -> str:
    """The table's last column: side by side, the pairs' CPU ratio; one at a time, the
    saturated throughputs' ratio, marked as such."""
    if c.cpu_ratio is not None:
        return _iv(c.cpu_ratio, ".2f")
    if c.throughput_ratio is not None:
        return _iv(c.throughput_ratio, ".2f") + " (tput)"
    return "–"


def load_at_start(env: dict) -> str:
    """The load average at the start (meta.json environment.loadavg_at_start) and, where the run
    recorded it, how many CPUs were busy in the quarter second before: the load average decays
    over minutes, so right after `make bench`'s build it is high on a machine that is idle."""
    text = str(env.get("loadavg_at_start") or "?")
    busy = env.get("busy_cpus_at_start")
    if isinstance(busy, (int, float)):
        text += f"; {busy:.2f} CPUs busy at start"
    return text


def idle_text(env: dict) -> str:
    """How the machine's idle CPUs wait (meta.json environment.idle), in words: it decides what a
    server pays to wake a client that sleeps (docs/methodology.md, "Which client")."""
    idle = env.get("idle") or {}
    text = str(idle.get("cpuidle_driver") or "cpuidle driver not exposed")
    poll = idle.get("guest_halt_poll_ns")
    if poll == 0:
        text += "; idle vCPUs halt at once (guest_halt_poll_ns 0): waking one costs an IPI"
    elif poll is not None:
        text += f"; idle vCPUs poll up to {poll / 1000:g} µs before they halt (guest_halt_poll_ns)"
    if env.get("hypervisor"):
        text += "; virtual machine"
    return text


def core_cost_gaps(a: Analysis, costs) -> list[str]:
    """Why a row of the core-cost table has no CPU figure (and no bar in its figure): the
    server's points that were left out, and the reasons; and how many of the points it does use
    ran dry inside their cap's bursts (``dry_bursts``)."""
    notes = []
    for c in costs:
        for name, cpu in ((c.backend, c.backend_cpu), (c.reference, c.reference_cpu)):
            if cpu is not None:
                continue
            pts = [p for p in a.points if p.backend == name]
            total = sum(p.repetitions for p in pts)
            left = sum(p.repetitions - p.valid_repetitions for p in pts)
            reasons = sorted({f for p in pts for f in p.flags})
            why = "; ".join(FLAG_TEXT.get(f, f).split(" (")[0] for f in reasons)
            notes.append(f"{name}: no valid point at or beyond its knee, so no CPU figure here and no bar in the "
                         f"figure ({left} of {total} points left out" + (f": {why}" if why else "") + ").")
    dry, judged = dry_bursts(core_cost_records(a, costs))
    if dry:
        notes.append(f"At {dry} of the {judged} points this page's figures come from (each server's valid points at "
                     f"or beyond its knee) a server could serve more requests in one burst of its cap "
                     f"than its loadgen had ready (its connections and what it sent meanwhile): it ran dry inside "
                     f"each burst and waited on the loadgen, so its CPU per request there follows the loadgen's pace "
                     f"as well as its own work. A backend and its floor wait alike, so their ratio holds better than "
                     f"either figure; more clients, or a shorter cap period, keep a server busy (docs/methodology.md, "
                     f"\"A period longer than the client's backlog\").")
    return notes


def client_blocks(records: list[dict], servers: set[str]) -> tuple[float, float] | None:
    """The median and the largest number of times the loadgen blocked per request
    (client_cpu.voluntary_switches_per_request) over the points of ``servers``; None for a run
    whose loadgen did not count them."""
    values = [v for r in records if r.get("backend") in servers
              for v in [((r.get("loadgen") or {}).get("client_cpu") or {}).get("voluntary_switches_per_request")]
              if isinstance(v, (int, float))]
    return (statistics.median(values), max(values)) if values else None


def _client_wait_sentence(load: dict, blocks: tuple[float, float] | None = None) -> str:
    """What the loadgen's way of waiting ([load] spin_us) did to the pairs' ratios, with how
    often it did block per request at these points when the run counted it."""
    spin = load.get("spin_us")
    effect = ("every request also carries part of a cross-CPU wake-up of the client, more of them the slower the "
              "server, and the thread and process models read 2–4 points further from their floors")
    counted = (f" The loadgen blocked a median {blocks[0]:.3f} times per request at these points (at most "
               f"{blocks[1]:.3f}): each such time is a wake-up the server that wrote paid for." if blocks else "")
    if spin == 0:
        return ("This run's loadgen slept as soon as it had nothing to read (spin_us = 0, as wrk does): " + effect +
                " than with the loadgen's default polling (docs/methodology.md, \"Which client\")." + counted)
    polled = f"{spin if spin else DEFAULT_SPIN_US} µs"
    return (f"Our loadgen polled {polled} before it slept, so a server was hardly ever charged for waking its "
            f"client; with a client that sleeps at once (wrk, or spin_us = 0) " + effect +
            " (docs/methodology.md, \"Which client\")." + counted)


def core_cost_pages(a: Analysis) -> list:
    """The page "what the HTTP core costs", when the run measured a backend and its reference."""
    costs = core_costs(a)
    if not costs:
        return []
    write_core_cost_csv(costs, a.run_dir / "core_cost.csv")
    page = TextPage("What the HTTP core costs", _footer(a))
    page.paragraph(
        "A reference server (servers/reference/) is the least a server of one concurrency model does to answer the "
        "benchmark's request with the same bytes as our core: it reads until the end of a request head and writes one "
        "canned response, with the model's own accept, spawn, wait and write, and nothing else (no parsing, no "
        "docroot, no counters, no deadlines). Measured server-bound in the same run as its backend, its CPU per "
        "request is the model's cost; what the backend spends above it is the cost of our HTTP core for that model. "
        "CPU is taken at or beyond each server's knee, as in the ranking. A negative core cost would mean the backend "
        "beats its own floor: either noise (then the interval spans 0) or a reference that does more than its model "
        "needs.", size=9.5)
    paired = [c for c in costs if c.cpu_ratio is not None]
    if paired:
        page.paragraph(
            "Measured side by side ([servers] beside_reference): each backend ran at the same time as its reference, one "
            "loadgen each, in one cgroup capped at twice the share (a child cgroup each with equal weight, both under "
            "SCHED_BATCH), so the host's drift hit both within milliseconds; the last column (*) is the reference's CPU "
            "per request over the backend's, pair by pair — the issue's figure, ≥ 0.95 meaning the backend is within "
            "5 % of its floor — and the core's cost is the median of the pairs' differences, with intervals resampling "
            "the pairs (" + ", ".join(f"{c.backend} {c.pairs}" for c in paired) + " saturated pairs). The table's "
            "first two CPU columns are each server's own figure over all its points. "
            + _client_wait_sentence((a.meta.get("experiment") or {}).get("load") or {},
                                    client_blocks(a.records, {n for c in paired for n in (c.backend, c.reference)})),
            size=9.5)
        control = control_ratio(a)
        if control is not None and (control.ratio.lo is None or control.ratio.hi is None):
            page.paragraph(
                f"The A/A control: {control.reference} beside a second instance of itself ({control.pairs} saturated "
                f"pair): {control.ratio.value:.2f}. Too few pairs for an interval, so this run cannot say which "
                "differences it resolves.", size=9.5)
        elif control is not None:
            iv = control.ratio
            page.paragraph(
                f"The A/A control: {control.reference} beside a second instance of itself at the same loads and "
                f"repetitions ({control.pairs} saturated pairs): {_iv(iv, '.2f')}, pair by pair. It should be 1; "
                f"differences within ±{iv.reach_from(1) * 100:.0f} % are not resolved by this run"
                + (" — and its interval excludes 1: this run's pairs are biased beyond their intervals."
                   if iv.excludes(1) else "."), size=9.5, color=FLAG_COLOR if iv.excludes(1) else "black")
    else:
        page.paragraph(
            "Measured one at a time: the core's cost interval resamples both servers' points independently, and the "
            "last column (*) is the backend's saturated throughput over its reference's (tput). Set [servers] beside_reference = true to measure each pair side by side, which "
            "cancels the host's drift between them (docs/methodology.md, \"Both at once\").", size=9.5)
    rows = core_cost_rows(costs)
    widths = [0.12, 0.12, 0.16, 0.16, 0.16, 0.1, 0.12]
    while rows:
        n = page.rows_that_fit(0.03, header_lines=2)
        page.table(CORE_COST_HEADER, rows[:n], widths, size=8, row_h=0.03)
        rows = rows[n:]
    for note in core_cost_gaps(a, costs):
        page.paragraph(note, size=9)
    return page.figs + [(core_cost.NAME, core_cost.draw(a, costs))]


def write_core_cost_csv(costs, path: Path) -> Path:
    def cols(iv):
        return [iv.value, iv.lo, iv.hi] if iv is not None else [None, None, None]

    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["backend", "reference", "backend_cpu_us", "backend_cpu_lo", "backend_cpu_hi", "reference_cpu_us",
                    "reference_cpu_lo", "reference_cpu_hi", "core_cpu_us", "core_cpu_lo", "core_cpu_hi",
                    "throughput_ratio", "throughput_ratio_lo", "throughput_ratio_hi",
                    "cpu_ratio_side_by_side", "cpu_ratio_lo", "cpu_ratio_hi", "pairs"])
        for c in costs:
            w.writerow([c.backend, c.reference, *cols(c.backend_cpu), *cols(c.reference_cpu), *cols(c.core_cpu),
                        *cols(c.throughput_ratio), *cols(c.cpu_ratio), c.pairs])
    return path


VERDICT_COLOR = {"agrees": "#1a7f37", "disagrees": FLAG_COLOR, "inconclusive": "#9a6700"}


def claims_pages(a: Analysis, claims: list[Claim]) -> list[Figure]:
    if not claims:
        return []
    page = TextPage(f"The paper's claims, checked ({claims[0].paper})", _footer(a))
    t = tally(claims)
    page.paragraph(f"{t['agrees']} agree, {t['disagrees']} disagree, {t['inconclusive']} inconclusive. A verdict is "
                   "computed from the 95 % interval of our figure: 'agrees' when the interval lies on the paper's side "
                   "of the threshold, 'disagrees' when it lies entirely on the other side, 'inconclusive' otherwise "
                   "or when a server is missing. Also in claims.json.", size=9.5)
    for c in claims:
        page.paragraph(f"{c.verdict.upper()}: {c.statement}", size=9.5, color=VERDICT_COLOR[c.verdict], bold=True)
        page.paragraph(f"Ours: {c.figure}.", size=9, indent=0.07)
        page.paragraph(f"Test: {c.test}.", size=8.5, indent=0.07, color="#555555")
    return page.figs


def findings_pages(a: Analysis) -> list[Figure]:
    page = TextPage("Findings (computed from this run)", _footer(a))
    for sentence in findings(a):
        page.paragraph(sentence, size=10, bullet="• ", width=WRAP - 6)
    total, left_out, reasons = excluded_counts(a)
    if a.flags:
        page.heading(f"Points left out ({left_out} of {total})")
        rows = [[f.backend, str(f.offered_load), str(f.repetition + 1), FLAG_TEXT[f.kind], f.detail]
                for f in sorted(a.flags, key=lambda f: (f.backend, f.offered_load, f.repetition, f.kind))]
        shown = rows[: page.rows_that_fit(0.026)]
        page.table(["server", "offered load", "repetition", "reason", "detail"], shown,
                   [0.13, 0.08, 0.08, 0.33, 0.38], size=7.5, row_h=0.026)
        if len(rows) > len(shown):
            page.paragraph(f"… and {len(rows) - len(shown)} more (column 'flags' of summary.csv).", size=9)
    if a.errors:
        page.heading("Failed points")
        for r in a.errors[:12]:
            msg = (r.get("error") or "").splitlines()[0] if r.get("error") else "unknown error"
            page.paragraph(f"{r['backend']} at {r['offered_load']} clients: {msg}", size=8.5, bullet="• ")
        if len(a.errors) > 12:
            page.paragraph(f"… and {len(a.errors) - 12} more (status 'error' in runs.jsonl).", size=8.5)
    return page.figs


def primitives_pages(a: Analysis) -> tuple[list[Figure], list[tuple[str, Figure]]]:
    """The primitives chapter, when the run holds microbench.json: a page with the issue's
    targets and von Leitner's 2003 figures next to ours, then one figure per family."""
    path = a.run_dir / "microbench.json"
    if not path.exists():
        return [], []
    from harness.microbench import load
    from plots import primitives

    doc = load(path)
    page = TextPage("The primitives under every model (microbenchmarks)", _footer(a))
    settings = doc.get("settings") or {}
    how = (f"pinned to CPU {settings['cpus']}, {settings['repetitions']} repetition(s) of at least "
           f"{settings['min_time_s']} s, median real time" if settings.get("cpus") is not None
           else "combined from earlier runs of the programs, median real time")
    page.paragraph(
        "Google Benchmark programs (servers/microbench) measuring each primitive on its own with real system "
        f"calls, {how}; von Leitner's question for every primitive is 'does it get slower as more are "
        "alive?'. `make microbench` runs every program at full length (docs/microbench.md).", size=9.5)
    rows = primitives.target_rows(doc)
    page.heading("Targets", keep_with=TextPage.table_height(primitives.TARGET_HEADER, rows, 0.028))
    if rows:
        page.table(primitives.TARGET_HEADER, rows, [0.5, 0.35, 0.15], size=8, row_h=0.028)
    rows = [[textwrap.fill(c, w) for c, w in zip(row, (46, 42, 46, 20))] for row in primitives.leitner_rows(doc)]
    page.heading("Next to von Leitner 2003 (ratios carry over twenty years of hardware; absolute times do not)",
                 keep_with=TextPage.table_height(primitives.LEITNER_HEADER, rows, 0.04))
    if rows:
        page.table(primitives.LEITNER_HEADER, rows, [0.3, 0.27, 0.3, 0.13], size=7, row_h=0.04)
    figs = []
    measured = {r.family for r in _results(doc)}
    for name, _title, draw in primitives.FIGURES:
        if measured and not any(f in name for f in measured):
            continue  # a family this run did not measure
        figs.append((name, draw(doc)))
    return page.figs, figs


def _results(doc):
    from harness.microbench import results

    return results(doc)


def write_ranking_csv(a: Analysis, path: Path) -> Path:
    def iv(x: Interval | None) -> list[str]:
        if x is None:
            return ["", "", ""]
        return [f"{x.value:.6g}", "" if x.lo is None else f"{x.lo:.6g}", "" if x.hi is None else f"{x.hi:.6g}"]

    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["rank", "tied", "backend", "kind", "category", "slope_ms_per_client", "slope_lo", "slope_hi",
                    "intercept_ms", "r", "throughput_rps", "throughput_lo", "throughput_hi", "cpu_us_per_request",
                    "cpu_lo", "cpu_hi", "ctx_switches_per_request", "preemptions_per_request",
                    "user_switches_per_request",
                    "bytes_per_idle_connection", "knee_level", "points", "flagged_points", "failed_points"])
        for b in a.backends:
            mem = (b.memory_per_connection or {}).get("bytes_per_connection")
            w.writerow([b.rank or "", b.tied, b.backend, b.kind, b.category, *iv(b.slope),
                        f"{b.fit_mean.intercept:.6g}" if b.fit_mean else "", _fmt(b.r_all, ".6f", ""),
                        *iv(b.throughput), *iv(b.cpu), _fmt(b.ctx_switches_per_request, ".6g", ""),
                        _fmt(b.preemptions_per_request, ".6g", ""),
                        _fmt(b.user_switches_per_request, ".6g", ""), _fmt(mem, ".6g", ""), b.knee_level or "",
                        b.points, b.flagged_points, b.error_points])
    return path


CELL_KINDS = {
    # kind: (module with summarize/claims, figure function, what the cells' condition is)
    "idle-connections": ("leitner", "draw_idle", "idle connections"),
    "dynamic-page": ("fremlin", "draw_dynamic", "page, keep-alive"),
    "many-connections": ("sxe", "draw_many", "connections"),
}


def _condition_text(kind: str, cond: tuple) -> str:
    if kind == "idle-connections":
        return f"{cond[0]:,} idle"
    if kind == "dynamic-page":
        return f"{cond[0]}, {'keep-alive' if cond[1] else 'new conn.'}"
    return f"{cond[0]:,} conns"


def cells_pages(a: Analysis, kind: str) -> tuple[list[Figure], list[tuple[str, Figure]], list[Claim]]:
    """Method note, figures, table and claims of an experiment that sweeps something other than
    the offered load (harness/cells.py)."""
    import importlib

    from plots import cells as cell_plots

    module_name, draw_name, what = CELL_KINDS[kind]
    module = importlib.import_module(f"harness.{module_name}")
    run = module.summarize(a.run_dir)
    figures = getattr(cell_plots, draw_name)(run)
    claims = module.claims(run)
    page = TextPage(f"Every cell ({what})", _footer(a))
    total, left_out = run.excluded()
    page.paragraph(f"One row per server and condition: medians of the valid repetitions with 95 % bootstrap "
                   f"intervals. Every point of this experiment is meant to saturate the server, so the validity "
                   f"rule applies to all of them: {left_out} of {total} points were left out (server below 90 % "
                   f"of its allowance, client above 60 %, measured load below 90 % or errors).", size=9.5)
    rows = []
    for c in sorted(run.cells, key=lambda c: (c.backend, c.condition)):
        rows.append([c.backend, _condition_text(kind, c.condition), f"{c.valid}/{c.repetitions}",
                     _iv(c.requests_per_second, ",.0f"), _iv(c.mean_response_ms, ".2f"),
                     _iv(c.cpu_us_per_request, ".1f"), _fmt(c.ctx_switches_per_request, ".2f"),
                     _fmt(c.peak_memory_bytes / 2**20 if c.peak_memory_bytes else None, ".1f"),
                     ", ".join(FLAG_TEXT[f].split(" (")[0] for f in c.flags) or "–"])
    header = ["server", "condition", "valid", "requests/s [95 %]", "mean ms [95 %]", "CPU µs/req [95 %]",
              "ctx/req", "peak MiB", "left out because"]
    widths = [0.1, 0.11, 0.05, 0.16, 0.13, 0.13, 0.06, 0.07, 0.19]
    while rows:
        n = page.rows_that_fit(0.027)
        page.table(header, rows[:n], widths, size=7.5, row_h=0.027)
        rows = rows[n:]
    if kind == "many-connections":
        from harness import sxe

        page.heading("Side by side with the SXE posts (2010 hardware: compare ratios, not absolute values)")
        rows = [["nginx 1.x (2010)", "25,571", "24,810", "20 MB", "–"], ["SXE (2010)", "25,009", "59,171 (78,437)",
                                                                          "16 MB", "–"],
                ["node.js (2010)", "107", "12,344", "148 MB", "–"]]
        for c in sorted(run.cells, key=lambda c: -(c.requests_per_second.value if c.requests_per_second else 0)):
            cps = sxe.connections_per_second(run, c.backend)
            left_out = cps is None and sxe.connections_per_second(run, c.backend, valid_only=False)
            cps = cps or left_out
            client = sxe.client_peak_kib(run, c.backend)
            mem = (a.memory.get(c.backend) or {}).get("bytes_per_connection")
            rows.append([f"{c.backend} (this run{', left out' if left_out or not c.valid else ''})",
                         _fmt(cps.value if cps else None, ",.0f"),
                         _fmt(c.requests_per_second.value if c.requests_per_second else None, ",.0f"),
                         _fmt(c.peak_memory_bytes / 2**20 if c.peak_memory_bytes else None, ".1f", "–") + " MiB"
                         + (f" (client {client / 1024:.0f} MiB)" if client else ""),
                         _fmt(mem, ",.0f")])
        page.table(["server", "connections/s", "queries/s", "peak memory", "bytes per idle conn."], rows,
                   [0.22, 0.15, 0.2, 0.25, 0.18], size=8, row_h=0.027)
    return page.figs, figures, claims


def build_report(run_dir: Path) -> tuple[Path, Analysis]:
    """Write report.pdf, figures/, summary.csv, ranking.csv and claims.json; return the PDF path and
    the analysis."""
    run_dir = Path(run_dir)
    a = analyze(run_dir)
    kind = (a.meta.get("experiment") or {}).get("kind", "load-sweep")
    if kind in CELL_KINDS:
        return _build_cells_report(run_dir, a, kind), a
    claims = claims_for(a)
    write_summary_csv(a, run_dir / "summary.csv")
    write_ranking_csv(a, run_dir / "ranking.csv")
    if claims:
        write_claims(claims, run_dir / "claims.json")
    return _write_pdf(a, [lambda: title_page(a) + method_page(a)]
                      + [lambda m=module: [(m.NAME, m.draw(a))] for module in FIGURES]
                      + [lambda: ranking_pages(a) + core_cost_pages(a) + claims_pages(a, claims)
                         + findings_pages(a)]), a


def _build_cells_report(run_dir: Path, a: Analysis, kind: str) -> Path:
    text, figures, claims = cells_pages(a, kind)
    if claims:
        write_claims(claims, run_dir / "claims.json")
    return _write_pdf(a, [lambda: title_page(a) + method_page(a), lambda: figures,
                          lambda: text + claims_pages(a, claims)])


def _write_pdf(a: Analysis, parts: list[Callable[[], list]]) -> Path:
    """report.pdf from ``parts``, each a function making pages (a Figure, or a (file stem,
    Figure) pair also saved under figures/) called when its turn comes so that few figures are
    open at once, then the primitives chapter; atomically replaced."""
    fig_dir = a.run_dir / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    pdf_path = a.run_dir / "report.pdf"
    tmp = a.run_dir / "report.pdf.tmp"
    with PdfPages(tmp) as pdf:
        for make in parts + [lambda: [p for part in primitives_pages(a) for p in part]]:
            for page in make():
                fig = page[1] if isinstance(page, tuple) else page
                if isinstance(page, tuple):
                    fig.savefig(fig_dir / f"{page[0]}.png", dpi=110)
                    fig.savefig(fig_dir / f"{page[0]}.pdf")
                pdf.savefig(fig)
                plt.close(fig)
        info = pdf.infodict()
        info["Title"] = f"httpbench report {a.meta.get('run_id', a.run_dir.name)}"
        info["Subject"] = a.meta.get("experiment", {}).get("title", "")
    tmp.replace(pdf_path)
    return pdf_path
