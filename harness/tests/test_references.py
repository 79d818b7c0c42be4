"""Reference servers (servers/reference/, the floor of each model): how backends.json lists
them, how the registry loads them apart from the backends, and how `harness peers` runs them."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from harness import peers
from harness.peers import PeerResults, Sample
from harness.registry import Backend, RegistryError, backends_json_path, build_dir, load_backends, load_references
from harness.server import ProcessGuard, ServerProcess

from .conftest import REPO

GEN_REGISTRY = REPO / "servers" / "gen_registry.py"


def add_references(build: Path, references: list[dict]) -> None:
    """Adds a "references" list to the fake build's backends.json."""
    path = build / "servers" / "backends.json"
    data = json.loads(path.read_text())
    data["references"] = references
    path.write_text(json.dumps(data))


POOL_FIELDS = {"workers_bound_connections": True, "default_workers": 256, "max_connections": 256}


def make_alpha_a_pool(build: Path) -> None:
    """The fake build's alpha becomes a fixed pool (as prefork: one connection per worker)."""
    path = build / "servers" / "backends.json"
    data = json.loads(path.read_text())
    data["backends"][0] |= POOL_FIELDS
    path.write_text(json.dumps(data))


def reference_entry(build: Path, model: str) -> dict:
    return {"name": f"ref-{model}", "binary": str(build / "servers" / f"ref-{model}"), "reference": True,
            "reference_for": model, "model": f"{model} model, reference", "category": "event",
            "max_connections": 10000, "tunables": []}


def test_references_load_with_the_backend_each_is_the_floor_of(fake_build: Path):
    add_references(fake_build, [reference_entry(fake_build, "alpha")])
    [ref] = load_references(fake_build)
    assert (ref.name, ref.reference_for, ref.is_reference) == ("ref-alpha", "alpha", True)
    assert ref.binary == fake_build / "servers" / "ref-alpha"
    assert ref.model == "alpha model, reference"


def test_load_backends_never_returns_a_reference(fake_build: Path):
    add_references(fake_build, [reference_entry(fake_build, "alpha")])
    backends = load_backends(fake_build)
    assert [b.name for b in backends] == ["alpha", "beta"]
    assert not any(b.is_reference for b in backends)


def test_registry_from_before_references_existed_has_none(fake_build: Path):
    assert load_references(fake_build) == []


def test_reference_entry_without_reference_for_is_refused(fake_build: Path):
    entry = reference_entry(fake_build, "alpha")
    del entry["reference_for"]
    add_references(fake_build, [entry])
    with pytest.raises(RegistryError, match="reference_for"):
        load_references(fake_build)


def test_references_that_are_not_a_list_are_refused(fake_build: Path):
    add_references(fake_build, {"ref-alpha": {}})  # type: ignore[arg-type]
    with pytest.raises(RegistryError, match="not a valid backend registry"):
        load_references(fake_build)


def test_peers_starts_a_reference_by_name_without_a_docroot(fake_build: Path, tmp_path: Path):
    add_references(fake_build, [reference_entry(fake_build, "alpha")])
    spec = peers._launch("ref-alpha", tmp_path, tmp_path / "docroot", fake_build)
    assert spec.argv == (str(fake_build / "servers" / "ref-alpha"), "--port", "0")
    backend = peers._launch("alpha", tmp_path, tmp_path / "docroot", fake_build)
    assert "--docroot" in backend.argv


def test_peers_refuses_a_name_that_is_no_server_and_mentions_references(fake_build: Path, tmp_path: Path):
    with pytest.raises(SystemExit, match=r"reference server \(ref-<model>\)"):
        peers._launch("ref-nothing", tmp_path, tmp_path / "docroot", fake_build)


def test_floors_pair_a_backend_with_its_reference_only_when_both_run(fake_build: Path):
    add_references(fake_build, [reference_entry(fake_build, "alpha"), reference_entry(fake_build, "beta")])
    assert peers.floors(["alpha", "ref-alpha", "beta"], fake_build) == {"alpha": "ref-alpha"}
    assert peers.floors(["ref-beta"], fake_build) == {}


def test_table_gives_each_backend_its_ratio_to_its_floor(capsys):
    results = PeerResults()
    for name, wrk, ab in (("alpha", 900.0, 450.0), ("ref-alpha", 1000.0, 500.0), ("beta", 10.0, 10.0)):
        results.add(name, "wrk", Sample(wrk, 1.0))
        results.add(name, "ab", Sample(ab, 1.0))
    peers.print_table(results, ["alpha", "ref-alpha", "beta"], None, {"alpha": "ref-alpha"})
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert "0.90x, 0.90x of ref-alpha" in rows["alpha"]
    assert "of ref-" not in rows["beta"] and "of ref-" not in rows["ref-alpha"]


