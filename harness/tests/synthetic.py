"""Synthetic run directories shaped like a real run (meta.json + runs.jsonl), for tests and for
developing the figures without the C++ parts. The response time of each server is
``intercept + slope · load`` plus small deterministic noise, so fits have known answers.

Regenerate the committed fixture with:
    /usr/bin/python3 -m harness.tests.synthetic harness/tests/data/tiny_run
"""

from __future__ import annotations

import json
import random
import sys
from dataclasses import dataclass
from pathlib import Path


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
    base_rss_kib: int
    rss_per_client_kib: float


FAKE_SERVERS = (
    FakeServer("sped", "toy", "event-driven", "event-driven, single process (SPED)", 0.050, 0.06, 38.0, 0.4, 3000, 2.0),
    FakeServer("st", "toy", "user-level threads", "user-level threads (State Threads)", 0.052, 0.07, 40.0, 0.5, 3500, 70.0),
    FakeServer("thread", "toy", "kernel threads", "thread per connection (NPTL)", 0.075, 0.08, 58.0, 2.1, 3500, 72.0),
    FakeServer("fork", "toy", "processes", "process per connection (fork)", 0.160, 0.20, 125.0, 3.0, 3500, 450.0),
    FakeServer("nginx", "production", "event-driven", "event-driven, one worker process (epoll)", 0.060, 0.07, 46.0, 0.3, 12000, 1.5),
    FakeServer("apache-prefork", "production", "processes", "process pool (Apache 2.4 prefork MPM)", 0.110, 0.15, 85.0, 1.8, 30000, 10.0),
)


def make_record(server: FakeServer, level: int, rep: int, requests: int, discard: int, rng: random.Random,
                client_bound: bool = False, shortfall: bool = False, errors: int = 0) -> dict:
    mean_ms = (server.intercept_ms + server.slope_ms * level) * (1 + rng.uniform(-0.01, 0.01))
    kept = requests - 2 * discard
    elapsed = kept * mean_ms / 1000 / level
    measured = level * (0.985 + rng.uniform(0, 0.01))
    if shortfall:
        measured = level * 0.6
        elapsed = kept * mean_ms / 1000 / measured
    rps = kept / elapsed
    served = requests + rng.randint(0, 3)
    cpu_s = server.cpu_us * served / 1e6
    ctx = server.ctx_per_request * served
    util = 0.95 if client_bound else 0.35 + 0.2 * rng.random()
    errs = {"connect_refused": errors} if errors else {}
    return {
        "schema": 1,
        "key": f"{server.name}|{level}|{rep}",
        "backend": server.name,
        "base_backend": server.name,
        "kind": server.kind,
        "model": server.model,
        "category": server.category,
        "offered_load": level,
        "repetition": rep,
        "started_at": "2026-11-23T12:00:00+00:00",
        "status": "ok",
        "error": None,
        "loadgen_argv": ["loadgen", "-c", str(level), "-n", str(requests)],
        "loadgen": {
            "mode": "closed",
            "concurrency": level,
            "keep_alive": False,
            "threads": 1,
            "completed": kept,
            "completed_total": requests,
            "incomplete": 0,
            "elapsed_s": elapsed,
            "requests_per_second": rps,
            "throughput_mbit_s": rps * 420 * 8 / 1e6,
            "mean_response_ms": mean_ms,
            "median_response_ms": mean_ms * 0.97,
            "percentiles_ms": {"50": mean_ms * 0.97, "90": mean_ms * 1.2, "99": mean_ms * 1.9,
                               "99.9": mean_ms * 3, "99.99": mean_ms * 4, "max": mean_ms * 6},
            "offered_load": level,
            "measured_load": measured,
            "mean_connect_ms": 0.02,
            "errors": errs,
            "errors_total": errors,
            "client_cpu": {"user_s": elapsed * util * 0.3, "sys_s": elapsed * util * 0.7, "utilization": util},
            "client_bound": client_bound,
        },
        "server_metrics": {
            "cpu_user_s": cpu_s * 0.3,
            "cpu_sys_s": cpu_s * 0.7,
            "peak_rss_kib": int(server.base_rss_kib + server.rss_per_client_kib * level),
            "rss_sampled_max_kib": int(server.base_rss_kib + server.rss_per_client_kib * level * 0.9),
            "hwm_sum_kib": int(server.base_rss_kib + server.rss_per_client_kib * level),
            "pss_sum_kib": int((server.base_rss_kib + server.rss_per_client_kib * level)
                               * (0.4 if server.category == "processes" else 0.9)),
            "processes_max": 1 if server.category != "processes" else min(level, 64) + 1,
            "threads_max": 1 if server.category != "kernel threads" else level + 1,
            "samples": 10,
            "requests_served": served,
            "ctx_voluntary": int(ctx * 0.8),
            "ctx_involuntary": int(ctx * 0.2),
        },
        "server": {"argv": [server.name], "pid": 1000, "port": 40000, "cpus": "0", "client_cpus": "1",
                   "startup_s": 0.01, "exit_code": 0, "killed_after_grace": False,
                   "stats": {"backend": server.name, "requests": served} if server.kind == "toy" else None,
                   "rusage": {}},
        "duration_s": elapsed + 0.05,
    }


