"""Synthetic run directories shaped like a real run (meta.json + runs.jsonl + memory.jsonl), for
tests and for developing the figures without the C++ parts. The response time of each server is
``intercept + slope · load`` times a small deterministic noise, so fits have known answers.

Regenerate the committed fixture with:
    /usr/bin/python3 -m harness.tests.synthetic harness/tests/data/tiny_run
"""

from __future__ import annotations

import dataclasses
import json
import random
import sys
from dataclasses import dataclass
from pathlib import Path


PREEMPTED_SHARE = 0.25  # of a synthetic server's kernel switches, the preemptions


@dataclass(frozen=True)
class FakeServer:
    name: str
    kind: str
    category: str
    model: str
    slope_ms: float  # ms per client
    intercept_ms: float
    cpu_us: float  # server CPU per request
    ctx_per_request: float
    base_memory_kib: int
    memory_per_client_kib: float
    user_switches_per_request: float = 0.0
    ranked: bool = True
    backlog: int | None = None  # an unranked small-backlog series: measured load capped near it
    reference_for: str = ""  # a reference server (kind "reference"): the backend it is the floor of


FAKE_SERVERS = (
    FakeServer("sped", "toy", "event-driven", "event-driven, single process (SPED)", 0.050, 0.06, 38.0, 0.4, 3000, 2.0),
    FakeServer("st", "toy", "user-level threads", "user-level threads (State Threads)", 0.045, 0.07, 40.0, 0.5, 3500,
               70.0, user_switches_per_request=2.0),
    FakeServer("pth", "toy", "user-level threads", "user-level threads (GNU Pth)", 0.076, 0.08, 60.0, 1.0, 3500, 70.0,
               user_switches_per_request=3.0),
    FakeServer("thread", "toy", "kernel threads", "thread per connection (NPTL)", 0.075, 0.08, 58.0, 2.1, 3500, 72.0),
    FakeServer("fork", "toy", "processes", "process per connection (fork)", 0.400, 0.20, 125.0, 3.0, 3500, 450.0),
    FakeServer("nginx", "production", "event-driven", "event-driven, one worker process (epoll)", 0.090, 0.07, 46.0,
               0.3, 12000, 1.5),
    FakeServer("apache-prefork", "production", "processes", "process pool (Apache 2.4 prefork MPM)", 0.110, 0.15, 85.0,
               1.8, 30000, 10.0),
    FakeServer("apache-worker", "production", "kernel threads", "thread pool (Apache 2.4 worker MPM)", 0.108, 0.15,
               80.0, 1.5, 20000, 8.0),
)
BACKLOG_SERIES = FakeServer("sped-backlog128", "toy", "event-driven", "event-driven, single process (SPED)", 0.050,
                            0.06, 38.0, 0.4, 3000, 2.0, ranked=False, backlog=128)
# The floors of sped and fork: sped's core costs 38 - 30 = 8 µs per request, fork's 125 - 80 = 45.
REFERENCE_SERVERS = (
    FakeServer("ref-sped", "reference", "event-driven", "event-driven, single process (SPED), reference", 0.045,
               0.05, 30.0, 0.4, 1000, 0.5, ranked=False, reference_for="sped"),
    FakeServer("ref-fork", "reference", "processes", "process per connection (fork), reference", 0.300, 0.15, 80.0,
               3.0, 1000, 300.0, ranked=False, reference_for="fork"),
)
WINDOW_S = 2.0


