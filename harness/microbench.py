"""The microbenchmarks: run the Google Benchmark programs of servers/microbench pinned to one CPU,
keep each program's JSON, and combine them into one ``microbench.json`` that the primitives
chapter (plots/primitives.py) and the target checks read.

Every benchmark is named ``family/primitive[/param:value…]`` by its program (``spawn/fork/alive:
1000``, ``events/epoll/idle:10000``); its figure is the median over repetitions of Google
Benchmark's ``real_time`` (wall time per operation; the manually timed socket calls report
their timed call there too).

Command line: ``python3 -m harness.microbench --out DIR`` (the lead wires ``add_parser`` into
``python3 -m harness microbench``).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SCHEMA = "httpbench-microbench/1"
COMBINED_NAME = "microbench.json"

#: Every program, in the order `make microbench` runs them.
PROGRAMS = ("parser_bench", "spawn_bench", "switch_bench", "st_bench", "pth_bench",
            "events_bench", "write_bench", "socket_bench")

#: The smoke form: each program at its smallest sizes (the 10,000-alive set-ups are left out),
#: a few iterations per benchmark. Google Benchmark appends /real_time or /manual_time to the
#: names these regular expressions see.
SMOKE_FILTERS = {
    "parser_bench": ".",
    "spawn_bench": "/alive:(0|1000)/",
    "switch_bench": ".",
    "st_bench": "switch|/alive:(0|1000)/",
    "pth_bench": "switch|/alive:(0|1000)/",
    "events_bench": "/idle:(1|100)/",
    "write_bench": ".",
    "socket_bench": "/(open|mappings):(0|1000)/|/bytes:(4096|65536)/",
}
SMOKE_MIN_TIME_S = 0.001
#: Seconds per repetition in a full run: 3 × 0.2 s still gives thousands of iterations to any
#: primitive under 50 µs, and shortens `make microbench` (7.5 minutes at Google Benchmark's 0.5 s).
DEFAULT_MIN_TIME_S = 0.2

#: What each family measures (the chapter's captions and `--list`).
FAMILIES = {
    "parse": "the core's parser on one request, no I/O",
    "connection": "one keep-alive request through the core's connection state machine, no I/O",
    "spawn": "start a unit of concurrency, run it to its end, reclaim it; N of its kind alive",
    "switch": "one round trip between two execution contexts",
    "events": "one wait reporting the one ready descriptor among N idle ones",
    "write": "header + 305-byte body over loopback TCP, read back by the peer",
    "socket": "socket(), connect() or accept() over loopback with N connections open",
    "mmap": "mmap of a file: map, read a byte per page, unmap",
}

#: Error messages of benchmarks that skip by design when the machine lacks a feature.
ALLOWED_SKIPS = ("io_uring unavailable",)

_UNIT_NS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}
_TIME_SUFFIXES = ("/real_time", "/manual_time")
# Fields of a Google Benchmark run that are not user counters.
_STANDARD_FIELDS = {
    "name", "family_index", "per_family_instance_index", "run_name", "run_type", "repetitions",
    "repetition_index", "threads", "iterations", "real_time", "cpu_time", "time_unit",
    "error_occurred", "error_message", "aggregate_name", "aggregate_unit", "label",
    "items_per_second", "bytes_per_second",
}


class MicrobenchError(Exception):
    """A program failed or wrote no usable JSON; the message says which."""


class NotBuilt(MicrobenchError):
    """A program or a tool it needs is missing: build (or install) first."""


@dataclass
class Result:
    """One benchmark over its repetitions."""

    name: str  # family/primitive[/param:value...], without Google Benchmark's time suffix
    family: str
    primitive: str
    params: dict[str, int]
    program: str
    ns_per_op: float | None  # median real time per operation; None when it errored
    repetitions_ns: list[float] = field(default_factory=list)
    iterations: list[int] = field(default_factory=list)
    counters: dict[str, float] = field(default_factory=dict)  # medians of user counters
    error: str | None = None

    @property
    def min_ns(self) -> float | None:
        return min(self.repetitions_ns) if self.repetitions_ns else None

    @property
    def max_ns(self) -> float | None:
        return max(self.repetitions_ns) if self.repetitions_ns else None


def split_name(name: str) -> tuple[str, str, dict[str, int]]:
    """``spawn/fork/alive:1000/real_time`` → (``spawn``, ``fork``, {``alive``: 1000})."""
    for suffix in _TIME_SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    parts = name.split("/")
    params: dict[str, int] = {}
    for part in parts[2:]:
        key, sep, value = part.partition(":")
        if not sep:
            raise MicrobenchError(f"benchmark name {name!r}: {part!r} is not param:value")
        params[key] = int(value)
    if len(parts) < 2:
        raise MicrobenchError(f"benchmark name {name!r} is not family/primitive")
    return parts[0], parts[1], params


def canonical_name(family: str, primitive: str, params: dict[str, int]) -> str:
    return "/".join([family, primitive] + [f"{k}:{v}" for k, v in params.items()])


def parse_program_json(doc: dict[str, Any], program: str) -> list[Result]:
    """The per-benchmark medians of one program's Google Benchmark JSON. Aggregate rows are
    ignored: the medians are taken here from the repetitions, whatever flags the run had."""
    runs: dict[str, list[dict[str, Any]]] = {}
    for run in doc.get("benchmarks", []):
        if run.get("run_type", "iteration") != "iteration":
            continue
        runs.setdefault(run.get("run_name", run["name"]), []).append(run)
    results = []
    for run_name, reps in runs.items():
        family, primitive, params = split_name(run_name)
        errors = [r.get("error_message", "error") for r in reps if r.get("error_occurred")]
        times = [r["real_time"] * _UNIT_NS[r.get("time_unit", "ns")] for r in reps
                 if not r.get("error_occurred")]
        counters: dict[str, float] = {}
        keys = {k for r in reps for k in r if k not in _STANDARD_FIELDS}
        for key in sorted(keys):
            values = [float(r[key]) for r in reps if not r.get("error_occurred")
                      and isinstance(r.get(key), (int, float))]
            if values:
                counters[key] = statistics.median(values)
        results.append(Result(
            name=canonical_name(family, primitive, params), family=family, primitive=primitive,
            params=params, program=program,
            ns_per_op=statistics.median(times) if times and not errors else None,
            repetitions_ns=times, iterations=[int(r.get("iterations", 0)) for r in reps],
            counters=counters, error=errors[0] if errors else None))
    return results


def combine(program_docs: dict[str, dict[str, Any]], settings: dict[str, Any]) -> dict[str, Any]:
    """One document from each program's Google Benchmark JSON (``{program: doc}``)."""
    benchmarks: list[dict[str, Any]] = []
    programs: dict[str, Any] = {}
    context: dict[str, Any] = {}
    for program, doc in program_docs.items():
        results = parse_program_json(doc, program)
        ctx = doc.get("context", {})
        if not context:
            context = {k: ctx[k] for k in ("host_name", "num_cpus", "mhz_per_cpu",
                                            "cpu_scaling_enabled", "caches", "library_build_type")
                       if k in ctx}
        programs[program] = {"date": ctx.get("date"), "load_avg": ctx.get("load_avg"),
                             "benchmarks": len(results)}
        for r in results:
            row = asdict(r)
            row["min_ns"], row["max_ns"] = r.min_ns, r.max_ns
            benchmarks.append(row)
    context["kernel"] = platform.release()
    return {"schema": SCHEMA, "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "settings": settings, "context": context, "programs": programs,
            "benchmarks": benchmarks}


