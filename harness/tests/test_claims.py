"""The paper's claims computed on stored synthetic runs whose answers are known by construction."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.analysis import analyze
from harness.claims import AGREES, DISAGREES, INCONCLUSIVE, at_least, at_most, claims_for, kerneis2009, within
from harness.stats import Interval
from harness.tests.conftest import DATA
from harness.tests.synthetic import FAKE_SERVERS, make_run, with_slope

LEVELS = (1, 100, 500, 1000)


def by_keyword(run: Path) -> dict[str, str]:
    out = {}
    for c in kerneis2009(analyze(run)):
        for key in ("ST yielded", "using fork", "Pth yielded", "Event-driven", "generally slower", "(prefork)",
                    "slowest amongst", "correlation", "somaxconn"):
            if key in c.statement:
                out[key] = c.verdict
    return out


def test_every_claim_agrees_on_a_run_built_to_match_the_paper(tmp_path: Path):
    run = make_run(tmp_path / "r", levels=LEVELS, repetitions=3, flagged=False, backlog_series=True)
    v = by_keyword(run)
    assert v == {k: AGREES for k in v}
    assert len(v) == 9


def test_a_fork_that_is_not_several_times_slower_disagrees(tmp_path: Path):
    run = make_run(tmp_path / "r", servers=with_slope("fork", 0.09), levels=LEVELS, repetitions=3, flagged=False)
    assert by_keyword(run)["using fork"] == DISAGREES


def test_nptl_much_slower_than_pth_disagrees_and_st_beaten_by_events_disagrees(tmp_path: Path):
    servers = with_slope("thread", 0.2, with_slope("sped", 0.03))
    run = make_run(tmp_path / "r", servers=servers, levels=LEVELS, repetitions=3, flagged=False)
    v = by_keyword(run)
    assert v["Pth yielded"] == DISAGREES
    assert v["ST yielded"] == DISAGREES


def test_noisy_repetitions_make_a_close_call_inconclusive(tmp_path: Path):
    # thread / pth = 1.25 exactly at the threshold, with 20 % noise: the interval straddles it
    servers = with_slope("thread", 0.095, with_slope("pth", 0.076))
    run = make_run(tmp_path / "r", servers=servers, levels=LEVELS, repetitions=3, flagged=False, noise=0.2)
    assert by_keyword(run)["Pth yielded"] == INCONCLUSIVE


def test_missing_servers_make_their_claims_inconclusive(tmp_path: Path):
    only = tuple(s for s in FAKE_SERVERS if s.name in ("sped", "nginx"))
    claims = kerneis2009(analyze(make_run(tmp_path / "r", servers=only, levels=LEVELS, repetitions=2, flagged=False)))
    st = next(c for c in claims if "ST yielded" in c.statement)
    assert st.verdict == INCONCLUSIVE and "not measured" in st.figure
    fig1 = next(c for c in claims if "somaxconn" in c.statement)
    assert fig1.verdict == INCONCLUSIVE


def test_the_measured_load_cap_needs_loads_well_above_the_backlog(tmp_path: Path):
    # up to 200 clients a backlog of 128 cannot cap the load at half the offered load
    run = make_run(tmp_path / "r", levels=(1, 10, 100, 200), repetitions=2, flagged=False, backlog_series=True)
    assert by_keyword(run)["somaxconn"] == INCONCLUSIVE


def test_threshold_verdicts_follow_the_interval():
    assert at_least(Interval(3.0, 2.5, 3.5), 2.0) == AGREES
    assert at_least(Interval(1.5, 1.2, 1.8), 2.0) == DISAGREES
    assert at_least(Interval(2.1, 1.8, 2.4), 2.0) == INCONCLUSIVE
    assert at_most(Interval(1.1, 1.0, 1.15), 1.2) == AGREES
    assert within(Interval(1.0, 0.9, 1.1), 1.25) == AGREES
    assert within(Interval(1.5, 1.3, 1.7), 1.25) == DISAGREES


def test_claims_run_only_for_experiments_that_ask_for_them(tmp_path: Path):
    assert claims_for(analyze(make_run(tmp_path / "no", levels=LEVELS))) == []
    assert claims_for(analyze(make_run(tmp_path / "yes", levels=LEVELS, claims=("kerneis2009",))))


def test_the_committed_fixture_has_a_claims_table():
    claims = claims_for(analyze(DATA / "tiny_run"))
    assert len(claims) == 9
    assert json.loads(json.dumps([c.__dict__ for c in claims]))  # serialisable for claims.json
