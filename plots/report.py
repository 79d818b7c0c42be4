"""The PDF report: title page with the environment, method, every figure, ranking, findings.

Every number on every page comes from meta.json, the experiment copy and runs.jsonl of the run
directory; nothing is typed by hand. ``build_report`` also writes figures/*.png, figures/*.pdf,
summary.csv and ranking.csv next to report.pdf.
"""

from __future__ import annotations

import csv
import re
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.backends.backend_pdf import PdfPages  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from harness.analysis import (  # noqa: E402
    CLIENT_BOUND_UTILIZATION,
    SHORTFALL_RATIO,
    Analysis,
    analyze,
    findings,
    write_summary_csv,
)
from plots import FIGURES  # noqa: E402

PAGE = (11.0, 8.5)  # landscape letter; figures use the same width
WRAP = 126  # characters per line of body text at 9.5 pt on an 11-inch page


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
        self.fig.text(0.05, 0.95, title, fontsize=16, fontweight="bold", va="top")
        if self.footer:
            self.fig.text(0.05, 0.025, self.footer, fontsize=7.5, color="#666666")
        self.y = 0.89

    def _ensure(self, height: float) -> None:
        if self.y - height < self.BOTTOM and self.y < 0.88:
            self._new_page(self.title + " (continued)")

    @staticmethod
    def _line_h(size: float) -> float:
        return size / 72 / PAGE[1] * 1.35

    def heading(self, text: str) -> None:
        self._ensure(0.047 + 3 * self._line_h(9.5))  # never a heading alone at the bottom
        self.y -= 0.012
        self.fig.text(0.05, self.y, text, fontsize=12, fontweight="bold", va="top")
        self.y -= 0.035

    def paragraph(self, text: str, size: float = 9.5, indent: float = 0.05, bullet: str = "",
                  width: int = WRAP) -> None:
        lines = textwrap.wrap(text, width=width - len(bullet)) or [""]
        line_h = self._line_h(size)
        self._ensure(line_h * (len(lines) + 0.35))
        for i, line in enumerate(lines):
            prefix = bullet if i == 0 else " " * len(bullet)
            self.fig.text(indent, self.y, prefix + line, fontsize=size, va="top", family="DejaVu Sans")
            self.y -= line_h
        self.y -= line_h * 0.35

    def table(self, header: list[str], rows: list[list[str]], col_widths: list[float],
              size: float = 8.5, row_h: float = 0.028) -> None:
        header_lines = max(h.count("\n") + 1 for h in header)
        height = row_h * (len(rows) + header_lines)
        self._ensure(height + 0.02)
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
        self.y -= height + 0.02

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
    status = meta.get("status", "unknown")
    page.paragraph(
        f"Run {meta.get('run_id', a.run_dir.name)}, started {meta.get('created', '?')}, finished "
        f"{meta.get('finished', '?')} ({status}; {meta.get('wall_s', '?')} s of measurement). "
        f"{len(a.records)} points measured, {len(a.errors)} failed, {len(a.skipped)} skipped, "
        f"{len(a.backends)} servers." + ("  This was a --quick smoke run: numbers are indicative only."
                                          if exp.get("quick") else ""), size=10.5)
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
        ["pinning", f"server on CPU {meta.get('pinning', {}).get('server_cpus', '?')}, client on CPU "
                    f"{meta.get('pinning', {}).get('client_cpus', '?')} (taskset)"
                    + (f"; server limited to {meta['pinning']['server_cpu_share']:.0%} of its CPU"
                       if (meta.get('pinning', {}).get('server_cpu_share') or 1.0) < 1.0 else "")],
        ["net.core.somaxconn", str(env.get("somaxconn", "?"))],
        ["tcp_tw_reuse / port range", f"{env.get('tcp_tw_reuse', '?')} / {env.get('ip_local_port_range', '?')}"],
        ["open files (soft / hard)", f"{env.get('nofile_soft', '?')} / {env.get('nofile_hard', '?')}"],
        ["load average at start", str(env.get("loadavg_at_start", "?"))],
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


