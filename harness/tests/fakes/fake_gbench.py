#!/usr/bin/env python3
"""A stand-in for a Google Benchmark program: writes --benchmark_out JSON with two benchmarks
(`fake/one`, `fake/two/size:10`), one run per --benchmark_repetitions, and records its command
line and the CPUs it may run on in $FAKE_GBENCH_ARGV. $FAKE_GBENCH_MODE: "empty" writes no benchmarks (as a filter that
matches nothing does), "fail" exits 3, "error" makes fake/two report an error."""

import json
import os
import sys

args = dict(a.split("=", 1) for a in sys.argv[1:] if a.startswith("--") and "=" in a)
if os.environ.get("FAKE_GBENCH_ARGV"):
    with open(os.environ["FAKE_GBENCH_ARGV"], "a") as f:
        f.write(json.dumps({"argv": sys.argv, "cpus": sorted(os.sched_getaffinity(0))}) + "\n")
mode = os.environ.get("FAKE_GBENCH_MODE", "")
if mode == "fail":
    print("fake failure", file=sys.stderr)
    sys.exit(3)
reps = int(args.get("--benchmark_repetitions", "1"))
runs = []
if mode != "empty":
    for name, base in (("fake/one/real_time", 10.0), ("fake/two/size:10/real_time", 2.0)):
        for i in range(reps):
            run = {"name": name, "run_name": name, "run_type": "iteration", "repetitions": reps,
                   "repetition_index": i, "iterations": 100, "real_time": base * (i + 1),
                   "cpu_time": base, "time_unit": "us"}
            if mode == "error" and "two" in name:
                run.update(error_occurred=True, error_message="cannot do two")
            runs.append(run)
doc = {"context": {"host_name": "fake", "num_cpus": 1, "mhz_per_cpu": 1000, "date": "now"},
       "benchmarks": runs}
with open(args["--benchmark_out"], "w") as f:
    json.dump(doc, f)
