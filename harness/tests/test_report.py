"""The report builder turns the committed tiny run into a PDF with the expected pages."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.tests.conftest import DATA, REPO
from plots import FIGURES
from plots.report import build_report


def pdf_page_count(path: Path) -> int:
    return len(re.findall(rb"/Type\s*/Page\b", path.read_bytes()))


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path, str]:
    """The committed tiny run, reported once through the command line."""
    run = tmp_path_factory.mktemp("report") / "tiny_run"
    shutil.copytree(DATA / "tiny_run", run)
    proc = subprocess.run([sys.executable, "-m", "harness", "report", str(run), "--summary"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return run, run / "report.pdf", proc.stdout


def test_report_has_title_method_every_figure_ranking_claims_and_findings(built):
    run, pdf, _ = built
    # title + method (2 pages) + one page per figure + ranking + claims + findings (with the left-out table)
    assert pdf_page_count(pdf) >= 3 + len(FIGURES) + 3
    assert (run / "claims.json").exists()


def test_an_uncapped_run_says_so_in_red_on_the_first_page(tmp_path: Path):
    from harness.tests.synthetic import make_run
    from plots.report import title_page

    from harness.analysis import analyze

    def first_page_texts(run: Path) -> list[tuple[str, str]]:
        fig = title_page(analyze(run))[0]
        return [(t.get_text(), t.get_color()) for t in fig.texts]

    capped = first_page_texts(make_run(tmp_path / "capped", levels=(1, 10)))
    uncapped = first_page_texts(make_run(tmp_path / "uncapped", levels=(1, 10), server_bound=False))
    red = " ".join(t for t, c in uncapped if c == "#d62728")
    assert "not server-bound" in red and "ranking measures the client" in red
    assert "not server-bound" not in " ".join(t for t, _ in capped)


def test_report_writes_every_figure_as_png_and_pdf(built):
    run, _, _ = built
    for module in FIGURES:
        assert (run / "figures" / f"{module.NAME}.png").stat().st_size > 10_000
        assert (run / "figures" / f"{module.NAME}.pdf").stat().st_size > 1_000


def test_report_writes_summary_and_ranking_csv(built):
    run, _, _ = built
    summary = (run / "summary.csv").read_text().splitlines()
    assert summary[0].startswith("backend,kind,category,offered_load")
    assert len(summary) == 1 + 9 * 5  # 8 ranked servers and the backlog series × 5 loads
    ranking = (run / "ranking.csv").read_text().splitlines()
    assert ranking[1].split(",")[2] == "st"  # the best slope of the fixture


def test_report_text_comes_from_the_run(built):
    _, pdf, _ = built
    data = pdf.read_bytes()
    # matplotlib embeds text as glyph runs, so check the PDF metadata carries the run id
    assert b"synthetic-tiny" in data


def test_report_cli_prints_the_path_and_the_ranking(built):
    run, _, stdout = built
    assert f"report: {run / 'report.pdf'}" in stdout
    assert re.search(r"1\s+st\s+0\.0\d+ \[0\.0\d+, 0\.0\d+\]", stdout)


def test_build_report_returns_the_pdf_and_the_analysis(tmp_path: Path):
    run = tmp_path / "tiny_run"
    shutil.copytree(DATA / "tiny_run", run)
    (run / "runs.jsonl").write_text("\n".join((DATA / "tiny_run" / "runs.jsonl").read_text().splitlines()[:4]))
    pdf, analysis = build_report(run)
    assert pdf == run / "report.pdf" and pdf.exists()
    assert [b.backend for b in analysis.backends] == ["sped"]


def test_report_of_a_directory_without_runs_is_a_clear_error(tmp_path: Path):
    proc = subprocess.run([sys.executable, "-m", "harness", "report", str(tmp_path)], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "has no runs.jsonl" in proc.stderr


def test_plot_cli_writes_every_figure(tmp_path: Path):
    run = tmp_path / "tiny_run"
    shutil.copytree(DATA / "tiny_run", run)
    proc = subprocess.run([sys.executable, "-m", "harness", "plot", str(run)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (run / "figures").glob("*.png")) == sorted(f"{m.NAME}.png" for m in FIGURES)


def test_a_run_with_microbenchmarks_gets_the_primitives_chapter(tmp_path: Path):
    run = tmp_path / "tiny_run"
    shutil.copytree(DATA / "tiny_run", run)
    without = pdf_page_count(build_report(run)[0])
    from harness.microbench import collect

    stored = tmp_path / "microbench"
    shutil.copytree(DATA / "microbench", stored)
    shutil.copy(collect(stored), run / "microbench.json")
    pdf, _ = build_report(run)
    assert pdf_page_count(pdf) > without + 2  # the targets and von Leitner page(s), and the families' figures
    assert (run / "figures" / "fig_primitives_events.png").exists()


def test_a_long_title_wraps_and_every_line_of_a_text_page_stays_on_the_page():
    # make bench's own title ran off the right edge of the first page.
    from plots.report import TextPage

    title = "httpbench: Are events fast? Server-bound comparison of the concurrency models (make bench)"
    page = TextPage(title, footer="footer")
    page.paragraph("A paragraph right under the title. " * 8)
    fig = page.figs[0]
    renderer = fig.canvas.get_renderer()
    width, height = fig.bbox.width, fig.bbox.height
    texts = fig.texts
    assert "\n" in texts[0].get_text()  # the title took two lines
    for text in texts:
        box = text.get_window_extent(renderer)
        assert 0 <= box.x0 and box.x1 <= width and 0 <= box.y0 and box.y1 <= height, text.get_text()[:60]
    title_box = texts[0].get_window_extent(renderer)
    body_box = texts[2].get_window_extent(renderer)  # [0] title, [1] footer, [2] the paragraph
    assert body_box.y1 <= title_box.y0  # the body starts below the title's last line


def test_a_heading_goes_to_the_next_page_with_the_table_it_introduces():
    from plots.report import TextPage

    page = TextPage("Title")
    while page.y > 0.4:  # fill the page down to 40 % of its height
        page.paragraph("Filler text.")
    rows = [["a", "b"]] * 14  # 14 rows of 0.028: more than the space left, less than a page
    height = TextPage.table_height(["x", "y"], rows, 0.028)
    page.heading("A table's heading", keep_with=height)
    page.table(["x", "y"], rows, [0.5, 0.5])
    assert len(page.figs) == 2
    assert any(t.get_text() == "A table's heading" for t in page.figs[1].texts)
    assert not any(t.get_text() == "A table's heading" for t in page.figs[0].texts)
    assert TextPage.table_height(["x"], [], 0.028) == 0.0


def test_the_method_page_says_how_many_workers_each_fixed_pool_ran():
    from plots.report import _pools_sentence

    def ours(size: int | None) -> list[dict]:
        return [{"label": "prefork", "pool": True, "workers": size}, {"label": "sped", "pool": False},
                {"label": "ref-prefork", "pool": True, "workers": size},
                {"label": "prefork-16", "pool": True, "workers": 16}]

    apache = [{"label": "apache-prefork", "pool": True}, {"label": "nginx", "pool": False}]
    sized = _pools_sentence({"apache_pool": 32}, ours(64), apache)
    assert "prefork, ref-prefork: 64 workers" in sized and "sped" not in sized
    assert "prefork-16: 16 workers" in sized
    assert "apache-prefork: 32 (apache_pool)" in sized and "nginx" not in sized
    unsized = _pools_sentence({}, ours(None), [])
    assert "prefork, ref-prefork: the backend default" in unsized and "prefork-16: 16 workers" in unsized
    assert _pools_sentence({}, [{"label": "sped", "pool": False}], []) == ""
    recorded_before = _pools_sentence({"pool": 64}, [{"label": "prefork", "pool": True}], [])
    assert "prefork: 64 workers" in recorded_before  # no workers in its targets: the experiment's pool


def test_a_legend_of_long_entries_stays_inside_the_figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    from plots import style

    labels = [f"={i}. apache-worker-{i}: 0.6001 [0.4744, 0.7683] (r=0.9589)" for i in range(15)]
    fig = plt.figure(figsize=style.FIGSIZE)
    style.legend_right(fig, [Line2D([], []) for _ in labels], labels, title="rank. server: slope ms/client")
    renderer = fig.canvas.get_renderer()
    [legend] = fig.legends
    assert legend.get_window_extent(renderer).x1 <= fig.bbox.x1
    assert legend.get_texts()[0].get_fontsize() < 8.5  # it had to shrink to fit
    short = plt.figure(figsize=style.FIGSIZE)
    style.legend_right(short, [Line2D([], [])], ["1. sped"])
    assert short.legends[0].get_texts()[0].get_fontsize() == 8.5  # a short one keeps its size
    plt.close("all")


def test_the_memory_figure_shows_every_server_name_whole(tmp_path: Path):
    from harness.analysis import analyze
    from harness.tests.synthetic import make_run
    from plots import memory

    fig = memory.draw(analyze(make_run(tmp_path / "run", levels=(1, 10))))
    bars = fig.axes[0]
    names = [t.get_text() for t in bars.get_yticklabels()]
    assert any(n.startswith("apache-prefork") for n in names)  # the longest names are there
    assert bars.get_tightbbox(fig.canvas.get_renderer()).x0 >= fig.bbox.x0  # and not cut at the edge


def test_the_method_page_says_how_this_kernel_throttles_a_capped_server():
    from plots.report import _throttling_sentence

    per_task = _throttling_sentence({"measured": True, "per_task": True, "tasks": 32, "switches_per_period": 11.3})
    assert "one by one (11.3 switches per period with 32 runnable tasks)" in per_task
    assert "many-task models" in per_task
    whole = _throttling_sentence({"measured": True, "per_task": False, "tasks": 32, "switches_per_period": 1.5})
    assert "as a whole (1.5 switches" in whole
    assert _throttling_sentence({"measured": False, "problem": "no tracefs"}) == ""
    assert _throttling_sentence({}) == ""  # a run recorded before the probe existed


def test_the_ranking_gives_each_servers_kernel_switches_with_its_preemptions_in_parentheses(tmp_path):
    from harness.analysis import analyze
    from harness.tests.synthetic import PREEMPTED_SHARE, make_run
    from plots.report import RANKING_HEADER, ranking_rows

    a = analyze(make_run(tmp_path / "run", levels=(1, 10)))
    column = RANKING_HEADER.index("switches/req\n(preempted)")
    for b, row in zip(a.backends, ranking_rows(a)):
        assert row[1] == b.backend
        ctx = b.ctx_switches_per_request
        assert row[column] == f"{ctx:.2f} ({ctx * PREEMPTED_SHARE:.2f})"


def test_the_first_page_says_how_idle_cpus_wait_when_the_run_recorded_it():
    from plots.report import idle_text

    vm = idle_text({"idle": {"cpuidle_driver": "haltpoll", "guest_halt_poll_ns": 0}, "hypervisor": True})
    assert vm.startswith("haltpoll; idle vCPUs halt at once") and vm.endswith("virtual machine")
    assert len(vm) <= 100  # one line of the environment table
    assert "poll up to 200 µs" in idle_text({"idle": {"cpuidle_driver": "haltpoll", "guest_halt_poll_ns": 200000}})
    bare = idle_text({"idle": {"cpuidle_driver": "intel_idle", "guest_halt_poll_ns": None}, "hypervisor": False})
    assert bare == "intel_idle"


def test_the_method_page_says_how_the_loadgen_waited():
    from plots.report import _spin_phrase

    assert "polling up to 50 µs before it sleeps (the loadgen's default)" in _spin_phrase({})
    assert "sleeping as soon as it has nothing to read" in _spin_phrase({"spin_us": 0})
    assert "charged to the server" in _spin_phrase({"spin_us": 0})
    assert "polling 200 µs before it sleeps" in _spin_phrase({"spin_us": 200})


def test_the_core_cost_page_says_what_the_loadgens_waiting_did_to_the_ratios():
    from plots.report import _client_wait_sentence

    polled = _client_wait_sentence({})
    assert "polled 50 µs before it slept" in polled and "hardly ever charged" in polled
    assert "polled 200 µs" in _client_wait_sentence({"spin_us": 200})
    slept = _client_wait_sentence({"spin_us": 0})
    assert slept.startswith("This run's loadgen slept as soon as it had nothing to read")
    assert "hardly ever charged" not in slept and "further from their floors" in slept


def test_the_core_cost_page_counts_how_often_the_loadgen_blocked_at_the_pairs_points():
    from plots.report import _client_wait_sentence, client_blocks

    def rec(backend, per_request):
        return {"backend": backend, "loadgen": {"client_cpu": {"voluntary_switches_per_request": per_request}}}

    records = [rec("thread", 0.004), rec("ref-thread", 0.002), rec("thread", 0.02), rec("sped", 0.9),
               {"backend": "thread", "loadgen": {"client_cpu": {}}}]  # a loadgen that did not count them
    assert client_blocks(records, {"thread", "ref-thread"}) == (0.004, 0.02)  # sped's points are not these
    assert client_blocks([{"backend": "thread", "loadgen": {}}], {"thread"}) is None
    sentence = _client_wait_sentence({}, (0.004, 0.02))
    assert "blocked a median 0.004 times per request at these points (at most 0.020)" in sentence
    assert "blocked" not in _client_wait_sentence({})


def test_the_first_page_gives_the_cpus_busy_at_start_beside_a_load_average_that_still_counts_the_build():
    from plots.report import load_at_start

    env = {"loadavg_at_start": "11.48 9.05 8.56 1/89 9245", "busy_cpus_at_start": 0.02}
    assert load_at_start(env) == "11.48 9.05 8.56 1/89 9245; 0.02 CPUs busy at start"
    assert load_at_start({"loadavg_at_start": "0.01 0.02 0.00 1/80 100"}) == "0.01 0.02 0.00 1/80 100"
    assert load_at_start({"loadavg_at_start": "0.5 0.5 0.5 1/80 1", "busy_cpus_at_start": None}).endswith("1/80 1")
    assert load_at_start({}) == "?"
