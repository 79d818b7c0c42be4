"""Experiment files are validated up front: one clear message per mistake, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.experiment import ExperimentError, load_experiment, parse_experiment
from harness.tests.conftest import REPO

GOOD = """
[experiment]
name = "ok"
title = "a valid experiment"
[servers]
backends = ["sped", "thread"]
production = ["nginx"]
[load]
levels = [1, 10, 100]
requests = 5000
discard = 1000
"""
KNOWN = ("sped", "thread", "fork")


def problems_for(text: str) -> list[str]:
    with pytest.raises(ExperimentError) as info:
        parse_experiment(text, "bad.toml", KNOWN)
    return info.value.problems


def test_a_valid_experiment_parses_with_defaults():
    exp = parse_experiment(GOOD, "good.toml", KNOWN)
    assert exp.backends == ("sped", "thread")
    assert exp.load.levels == (1, 10, 100)
    assert exp.load.keep_alive is False
    assert exp.page_size == 305
    assert (exp.server_cpus, exp.client_cpus) == ("0", "1")


@pytest.mark.parametrize(
    "old, new, expected",
    [
        ('backends = ["sped", "thread"]', 'backends = ["sped", "nosuch"]',
         "field 'servers.backends': unknown backend 'nosuch'; allowed: sped, thread, fork"),
        ('production = ["nginx"]', 'production = ["iis"]',
         "field 'servers.production': unknown production server 'iis'; allowed: nginx, lighttpd, h2o, "
         "apache-prefork, apache-worker"),
        ("levels = [1, 10, 100]", 'levels = [1, "ten"]',
         "field 'load.levels': must be a non-empty list of positive integers"),
        ("levels = [1, 10, 100]", "levels = []", "field 'load.levels': must be a non-empty list"),
        ("levels = [1, 10, 100]", "levels = [0, 10]", "field 'load.levels'"),
        ("requests = 5000", 'requests = "many"', "field 'load.requests': must be an integer ≥ 1, got string 'many'"),
        ("requests = 5000", "requests = 1500",
         "field 'load.requests': must be larger than 2 × load.discard = 2000"),
        ("discard = 1000", "discard = -1", "field 'load.discard': must be an integer ≥ 0, got -1"),
        ("[load]", "[load]\nkeep_alive = 1", "field 'load.keep_alive': must be true or false, got int 1"),
        ("[load]", '[load]\nmode = "bursty"', "field 'load.mode': must be one of 'closed', got string 'bursty'"),
        ("[load]", "[load]\nrequets = 5", "field 'load.requets': unknown key; allowed keys: mode, levels"),
        ("[load]", "[loads]\nx = 1\n[load]", "field 'loads': unknown table or key; allowed: experiment, servers"),
        ('name = "ok"', 'name = "has space"', "field 'experiment.name': 'has space' is not valid"),
        ('title = "a valid experiment"', "", "field 'experiment.title': required, a string"),
        ("[load]", '[pinning]\nserver_cpus = "zero"\n[load]', "field 'pinning.server_cpus': 'zero' is not valid"),
        ("[load]", "[page]\nsize_bytes = 0\n[load]", "field 'page.size_bytes': must be an integer ≥ 1, got 0"),
        ("[load]", "[pinning]\nserver_cpu_share = 2\n[load]",
         "field 'pinning.server_cpu_share': must be \"auto\" (calibrated before the run) or a number from 0.05 to 1.0"),
        ("[load]", "[validity]\nserver_min_utilization = 1.5\n[load]",
         "field 'validity.server_min_utilization': must be a fraction between 0 and 1"),
        ("[load]", "[memory]\nconnections = -5\n[load]", "field 'memory.connections': must be an integer ≥ 0, got -5"),
        ("[load]", "[load]\nwarmup_s = 1.0", "field 'load.warmup_s': needs load.window_s"),
        ('title = "a valid experiment"', 'title = "a valid experiment"\nclaims = ["nosuch"]',
         "field 'experiment.claims': must be a list of claim sets; known: kerneis2009"),
        ("[load]", '[servers.args]\nnosuch = ["--set", "x=y"]\n[load]',
         "field 'servers.args.nosuch': unknown backend; allowed: sped, thread, fork"),
        ('production = ["nginx"]', 'production = ["nginx"]\npool = 0',
         "field 'servers.pool': must be an integer ≥ 1, got 0"),
        ('production = ["nginx"]', 'production = ["nginx"]\npool = "big"',
         "field 'servers.pool': must be an integer ≥ 1, got string 'big'"),
        ("[load]", "[load]\nspin_us = -1", "field 'load.spin_us': must be an integer ≥ 0, got -1"),
        ("[load]", "[load]\nspin_us = 2000000", "field 'load.spin_us': must be at most 1000000 µs"),
    ],
)
def test_each_bad_field_gets_its_own_message(old, new, expected):
    assert old in GOOD
    problems = problems_for(GOOD.replace(old, new, 1))
    assert any(expected in p for p in problems), problems


def test_the_loadgen_polls_as_long_as_spin_us_says_or_its_own_default():
    from harness.loadgen import loadgen_argv

    default = parse_experiment(GOOD, "good.toml", KNOWN)
    assert default.load.spin_us is None
    assert "--spin-us" not in loadgen_argv(Path("lg"), default.load, 10, "http://127.0.0.1:1/", Path("o.json"))
    sleeping = parse_experiment(GOOD.replace("[load]", "[load]\nspin_us = 0", 1), "good.toml", KNOWN)
    argv = loadgen_argv(Path("lg"), sleeping.load, 10, "http://127.0.0.1:1/", Path("o.json"))
    assert argv[argv.index("--spin-us") + 1] == "0"


def test_missing_load_table_is_named():
    text = GOOD[: GOOD.index("[load]")]
    assert any("missing table [load]" in p for p in problems_for(text))


def test_invalid_toml_syntax_is_reported_with_the_file_name():
    with pytest.raises(ExperimentError) as info:
        parse_experiment("[experiment\nname=", "broken.toml")
    assert "not valid TOML" in str(info.value)
    assert "broken.toml" in str(info.value)


def test_several_mistakes_are_all_reported_at_once():
    text = GOOD.replace("requests = 5000", 'requests = "x"').replace("levels = [1, 10, 100]", "levels = 3")
    problems = problems_for(text)
    assert len(problems) >= 2


def test_backend_names_are_not_checked_when_the_build_is_missing():
    exp = parse_experiment(GOOD.replace('"thread"', '"future"'), "x.toml", known_backends=None)
    assert exp.backends == ("sped", "future")


def test_quick_shrinks_levels_requests_and_repetitions():
    exp = parse_experiment(GOOD.replace("discard = 1000", "discard = 1000\nrepetitions = 3"), "x.toml", KNOWN)
    q = exp.quick()
    assert q.is_quick and q.load.repetitions == 1
    assert q.load.requests <= 3000 and q.load.requests > 2 * q.load.discard
    assert set(q.load.levels) <= set(exp.load.levels)


def test_quick_table_overrides_the_default_shrinking():
    exp = parse_experiment(GOOD + "[quick]\nlevels = [2, 4]\nrequests = 900\ndiscard = 50\n", "x.toml", KNOWN)
    assert exp.quick().load.levels == (2, 4)
    assert exp.quick().load.requests == 900


@pytest.mark.parametrize("name", sorted(p.stem for p in (REPO / "harness" / "experiments").glob("*.toml")))
def test_shipped_experiments_are_valid(name):
    exp = load_experiment(REPO / "harness" / "experiments" / f"{name}.toml")
    assert exp.load.window_s is not None or exp.load.requests > 2 * exp.load.discard


def test_kerneis2009_matches_the_paper_setup():
    exp = load_experiment(REPO / "harness" / "experiments" / "kerneis2009.toml")
    assert exp.load.levels[0] == 1 and exp.load.levels[-1] == 1000
    assert exp.load.keep_alive is False
    assert exp.page_size == 305
    assert exp.load.repetitions >= 5 and exp.load.window_s >= 2
    assert exp.server_cpu_share == "auto" and "kerneis2009" in exp.claims
    assert any(not v.ranked and "128" in v.args for v in exp.variants)  # Fig. 1(a)


def test_the_default_experiment_is_server_bound_with_repetitions_and_long_windows():
    exp = load_experiment(REPO / "harness" / "experiments" / "default.toml")
    assert exp.server_cpu_share == "auto"
    assert exp.load.repetitions >= 5 and exp.load.window_s >= 2.0
    assert exp.validity.server_min == 0.9 and exp.validity.client_max == 0.6
    assert exp.memory_connections > 0 and exp.claims == ("kerneis2009",)
    # the paper's toy servers and the events that stand for CPC are in
    assert {"fork", "thread", "pth", "st", "sped", "coro"} <= set(exp.backends)
    # our pools are Apache's size, which keeps a 256-process pool's cap-made tails out of the window
    assert exp.pool == exp.apache_pool == 64


def test_cli_reports_a_bad_file_with_exit_code_2_and_no_traceback(tmp_path: Path):
    bad = tmp_path / "bad.toml"
    bad.write_text(GOOD.replace("discard = 1000", "discard = 1000\nrepetitons = 2"))
    proc = subprocess.run([sys.executable, "-m", "harness", "run", str(bad)], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert f"{bad}: field 'load.repetitons': unknown key" in proc.stderr


def test_the_microbench_table_names_known_programs_only():
    exp = parse_experiment(GOOD + '[microbench]\nprograms = ["events_bench"]\nmin_time_s = 0.05\n', "x.toml", KNOWN)
    assert exp.microbench.programs == ("events_bench",) and exp.microbench.repetitions == 1
    problems = problems_for(GOOD + '[microbench]\nprograms = ["nosuch_bench"]\n')
    assert any("field 'microbench.programs'" in p for p in problems), problems


def test_the_harness_knows_the_loadgens_default_poll():
    """DEFAULT_SPIN_US (what the report and `harness check` say the loadgen polls when not told)
    is the built loadgen's own default, as its --help states it."""
    import re
    import subprocess

    from harness.loadgen import DEFAULT_SPIN_US
    from harness.registry import loadgen_path

    loadgen = loadgen_path()
    if not loadgen.exists():
        pytest.skip("loadgen not built (make build)")
    usage = subprocess.run([str(loadgen), "--help"], capture_output=True, text=True, timeout=10)
    m = re.search(r"--spin-us N\s+poll without blocking .*?\(default (\d+);", usage.stdout + usage.stderr, re.S)
    assert m is not None and int(m.group(1)) == DEFAULT_SPIN_US
