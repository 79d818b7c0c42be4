#!/usr/bin/python3
"""Does a capped server's cost per request follow the machine's caches? A backend runs capped in
its own cgroup on the server CPU (as `harness peers --server-cpu-share`) under our loadgen on the
client CPU, while the steadiness probe's cache chase (servers/microbench/steady_loop, half the L2)
runs beside it at SCHED_IDLE on the server CPU, so it only takes what the capped server leaves.
Every window prints the server's CPU per request (its cgroup's CPU over the requests its
/server-status counted) and the chase's rate; the end prints their correlation.

    /usr/bin/python3 scripts/steadiness_vs_server.py sped --connections 100 --keep-alive

A negative correlation near -1 says the variation between a server's windows is the machine's
(when the core's caches are slow, so is the server's kernel work), not the server's or the
method's. Needs root (cgroups) and a build (make build-bench). Numbers for notes, not a test.
docs/methodology.md ("How steady the machine is") quotes a run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import steadiness  # noqa: E402
from harness.cgroup import ServerCgroup  # noqa: E402
from harness.registry import build_dir  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("backend", help="a backend with /server-status (sped, uring, fiber, ...)")
    ap.add_argument("--share", type=float, default=0.21, help="the server's cap, share of one CPU")
    ap.add_argument("--connections", type=int, default=100)
    ap.add_argument("--keep-alive", action="store_true")
    ap.add_argument("--windows", type=int, default=11)
    ap.add_argument("--window-s", type=float, default=2.0)
    ap.add_argument("--server-cpu", type=int, default=0)
    ap.add_argument("--client-cpu", type=int, default=1)
    args = ap.parse_args()
    build = build_dir()
    exe = build / "servers" / f"httpd-{args.backend}"
    loop = steadiness.loop_path(build)
    if not exe.exists() or not loop.exists():
        sys.exit(f"{exe} or {loop} is not built (make build-bench)")

    cg = ServerCgroup(name=f"steadiness-vs-server-{time.time_ns()}", share=args.share,
                      cpus=[args.server_cpu])
    procs: list[subprocess.Popen] = []
    try:
        server = subprocess.Popen(["taskset", "-c", str(args.server_cpu), str(exe), "--port", "0"],
                                  stdout=subprocess.PIPE, text=True, preexec_fn=cg.enter)
        procs.append(server)
        port = int(server.stdout.readline().rsplit(":", 1)[1])
        run_s = args.windows * args.window_s + 2
        procs.append(subprocess.Popen(
            ["taskset", "-c", str(args.client_cpu), str(build / "loadgen" / "loadgen"), "-c",
             str(args.connections), "-d", f"{run_s + 2:.0f}s"] + (["-k"] if args.keep_alive else [])
            + [f"http://127.0.0.1:{port}/index.html"], stdout=subprocess.DEVNULL))
        time.sleep(2)  # past the loadgen's ramp

        def requests() -> int:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/server-status", timeout=5) as r:
                return int(json.load(r)["requests"])

        kib = steadiness.cache_working_set_kib(args.server_cpu)
        chase = subprocess.Popen(["chrt", "--idle", "0", str(loop), str(args.server_cpu),
                                  str(args.windows * args.window_s), str(args.window_s), str(kib)],
                                 stdout=subprocess.PIPE, text=True)
        procs.append(chase)
        costs = []
        before = (requests(), cg.read().cpu_ns)
        for _ in range(args.windows):
            time.sleep(args.window_s)
            now = (requests(), cg.read().cpu_ns)
            costs.append((now[1] - before[1]) / 1e3 / max(now[0] - before[0], 1))
            before = now
        rates = [float(x) for x in chase.communicate(timeout=60)[0].split()]
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
                p.wait(timeout=10)
        cg.close()
    n = min(len(rates), len(costs))
    print(f"{args.backend} capped at {args.share:g} of CPU {args.server_cpu}, {args.connections} "
          f"{'keep-alive ' if args.keep_alive else ''}connections; chase through {kib} KiB at SCHED_IDLE")
    print("window  server µs/request  chase steps/s")
    for i in range(n):
        print(f"{i + 1:6d}  {costs[i]:17.2f}  {rates[i]:13.0f}")
    cv = lambda v: statistics.stdev(v) / statistics.fmean(v)  # noqa: E731
    print(f"variation: server {cv(costs[:n]):.1%}, chase {cv(rates[:n]):.1%}; "
          f"correlation {statistics.correlation(costs[:n], rates[:n]):+.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