def make_run(run_dir: Path, servers=FAKE_SERVERS, levels=(1, 10, 50, 100, 200), repetitions: int = 2,
             requests: int = 3000, discard: int = 100, seed: int = 4) -> Path:
    """Write a complete synthetic run; a few points are flagged so the report shows flags."""
    rng = random.Random(seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    records = []
    for rep in range(repetitions):
        for s in servers:
            for level in levels:
                records.append(make_record(
                    s, level, rep, requests, discard, rng,
                    client_bound=(s.name == "sped" and level == levels[-1] and rep == 0),
                    shortfall=(s.name == "apache-prefork" and level == levels[-1]),
                    errors=3 if (s.name == "fork" and level == levels[-1] and rep == 0) else 0,
                ))
    records.append({"schema": 1, "key": f"fork|{levels[-1] * 10}|0", "backend": "fork", "base_backend": "fork",
                    "kind": "toy", "model": "process per connection (fork)", "category": "processes",
                    "offered_load": levels[-1] * 10, "repetition": 0, "status": "skipped",
                    "error": "offered load exceeds the backend's max_connections"})
    with open(run_dir / "runs.jsonl", "w") as fh:
        for r in records:
            fh.write(json.dumps(r) + "\n")
    exp_text = (
        '[experiment]\nname = "synthetic"\ntitle = "Synthetic tiny run (test fixture)"\n'
        '[servers]\nbackends = "all"\nproduction = "all"\n'
        f"[load]\nlevels = {list(levels)}\nrequests = {requests}\ndiscard = {discard}\n"
        f"repetitions = {repetitions}\n"
    )
    (run_dir / "experiment.toml").write_text(exp_text)
    meta = {
        "schema": 1,
        "run_id": "synthetic-tiny",
        "created": "2026-11-23T12:00:00+00:00",
        "finished": "2026-11-23T12:01:00+00:00",
        "wall_s": 60.0,
        "status": "complete",
        "command_line": "python3 -m harness run synthetic.toml",
        "experiment": {
            "name": "synthetic", "title": "Synthetic tiny run (test fixture)", "description": "made up numbers",
            "paper": "", "file": "synthetic.toml", "quick": False, "backends": "all", "production": "all",
            "backend_args": {}, "variants": [], "workers": None, "apache_pool": 64,
            "load": {"mode": "closed", "levels": list(levels), "keep_alive": False, "requests": requests,
                     "discard": discard, "repetitions": repetitions, "threads": 1, "timeout_s": 30.0,
                     "path": "/index.html", "ready_timeout_s": 10.0},
            "page_size": 305, "server_cpus": "0", "client_cpus": "1",
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
        "pinning": {"server_cpus": "0", "client_cpus": "1"},
        "loadgen": "/build/loadgen/loadgen",
        "targets": [{"label": s.name, "kind": s.kind, "backend": s.name, "model": s.model,
                     "category": s.category, "executable": s.name, "args": [], "max_connections": None}
                    for s in servers],
        "notes": ["Production server h2o is not installed; skipped."],
    }
    (run_dir / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return run_dir


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "harness/tests/data/tiny_run")
    make_run(out)
    print(out)