def method_page(a: Analysis) -> list[Figure]:
    meta = a.meta
    exp = meta.get("experiment", {})
    load = exp.get("load", {})
    pin = meta.get("pinning", {})
    page = TextPage("Method", _footer(a))
    targets = meta.get("targets", [])
    toy = [t for t in targets if t.get("kind") == "toy"]
    prod = [t for t in targets if t.get("kind") == "production"]
    levels = load.get("levels", [])
    page.heading("What was run")
    page.paragraph(
        f"{len(toy)} of our servers (the same HTTP core with one concurrency backend each: "
        f"{', '.join(t['label'] for t in toy) or 'none'}) and {len(prod)} production servers "
        f"({', '.join(t['label'] for t in prod) or 'none'}), each at {len(levels)} offered loads "
        f"({', '.join(map(str, levels))} concurrent clients), {load.get('repetitions', '?')} repetition(s): "
        f"{len(a.records) + len(a.errors) + len(a.skipped)} points in all.")
    page.paragraph(
        f"Each point starts a fresh server, pinned to CPU {pin.get('server_cpus', '?')}, waits until it accepts, "
        f"then runs the project's load generator pinned to CPU {pin.get('client_cpus', '?')}: an ab-style "
        f"self-clocking closed loop keeping exactly l requests in flight, "
        + ("reusing connections (keep-alive)" if load.get("keep_alive") else
           "opening a new connection for every request (as ApacheBench did in the paper)")
        + f", {load.get('requests', '?')} requests per point, the first and last {load.get('discard', '?')} "
        f"discarded (the paper discarded 1,000 to skip ramp-up and ramp-down), request timeout "
        f"{load.get('timeout_s', '?')} s. Every response is verified (status, length, body). "
        f"The server is then stopped with SIGTERM (SIGKILL after a grace period) and its whole "
        f"process group is checked to be gone.")
    share = pin.get("server_cpu_share", 1.0) or 1.0
    if share < 1.0:
        lim = pin.get("server_cpu_limit", {})
        page.paragraph(
            f"The server was limited to {share:.0%} of its CPU by the CFS bandwidth controller (cgroup v"
            f"{lim.get('cgroup_version', '?')}: {lim.get('quota_us', '?')} µs every {lim.get('period_us', '?')} µs), "
            f"standing in for the paper's server clocked 3.7 times slower than its client, so that the server "
            f"rather than the client is the bottleneck. Throttling adds pauses of up to a period to single "
            f"requests, which raises response times most at low loads.")
    page_size = exp.get("page_size", 305)
    page.paragraph(
        f"All servers serve the same document root, made by the harness, holding index.html of exactly "
        f"{page_size} bytes; the URL is {load.get('path', '/index.html')} on 127.0.0.1. Production servers run "
        f"from configs written into the run directory: one worker (Apache: a fixed pool of "
        f"{exp.get('apache_pool', '?')} processes or threads), no access log, keep-alive limits raised.")
    page.heading("What was measured")
    page.paragraph(
        "From the load generator: completed requests n and the kept window t, mean service time t_r, the "
        "measured load l_m = n·t_r/t (Kerneis & Chroboczek's definition: equal to the offered load l when "
        "every offered request is in flight all the time), throughput, median and 99th percentile, errors "
        "by kind and the client's own CPU use.", bullet="• ")
    page.paragraph(
        "From the kernel, over the server's whole session (every process it forks, live or reaped): CPU user + "
        "system seconds of the point (the server's wait4 rusage, which includes exited threads and reaped "
        "children, minus the CPU it had used when the load started), context switches (the same rusage), peak "
        "resident memory (sum of VmHWM over the processes alive at the end of the load, or the largest sum of "
        "VmRSS sampled every 100 ms if higher), and the largest number of processes and threads seen.",
        bullet="• ")
    page.paragraph(
        "Slope: least-squares line of mean response time against offered load over every measured point "
        "of a server (all repetitions); the slope in ms per client is the paper's figure of merit (smaller "
        "is faster), r is Pearson's correlation (the paper saw r > 0.999).", bullet="• ")
    page.heading("Flags (points are flagged, never dropped)")
    page.paragraph(f"client-bound: the load generator was busy (idle polling excluded) more than "
                   f"{CLIENT_BOUND_UTILIZATION:.0%} of its CPU, so the client limited the rate.", bullet="• ")
    page.paragraph(f"load shortfall: measured load below {SHORTFALL_RATIO:.0%} of offered load; requests "
                   "spent time outside the measured window, e.g. SYNs dropped by a full accept queue "
                   "(somaxconn, the paper's Fig. 1(a)).", bullet="• ")
    page.paragraph("errors: the load generator counted refused, reset, timed-out or wrong responses.",
                   bullet="• ")
    return page.figs


def ranking_rows(a: Analysis) -> list[list[str]]:
    rows = []
    for i, b in enumerate(a.backends, 1):
        fit = b.fit_mean
        rows.append([
            str(i),
            b.backend,
            b.category + (" (prod.)" if b.kind == "production" else ""),
            _fmt(fit.slope if fit else None, ".4f"),
            _fmt(fit.intercept if fit else None, ".3f"),
            _fmt(fit.r if fit else None, ".4f"),
            _fmt(b.fit_median.slope if b.fit_median else None, ".4f"),
            f"{b.peak_rps:,.0f} @ {b.peak_rps_level}",
            _fmt(b.cpu_us_per_request, ".1f"),
            _fmt(b.ctx_switches_per_request, ".2f"),
            (f"{b.peak_rss_mib:.1f} @ {b.peak_rss_level}" if b.peak_rss_mib is not None else "–"),
            f"{b.flagged_points}/{b.points}" + (f", {b.error_points} failed" if b.error_points else ""),
        ])
    return rows


