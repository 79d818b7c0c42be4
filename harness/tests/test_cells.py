"""The experiments that sweep something other than the offered load: their points, their cells
(medians with intervals, validity), their claims and their report, on synthetic runs."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from harness import docroot, fremlin, leitner, runner, sxe
from harness.claims import AGREES, DISAGREES
from harness.experiment import parse_experiment
from harness.tests.conftest import write_experiment
from harness.tests.synthetic import FAKE_SERVERS, make_record
from plots.report import build_report


def _meta(kind: str, targets: list[dict]) -> dict:
    return {"schema": 2, "run_id": f"synthetic-{kind}", "status": "complete",
            "experiment": {"name": kind, "title": kind, "kind": kind, "load": {"repetitions": 3}, "claims": []},
            "pinning": {"server_cpus": "0", "client_cpus": "1", "server_cpu_share_used": 0.3},
            "server_bound": True, "environment": {}, "targets": targets}


def _write(run: Path, kind: str, records: list[dict], targets: list[dict]) -> Path:
    run.mkdir(parents=True)
    (run / "runs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (run / "meta.json").write_text(json.dumps(_meta(kind, targets)))
    return run


def _record(name: str, rep: int, cpu_us: float, rps: float, rng: random.Random, **extra) -> dict:
    r = make_record(FAKE_SERVERS[0], 100, rep, rng, noise=0.01)
    r["backend"] = name
    r["key"] = f"{name}|100|{rep}|" + "|".join(f"{k}={v}" for k, v in extra.items())
    r["loadgen"]["requests_per_second"] = rps * (1 + rng.uniform(-0.01, 0.01))
    r["loadgen"]["completed"] = int(rps * 2)
    r["server_metrics"]["cpu_s"] = cpu_us * r["loadgen"]["completed"] / 1e6 * (1 + rng.uniform(-0.01, 0.01))
    r.update(extra)
    return r


def idle_run(tmp_path: Path, poll_grows: bool = True) -> Path:
    rng = random.Random(3)
    records, targets = [], []
    for name, poller in (("sped-epoll", "epoll"), ("sped-poll", "poll")):
        targets.append({"label": name, "backend": "sped", "kind": "toy", "args": ["--set", f"poller={poller}"]})
        for idle in (0, 100, 1000, 10000):
            cost = 20.0 + (0.01 * idle if poller == "poll" and poll_grows else 0.0)
            for rep in range(3):
                records.append(_record(name, rep, cost, 0.3e6 / cost, rng, idle_connections=idle))
    return _write(tmp_path / "idle", "idle-connections", records, targets)


def test_idle_connection_claims_agree_when_epoll_is_flat_and_poll_grows(tmp_path: Path):
    run = leitner.summarize(idle_run(tmp_path))
    assert [c.condition for c in leitner.series(run, "sped-poll")] == [(0,), (100,), (1000,), (10000,)]
    verdicts = {c.statement.split(" ")[0]: c.verdict for c in leitner.claims(run)}
    assert verdicts == {"Event": AGREES, "poll()": AGREES}


def test_a_poll_that_stays_flat_disagrees_with_the_paper(tmp_path: Path):
    run = leitner.summarize(idle_run(tmp_path, poll_grows=False))
    poll = next(c for c in leitner.claims(run) if c.statement.startswith("poll()"))
    assert poll.verdict == DISAGREES


def dynamic_run(tmp_path: Path, dynamic_cost: float) -> Path:
    rng = random.Random(4)
    records = []
    for name in ("sped", "thread"):
        for keep_alive in (False, True):
            for page, cost in (("static", 20.0), ("dynamic", dynamic_cost)):
                for rep in range(3):
                    records.append(_record(name, rep, cost, 0.3e6 / cost, rng, page=page, keep_alive=keep_alive))
    return _write(tmp_path / f"dyn{dynamic_cost}", "dynamic-page", records, [])


def test_a_dynamic_page_as_cheap_as_the_static_one_agrees_and_a_slow_one_does_not(tmp_path: Path):
    close = [c.verdict for c in fremlin.claims(fremlin.summarize(dynamic_run(tmp_path, 20.5)))]
    assert close == [AGREES] * 3  # under a millisecond; close to static with and without keep-alive
    slow = fremlin.claims(fremlin.summarize(dynamic_run(tmp_path, 40.0)))
    assert [c.verdict for c in slow if "close to" in c.statement] == [DISAGREES, DISAGREES]


def test_many_connection_claims_compare_the_event_loop_with_nginx(tmp_path: Path):
    rng = random.Random(5)
    records = []
    for name, rps, conn_s in (("sped", 60000, 0.4), ("nginx", 25000, 0.4)):
        for rep in range(3):
            r = _record(name, rep, 10.0, rps, rng)
            r["offered_load"] = 10000
            r["loadgen"]["measured_load"] = r["loadgen"]["measured_load_nt"] = 9990.0
            r["loadgen"].update(connects=10000, connect_phase_s=conn_s * (1 + rng.uniform(-0.01, 0.01)),
                                client_max_rss_kib=30000)
            records.append(r)
    run = sxe.summarize(_write(tmp_path / "sxe", "many-connections", records, []))
    claims = {c.statement[:30]: c for c in sxe.claims(run)}
    assert claims["nginx and SXE accept new conne"].verdict == AGREES  # the same connect rate
    assert claims["SXE serves 2.4× nginx's querie"].verdict == AGREES  # 60,000 / 25,000 = 2.4
    assert sxe.connections_per_second(run, "sped").value == pytest.approx(25000, rel=0.02)


@pytest.mark.parametrize("make", [lambda p: idle_run(p), lambda p: dynamic_run(p, 20.5)])
def test_cell_experiments_get_a_report_with_their_figure_table_and_claims(tmp_path: Path, make):
    run = make(tmp_path)
    pdf, _ = build_report(run)
    assert pdf.stat().st_size > 30_000
    assert json.loads((run / "claims.json").read_text())
    assert list((run / "figures").glob("fig_*.png"))


def test_points_of_each_kind(tmp_path: Path, fake_build):
    base = write_experiment(tmp_path, levels=(10,), repetitions=2).read_text()
    idle = parse_experiment(base.replace('title = "fake experiment"', 'title = "x"\nkind = "idle-connections"')
                            .replace("[load]", "[load]\nidle_connections = [0, 50]"), tmp_path / "i.toml")
    targets, _ = runner.resolve_targets(idle, fake_build)
    points = runner.plan_points(idle, targets, seed=1)
    assert sorted({(p.target.label, p.idle) for p in points}) == [("alpha", 0), ("alpha", 50), ("beta", 0),
                                                                  ("beta", 50)]
    assert len(points) == 8 and len({p.key for p in points}) == 8
    dyn = parse_experiment(base.replace('title = "fake experiment"', 'title = "x"\nkind = "dynamic-page"')
                           .replace("[load]", "[load]\nkeep_alive = [false, true]"), tmp_path / "d.toml")
    points = runner.plan_points(dyn, runner.resolve_targets(dyn, fake_build)[0], seed=1)
    assert {(p.page, p.keep_alive) for p in points} == {("dynamic", False), ("dynamic", True), ("static", False),
                                                        ("static", True)}


def test_a_variant_that_holds_fewer_connections_skips_the_points_beyond(tmp_path: Path, fake_build, pid_dir):
    exp = write_experiment(tmp_path, levels=(5,), backends="[]", extra="idle_connections = [0, 30]").read_text()
    exp = exp.replace('title = "fake experiment"', 'title = "x"\nkind = "idle-connections"')
    exp += '[[servers.variant]]\nname = "alpha-small"\nbackend = "alpha"\nmax_connections = 20\n'
    (tmp_path / "exp.toml").write_text(exp.replace("[load]", "[load]\nkeep_alive = true") if "keep_alive" not in exp
                                       else exp)
    run = runner.run_experiment(tmp_path / "exp.toml", tmp_path / "run", False, None, None, fake_build,
                                show_progress=False)
    recs = {r["key"]: r for r in map(json.loads, (run / "runs.jsonl").read_text().splitlines())}
    assert recs["alpha-small|5|0|idle=30"]["status"] == "skipped"
    assert "exceed the backend's max_connections 20" in recs["alpha-small|5|0|idle=30"]["error"]


def test_the_dynamic_page_and_its_static_twin_have_the_same_bytes(tmp_path: Path):
    body = runner.dynamic_body("/hello?name=<TLUG>")
    assert body == b"<h1>Hello &lt;TLUG&gt;</h1>"
    assert docroot.write_static_twin(tmp_path, body).read_bytes() == body
