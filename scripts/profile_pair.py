#!/usr/bin/python3
"""Where two servers' time goes, measured in the same seconds: both loaded at once as `harness
peers --simultaneous` loads a pair (one cgroup capped at twice --share, a child each, both under
SCHED_BATCH, one wrk or ab each), while `perf record -e cpu-clock -C SERVER_CPU` samples the
server CPU. Every sample is given to the server whose process or thread it caught (the PIDs of
each server's cgroup), so the two profiles share the host's drift and perf's own cost, and their
difference per request is the comparison's: µs per request of each symbol in each, sorted by
the difference, with the totals of the program, its libraries and the kernel.

    /usr/bin/python3 scripts/profile_pair.py prefork ref-prefork --cap-period-ms 100
    /usr/bin/python3 scripts/profile_pair.py threadpool ref-threadpool --client ab --requests 30000

A server's samples include the time after an interrupt-disabled stretch ends (finish_task_switch,
_raw_spin_unlock_irqrestore), and the first user instruction after a system call returns takes
the return's: read_idle's and serve_blocking's samples are mostly that. The totals come from
samples, not from the cgroups, and in this VM the samples caught between half (threadpool beside
ref-threadpool with call graphs: 0.95 s of a cgroup's 2.0 s) and nearly all (h2o: 1.26 of 1.28
s) of a server's CPU — a sample due while interrupts are off is taken when they come back on,
often in the next task or the idle one — and not the same share for both servers (sped beside
h2o under ab: 92 % against 98 %, which made sped look 10 % cheaper by samples while the cgroups
had it 5 % dearer; that gap was h2o's TCP_DEFER_ACCEPT, docs/methodology.md). So take the
totals from `harness peers --simultaneous`, and read here the per-symbol differences within one
program and its floor. Needs root (cgroups), perf, taskset and the client. Numbers for notes,
not a test.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import peers  # noqa: E402
from harness.registry import build_dir  # noqa: E402
from harness.docroot import write_page  # noqa: E402
from harness.server import ProcessGuard  # noqa: E402

# one line of `perf report --sort pid,dso,sym --stdio`: "  1.23%  4242:httpd-prefork  httpd-prefork  [.] find"
REPORT_LINE = re.compile(r"\s*([\d.]+)%\s+(\d+):(\S*)\s+(\S+)\s+\[(.)\]\s+(.*?)\s*$")


def dso_class(dso: str, binary_names: set[str]) -> str:
    """program, library, kernel or other (vdso, unknown)."""
    if dso in binary_names:
        return "program"
    if dso.startswith("[kernel"):
        return "kernel"
    if ".so" in dso:
        return "library"
    return "other"


def per_request(report: str, pids: dict[str, set[int]], requests: dict[str, int], samples: int,
                frequency: int) -> dict[str, dict[tuple[str, str], float]]:
    """Server -> (dso, symbol) -> µs per request, from a ``perf report --sort pid,dso,sym``
    text whose percentages are of ``samples`` samples taken at ``frequency`` per second.
    Samples of processes in no server are left out."""
    owner = {pid: name for name, members in pids.items() for pid in members}
    out: dict[str, dict[tuple[str, str], float]] = {name: collections.defaultdict(float) for name in pids}
    for line in report.splitlines():
        m = REPORT_LINE.match(line)
        if not m:
            continue
        pct, pid, _, dso, _, symbol = m.groups()
        name = owner.get(int(pid))
        if name is None or not requests.get(name):
            continue
        seconds = float(pct) / 100 * samples / frequency
        out[name][(dso, symbol)] += seconds / requests[name] * 1e6
    return out


def table(profiles: dict[str, dict[tuple[str, str], float]], a: str, b: str, binaries: set[str],
          top: int) -> str:
    """The totals by class, then the ``top`` symbols whose µs per request differ most (a - b)."""
    lines = [f"{'':<28}{a[:14]:>14}{b[:14]:>14}{'difference':>12}   (µs per request)"]
    for cls in ("program", "library", "kernel", "other"):
        x = sum(v for (dso, _), v in profiles[a].items() if dso_class(dso, binaries) == cls)
        y = sum(v for (dso, _), v in profiles[b].items() if dso_class(dso, binaries) == cls)
        lines.append(f"{cls:<28}{x:>14.3f}{y:>14.3f}{x - y:>+12.3f}")
    x, y = sum(profiles[a].values()), sum(profiles[b].values())
    lines.append(f"{'all':<28}{x:>14.3f}{y:>14.3f}{x - y:>+12.3f}")
    keys = set(profiles[a]) | set(profiles[b])
    ranked = sorted(keys, key=lambda k: -abs(profiles[a].get(k, 0.0) - profiles[b].get(k, 0.0)))
    lines.append("")
    for dso, symbol in ranked[:top]:
        x, y = profiles[a].get((dso, symbol), 0.0), profiles[b].get((dso, symbol), 0.0)
        lines.append(f"{x - y:>+8.3f} {x:>8.3f} {y:>8.3f}  {dso[:20]:<20} {symbol[:90]}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("servers", nargs=2, help="two backends or reference servers (ref-<model>)")
    parser.add_argument("--client", choices=("wrk", "ab"), default="wrk")
    parser.add_argument("--seconds", type=int, default=8, help="wrk's measured run")
    parser.add_argument("--requests", type=int, default=30000, help="ab -n")
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=1, help="seconds both clients run first, unrecorded")
    parser.add_argument("--share", type=float, default=0.25, help="each server's part of the shared cap")
    parser.add_argument("--cap-period-ms", type=float, default=100.0,
                        help="the shared cap's CFS period; with ab and a fast server keep it within what ab "
                             "keeps busy (20 ms: harness peers' 'burst' lines, docs/methodology.md)")
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument("--frequency", type=int, default=10000, help="perf samples per second")
    parser.add_argument("--top", type=int, default=30, help="symbols listed")
    args = parser.parse_args()
    a, b = args.servers
    if a == b:
        a, b = a, b + peers.CONTROL_SUFFIX  # the same server twice: an A/A profile
    build = build_dir()
    pools = peers._pools([a, b], build)
    guard = ProcessGuard()
    cpus = str(args.server_cpu)
    with tempfile.TemporaryDirectory(prefix="httpbench-profile-pair-") as tmp:
        work = Path(tmp)
        (work / "docroot").mkdir()
        write_page(work / "docroot", peers.PAGE_BYTES)
        perf = None
        try:
            with peers.started_together(f"profile-pair-{os.getpid()}", (a, b), args.client, build, work,
                                        work / "docroot", guard, args.concurrency, cpus, str(args.client_cpu),
                                        args.share, args.warmup, pools, round(args.cap_period_ms * 1000)
                                        ) as (started, urls):
                argvs = [peers._client_argv(args.client, args.concurrency, args.seconds, args.requests, url)
                         for url in urls]
                data = work / "perf.data"
                perf = subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-F", str(args.frequency), "-C", cpus,
                                         "-o", str(data)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                time.sleep(0.5)  # perf's start-up, before the load
                pids: dict[str, set[int]] = {name: set() for name in (a, b)}

                def at_end(i: int, _usage) -> None:  # the server's processes and threads, before any exits
                    members = pids[(a, b)[i]]
                    members.update(started[i][1].pids())
                    for pid in list(members):
                        try:
                            members.update(int(t) for t in os.listdir(f"/proc/{pid}/task"))
                        except OSError:
                            pass
                runs = peers._run_clients(argvs, str(args.client_cpu), on_exit=at_end)
                perf.send_signal(signal.SIGINT)  # by its PID: perf writes its file and exits
                err = perf.communicate(timeout=60)[1]
                samples_m = re.search(r"\((\d+) samples\)", err)
                if perf.returncode not in (0, None) and not samples_m:
                    raise SystemExit(f"profile_pair: perf record failed:\n{err}")
                requests = {name: peers._parse(args.client, out)[1] for name, (out, *_rest) in zip((a, b), runs)}
                report = subprocess.run(["perf", "report", "-i", str(data), "--sort", "pid,dso,sym", "--stdio",
                                         "--no-children"], capture_output=True, text=True, timeout=300).stdout
        finally:
            if perf is not None and perf.poll() is None:
                perf.kill()  # by its PID
                perf.wait()
            guard.kill_all()
    total = int(samples_m.group(1)) if samples_m else 0
    profiles = per_request(report, pids, requests, total, args.frequency)
    binaries = {Path(srv.spec.argv[0]).name for srv, _ in started}
    print(f"both at once: {args.client} -c{args.concurrency}, each server {args.share:g} of CPU {args.server_cpu} "
          f"in a shared cap ({args.cap_period_ms:g}-ms period), SCHED_BATCH; perf cpu-clock at {args.frequency}/s, "
          f"{total} samples; requests: " + ", ".join(f"{n} {requests[n]}" for n in (a, b)))
    print(table(profiles, a, b, binaries, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