RANKING_HEADER = ["#", "server", "model", "slope\nms/client", "intercept\nms", "r", "median's\nslope", "peak req/s\n@ clients",
                  "CPU µs\n/request", "ctx sw.\n/request", "peak RSS\nMiB @ clients",
                  "flagged /\npoints"]


def ranking_pages(a: Analysis) -> list[Figure]:
    rows = ranking_rows(a) or [["–"] * len(RANKING_HEADER)]
    page = TextPage("Ranking by slope (Fig. 2's figure of merit)", _footer(a))
    page.paragraph("Servers ordered by the slope of mean response time against offered load (the median's slope "
                   "is the same fit of the median response time); CPU and "
                   "context switches per request are medians over the offered loads; peak memory is the "
                   "largest over the loads. Full per-point numbers are in summary.csv.", size=9.5)
    widths = [0.03, 0.12, 0.15, 0.07, 0.07, 0.06, 0.07, 0.11, 0.08, 0.07, 0.10, 0.07]
    while rows:
        n = page.rows_that_fit(0.03, header_lines=2)
        page.table(RANKING_HEADER, rows[:n], widths, size=8.5, row_h=0.03)
        rows = rows[n:]
    return page.figs


def findings_pages(a: Analysis) -> list[Figure]:
    page = TextPage("Findings (computed from this run)", _footer(a))
    for sentence in findings(a):
        page.paragraph(sentence, size=10, bullet="• ", width=WRAP - 6)
    if a.flags:
        page.heading("Flagged points")
        rows = [[f.backend, str(f.offered_load), str(f.repetition + 1), f.kind.replace("_", " "), f.detail]
                for f in sorted(a.flags, key=lambda f: (f.backend, f.offered_load, f.repetition, f.kind))]
        shown = rows[: page.rows_that_fit(0.026)]
        page.table(["server", "offered load", "repetition", "flag", "detail"], shown,
                   [0.15, 0.1, 0.09, 0.13, 0.53], size=8, row_h=0.026)
        if len(rows) > len(shown):
            page.paragraph(f"… and {len(rows) - len(shown)} more flagged points (column 'flags' of summary.csv).",
                           size=9)
    if a.errors:
        page.heading("Failed points")
        for r in a.errors[:12]:
            msg = (r.get("error") or "").splitlines()[0] if r.get("error") else "unknown error"
            page.paragraph(f"{r['backend']} at {r['offered_load']} clients: {msg}", size=8.5, bullet="• ")
        if len(a.errors) > 12:
            page.paragraph(f"… and {len(a.errors) - 12} more (status 'error' in runs.jsonl).", size=8.5)
    return page.figs


def write_ranking_csv(a: Analysis, path: Path) -> Path:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["rank", "backend", "kind", "category", "slope_ms_per_client", "intercept_ms", "r",
                    "median_slope_ms_per_client", "peak_requests_per_second", "peak_at_load",
                    "cpu_us_per_request", "ctx_switches_per_request", "peak_rss_mib", "peak_rss_at_load",
                    "points", "flagged_points", "failed_points"])
        for i, b in enumerate(a.backends, 1):
            f, m = b.fit_mean, b.fit_median
            w.writerow([i, b.backend, b.kind, b.category, f and f"{f.slope:.6g}", f and f"{f.intercept:.6g}",
                        f and f.r is not None and f"{f.r:.6f}" or "", m and f"{m.slope:.6g}",
                        f"{b.peak_rps:.6g}", b.peak_rps_level, _fmt(b.cpu_us_per_request, ".6g", ""),
                        _fmt(b.ctx_switches_per_request, ".6g", ""), _fmt(b.peak_rss_mib, ".6g", ""),
                        b.peak_rss_level, b.points, b.flagged_points, b.error_points])
    return path


def build_report(run_dir: Path) -> tuple[Path, Analysis]:
    """Write report.pdf, figures/, summary.csv and ranking.csv; return the PDF path and the analysis."""
    run_dir = Path(run_dir)
    a = analyze(run_dir)
    fig_dir = run_dir / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    write_summary_csv(a, run_dir / "summary.csv")
    write_ranking_csv(a, run_dir / "ranking.csv")
    pdf_path = run_dir / "report.pdf"
    tmp = run_dir / "report.pdf.tmp"
    with PdfPages(tmp) as pdf:
        for fig in title_page(a) + method_page(a):
            pdf.savefig(fig)
            plt.close(fig)
        for module in FIGURES:
            fig = module.draw(a)
            fig.savefig(fig_dir / f"{module.NAME}.png", dpi=110)
            fig.savefig(fig_dir / f"{module.NAME}.pdf")
            pdf.savefig(fig)
            plt.close(fig)
        for fig in ranking_pages(a) + findings_pages(a):
            pdf.savefig(fig)
            plt.close(fig)
        info = pdf.infodict()
        info["Title"] = f"httpbench report {a.meta.get('run_id', run_dir.name)}"
        info["Subject"] = a.meta.get("experiment", {}).get("title", "")
    tmp.replace(pdf_path)
    return pdf_path, a
