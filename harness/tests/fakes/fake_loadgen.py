#!/usr/bin/python3
"""A stand-in for build/loadgen/loadgen: parses the options the harness passes, sleeps
FAKE_LOADGEN_SLEEP seconds and writes a loadgen-shaped JSON (docs/interfaces.md) whose mean
response time is 0.1 + 0.05·c ms. FAKE_LOADGEN_MODE = normal | fail (exit 1) | garbage."""
import json
import os
import sys
import time

args = sys.argv[1:]
opts = {}
i = 0
while i < len(args):
    a = args[i]
    if a in ("-k",):
        opts[a] = True
        i += 1
    elif a.startswith("-"):
        opts[a] = args[i + 1]
        i += 2
    else:
        opts["url"] = a
        i += 1
pid_dir = os.environ.get("FAKE_PID_DIR")
if pid_dir:
    open(os.path.join(pid_dir, f"{os.getpid()}.loadgen"), "w").write(" ".join(sys.argv))
time.sleep(float(os.environ.get("FAKE_LOADGEN_SLEEP", "0.05")))
mode = os.environ.get("FAKE_LOADGEN_MODE", "normal")
if mode == "fail":
    print("fake loadgen: failing on purpose", file=sys.stderr)
    sys.exit(1)
c = int(opts["-c"])
mean = 0.1 + 0.05 * c
if "-d" in opts:  # time-based: a warm-up, then a kept window
    warm = float(opts.get("--warmup", "0s").rstrip("s"))
    elapsed = float(opts["-d"].rstrip("s")) - warm
    kept = int(elapsed * c / (mean / 1000))
    n = kept
else:
    n = int(opts["-n"])
    d = int(opts.get("--discard", 1000))
    kept = n - 2 * d
    elapsed = kept * mean / 1000 / c
end_ns = time.monotonic_ns()
util = float(os.environ.get("FAKE_LOADGEN_CLIENT", "0.3"))
result = {
    "mode": "closed", "command_line": " ".join(sys.argv), "url": opts["url"], "concurrency": c,
    "keep_alive": "-k" in opts, "threads": int(opts.get("-t", 1)), "completed": kept, "completed_total": n,
    "incomplete": 0, "elapsed_s": elapsed, "requests_per_second": kept / elapsed,
    "throughput_mbit_s": 1.0, "mean_response_ms": mean, "median_response_ms": mean,
    "percentiles_ms": {"50": mean, "90": mean * 1.1, "99": mean * 1.5, "99.9": mean * 2, "99.99": mean * 2,
                       "max": mean * 3},
    "offered_load": c, "measured_load": c * 0.99, "mean_connect_ms": 0.01, "errors": {}, "errors_total": 0,
    "window_start_ns": end_ns - int(elapsed * 1e9) if "-d" in opts else None,
    "window_end_ns": end_ns if "-d" in opts else None,
    "client_cpu": {"user_s": 0.01, "sys_s": 0.01, "utilization": util}, "client_bound": util > 0.9,
}
with open(opts["--json"], "w") as fh:
    fh.write("not json" if mode == "garbage" else json.dumps(result))
