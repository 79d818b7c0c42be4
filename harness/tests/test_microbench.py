"""harness/microbench.py: reading Google Benchmark JSON, the combined microbench.json, running the
programs pinned, the smoke check and the issue's targets."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pytest

from harness import microbench as mb
from harness.registry import build_dir
from harness.tests.conftest import DATA, FAKES

STORED = DATA / "microbench"


def gbench_run(name: str, real_time: float, rep: int = 0, unit: str = "ns", **extra) -> dict:
    run = {"name": name, "run_name": name, "run_type": "iteration", "repetitions": 3,
           "repetition_index": rep, "iterations": 1000, "real_time": real_time,
           "cpu_time": real_time, "time_unit": unit}
    run.update(extra)
    return run


def doc_of(*rows: tuple[str, float]) -> dict:
    """A combined document holding these (name, ns) results, one repetition each."""
    program = {"benchmarks": [gbench_run(n + ("/real_time" if n.count("/") else ""), t) for n, t in rows]}
    return mb.combine({"test": program}, {"cpus": "0"})


@pytest.fixture
def stored_dir(tmp_path: Path) -> Path:
    for p in STORED.glob("*.json"):
        shutil.copy(p, tmp_path)
    return tmp_path


def test_split_name_drops_the_time_suffix_and_reads_parameters():
    assert mb.split_name("spawn/fork/alive:1000/real_time") == ("spawn", "fork", {"alive": 1000})
    assert mb.split_name("socket/connect/open:0/manual_time") == ("socket", "connect", {"open": 0})
    assert mb.split_name("switch/fiber") == ("switch", "fiber", {})
    with pytest.raises(mb.MicrobenchError):
        mb.split_name("events/epoll/10000")


def test_the_figure_is_the_median_of_the_repetitions_in_nanoseconds_and_aggregates_are_ignored():
    doc = {"benchmarks": [
        gbench_run("switch/fiber/real_time", 3.0, 0, unit="us"),
        gbench_run("switch/fiber/real_time", 1.0, 1, unit="us"),
        gbench_run("switch/fiber/real_time", 2.5, 2, unit="us"),
        dict(gbench_run("switch/fiber/real_time", 999.0), run_type="aggregate", aggregate_name="mean"),
    ]}
    (r,) = mb.parse_program_json(doc, "switch_bench")
    assert r.name == "switch/fiber" and r.family == "switch" and r.primitive == "fiber"
    assert r.ns_per_op == pytest.approx(2500.0)
    assert r.repetitions_ns == pytest.approx([3000.0, 1000.0, 2500.0])
    assert (r.min_ns, r.max_ns) == (pytest.approx(1000.0), pytest.approx(3000.0))


def test_user_counters_are_kept_as_medians_and_standard_fields_are_not():
    doc = {"benchmarks": [gbench_run("write/writev/real_time", 10, i, segments=s, items_per_second=5.0)
                          for i, s in enumerate((1.0, 1.0, 3.0))]}
    (r,) = mb.parse_program_json(doc, "write_bench")
    assert r.counters == {"segments": 1.0}


def test_an_errored_benchmark_keeps_its_message_and_has_no_figure():
    doc = {"benchmarks": [gbench_run("events/io_uring_poll/idle:1/real_time", 0.0,
                                     error_occurred=True, error_message="io_uring unavailable (x): skipped")]}
    (r,) = mb.parse_program_json(doc, "events_bench")
    assert r.ns_per_op is None
    assert r.error.startswith("io_uring unavailable")


def test_collect_combines_the_stored_program_outputs_into_one_document(stored_dir: Path):
    path = mb.collect(stored_dir)
    assert path == stored_dir / "microbench.json"
    doc = mb.load(stored_dir)  # a directory is accepted
    assert doc["schema"] == mb.SCHEMA
    assert set(doc["programs"]) == set(mb.PROGRAMS)
    assert {row["family"] for row in doc["benchmarks"]} == set(mb.FAMILIES)
    assert mb.problems(doc) == []
    # Every row names its program and comes from that program's JSON.
    events = json.loads((stored_dir / "events_bench.json").read_text())
    epoll_10 = [b["real_time"] for b in events["benchmarks"]
                if b["run_name"] == "events/epoll/idle:10/real_time" and b["run_type"] == "iteration"]
    row = next(r for r in doc["benchmarks"] if r["name"] == "events/epoll/idle:10")
    assert row["program"] == "events_bench"
    assert row["ns_per_op"] == pytest.approx(sorted(epoll_10)[len(epoll_10) // 2] if len(epoll_10) % 2
                                             else sum(sorted(epoll_10)) / 2)
    assert mb.series(doc, "spawn", "fork", "alive") == sorted(mb.series(doc, "spawn", "fork", "alive"))


def test_collect_refuses_a_directory_without_program_json(tmp_path: Path):
    with pytest.raises(mb.MicrobenchError):
        mb.collect(tmp_path)


def test_load_refuses_a_document_of_another_kind(tmp_path: Path):
    (tmp_path / "microbench.json").write_text(json.dumps({"benchmarks": []}))
    with pytest.raises(mb.MicrobenchError):
        mb.load(tmp_path)


def test_problems_name_an_unexpected_error_but_accept_an_io_uring_skip():
    ok = {"benchmarks": [gbench_run("events/epoll/idle:1/real_time", 5.0),
                         gbench_run("events/io_uring_poll/idle:1/real_time", 0.0, error_occurred=True,
                                    error_message="io_uring unavailable (Operation not permitted): skipped")]}
    doc = mb.combine({"events_bench": ok}, {})
    assert mb.problems(doc) == []
    bad = {"benchmarks": [gbench_run("events/epoll/idle:1/real_time", 0.0, error_occurred=True,
                                     error_message="epoll did not report the active descriptor")]}
    found = mb.problems(mb.combine({"events_bench": bad}, {}))
    assert any("epoll did not report" in p for p in found)
    assert "family events: no result" in found


def fake_build(tmp_path: Path, programs=("parser_bench",)) -> Path:
    build = tmp_path / "build"
    (build / "servers" / "microbench").mkdir(parents=True)
    for p in programs:
        target = mb.program_path(build, p)
        shutil.copy(FAKES / "fake_gbench.py", target)
        target.chmod(0o755)
    return build


def test_run_all_pins_each_program_and_writes_its_json_and_the_combined_one(tmp_path, monkeypatch):
    build = fake_build(tmp_path, ("parser_bench", "write_bench"))
    argv_log = tmp_path / "argv.jsonl"
    monkeypatch.setenv("FAKE_GBENCH_ARGV", str(argv_log))
    out = tmp_path / "out"
    path = mb.run_all(build, out, programs=("parser_bench", "write_bench"), cpus="0", repetitions=3,
                      echo=False)
    assert (out / "parser_bench.json").exists() and (out / "write_bench.json").exists()
    doc = mb.load(path)
    assert doc["settings"]["repetitions"] == 3 and doc["settings"]["cpus"] == "0"
    one = next(r for r in doc["benchmarks"] if r["name"] == "fake/one" and r["program"] == "parser_bench")
    assert one["ns_per_op"] == pytest.approx(20_000.0)  # median of 10, 20, 30 µs
    two = next(r for r in doc["benchmarks"] if r["name"] == "fake/two/size:10")
    assert two["params"] == {"size": 10}
    calls = [json.loads(line) for line in argv_log.read_text().splitlines()]
    assert len(calls) == 2
    assert all(c["cpus"] == [0] for c in calls)  # pinned by taskset -c 0
    assert all("--benchmark_repetitions=3" in c["argv"] for c in calls)


def test_the_smoke_form_filters_and_shortens_every_program(tmp_path, monkeypatch):
    build = fake_build(tmp_path, ("spawn_bench",))
    argv_log = tmp_path / "argv.jsonl"
    monkeypatch.setenv("FAKE_GBENCH_ARGV", str(argv_log))
    mb.run_all(build, tmp_path / "out", programs=("spawn_bench",), cpus=None, smoke=True, echo=False)
    (record,) = [json.loads(line) for line in argv_log.read_text().splitlines()]
    call = record["argv"]
    assert call[0].endswith("spawn_bench")
    assert f"--benchmark_filter={mb.SMOKE_FILTERS['spawn_bench']}" in call
    assert f"--benchmark_min_time={mb.SMOKE_MIN_TIME_S:g}" in call
    assert not any(a.startswith("--benchmark_repetitions") for a in call)


@pytest.mark.parametrize("mode, message", [("empty", "measured nothing"), ("fail", "exited with 3")])
def test_a_program_that_measures_nothing_or_fails_is_an_error(tmp_path, monkeypatch, mode, message):
    build = fake_build(tmp_path)
    monkeypatch.setenv("FAKE_GBENCH_MODE", mode)
    with pytest.raises(mb.MicrobenchError, match=message):
        mb.run_all(build, tmp_path / "out", programs=("parser_bench",), cpus=None, echo=False)


def cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    mb.add_parser(sub)
    args = parser.parse_args(["microbench", *argv])
    return args.func(args)


def test_the_command_line_says_2_without_a_build_and_1_on_an_unexpected_error(tmp_path, monkeypatch, capsys):
    assert cli(["--build", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o"),
                "--programs", "parser_bench"]) == 2
    assert "make build" in capsys.readouterr().err
    build = fake_build(tmp_path)
    monkeypatch.setenv("FAKE_GBENCH_MODE", "error")
    assert cli(["--build", str(build), "--out", str(tmp_path / "o"), "--programs", "parser_bench",
                "--cpus", "none", "--smoke"]) == 1
    assert "cannot do two" in capsys.readouterr().err
    assert cli(["--programs", "no_such_bench", "--out", str(tmp_path / "o")]) == 2


def test_the_command_line_collects_and_prints_the_targets(stored_dir, capsys):
    assert cli(["--collect", "--out", str(stored_dir)]) == 0
    out = capsys.readouterr().out
    assert "microbench.json" in out
    assert "fiber round trip" in out and "epoll wait flat" in out and "parses a minimal request" in out


def test_targets_follow_the_numbers():
    met = doc_of(("switch/fiber", 10.0), ("switch/pthread_condvar", 600.0), ("parse/minimal_request", 80.0),
                 *[(f"events/epoll/idle:{n}", 1000.0 + n / 100) for n in (10, 100, 1000, 10000)],
                 *[(f"events/poll/idle:{n}", 1000.0 + 100.0 * n) for n in (1, 10, 100, 1000, 10000)],
                 *[(f"events/select/idle:{n}", 1000.0 + 50.0 * n) for n in (1, 10, 100, 1000)])
    verdicts = {c.target.split()[0]: c.verdict for c in mb.check_targets(met)}
    assert verdicts == {"Boost.Context": "met", "epoll": "met", "poll": "met", "select": "met", "the": "met"}

    missed = doc_of(("switch/fiber", 20.0), ("switch/pthread_condvar", 600.0), ("parse/minimal_request", 150.0),
                    ("events/epoll/idle:10", 1000.0), ("events/epoll/idle:10000", 2500.0),
                    *[(f"events/poll/idle:{n}", 1000.0 + n / 10) for n in (1, 10, 100, 1000, 10000)])
    checks = {c.target.split()[0]: c for c in mb.check_targets(missed)}
    assert checks["Boost.Context"].verdict == "not met"  # 1/30
    assert checks["epoll"].verdict == "not met"  # 2.5×
    assert checks["poll"].verdict == "not met"  # mostly the constant part: slope < 0.8
    assert checks["select"].verdict == "no data"
    assert checks["the"].verdict == "not met"


def test_loglog_slope_is_one_for_linear_and_zero_for_flat():
    assert mb.loglog_slope([(10, 10.0), (100, 100.0), (1000, 1000.0)]) == pytest.approx(1.0)
    assert mb.loglog_slope([(10, 5.0), (100, 5.0), (1000, 5.0)]) == pytest.approx(0.0)
    assert mb.loglog_slope([(10, 5.0)]) is None


def test_the_real_programs_pass_their_smoke_form_when_built(tmp_path):
    build = build_dir()
    wanted = ("parser_bench", "switch_bench", "write_bench")
    if not all(mb.program_path(build, p).exists() for p in wanted):
        pytest.skip("microbenchmarks not built (make build)")
    doc = mb.load(mb.run_all(build, tmp_path, programs=wanted, cpus=None, smoke=True, echo=False))
    assert mb.problems(doc) == []
    names = {r["name"] for r in doc["benchmarks"]}
    assert {"parse/minimal_request", "switch/fiber", "switch/pthread_condvar", "write/writev"} <= names
    assert all(r["ns_per_op"] > 0 for r in doc["benchmarks"])