def load(path: Path) -> dict[str, Any]:
    """A combined microbench.json (a directory holding one is accepted too)."""
    path = Path(path)
    if path.is_dir():
        path = path / COMBINED_NAME
    doc = json.loads(path.read_text())
    if doc.get("schema") != SCHEMA:
        raise MicrobenchError(f"{path}: not a {SCHEMA} document")
    return doc


def results(doc: dict[str, Any]) -> list[Result]:
    """The benchmarks of a combined document as Result records."""
    fields = set(Result.__dataclass_fields__)
    return [Result(**{k: v for k, v in row.items() if k in fields}) for row in doc["benchmarks"]]


def lookup(doc: dict[str, Any], name: str) -> float | None:
    """Median ns per operation of the benchmark ``name`` (canonical form), or None."""
    for row in doc["benchmarks"]:
        if row["name"] == name:
            return row["ns_per_op"]
    return None


def series(doc: dict[str, Any], family: str, primitive: str, param: str) -> list[tuple[int, float]]:
    """(param value, ns per op) of one primitive, sorted by the parameter, errors left out."""
    points = [(row["params"][param], row["ns_per_op"]) for row in doc["benchmarks"]
              if row["family"] == family and row["primitive"] == primitive
              and param in row["params"] and row["ns_per_op"] is not None]
    return sorted(points)


