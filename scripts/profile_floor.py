#!/usr/bin/python3
"""Where a backend's time goes, beside its model's floor (a reference server, servers/reference/):
both run at the same load — each capped in its own cgroup (as `harness peers
--server-cpu-share`), pinned to the server CPU, driven by the same client on the client CPU —
under `perf stat` (CPU, context switches and page faults per request; then, in a run of its own,
every system call per request), then under `perf record -g` on the software CPU clock (the share
of each binary and the top symbols, kernel and user). perf's events are enabled only for the
measured client run: not for the server's start-up (a pool forking its workers), the warm-up
before it (--warmup, as in `harness peers`) or the stop.

    /usr/bin/python3 scripts/profile_floor.py sped ref-sped --client wrk --seconds 5
    /usr/bin/python3 scripts/profile_floor.py fork ref-fork --client ab --requests 5000

Needs root (cgroups, perf tracepoints), perf, taskset, wrk and ab. Numbers for notes, not a test.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.cgroup import ServerCgroup  # noqa: E402
from harness.metrics import wait_quiet  # noqa: E402
from harness.peers import PAGE_BYTES, _launch, _parse, _pools, warmup_argv, warmup_concurrency  # noqa: E402
from harness.registry import build_dir  # noqa: E402
from harness.docroot import write_page  # noqa: E402
from harness.server import unsettled_warning  # noqa: E402

SOFTWARE_EVENTS = "task-clock,context-switches,cpu-migrations,page-faults"


def run_one(name: str, perf: list[str], args: argparse.Namespace, work: Path) -> tuple[str, int]:
    """Starts `perf ... -- <server>` capped and pinned with its events disabled, waits until the
    server has finished starting (a pool forks on after its ready line), warms it up with the client (--warmup seconds; a pool's keep-alive warm-up reaches every worker, as in
    `harness peers`), enables the events for the measured client run only, stops the server (not
    perf, which then writes its output). Returns the client's output and its request count."""
    spec = _launch(name, work, work / "docroot", build_dir())
    cg = ServerCgroup(f"profile-{os.getpid()}-{name}-{perf[0]}", share=args.share, cpus=[args.server_cpu],
                      cap_period_us=round(args.cap_period_ms * 1000) if args.cap_period_ms else None)
    ctl, ack = work / f"{name}.{perf[0]}.ctl", work / f"{name}.{perf[0]}.ack"
    for fifo in (ctl, ack):
        fifo.unlink(missing_ok=True)
        os.mkfifo(fifo)
    control = ["-D", "-1", "--control", f"fifo:{ctl},{ack}"]  # events off until "enable"
    proc = subprocess.Popen(["taskset", "-c", str(args.server_cpu), "perf", perf[0], *control, *perf[1:], "--",
                             *spec.argv],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            start_new_session=True, preexec_fn=cg.enter)
    try:
        line = proc.stdout.readline()
        port = int(re.fullmatch(r"listening on .*:(\d+)\s*", line).group(1))
        server_pid = int(Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()[0])
        url = f"http://127.0.0.1:{port}/index.html"
        client_cpu = ["taskset", "-c", str(args.client_cpu)]
        if not wait_quiet(proc.pid, 10.0)[1]:  # a pool may go on forking after its ready line
            print(unsettled_warning(name, 10.0), file=sys.stderr)
        if args.warmup > 0:
            connections = warmup_concurrency(args.client, args.concurrency, args.pools.get(name, 0))
            subprocess.run([*client_cpu, *warmup_argv(args.client, connections, args.warmup, url)],
                           capture_output=True, timeout=600)
        perf_control(ctl, ack, "enable")
        client = (["wrk", "-t1", f"-c{args.concurrency}", f"-d{args.seconds}s", url] if args.client == "wrk"
                  else ["ab", "-q", f"-c{args.concurrency}", f"-n{args.requests}", url])
        done = subprocess.run([*client_cpu, *client], capture_output=True, text=True, timeout=600)
        perf_control(ctl, ack, "disable")  # the stop is not counted either
        _, n, failed = _parse(args.client, done.stdout)
        if failed:
            print(f"warning: {name}: {failed} failed requests", file=sys.stderr)
        os.kill(server_pid, signal.SIGTERM)
        proc.wait(timeout=60)
        return done.stdout, n
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        cg.close()


def perf_control(ctl: Path, ack: Path, command: str) -> None:
    """Sends perf's --control fifo `command` and waits for perf's ack (at most 10 s)."""
    with ctl.open("w") as c:
        c.write(command + "\n")
    fd = os.open(ack, os.O_RDONLY | os.O_NONBLOCK)
    try:
        deadline = time.monotonic() + 10
        reply = b""
        while b"ack" not in reply:
            if time.monotonic() > deadline:
                raise SystemExit(f"profile_floor: perf did not acknowledge '{command}'")
            try:
                reply += os.read(fd, 64)
            except BlockingIOError:
                pass
            time.sleep(0.01)
    finally:
        os.close(fd)