def make_record(server: FakeServer, level: int, rep: int, rng: random.Random, noise: float = 0.01,
                client_busy: bool = False, server_idle: bool = False, shortfall: bool = False,
                errors: int = 0) -> dict:
    mean_ms = (server.intercept_ms + server.slope_ms * level) * (1 + rng.uniform(-noise, noise))
    measured = level * (0.985 + rng.uniform(0, 0.01))
    if server.backlog is not None and level > server.backlog:
        measured = server.backlog * 1.02
    if shortfall:
        measured = level * 0.6
    rps = measured / (mean_ms / 1000)
    kept = int(rps * WINDOW_S)
    cpu_s = server.cpu_us * kept / 1e6
    share = 0.3
    util = 0.7 if server_idle else 0.96 + 0.03 * rng.random()  # server-bound: the cap is used
    client = 0.75 if client_busy else 0.35 + 0.1 * rng.random()
    errs = {"connect_refused": errors} if errors else {}
    start_ns = 10**12 + rep * 10**10
    return {
        "schema": 2,
        "key": f"{server.name}|{level}|{rep}",
        "backend": server.name, "base_backend": server.name.split("-backlog")[0],
        "kind": server.kind, "model": server.model, "category": server.category, "ranked": server.ranked,
        "offered_load": level, "repetition": rep, "started_at": "2026-11-23T12:00:00+00:00",
        "status": "ok", "error": None,
        "loadgen_argv": ["loadgen", "-c", str(level), "-d", "2.5s", "--warmup", "0.5s"],
        "loadgen": {
            "mode": "closed", "concurrency": level, "keep_alive": False, "threads": 1,
            "completed": kept, "completed_total": kept + 500, "incomplete": level,
            "elapsed_s": WINDOW_S, "window_start_ns": start_ns, "window_end_ns": start_ns + int(WINDOW_S * 1e9),
            "requests_per_second": rps, "throughput_mbit_s": rps * 420 * 8 / 1e6,
            "mean_response_ms": mean_ms, "median_response_ms": mean_ms * 0.97,
            "percentiles_ms": {"50": mean_ms * 0.97, "90": mean_ms * 1.2, "99": mean_ms * 1.9,
                               "99.9": mean_ms * 3, "99.99": mean_ms * 4, "max": mean_ms * 6},
            "offered_load": level, "measured_load": measured, "measured_load_nt": measured,
            "mean_connect_ms": 0.02, "errors": errs, "errors_total": errors,
            "client_cpu": {"user_s": WINDOW_S * client * 0.3, "sys_s": WINDOW_S * client * 0.7,
                           "utilization": client},
            "client_bound": client > 0.9,
        },
        "server_metrics": {
            "window_s": WINDOW_S, "source": "cgroup", "cpu_s": cpu_s, "cpu_allowance_s": share * WINDOW_S,
            "utilization": util,
            "ctx_switches": server.ctx_per_request * kept,
            "preemptions": server.ctx_per_request * kept * PREEMPTED_SHARE,
            "status": ({"requests": float(kept), "user_switches": server.user_switches_per_request * kept}
                       if server.kind == "toy" else {"requests": float(kept)} if server.kind == "production"
                       else None),
            "peak_memory_bytes": int((server.base_memory_kib + server.memory_per_client_kib * level) * 1024),
        },
        "server": {"argv": [server.name], "pid": 1000, "port": 40000, "cpus": "0", "client_cpus": "1",
                   "startup_s": 0.01, "exit_code": 0, "killed_after_grace": False,
                   "stats": {"backend": server.name, "requests": kept} if server.kind == "toy" else None,
                   "rusage": {}},
        "cgroup": {"share": share, "quota_us": 1000, "period_us": 3333},
        "duration_s": WINDOW_S + 0.6,
    }


