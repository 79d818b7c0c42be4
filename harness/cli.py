"""``python3 -m harness run|list|check|plot|report``.

Exit codes: 0 success, 1 a check failed or points failed, 2 bad input (experiment file, command
line, missing build), 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from harness import envinfo, production, registry
from harness.experiment import ExperimentError, load_experiment
from harness.server import terminate_as_interrupt

EXPERIMENTS_DIR = Path(__file__).resolve().parent / "experiments"


def _error(message: str) -> int:
    print(f"harness: error: {message}", file=sys.stderr)
    return 2


def _resolve_experiment(arg: str) -> Path:
    """A path, or the name of a file in harness/experiments (``quick`` → quick.toml)."""
    path = Path(arg)
    if path.exists():
        return path
    candidate = EXPERIMENTS_DIR / (arg if arg.endswith(".toml") else arg + ".toml")
    return candidate if candidate.exists() else path


def cmd_run(args: argparse.Namespace) -> int:
    from harness.runner import RunError, run_experiment

    if args.experiment is None and args.resume is None:
        return _error("run needs an experiment file (or --resume RUN_DIR)")
    only = {s.strip() for s in args.only.split(",") if s.strip()} if args.only else None
    experiment = _resolve_experiment(args.experiment) if args.experiment else None
    try:
        run_dir = run_experiment(
            experiment_path=experiment,
            out_dir=Path(args.out) if args.out else None,
            quick=args.quick,
            resume_dir=Path(args.resume) if args.resume else None,
            only=only,
            build=registry.build_dir(),
            show_progress=not args.no_progress,
        )
    except ExperimentError as exc:
        for problem in exc.problems:
            print(f"harness: error: {exc.path}: {problem}", file=sys.stderr)
        return 2
    except RunError as exc:
        return _error(str(exc))
    except KeyboardInterrupt:
        print("harness: interrupted; every server was stopped. Continue with --resume RUN_DIR.",
              file=sys.stderr)
        return 130
    print(f"run directory: {run_dir}")
    if args.report:
        return _report(run_dir, summary=True)
    return 0


def cmd_list(_args: argparse.Namespace) -> int:
    build = registry.build_dir()
    print(f"Backends ({registry.backends_json_path(build)}):")
    try:
        for b in registry.load_backends(build):
            status = "" if b.binary.exists() else "  [binary missing]"
            cap = f"max {b.max_connections} conns" if b.max_connections else ""
            print(f"  {b.name:<12} {b.model:<50} {cap}{status}")
    except registry.RegistryError as exc:
        print(f"  (none: {exc})")
    try:
        references = registry.load_references(build)
    except registry.RegistryError:
        references = []
    if references:
        print("Reference servers (the floor of each model; `harness peers` only):")
        for r in references:
            status = "" if r.binary.exists() else "  [binary missing]"
            print(f"  {r.name:<16} floor of {r.reference_for:<12} {r.model}{status}")
    print("Production servers:")
    inst = production.installed()
    for name, spec in production.PRODUCTION_SERVERS.items():
        where = inst.get(name)
        print(f"  {name:<15} {'installed ' + where if where else 'not installed'}")
    lg = registry.loadgen_path(build)
    print(f"Load generator: {lg} ({'built' if lg.exists() else 'not built'})")
    print(f"Experiments ({EXPERIMENTS_DIR}):")
    for path in sorted(EXPERIMENTS_DIR.glob("*.toml")):
        try:
            exp = load_experiment(path, registry.backend_names_or_none(build))
            per_point = (f"{exp.load.window_s:g} s kept per point" if exp.load.window_s is not None
                         else f"{exp.load.requests} requests per point")
            print(f"  {path.stem:<12} {exp.title}  (levels {', '.join(map(str, exp.load.levels))}; "
                  f"{per_point} × {exp.load.repetitions}"
                  + ("; each backend side by side with its reference" if exp.beside_reference else "") + ")")
        except ExperimentError as exc:
            print(f"  {path.stem:<12} INVALID: {exc.problems[0]}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    server_cpus, client_cpus, max_level, keep_alive, repetitions = "0", "1", 1000, False, 5
    if args.experiment:
        try:
            exp = load_experiment(_resolve_experiment(args.experiment), registry.backend_names_or_none())
        except ExperimentError as exc:
            for problem in exc.problems:
                print(f"harness: error: {exc.path}: {problem}", file=sys.stderr)
            return 2
        server_cpus, client_cpus = exp.server_cpus, exp.client_cpus
        max_level, keep_alive = max(exp.load.levels), exp.load.keep_alive
        repetitions = exp.load.repetitions
    verdicts = envinfo.check_environment(registry.build_dir(), server_cpus, client_cpus, max_level, keep_alive,
                                         steadiness_s=args.steadiness, repetitions=repetitions)
    worst = 0
    for v in verdicts:
        mark = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}[v.status]
        print(f"[{mark}] {v.name}: {v.value}")
        print(f"       {v.explanation}")
        if v.fix and v.status != "ok":
            print(f"       fix: {v.fix}")
        worst = max(worst, {"ok": 0, "warn": 0, "fail": 1}[v.status])
    return worst


def _report(run_dir: Path, summary: bool) -> int:
    from plots.report import build_report

    if not (run_dir / "runs.jsonl").exists():
        return _error(f"{run_dir} has no runs.jsonl; is it a run directory?")
    pdf, analysis = build_report(run_dir)
    print(f"report: {pdf}")
    if summary:
        kind = (analysis.meta.get("experiment") or {}).get("kind", "load-sweep")
        if kind == "load-sweep":
            print_ranking(analysis)
        else:
            print_cells(run_dir, kind)
    return 0


def print_cells(run_dir: Path, kind: str) -> None:
    """The cells of an experiment that sweeps something other than the offered load, and its claims."""
    import importlib
    import json

    from plots.report import CELL_KINDS, _condition_text

    run = importlib.import_module(f"harness.{CELL_KINDS[kind][0]}").summarize(run_dir)
    print(f"{'server':<16} {'condition':<22} {'valid':>5} {'req/s':>10} {'CPU µs/req':>11}")
    for c in sorted(run.cells, key=lambda c: (c.backend, c.condition)):
        rps = f"{c.requests_per_second.value:,.0f}" if c.requests_per_second else "-"
        cpu = f"{c.cpu_us_per_request.value:.1f}" if c.cpu_us_per_request else "-"
        print(f"{c.backend:<16} {_condition_text(kind, c.condition):<22} {c.valid:>2}/{c.repetitions:<2} {rps:>10} {cpu:>11}")
    claims = run_dir / "claims.json"
    if claims.exists():
        for c in json.loads(claims.read_text()):
            print(f"[{c['verdict']}] {c['statement']}  ({c['figure']})")


def print_ranking(analysis) -> None:
    print(f"{'rank':>5}  {'server':<15} {'slope ms/client [95 % interval]':>32} {'r':>7} "
          f"{'req/s at saturation':>20} {'CPU µs/req':>11}")
    for b in analysis.backends:
        rank = (("=" if b.tied else "") + str(b.rank)) if b.rank else "-"
        slope = "-"
        if b.slope is not None:
            slope = f"{b.slope.value:.4f}" + (f" [{b.slope.lo:.4f}, {b.slope.hi:.4f}]" if b.slope.lo is not None else "")
        r = f"{b.r_all:.4f}" if b.r_all is not None else "-"
        tp = f"{b.throughput.value:,.0f}" if b.throughput else "-"
        cpu = f"{b.cpu.value:.1f}" if b.cpu else "-"
        print(f"{rank:>5}  {b.backend:<15} {slope:>32} {r:>7} {tp:>20} {cpu:>11}")


def cmd_plot(args: argparse.Namespace) -> int:
    from harness.analysis import analyze
    from plots import render_all

    run_dir = Path(args.run_dir)
    if not (run_dir / "runs.jsonl").exists():
        return _error(f"{run_dir} has no runs.jsonl; is it a run directory?")
    paths = render_all(analyze(run_dir), run_dir / "figures")
    for p in paths:
        print(p)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    return _report(Path(args.run_dir), summary=args.summary)


def cmd_peers(args: argparse.Namespace) -> int:
    from . import peers
    from .registry import build_dir
    names = [n.strip() for n in args.servers.split(",") if n.strip()]
    clients = tuple(c.strip() for c in args.clients.split(",") if c.strip())
    if args.control:
        if not args.reference:
            raise SystemExit("peers: --control needs --reference (the server it measures twice)")
        names = peers.with_control(names, args.reference)
    try:
        periods = peers.parse_cap_periods(args.cap_period_ms) if args.cap_period_ms is not None else None
    except ValueError as exc:
        raise SystemExit(f"peers: --cap-period-ms {exc}") from None
    results = peers.compare(names, build_dir(), args.rounds, args.seconds, args.ab_requests,
                            args.concurrency, args.server_cpus, args.client_cpus,
                            args.server_cpu_share, clients, args.warmup, args.interleave, args.reference,
                            Path(args.turns) if args.turns else None, args.pool, periods,
                            args.simultaneous)
    floor_of = peers.floors(names, build_dir())
    peers.print_table(results, names, args.reference, floor_of)
    peers.print_ratio_intervals(results, names, args.reference, floor_of, args.concurrency)
    return 0


def cmd_idle_memory(args: argparse.Namespace) -> int:
    from . import idle_memory
    from .registry import build_dir
    names = [n.strip() for n in args.backends.split(",") if n.strip()]
    return idle_memory.run(names, args.connections, args.server_cpus, build_dir())


def version() -> str:
    """The project's version (meson.build) and the checkout's git revision."""
    import re

    text = (registry.REPO_ROOT / "meson.build").read_text() if (registry.REPO_ROOT / "meson.build").exists() else ""
    m = re.search(r"version\s*:\s*'([^']+)'", text)
    return f"httpbench {m.group(1) if m else '?'} (git {envinfo.git_revision(registry.REPO_ROOT)})"


def cmd_compare(args: argparse.Namespace) -> int:
    from harness.compare import compare_runs, print_changes, write_csv

    runs = [Path(args.run_a), Path(args.run_b)]
    for r in runs:
        if not (r / "runs.jsonl").exists():
            return _error(f"{r} has no runs.jsonl; is it a run directory?")
    changes, notes = compare_runs(*runs)
    print_changes(changes, notes, *runs)
    if args.csv:
        write_csv(changes, Path(args.csv))
    return 0


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows every option's default, keeps the description's line breaks."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="httpbench", formatter_class=_Formatter,
        description="httpbench harness: run experiments on server concurrency models and report them.",
        epilog="Run `httpbench COMMAND --help` for a command's options. The same commands are available as\n"
               "`/usr/bin/python3 -m harness COMMAND` from the repository, or `make bench` / `make report RUN=...`.")
    parser.add_argument("--version", action="version", version=version())
    sub = parser.add_subparsers(dest="command", required=True, title="commands", metavar="COMMAND")

    run = sub.add_parser("run", formatter_class=_Formatter, help="run an experiment into a new (or resumed) run directory")
    run.add_argument("experiment", nargs="?", help="experiment TOML file, or a name in harness/experiments")
    run.add_argument("--out", help="run directory (default results/<timestamp>-<experiment>)")
    run.add_argument("--quick", action="store_true", help="fewer levels and requests: a smoke run")
    run.add_argument("--resume", metavar="RUN_DIR",
                     help="continue an interrupted run (with the servers its --only named, unless given --only)")
    run.add_argument("--only", metavar="A,B", help="run only these servers (labels)")
    run.add_argument("--report", action="store_true", help="write the report and print the ranking afterwards")
    run.add_argument("--no-progress", action="store_true", help="no progress output")
    run.set_defaults(func=cmd_run)

    lst = sub.add_parser("list", formatter_class=_Formatter, help="built backends, installed production servers, experiments")
    lst.set_defaults(func=cmd_list)

    chk = sub.add_parser("check", formatter_class=_Formatter, help="is this machine set up for meaningful numbers?")
    chk.add_argument("experiment", nargs="?", help="check against this experiment's levels and pinning")
    chk.add_argument("--steadiness", type=float, default=3.0, metavar="S",
                     help="seconds of two fixed loops (arithmetic, a chase through the cache) on the server's "
                          "CPU measuring how steady the machine is (0: skip)")
    chk.set_defaults(func=cmd_check)

    plot = sub.add_parser("plot", formatter_class=_Formatter, help="write RUN_DIR/figures/*.png and *.pdf")
    plot.add_argument("run_dir", help="a run directory under results/")
    plot.set_defaults(func=cmd_plot)

    peers = sub.add_parser("peers", formatter_class=_Formatter, help="wrk and ab side by side on servers (e.g. sped,h2o): medians")
    peers.add_argument("servers", help="comma-separated backends, reference servers (ref-<model>) and/or "
                                       "production servers; a name with spaces is a backend started with "
                                       "more options, labelled by the whole name: 'sped,sped --defer-accept 10'")
    peers.add_argument("--rounds", type=int, default=3,
                       help="rounds, the servers in A B B A order, starting one server further every "
                            "two rounds (2 x servers rounds put each in every position); medians and "
                            "per-round ratios with 95 %% intervals are reported")
    peers.add_argument("--seconds", type=int, default=10, help="wrk duration of each run, in seconds")
    peers.add_argument("--ab-requests", type=int, default=50000, help="requests of each ab run (-n)")
    peers.add_argument("--warmup", type=int, default=1,
                       help="seconds the same client runs, unmeasured, before each measured run, so that "
                            "a server's start-up (a pool forking its workers) is not measured; 0: none")
    peers.add_argument("--concurrency", type=int, default=100, help="connections of wrk and ab (-c)")
    peers.add_argument("--server-cpu-share", type=float, default=None,
                       help="cap the servers at this share of one CPU (cgroup; root) so that the "
                            "server, not the client, limits: requests/s then ranks server cost")
    peers.add_argument("--server-cpus", default="0", help="taskset CPU list of the servers")
    peers.add_argument("--client-cpus", default="1", help="taskset CPU list of wrk and ab")
    peers.add_argument("--reference", help="server the ratios are computed against")
    peers.add_argument("--control", action="store_true",
                       help="measure --reference a second time (<reference>:again, at the far end of the "
                            "list from it): an A/A ratio that should be 1, showing what the run can "
                            "resolve")
    peers.add_argument("--clients", default="wrk,ab",
                       help="wrk (keep-alive), ab (a new connection per request) or both; one client "
                            "gives twice the rounds in the same time")
    peers.add_argument("--interleave", type=int, default=0, metavar="SLICES",
                       help="measure servers in pairs (each backend with its floor, an A/A control "
                            "X:again with X, every other server with --reference), both started, one "
                            "loaded at a time: each run cut into SLICES turns A B B A A B ..., so that a "
                            "drift of the host over more than one turn hits both sides of the ratio "
                            "alike; 0: every server alone, one after the other")
    peers.add_argument("--simultaneous", action="store_true",
                       help="measure servers in pairs (as --interleave) with both loaded at the same time, "
                            "one client each, inside one cgroup capped at twice --server-cpu-share (a child "
                            "cgroup each, equal weights): each server's CPU per request is measured in the "
                            "same moments as the other's, so the host's drift cancels; compare by CPU/req")
    peers.add_argument("--pool", type=int, metavar="N",
                       help="run every fixed pool (prefork, threadpool and their references) with N "
                            "workers instead of its default (256): with fewer workers than ab's "
                            "clients a pool serves queued connections back to back (make pools)")
    peers.add_argument("--cap-period-ms", metavar="MS",
                       help="the CFS period of --server-cpu-share's cap instead of the shortest the kernel "
                            "allows (4 ms at 25 %%), for every client (100) or per client (wrk=100: ab keeps "
                            "the shortest): on Linux 6.18+ every runnable task of a capped server is switched "
                            "out once per period, so a longer one costs a server of many tasks less; it needs "
                            "a client fast enough to keep the server busy through each longer burst (wrk's "
                            "kept-alive connections; not ab's new ones against a fast server): a 'burst' line "
                            "under the ratios names a pair whose server ran dry inside the bursts")
    peers.add_argument("--turns", metavar="FILE",
                       help="write one JSON line per measured client run (round, client, server, turn, "
                            "requests, requests_per_s, server_cpu_s, preemptions, client_sleeps) to FILE: what happens "
                            "inside a run")
    peers.set_defaults(func=cmd_peers)

    idle = sub.add_parser("idle-memory", formatter_class=_Formatter, help="RSS per idle keep-alive connection of backends")
    idle.add_argument("backends", help="comma-separated backends and/or production servers")
    idle.add_argument("--connections", type=int, default=10000, help="idle keep-alive connections to hold")
    idle.add_argument("--server-cpus", default="0", help="taskset CPU list of the server")
    idle.set_defaults(func=cmd_idle_memory)

    rep = sub.add_parser("report", formatter_class=_Formatter, help="write RUN_DIR/report.pdf, figures and summary.csv")
    rep.add_argument("run_dir", help="a run directory under results/")
    rep.add_argument("--summary", action="store_true", help="also print the ranking table")
    rep.set_defaults(func=cmd_report)

    cmp_ = sub.add_parser("compare", formatter_class=_Formatter,
                          help="did a change make servers faster? B / A per server and load, with intervals")
    cmp_.add_argument("run_a", help="the baseline run directory")
    cmp_.add_argument("run_b", help="the run to compare with it")
    cmp_.add_argument("--csv", metavar="FILE", help="also write every comparison to this CSV file")
    cmp_.set_defaults(func=cmd_compare)

    from harness import microbench

    microbench.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        # SIGTERM and SIGHUP unwind like Ctrl-C, so that every command's `finally` stops the
        # servers it started and removes their cgroups (`peers` left its cgroups behind).
        with terminate_as_interrupt():
            return args.func(args)
    except KeyboardInterrupt:
        print("harness: interrupted; the servers it started were stopped.", file=sys.stderr)
        return 130
    except registry.RegistryError as exc:  # no build, or a broken backends.json: one line, no traceback
        print(f"httpbench: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head`: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