def counts(name: str, args: argparse.Namespace, work: Path) -> dict[str, float]:
    """Per request: CPU time, context switches and page faults from a run under the software
    counters only, then every system call that ran, from a second run with the system-call
    tracepoints on (they make each call dearer, so that run's CPU time is not reported)."""
    plain, traced = work / f"{name}.stat.csv", work / f"{name}.syscalls.csv"
    _, n = run_one(name, ["stat", "-x", ",", "-o", str(plain), "-e", SOFTWARE_EVENTS], args, work)
    per_request = {"requests": float(n)} | _read_stat(plain, n)
    _, n = run_one(name, ["stat", "-x", ",", "-o", str(traced), "-e", "syscalls:sys_enter_*"], args, work)
    return per_request | _read_stat(traced, n)


def _read_stat(path: Path, n: int) -> dict[str, float]:
    per_request = {}
    for row in csv.reader(line for line in path.read_text().splitlines() if line and not line.startswith("#")):
        if len(row) < 3 or not row[0].replace(".", "").isdigit():
            continue
        event = row[2].replace("syscalls:sys_enter_", "")
        value = float(row[0])
        if value > 0:
            per_request[event] = value / n if event != "task-clock" else value * 1000 / n  # ms -> us
    return per_request


def profile(name: str, args: argparse.Namespace, work: Path) -> str:
    """The share of CPU samples per binary (kernel, the server, libc, ...), then per symbol."""
    data = work / f"{name}.perf.data"
    run_one(name, ["record", "-q", "-e", "cpu-clock", "-F", str(args.frequency), "-g", "-o", str(data)], args, work)
    parts = []
    for sort, limit in (("dso", 0.5), ("dso,sym", args.percent_limit)):
        report = subprocess.run(["perf", "report", "-i", str(data), "--stdio", "--no-children", "-g", "none",
                                 "--sort", sort, "--percent-limit", str(limit)],
                                capture_output=True, text=True, timeout=300).stdout
        parts += [line for line in report.splitlines() if line.strip() and not line.startswith("#")] + [""]
    return "\n".join(parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("servers", nargs="+", help="backends and reference servers (ref-<model>)")
    parser.add_argument("--client", choices=("wrk", "ab"), default="wrk")
    parser.add_argument("--seconds", type=int, default=5, help="wrk duration")
    parser.add_argument("--requests", type=int, default=20000, help="ab -n")
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=1,
                        help="seconds the client runs, not counted, before the measured run (0: none)")
    parser.add_argument("--share", type=float, default=0.25, help="CPU cap of each server")
    parser.add_argument("--cap-period-ms", type=float,
                        help="CFS period of the cap (default: the shortest, 4 ms at 25 %%); longer periods "
                             "throttle a server of many tasks less often (harness peers --cap-period-ms)")
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument("--percent-limit", type=float, default=1.5, help="symbols below this share are left out")
    parser.add_argument("--frequency", type=int, default=4000, help="perf record samples per CPU second")
    parser.add_argument("--no-record", action="store_true", help="counts only, no perf record")
    parser.add_argument("--keep", type=Path, help="keep each server's perf.data and perf stat output here")
    args = parser.parse_args()
    args.pools = _pools(args.servers, build_dir())  # one read of the registry for every warm-up
    with tempfile.TemporaryDirectory(prefix="httpbench-profile-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        write_page(work / "docroot", PAGE_BYTES)
        table = {name: counts(name, args, work) for name in args.servers}
        events = sorted({e for t in table.values() for e in t}, key=lambda e: -max(t.get(e, 0) for t in table.values()))
        period = f" ({args.cap_period_ms:g}-ms period)" if args.cap_period_ms else ""
        print(f"per request, {args.client} -c{args.concurrency}, each server capped at {args.share:.0%} of CPU {args.server_cpu}{period}")
        print(f"{'':<22}" + "".join(f"{name:>14}" for name in args.servers))
        # System calls made fewer than once per 1,000 requests are start-up and stop: left out.
        shown = [e for e in events if e not in ("requests", "task-clock") and max(t.get(e, 0) for t in table.values()) >= 0.001]
        for event in ["requests", "task-clock"] + shown:
            label = "CPU us" if event == "task-clock" else event
            print(f"{label:<22}" + "".join(f"{table[n].get(event, 0):>14.3f}" for n in args.servers))
        for name in [] if args.no_record else args.servers:
            print(f"\n--- {name}: perf record -e cpu-clock -g, top symbols (dso, symbol) ---")
            print(profile(name, args, work))
    return 0


if __name__ == "__main__":
    sys.exit(main())