# --- gen_registry.py (the build step that writes backends.json) ---------------------------------

def fake_binary(directory: Path, describe: dict) -> Path:
    path = directory / describe["name"]
    path.write_text(f"#!{sys.executable}\nprint({json.dumps(json.dumps(describe))})\n")
    path.chmod(0o755)
    return path


def run_gen_registry(tmp_path: Path, backends: list[Path], references: list[Path]) -> subprocess.CompletedProcess:
    argv = [sys.executable, str(GEN_REGISTRY), str(tmp_path / "backends.json"), *map(str, backends),
            "--references", *map(str, references)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def test_gen_registry_lists_references_under_their_own_key(tmp_path: Path):
    backend = fake_binary(tmp_path, {"name": "alpha", "model": "m", "category": "event"})
    ref = fake_binary(tmp_path, {"name": "ref-alpha", "reference": True, "reference_for": "alpha",
                                 "model": "m, reference", "category": "event"})
    done = run_gen_registry(tmp_path, [backend], [ref])
    assert done.returncode == 0, done.stderr
    written = json.loads((tmp_path / "backends.json").read_text())
    assert [b["name"] for b in written["backends"]] == ["alpha"]
    assert [(r["name"], r["reference_for"], r["binary"]) for r in written["references"]] == [
        ("ref-alpha", "alpha", str(ref.resolve()))]


@pytest.mark.parametrize("describe", [
    {"name": "ref-gamma", "reference": True, "reference_for": "gamma", "model": "m", "category": "event"},
    {"name": "ref-alpha", "reference_for": "alpha", "model": "m", "category": "event"},
    {"name": "ref-alpha", "reference": True, "reference_for": "alpha", "model": "m"},
], ids=["floor-of-an-unbuilt-backend", "not-marked-reference", "no-category"])
def test_gen_registry_fails_the_build_for_a_reference_it_cannot_place(tmp_path: Path, describe: dict):
    backend = fake_binary(tmp_path, {"name": "alpha", "model": "m", "category": "event"})
    done = run_gen_registry(tmp_path, [backend], [fake_binary(tmp_path, describe)])
    assert done.returncode != 0 and "gen_registry" in done.stderr
    assert not (tmp_path / "backends.json").exists()


# --- the real binaries, when built ------------------------------------------------------------

def built_references() -> list[Backend]:
    if not backends_json_path().exists():
        return []
    try:
        return load_references()
    except RegistryError:
        return []


@pytest.mark.parametrize("name", ["ref-sped", "ref-fork"])
def test_built_reference_started_as_peers_does_answers_with_the_page_and_stops_with_status_zero(
        tmp_path: Path, name: str):
    if name not in {r.name for r in built_references()}:
        pytest.skip(f"{name} is not built (make build)")
    guard = ProcessGuard()
    server = ServerProcess(peers._launch(name, tmp_path, tmp_path / "docroot", build_dir()), None,
                           tmp_path / "server.log", guard)
    try:
        port = server.start(timeout_s=20)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET /index.html HTTP/1.0\r\n\r\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        result = server.stop()
    finally:
        guard.kill_all()
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"Connection: close" in head
    assert len(body) == peers.PAGE_BYTES and f"Content-Length: {peers.PAGE_BYTES}".encode() in head
    assert result.exit_code == 0 and not result.killed


# -- reference servers in experiments, and the report's page "what the HTTP core costs" ---------

def test_experiment_names_reference_servers_or_all():
    from harness.experiment import parse_experiment

    def exp(refs: str):
        return parse_experiment(f'[experiment]\nname = "x"\ntitle = "x"\n[servers]\nbackends = ["alpha"]\n'
                                f'references = {refs}\n[load]\nlevels = [1]\nrequests = 100\ndiscard = 1\n', "x.toml")

    assert exp('["ref-alpha", "ref-alpha"]').references == ("ref-alpha",)
    assert exp('"all"').references == "all"


@pytest.mark.parametrize("body, field", [
    ('references = ["sped"]', "servers.references"),
    ('references = 3', "servers.references"),
    ('references = ["ref-sped"]\n[page]\nsize_bytes = 1024', "page.size_bytes"),
    ('references = ["ref-sped"]\n[experiment.x]', None),
])
def test_experiment_with_unusable_references_is_refused_naming_the_field(body: str, field: str | None):
    from harness.experiment import ExperimentError, parse_experiment

    text = f'[experiment]\nname = "x"\ntitle = "x"\n[servers]\n{body}\n[load]\nlevels = [1]\nrequests = 100\ndiscard = 1\n'
    if field is None:  # references in an experiment kind other than a load sweep
        text = text.replace('title = "x"', 'title = "x"\nkind = "idle-connections"').replace("[experiment.x]", "")
        text = text.replace("discard = 1\n", "discard = 1\nidle_connections = [0, 10]\n")
        field = "servers.references"
    with pytest.raises(ExperimentError, match=field.replace(".", r"\.")):
        parse_experiment(text, "x.toml")


def test_all_references_means_the_floor_of_every_backend_in_the_run(tmp_path: Path, fake_build: Path):
    from harness import runner
    from harness.experiment import parse_experiment

    add_references(fake_build, [reference_entry(fake_build, "alpha"), reference_entry(fake_build, "gamma")])
    exp = parse_experiment('[experiment]\nname = "x"\ntitle = "x"\n[servers]\nbackends = ["alpha", "beta"]\n'
                           'production = []\nreferences = "all"\n[load]\nlevels = [1]\nrequests = 100\ndiscard = 1\n',
                           "x.toml")
    targets, _ = runner.resolve_targets(exp, fake_build)
    refs = [t for t in targets if t.kind == "reference"]
    assert [(t.label, t.reference_for, t.ranked) for t in refs] == [("ref-alpha", "alpha", False)]


def test_a_reference_that_is_not_built_stops_the_run_before_it_starts(tmp_path: Path, fake_build: Path):
    from harness import runner
    from harness.experiment import parse_experiment

    exp = parse_experiment('[experiment]\nname = "x"\ntitle = "x"\n[servers]\nbackends = ["alpha"]\n'
                           'production = []\nreferences = ["ref-alpha"]\n[load]\nlevels = [1]\nrequests = 100\n'
                           'discard = 1\n', "x.toml")
    with pytest.raises(runner.RunError, match="ref-alpha not in backends.json"):
        runner.resolve_targets(exp, fake_build)


def test_a_reference_server_is_started_without_docroot_or_workers(tmp_path: Path, fake_build: Path):
    from harness import runner
    from harness.experiment import parse_experiment

    add_references(fake_build, [reference_entry(fake_build, "alpha")])
    exp = parse_experiment('[experiment]\nname = "x"\ntitle = "x"\n[servers]\nbackends = ["alpha"]\nworkers = 8\n'
                           'production = []\nreferences = ["ref-alpha"]\n[load]\nlevels = [1]\nrequests = 100\n'
                           'discard = 1\n', "x.toml")
    targets, _ = runner.resolve_targets(exp, fake_build)
    r = runner.Runner.__new__(runner.Runner)  # launch_spec needs only the experiment and the docroot
    r.exp, r.docroot, r.run_dir = exp, tmp_path / "docroot", tmp_path
    backend, ref = (r.launch_spec(t) for t in targets)
    assert "--docroot" in backend.argv and "--workers" in backend.argv
    assert "--docroot" not in ref.argv and "--workers" not in ref.argv
    assert ref.argv[0].endswith("ref-alpha") and ref.ready == "line"


def test_core_cost_is_each_backends_cpu_per_request_above_its_references(tmp_path: Path):
    from harness.analysis import analyze, core_costs
    from harness.tests.synthetic import make_run

    a = analyze(make_run(tmp_path / "run", references=True, flagged=False))
    costs = {c.backend: c for c in core_costs(a)}
    assert set(costs) == {"sped", "fork"}  # the backends whose reference ran
    assert costs["sped"].reference == "ref-sped"
    assert costs["sped"].core_cpu.value == pytest.approx(8.0, abs=1.0)
    assert costs["fork"].core_cpu.value == pytest.approx(45.0, abs=3.0)
    lo, hi = costs["sped"].core_cpu.bounds()
    assert lo <= costs["sped"].core_cpu.value <= hi and hi - lo < 4
    assert costs["sped"].throughput_ratio.value < 1.0  # slower than its floor: its responses take longer
    assert not any(b.backend.startswith("ref-") for b in a.backends)  # never ranked


def test_report_of_a_run_with_references_has_the_core_cost_page_figure_and_csv(tmp_path: Path):
    import subprocess as sp

    from harness.tests.synthetic import make_run
    from plots.report import build_report

    run = make_run(tmp_path / "run", references=True, flagged=False)
    pdf, _ = build_report(run)
    assert (run / "figures" / "core_cost.png").is_file()
    rows = (run / "core_cost.csv").read_text().splitlines()
    assert rows[0].startswith("backend,reference,") and len(rows) == 3
    text = sp.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert "What the HTTP core costs" in text and "ref-sped" in text


def test_report_of_a_run_without_references_has_no_core_cost_page(tmp_path: Path):
    from harness.tests.synthetic import make_run
    from plots.report import build_report

    run = make_run(tmp_path / "run", flagged=False)
    build_report(run)
    assert not (run / "core_cost.csv").exists() and not (run / "figures" / "core_cost.png").exists()


def test_core_cost_page_says_why_a_backend_left_out_of_every_point_has_no_figure(tmp_path: Path):
    import subprocess as sp

    from harness.analysis import analyze, core_costs
    from harness.tests.synthetic import make_run
    from plots.report import build_report, core_cost_gaps

    run = make_run(tmp_path / "run", references=True, flagged=False)
    runs = run / "runs.jsonl"
    records = [json.loads(line) for line in runs.read_text().splitlines()]
    for r in records:  # every fork point: clients waited where no kept response time shows
        if r["backend"] == "fork" and "loadgen" in r:
            r["loadgen"]["measured_load_nt"] = 0.5 * r["loadgen"]["measured_load"]
    runs.write_text("".join(json.dumps(r) + "\n" for r in records))
    a = analyze(run)
    [note] = core_cost_gaps(a, core_costs(a))
    assert note.startswith("fork: no valid point") and "n·t_r/t below 90 %" in note
    total = sum(1 for r in records if r["backend"] == "fork" and "loadgen" in r)
    assert f"{total} of {total} points left out" in note
    pdf, _ = build_report(run)
    text = " ".join(sp.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout.split())
    assert "fork: no valid point at or beyond its knee" in text


def test_the_experiments_pool_sizes_each_fixed_pool_and_its_reference_and_bounds_its_connections(
        tmp_path: Path, fake_build: Path):
    from harness import runner
    from harness.experiment import parse_experiment

    make_alpha_a_pool(fake_build)
    add_references(fake_build, [reference_entry(fake_build, "alpha"), reference_entry(fake_build, "beta")])
    exp = parse_experiment('[experiment]\nname = "x"\ntitle = "x"\n[servers]\nbackends = ["alpha", "beta"]\n'
                           'pool = 64\nproduction = []\nreferences = "all"\n[[servers.variant]]\nname = "alpha-16"\n'
                           'backend = "alpha"\nargs = ["--workers", "16"]\n[load]\nlevels = [1]\n'
                           'requests = 100\ndiscard = 1\n', "x.toml")
    targets, _ = runner.resolve_targets(exp, fake_build)
    r = runner.Runner.__new__(runner.Runner)  # launch_spec needs only the experiment and the docroot
    r.exp, r.docroot, r.run_dir = exp, tmp_path / "docroot", tmp_path
    by_label = {t.label: t for t in targets}

    def workers(label: str, **kw) -> list[str]:
        argv = list(r.launch_spec(by_label[label], **kw).argv)
        return [argv[i + 1] for i, a in enumerate(argv) if a == "--workers"]

    assert workers("alpha") == ["64"] and workers("ref-alpha") == ["64"]  # the pool and its floor
    assert workers("beta") == [] and workers("ref-beta") == []  # not pools: their own defaults
    assert by_label["alpha"].max_connections == 64  # one connection per worker
    assert by_label["beta"].max_connections == 20
    assert workers("alpha", workers=10) == ["10"]  # the memory point's own count wins
    assert workers("alpha-16") == ["16"] and by_label["alpha-16"].max_connections == 16  # a variant's own wins
    assert [by_label[n].workers for n in ("alpha", "ref-alpha", "alpha-16", "beta")] == [64, 64, 16, None]


def test_peers_pool_sizes_every_fixed_pool_and_its_floor_and_refuses_a_keep_alive_run_it_cannot_hold(
        tmp_path: Path, fake_build: Path):
    make_alpha_a_pool(fake_build)
    add_references(fake_build, [reference_entry(fake_build, "alpha") | POOL_FIELDS])
    servers = ["alpha", "ref-alpha", "beta", "alpha:again"]
    assert peers._pools(servers, fake_build) == {"alpha": 256, "ref-alpha": 256, "alpha:again": 256}
    assert peers._pools(servers, fake_build, 64) == {"alpha": 64, "ref-alpha": 64, "alpha:again": 64}
    for name in ("alpha", "ref-alpha"):
        argv = list(peers._launch(name, tmp_path, tmp_path / "docroot", fake_build, 64).argv)
        assert argv[argv.index("--workers") + 1] == "64"
    assert "--workers" not in peers._launch("beta", tmp_path, tmp_path / "docroot", fake_build).argv
    with pytest.raises(SystemExit, match="--pool 64 is below --concurrency 100: wrk .* alpha, ref-alpha"):
        peers.compare(["alpha", "ref-alpha"], fake_build, 1, 1, 100, 100, "0", "1", clients=("wrk",), pool=64)
    with pytest.raises(SystemExit, match="--pool must be 1 or more workers, got 0"):
        peers.compare(["alpha", "ref-alpha"], fake_build, 1, 1, 100, 100, "0", "1", clients=("ab",), pool=0)


# -- each backend measured at the same time as its reference ([servers] beside_reference) --------

def _floors_experiment(extra_servers: str = "", pinning: str = "", backends: str = '["alpha"]'):
    from harness.experiment import parse_experiment

    return parse_experiment(f'[experiment]\nname = "x"\ntitle = "x"\n[servers]\nbackends = {backends}\n'
                            f'production = []\n{extra_servers}\n[load]\nlevels = [1, 5]\nrequests = 100\n'
                            f'discard = 1\nrepetitions = 4\n{pinning}', "x.toml")


@pytest.mark.parametrize("servers, pinning, field", [
    ('beside_reference = "yes"\nreferences = "all"', "", "servers.beside_reference"),
    ("beside_reference = true", "", "servers.beside_reference"),
    ('beside_reference = true\nreferences = "all"', "[pinning]\nserver_cpu_share = 0.6\n", "pinning.server_cpu_share"),
    ('beside_reference = true\nreferences = "all"', "[pinning]\nserver_cpu_share = 1.0\n", "pinning.server_cpu_share"),
    ('beside_reference = true\nreferences = "all"\nbeside_control = 1', "", "servers.beside_control"),
])
def test_beside_reference_needs_references_and_a_share_two_servers_can_hold(servers: str, pinning: str, field: str):
    from harness.experiment import ExperimentError

    with pytest.raises(ExperimentError, match=field.replace(".", r"\.")):
        _floors_experiment(servers, pinning)
    assert _floors_experiment('beside_reference = true\nreferences = "all"',
                              "[pinning]\nserver_cpu_share = 0.25\n").beside_reference


def test_beside_reference_pairs_each_backend_with_its_reference_at_the_same_load_and_repetition(fake_build: Path):
    from harness import runner

    add_references(fake_build, [reference_entry(fake_build, "alpha"), reference_entry(fake_build, "gamma")])
    exp = _floors_experiment('beside_reference = true\nreferences = "all"', backends='["alpha", "beta"]')
    targets, _ = runner.resolve_targets(exp, fake_build)
    groups = runner.plan_groups(exp, targets, seed=3)
    controls = [g for g in groups if runner.is_control(g)]
    pairs = [g for g in groups if len(g) == 2 and not runner.is_control(g)]
    # alpha with ref-alpha; ref-alpha beside itself (the A/A control); beta (no floor) alone
    assert len(pairs) == 2 * 4 and len(controls) == 2 * 4 and len(groups) == 3 * 2 * 4
    for a, b in controls:
        assert {a.target.label, b.target.label} == {"ref-alpha", "ref-alpha:again"}
        assert a.target.executable == b.target.executable and (a.level, a.repetition) == (b.level, b.repetition)
    for a, b in pairs:
        assert {a.target.label, b.target.label} == {"alpha", "ref-alpha"}
        assert (a.level, a.repetition) == (b.level, b.repetition)
        # the server started first alternates with the repetition
        assert a.target.label == ("alpha" if a.repetition % 2 == 0 else "ref-alpha")
    assert all(g[0].target.label == "beta" for g in groups if len(g) == 1)
    assert runner.plan_groups(exp, targets, seed=3) == groups  # the seed makes it repeatable
    every = sorted(p.key for g in groups if not runner.is_control(g) for p in g)
    assert every == sorted(p.key for p in runner.plan_points(exp, targets, seed=3))  # the same points
    alone = runner.plan_groups(_floors_experiment('references = "all"'), targets, seed=3)
    assert all(len(g) == 1 for g in alone)
    no_control = _floors_experiment('beside_reference = true\nbeside_control = false\nreferences = "all"')
    assert not any(runner.is_control(g) for g in runner.plan_groups(no_control, targets, seed=3))


def test_a_resumed_side_by_side_run_knows_a_control_pair_apart_from_the_pair_it_shares_a_key_with(tmp_path: Path):
    from harness import runner
    from harness.runner import Point, Target

    ref = Target(label="ref-alpha", kind="reference", backend="ref-alpha", model="m", category="event",
                 executable="x", reference_for="alpha")
    again = Target(**{**ref.__dict__, "label": "ref-alpha:again"})
    backend = Target(label="alpha", kind="toy", backend="alpha", model="m", category="event", executable="y")
    pair = (Point(backend, 10, 0), Point(ref, 10, 0))
    control = (Point(ref, 10, 0), Point(again, 10, 0))
    (tmp_path / "runs.jsonl").write_text("".join(json.dumps({"key": p.key, "status": "ok"}) + "\n" for p in pair))
    done = runner.finished_keys(tmp_path)
    assert all(k in done for k in runner.group_keys(pair))
    assert not all(k in done for k in runner.group_keys(control))  # ref-alpha|10|0 is the pair's, not the control's
    (tmp_path / "controls.jsonl").write_text(
        "".join(json.dumps({"key": p.key, "status": "ok"}) + "\n" for p in control))
    assert all(k in runner.finished_keys(tmp_path) for k in runner.group_keys(control))


def _side_by_side_run(tmp_path: Path, drift: float) -> Path:
    """The synthetic run with references, sped and ref-sped measured side by side: the host's
    drift (each repetition ``drift`` slower than the one before) hits both of a pair alike."""
    from harness.tests.synthetic import make_run

    run = make_run(tmp_path / "run", references=True, flagged=False, repetitions=4)
    records = [json.loads(line) for line in (run / "runs.jsonl").read_text().splitlines()]
    for r in records:
        if r["backend"] in ("sped", "ref-sped"):
            r["beside"] = "ref-sped" if r["backend"] == "sped" else "sped"
            r["server_metrics"]["cpu_s"] *= (1 + drift) ** r["repetition"]
            r["pair_utilization"] = 0.97
            r["clients_utilization"] = 0.5
    (run / "runs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return run


def _with_control(run: Path, factor: float) -> None:
    """controls.jsonl: each of ref-sped's points beside a copy of itself whose CPU per request is
    ``factor`` times as much."""
    lines = []
    for line in (run / "runs.jsonl").read_text().splitlines():
        r = json.loads(line)
        if r["backend"] != "ref-sped":
            continue
        again = json.loads(line)
        again["backend"] = again["key"] = "ref-sped:again"
        again["key"] = f"ref-sped:again|{r['offered_load']}|{r['repetition']}"
        again["server_metrics"]["cpu_s"] *= factor
        r["beside"], again["beside"] = "ref-sped:again", "ref-sped"
        lines += [json.dumps(r), json.dumps(again)]
    (run / "controls.jsonl").write_text("\n".join(lines) + "\n")


def test_the_control_beside_itself_says_what_a_side_by_side_run_resolves_and_warns_when_biased(tmp_path: Path):
    import subprocess as sp

    from harness.analysis import analyze, control_ratio
    from plots.report import build_report

    run = _side_by_side_run(tmp_path, drift=0.05)
    assert control_ratio(analyze(run)) is None  # no controls.jsonl
    _with_control(run, 1.0)
    control = control_ratio(analyze(run))
    assert control.reference == "ref-sped" and control.pairs >= 4 and control.ratio.value == pytest.approx(1.0)
    pdf, _ = build_report(run)
    text = " ".join(sp.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout.split())
    assert "The A/A control: ref-sped beside a second instance of itself" in text and "biased" not in text
    _with_control(run, 1.1)  # the second instance 10 % dearer in every pair: a biased run
    assert control_ratio(analyze(run)).ratio.value == pytest.approx(1 / 1.1)
    pdf, _ = build_report(run)
    text = " ".join(sp.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout.split())
    assert "excludes 1" in text and "biased" in text
    # one pair (a --quick run): no interval, so no verdict either way, and no false alarm
    rows = [json.loads(line) for line in (run / "controls.jsonl").read_text().splitlines()]
    top = max(r["offered_load"] for r in rows)
    (run / "controls.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows
                                                if r["offered_load"] == top and r["repetition"] == 0))
    assert control_ratio(analyze(run)).pairs == 1
    pdf, _ = build_report(run)
    text = " ".join(sp.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout.split())
    assert "Too few pairs for an interval" in text and "biased" not in text and "excludes 1" not in text


def test_core_cost_side_by_side_is_the_pairs_ratio_and_drift_hits_both_sides_alike(tmp_path: Path):
    from harness.analysis import analyze, core_costs

    costs = {c.backend: c for c in core_costs(analyze(_side_by_side_run(tmp_path, drift=0.15)))}
    sped, fork = costs["sped"], costs["fork"]
    assert sped.pairs >= 4 and sped.throughput_ratio is None
    assert sped.cpu_ratio.value == pytest.approx(30.0 / 38.0, rel=0.02)  # ref-sped's 30 µs over sped's 38
    lo, hi = sped.cpu_ratio.bounds()
    assert hi - lo < 0.03  # the drift of up to 52 % cancels pair by pair
    blo, bhi = sped.backend_cpu.bounds()
    assert (bhi - blo) / sped.backend_cpu.value > 0.1  # while each server's own figure spreads with it
    assert sped.core_cpu.value > 0
    assert fork.cpu_ratio is None and fork.pairs == 0 and fork.throughput_ratio is not None  # one at a time


def test_a_point_measured_beside_another_is_judged_by_the_pairs_cap_and_both_clients():
    from harness.analysis import record_flags
    from harness.tests.synthetic import REFERENCE_SERVERS, make_record

    import random

    rec = make_record(REFERENCE_SERVERS[0], 100, 0, random.Random(1))
    rec["server_metrics"]["utilization"] = 0.74  # the other server of the pair took the rest of the cap
    rec |= {"beside": "sped", "pair_utilization": 0.99, "clients_utilization": 0.5}
    assert not [f.kind for f in record_flags(rec, beyond_knee=True)]
    rec |= {"pair_utilization": 0.8, "clients_utilization": 0.75}  # the client CPU they shared was busy
    assert sorted(f.kind for f in record_flags(rec, beyond_knee=True)) == ["client_busy", "server_not_saturated"]


def test_report_side_by_side_says_how_it_was_measured_and_writes_the_ratio(tmp_path: Path):
    import subprocess as sp

    from plots.report import build_report

    run = _side_by_side_run(tmp_path, drift=0.05)
    pdf, _ = build_report(run)
    rows = {line.split(",")[0]: line.split(",") for line in (run / "core_cost.csv").read_text().splitlines()}
    assert "cpu_ratio_side_by_side" in rows["backend"] and int(rows["sped"][-1]) >= 4 and rows["fork"][-1] == "0"
    text = " ".join(sp.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout.split())
    assert "Measured side by side" in text and f"sped {rows['sped'][-1]} saturated pairs" in text


def test_a_backend_and_its_reference_run_side_by_side_in_one_shared_cap(tmp_path: Path):
    from harness.cgroup import available as cgroups_available
    from harness.runner import read_records, run_experiment

    ok, why = cgroups_available()
    if not ok:
        pytest.skip(f"needs cgroups: {why}")
    if not backends_json_path().exists() or "ref-sped" not in {r.name for r in load_references(build_dir())}:
        pytest.skip("servers not built (make build)")
    exp = tmp_path / "pair.toml"
    exp.write_text('[experiment]\nname = "pair"\ntitle = "pair"\n[servers]\nbackends = ["sped"]\nproduction = []\n'
                   'references = "all"\nbeside_reference = true\n[load]\nlevels = [20]\nwindow_s = 0.4\n'
                   'warmup_s = 0.2\nrepetitions = 2\n[pinning]\nserver_cpu_share = 0.2\n')
    run = run_experiment(exp, tmp_path / "run", False, None, None, build_dir(), show_progress=False)
    records = read_records(run)
    assert sorted((r["backend"], r["repetition"]) for r in records) == [
        ("ref-sped", 0), ("ref-sped", 1), ("sped", 0), ("sped", 1)]
    for r in records:
        assert r["status"] == "ok", r.get("error")
        assert r["beside"] == ("ref-sped" if r["backend"] == "sped" else "sped")
        assert r["shared_cap"]["share"] == pytest.approx(0.4)
        assert r["pair_utilization"] > 0 and r["clients_utilization"] > 0
        assert r["server_metrics"]["cpu_s"] > 0
    first = {r["repetition"]: r["backend"] for r in records if r["started"] == 1}
    assert first == {0: "sped", 1: "ref-sped"}
    controls = [json.loads(line) for line in (run / "controls.jsonl").read_text().splitlines()]
    assert sorted((r["backend"], r["repetition"]) for r in controls) == [
        ("ref-sped", 0), ("ref-sped", 1), ("ref-sped:again", 0), ("ref-sped:again", 1)]
    assert all(r["status"] == "ok" and r["beside"] in ("ref-sped", "ref-sped:again") for r in controls)
    pair0 = [r for r in records if r["repetition"] == 0]
    starts = [r["loadgen"]["window_start_ns"] for r in pair0]
    assert abs(starts[0] - starts[1]) < 0.15e9  # both loadgens measured the same moments
    from .conftest import remove_cgroups
    assert remove_cgroups(f"{run.name}-*") == []  # every cgroup of the run was removed


def _burst_record(quota_us: float, server_cpu_s: float = 0.03, shared: bool = True) -> dict:
    """A point of 1,000 requests kept (1,200 in all) at 100 connections: the server's CPU per
    request server_cpu_s / 1,000; the loadgen's 60 µs each once its idle polling is taken off."""
    cap = {"shared_cap": {"share": 0.18, "quota_us": quota_us, "period_us": 100_000}} if shared else \
        {"cgroup": {"share": 0.09, "quota_us": quota_us, "period_us": 11_111}}
    return {"backend": "sped", "offered_load": 100, "repetition": 0,
            "loadgen": {"completed": 1000, "completed_total": 1200, "concurrency": 100,
                        "client_cpu": {"user_s": 0.02, "sys_s": 0.062, "idle_polling_s": 0.01}},
            "server_metrics": {"cpu_s": server_cpu_s}, **cap}


def test_a_server_that_could_serve_more_in_one_burst_than_its_loadgen_had_ready_ran_dry():
    from harness.analysis import burst_backlog, dry_bursts

    # a pair's 100-ms cap at 0.18: 9 ms of CPU each a burst, 300 requests at 30 µs, against
    # 100 connections and 150 more the loadgen sends meanwhile at 60 µs each
    served, ready = burst_backlog(_burst_record(18_000))
    assert (served, ready) == (pytest.approx(300), pytest.approx(250))
    # the shortest period (1 ms of quota for the pair): 17 requests a burst, the server stays busy
    assert burst_backlog(_burst_record(1_000))[0] < burst_backlog(_burst_record(1_000))[1]
    # a server alone in its own cgroup: the whole quota is its burst; a dearer server stays busy
    assert burst_backlog(_burst_record(1_000, shared=False))[0] == pytest.approx(1000 / 30)
    assert burst_backlog(_burst_record(18_000, server_cpu_s=0.09))[0] < 250
    assert dry_bursts([_burst_record(18_000), _burst_record(1_000), {"backend": "x"}]) == (1, 2)
    uncapped = _burst_record(18_000)
    del uncapped["shared_cap"]
    assert burst_backlog(uncapped) is None


def test_core_cost_page_says_how_many_of_its_points_ran_dry_inside_the_caps_bursts(tmp_path: Path):
    from harness.analysis import analyze, core_costs
    from plots.report import core_cost_gaps

    run = _side_by_side_run(tmp_path, drift=0.0)
    a = analyze(run)
    assert not any("ran dry" in note for note in core_cost_gaps(a, core_costs(a)))  # the shortest period
    records = [json.loads(line) for line in (run / "runs.jsonl").read_text().splitlines()]
    for r in records:  # the pair's cap at a 1-s period, and a loadgen thrice as dear per request as the
        if r.get("beside"):  # server: one burst holds far more requests than the clients have ready
            r["shared_cap"] = {"share": 0.5, "quota_us": 500_000, "period_us": 1_000_000}
            r["loadgen"]["client_cpu"]["user_s"] *= 3
            r["loadgen"]["client_cpu"]["sys_s"] *= 3
    (run / "runs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    a = analyze(run)
    [note] = [n for n in core_cost_gaps(a, core_costs(a)) if "ran dry" in n]
    assert note.startswith("At ") and "points this page's figures come from" in note
    assert "a server could serve more requests in one burst" in note
    assert "A period longer than the client's backlog" in note