def make_run(run_dir: Path, servers=FAKE_SERVERS, levels=(1, 10, 50, 100, 200), repetitions: int = 2,
             seed: int = 4, noise: float = 0.01, flagged: bool = True, backlog_series: bool = False,
             server_bound: bool = True, claims: tuple[str, ...] = (), references: bool = False) -> Path:
    """Write a complete synthetic run. With ``flagged``, a few points of the heaviest load are
    invalid (sped: client busy and server idle; apache-prefork: load shortfall; fork: errors)."""
    rng = random.Random(seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    every = list(servers) + ([BACKLOG_SERIES] if backlog_series else []) + \
        (list(REFERENCE_SERVERS) if references else [])
    records = []
    top = levels[-1]
    for rep in range(repetitions):
        for s in every:
            for level in levels:
                records.append(make_record(
                    s, level, rep, rng, noise,
                    client_busy=flagged and s.name == "sped" and level == top and rep == 0,
                    server_idle=flagged and s.name == "sped" and level == top and rep == 0,
                    shortfall=flagged and s.name == "apache-prefork" and level == top,
                    errors=3 if (flagged and s.name == "fork" and level == top and rep == 0) else 0,
                ))
    records.append({"schema": 2, "key": f"fork|{top * 10}|0", "backend": "fork", "base_backend": "fork",
                    "kind": "toy", "model": "process per connection (fork)", "category": "processes",
                    "offered_load": top * 10, "repetition": 0, "status": "skipped",
                    "error": "offered load exceeds the backend's max_connections"})
    with open(run_dir / "runs.jsonl", "w") as fh:
        for r in records:
            fh.write(json.dumps(r) + "\n")
    with open(run_dir / "memory.jsonl", "w") as fh:
        for s in servers:
            fh.write(json.dumps({"schema": 2, "backend": s.name, "kind": s.kind, "category": s.category,
                                 "connections": 1000, "held": 1000, "status": "ok", "error": None, "measure": "pss",
                                 "bytes_per_connection": s.memory_per_client_kib * 1024,
                                 "total_bytes_per_connection": (s.base_memory_kib + 1000 * s.memory_per_client_kib)
                                 * 1024 / 1000}) + "\n")
    exp_text = (
        '[experiment]\nname = "synthetic"\ntitle = "Synthetic tiny run (test fixture)"\n'
        '[servers]\nbackends = "all"\nproduction = "all"\n'
        f"[load]\nlevels = {list(levels)}\nwindow_s = {WINDOW_S}\nrepetitions = {repetitions}\n"
    )
    (run_dir / "experiment.toml").write_text(exp_text)
    targets = [{"label": s.name, "kind": s.kind, "backend": s.name.split("-backlog")[0], "model": s.model,
                "category": s.category, "executable": s.name,
                "args": ["--backlog", str(s.backlog)] if s.backlog else [], "max_connections": None,
                "ranked": s.ranked, "reference_for": s.reference_for} for s in every]
    meta = {
        "schema": 2,
        "run_id": "synthetic-tiny",
        "created": "2026-11-23T12:00:00+00:00",
        "finished": "2026-11-23T12:01:00+00:00",
        "wall_s": 60.0,
        "status": "complete",
        "command_line": "python3 -m harness run synthetic.toml",
        "experiment": {
            "name": "synthetic", "title": "Synthetic tiny run (test fixture)", "description": "made up numbers",
            "paper": "", "claims": list(claims), "file": "synthetic.toml", "quick": False, "backends": "all",
            "production": "all", "backend_args": {}, "variants": [], "workers": None, "apache_pool": 64,
            "load": {"mode": "closed", "levels": list(levels), "keep_alive": False, "requests": 10000,
                     "discard": 1000, "repetitions": repetitions, "threads": 1, "timeout_s": 30.0,
                     "path": "/index.html", "ready_timeout_s": 10.0, "window_s": WINDOW_S, "warmup_s": None},
            "page_size": 305, "server_cpus": "0", "client_cpus": "1", "server_cpu_share": "auto",
            "validity": {"server_min": 0.9, "client_max": 0.6}, "calibration": {"client_max": 0.5, "probe_s": 1.5},
            "memory_connections": 1000,
        },
        "experiment_file": "experiment.toml",
        "environment": {
            "hostname": "synthetic", "kernel": "6.1.0-test", "os": "Debian 12", "cpu_model": "Synthetic CPU",
            "cores": 2, "cpus_allowed": [0, 1], "memory_mib": 24000, "governor": "performance",
            "somaxconn": 4096, "tcp_max_syn_backlog": 4096, "tcp_tw_reuse": 2,
            "ip_local_port_range": "32768-60999", "nofile_soft": 20000, "nofile_hard": 20000,
            "loadavg_at_start": "0.01 0.02 0.00 1/80 100", "compiler": "gcc 12.2.0",
            "git_revision": "0123456789ab", "python": "3.11.2", "matplotlib": "3.6.3",
            "production_versions": {"nginx": "nginx version: nginx/1.22.1"}, "build_dir": "/build",
        },
        "pinning": {"server_cpus": "0", "client_cpus": "1", "server_cpu_share": "auto",
                    "server_cpu_share_used": 0.3 if server_bound else None,
                    "server_cpu_limit": {"quota_us": 1000, "period_us": 3333} if server_bound else {}},
        "server_bound": server_bound,
        "calibration": {"method": "auto", "share": 0.3, "fastest": "sped", "level": top, "trial_share": 0.25,
                        "probes": [], "capacity_rps": {}} if server_bound else {"method": "none", "share": None},
        "shuffle_seed": 1,
        "loadgen": "/build/loadgen/loadgen",
        "targets": targets,
        "notes": ["Production server h2o is not installed; skipped."],
    }
    (run_dir / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return run_dir


def with_slope(name: str, slope_ms: float, servers=FAKE_SERVERS) -> tuple[FakeServer, ...]:
    """The fake servers with one server's slope replaced (to make a claim fail on purpose)."""
    return tuple(dataclasses.replace(s, slope_ms=slope_ms) if s.name == name else s for s in servers)


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "harness/tests/data/tiny_run")
    make_run(out, backlog_series=True, claims=("kerneis2009",))
    print(out)