# ------------------------------------------------------------------------------------ running

def program_path(build: Path, program: str) -> Path:
    return Path(build) / "servers" / "microbench" / program


def command(binary: Path, out_json: Path, cpus: str | None, repetitions: int,
            min_time_s: float | None, benchmark_filter: str | None) -> list[str]:
    cmd = []
    if cpus is not None:
        cmd += ["taskset", "-c", cpus]
    cmd += [str(binary), f"--benchmark_out={out_json}", "--benchmark_out_format=json"]
    if repetitions > 1:
        cmd += [f"--benchmark_repetitions={repetitions}", "--benchmark_display_aggregates_only=true"]
    if min_time_s is not None:
        cmd.append(f"--benchmark_min_time={min_time_s:g}")
    if benchmark_filter:
        cmd.append(f"--benchmark_filter={benchmark_filter}")
    return cmd


def run_program(binary: Path, out_json: Path, *, cpus: str | None = "0", repetitions: int = 3,
                min_time_s: float | None = None, benchmark_filter: str | None = None,
                timeout_s: float = 1800, echo: bool = True) -> dict[str, Any]:
    """Runs one program (its console table goes to our stdout when ``echo``) and returns its
    JSON. Raises MicrobenchError when it fails, times out or measures nothing."""
    if not binary.exists():
        raise NotBuilt(f"{binary} is missing: build first (make build)")
    if cpus is not None and shutil.which("taskset") is None:
        raise NotBuilt("taskset is missing (util-linux): cannot pin to one CPU")
    cmd = command(binary, out_json, cpus, repetitions, min_time_s, benchmark_filter)
    try:
        proc = subprocess.run(cmd, stdout=None if echo else subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        raise MicrobenchError(f"{binary.name} ran longer than {timeout_s:.0f} s") from exc
    if proc.returncode != 0:
        raise MicrobenchError(f"{binary.name} exited with {proc.returncode}: {proc.stderr.strip()[-500:]}")
    if not out_json.exists():
        raise MicrobenchError(f"{binary.name} wrote no JSON ({proc.stderr.strip()[-300:]})")
    doc = json.loads(out_json.read_text())
    if not doc.get("benchmarks"):
        raise MicrobenchError(f"{binary.name} measured nothing ({proc.stderr.strip()[-300:]})")
    return doc


def run_all(build: Path, out_dir: Path, *, programs: tuple[str, ...] = PROGRAMS,
            cpus: str | None = "0", repetitions: int = 3, min_time_s: float | None = None,
            smoke: bool = False, echo: bool = True) -> Path:
    """Runs ``programs`` into ``out_dir`` (PROGRAM.json each) and writes microbench.json there."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if smoke:
        repetitions, min_time_s = 1, SMOKE_MIN_TIME_S
    docs = {}
    for program in programs:
        if echo:
            print(f"microbench: {program}", flush=True)
        docs[program] = run_program(
            program_path(build, program), out_dir / f"{program}.json", cpus=cpus,
            repetitions=repetitions, min_time_s=min_time_s,
            benchmark_filter=SMOKE_FILTERS[program] if smoke else None,
            timeout_s=300 if smoke else 1800, echo=echo)
    settings = {"cpus": cpus, "repetitions": repetitions, "min_time_s": min_time_s,
                "smoke": smoke, "statistic": "median of repetitions, real time"}
    return write_combined(out_dir, combine(docs, settings))


def collect(json_dir: Path) -> Path:
    """Combines the PROGRAM.json files already in ``json_dir`` into its microbench.json."""
    json_dir = Path(json_dir)
    docs = {p: json.loads((json_dir / f"{p}.json").read_text())
            for p in PROGRAMS if (json_dir / f"{p}.json").exists()}
    if not docs:
        raise MicrobenchError(f"{json_dir} holds none of {', '.join(p + '.json' for p in PROGRAMS)}")
    return write_combined(json_dir, combine(docs, {"cpus": None, "repetitions": None,
                                                   "min_time_s": None, "smoke": None,
                                                   "statistic": "median of repetitions, real time",
                                                   "collected": True}))


def write_combined(out_dir: Path, doc: dict[str, Any]) -> Path:
    path = Path(out_dir) / COMBINED_NAME
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    tmp.replace(path)
    return path


def problems(doc: dict[str, Any]) -> list[str]:
    """What makes a run unusable: a program without results, or an unexpected error."""
    out = []
    for program, info in doc["programs"].items():
        if info["benchmarks"] == 0:
            out.append(f"{program}: no benchmark ran")
    for row in doc["benchmarks"]:
        if row["error"] and not any(row["error"].startswith(a) for a in ALLOWED_SKIPS):
            out.append(f"{row['name']}: {row['error']}")
    families = {row["family"] for row in doc["benchmarks"] if row["ns_per_op"] is not None}
    expected = {f for f in FAMILIES if any(
        program in doc["programs"] for program in _PROGRAMS_OF_FAMILY[f])}
    out += [f"family {f}: no result" for f in sorted(expected - families)]
    return out


_PROGRAMS_OF_FAMILY = {
    "parse": ("parser_bench",), "connection": ("parser_bench",),
    "spawn": ("spawn_bench", "st_bench", "pth_bench"),
    "switch": ("switch_bench", "st_bench", "pth_bench"),
    "events": ("events_bench",), "write": ("write_bench",),
    "socket": ("socket_bench",), "mmap": ("socket_bench",),
}


# ------------------------------------------------------------------------------------ targets

@dataclass(frozen=True)
class TargetCheck:
    """One of issue 13's targets against a run."""

    target: str
    measured: str
    verdict: str  # "met", "not met" or "no data"


def loglog_slope(points: list[tuple[int, float]]) -> float | None:
    """Least-squares slope of log(time) against log(N): 1 is linear growth, 0 is flat."""
    pts = [(math.log(n), math.log(t)) for n, t in points if n > 0 and t > 0]
    if len(pts) < 2:
        return None
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    return sum((x - mx) * (y - my) for x, y in pts) / sxx if sxx else None


#: "grows linearly": the log–log slope over N ≥ 100 (where the per-descriptor part dominates
#: the fixed write+read) is at least this.
LINEAR_SLOPE = 0.8


def check_targets(doc: dict[str, Any]) -> list[TargetCheck]:
    """The issue's targets: fiber switch ≤ 1/50 of a condition-variable round trip; epoll flat
    within 2× from 10 to 10,000 idle while poll and select grow linearly; a minimal request
    parsed in ≤ 100 ns."""
    checks = []
    fiber, condvar = lookup(doc, "switch/fiber"), lookup(doc, "switch/pthread_condvar")
    target = "Boost.Context fiber round trip ≤ 1/50 of a pthread condition-variable round trip"
    if fiber and condvar:
        ratio = condvar / fiber
        checks.append(TargetCheck(target, f"{fiber:.3g} ns vs {condvar:,.0f} ns: 1/{ratio:,.0f}",
                                  "met" if ratio >= 50 else "not met"))
    else:
        checks.append(TargetCheck(target, "–", "no data"))

    epoll = [(n, t) for n, t in series(doc, "events", "epoll", "idle") if 10 <= n <= 10000]
    target = "epoll wait flat within 2× from 10 to 10,000 idle descriptors"
    if len(epoll) >= 2 and epoll[0][0] == 10 and epoll[-1][0] == 10000:
        spread = max(t for _, t in epoll) / min(t for _, t in epoll)
        checks.append(TargetCheck(target, f"{min(t for _, t in epoll):,.0f}–{max(t for _, t in epoll):,.0f} ns "
                                  f"over {len(epoll)} sizes: max/min {spread:.2f}",
                                  "met" if spread <= 2 else "not met"))
    else:
        checks.append(TargetCheck(target, "–", "no data"))

    for mech in ("poll", "select"):
        pts = series(doc, "events", mech, "idle")
        slope = loglog_slope([(n, t) for n, t in pts if n >= 100])
        target = f"{mech} wait grows linearly with idle descriptors (log–log slope ≥ {LINEAR_SLOPE} for N ≥ 100)"
        if slope is None:
            checks.append(TargetCheck(target, "–", "no data"))
        else:
            lo, hi = pts[0], pts[-1]
            checks.append(TargetCheck(target, f"slope {slope:.2f}; {lo[1]:,.0f} ns at {lo[0]:,} → "
                                      f"{hi[1]:,.0f} ns at {hi[0]:,}",
                                      "met" if slope >= LINEAR_SLOPE else "not met"))

    parse = lookup(doc, "parse/minimal_request")
    target = "the core parses a minimal request (GET / HTTP/1.0) in ≤ 100 ns"
    checks.append(TargetCheck(target, f"{parse:.1f} ns" if parse else "–",
                              "no data" if parse is None else ("met" if parse <= 100 else "not met")))
    return checks


# ------------------------------------------------------------------------------- command line

def add_parser(subparsers) -> argparse.ArgumentParser:
    """Adds ``microbench`` to ``python3 -m harness``'s subcommands."""
    p = subparsers.add_parser(
        "microbench", help="run the Google Benchmark programs pinned to one CPU; write microbench.json",
        description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="results/microbench",
                   help="directory for PROGRAM.json and microbench.json (default results/microbench)")
    p.add_argument("--build", help="build directory (default $HTTPBENCH_BUILD or ./build)")
    p.add_argument("--programs", help=f"comma-separated subset of {','.join(PROGRAMS)}")
    p.add_argument("--cpus", default="0", help="taskset CPU list (default 0); 'none' to not pin")
    p.add_argument("--repetitions", type=int, default=3, help="repetitions per benchmark (median kept)")
    p.add_argument("--min-time", type=float, default=DEFAULT_MIN_TIME_S,
                   help=f"Google Benchmark --benchmark_min_time per repetition, seconds "
                        f"(default {DEFAULT_MIN_TIME_S:g}; Google Benchmark's own is 0.5)")
    p.add_argument("--smoke", action="store_true",
                   help="every program briefly at its smallest sizes; fail on any unexpected error")
    p.add_argument("--collect", action="store_true",
                   help="do not run: combine the PROGRAM.json files already in --out")
    p.set_defaults(func=main)
    return p


def main(args: argparse.Namespace) -> int:
    """Runs (or collects), prints the targets, returns 0, 1 (a problem in the run) or 2 (bad
    input, missing build)."""
    from harness.registry import build_dir

    out = Path(args.out)
    try:
        if args.collect:
            path = collect(out)
        else:
            programs = tuple(p.strip() for p in args.programs.split(",")) if args.programs else PROGRAMS
            unknown = [p for p in programs if p not in PROGRAMS]
            if unknown:
                print(f"microbench: unknown program(s) {', '.join(unknown)}", file=sys.stderr)
                return 2
            path = run_all(Path(args.build) if args.build else build_dir(), out, programs=programs,
                           cpus=None if args.cpus == "none" else args.cpus,
                           repetitions=args.repetitions, min_time_s=args.min_time, smoke=args.smoke)
    except MicrobenchError as exc:
        print(f"microbench: error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, NotBuilt) else 1
    doc = load(path)
    print(f"microbench: {len(doc['benchmarks'])} benchmarks → {path}")
    found = problems(doc)
    for problem in found:
        print(f"microbench: PROBLEM {problem}", file=sys.stderr)
    if not args.smoke:
        for c in check_targets(doc):
            print(f"[{c.verdict:^7}] {c.target}: {c.measured}")
    return 1 if found else 0


if __name__ == "__main__":
    _parser = argparse.ArgumentParser(prog="python3 -m harness.microbench")
    _sub = _parser.add_subparsers(dest="command")
    add_parser(_sub)
    sys.exit(main(_parser.parse_args(["microbench", *sys.argv[1:]])))
