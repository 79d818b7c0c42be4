"""Side-by-side throughput of servers under wrk (keep-alive) and ab (a new connection per
request): the peer comparisons the issues name (e.g. sped against h2o).

Each server is started pinned to the server CPUs, measured with a client pinned to the client
CPUs, and stopped; each round runs every server in turn, in reverse order every other round
(A B B A: a drift that is linear over two rounds hits all of them alike), starting one place
further along every two rounds (so that every server takes every position: `round_order`), and
ratios are formed within a round. Before each measured run the same client runs for
``--warmup`` seconds, unmeasured: a server's start-up (a process pool forks its workers after
the ready line, a thread pool starts its threads) is not in the window, nor is the first
touch of its caches and buffers. Reports every run, the medians, the server's CPU time per
request, and each ratio with a 95 % bootstrap interval over the rounds. Not a test: numbers for
notes.

    /usr/bin/python3 -m harness peers sped,thread,h2o --rounds 3 --seconds 10 --ab-requests 50000

A reference server (``ref-<model>``, servers/reference/) is named like a backend; with a backend
and its reference in one run, the table adds each backend's ratio to its floor:

    /usr/bin/python3 -m harness peers sped,ref-sped --server-cpu-share 0.25

A name with spaces is a backend started with more options, labelled by the whole name (so one
backend can be compared with itself configured otherwise, or a peer configured as it is):

    /usr/bin/python3 -m harness peers "sped,sped --defer-accept 10,h2o" --reference h2o --simultaneous --server-cpu-share 0.15

``--control`` measures the reference server a second time, as ``<reference>:again``, at the far
end of the list from it: an A/A comparison whose ratio should be 1. Its interval shows what this
run can resolve; an interval that excludes 1 says the run's ratios are biased by more than their
own intervals admit (seen here: 0.90 for a server against itself in 6 rounds of 6 servers).

``--interleave SLICES`` measures in pairs instead (each backend with its floor, an A/A control
``X:again`` with X, every other server with the reference): both servers of a pair are
started, and loaded one at a time in SLICES turns A B B A …, so a drift of the host slower than
one turn cancels within the pair's ratio (``_measure``):

    /usr/bin/python3 -m harness peers prefork,ref-prefork,ref-prefork:again --clients wrk --server-cpu-share 0.25 --interleave 4 --seconds 4

``--simultaneous`` measures the same pairs with both servers loaded at the same time, one client
each, inside one cgroup capped at twice ``--server-cpu-share`` (a child cgroup each, equal
weights, both under SCHED_BATCH so that neither's wake-ups preempt the other; ``_measure_together``):
the drift cancels within milliseconds, and a pair's CPU per request is what to compare:

    /usr/bin/python3 -m harness peers prefork,ref-prefork,ref-prefork:again --clients wrk --server-cpu-share 0.25 --simultaneous --cap-period-ms 100 --seconds 4

A long cap period suits wrk's kept-alive connections, not ab's new ones against a fast server,
which then runs dry inside each burst (a ``burst`` line under the ratios says so, with the
longest period that keeps it busy); ``--cap-period-ms wrk=100`` gives each client its own:

    /usr/bin/python3 -m harness peers sped,ref-sped,h2o --reference h2o --simultaneous --server-cpu-share 0.15 --cap-period-ms wrk=100
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import resource
import shutil
import statistics
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from . import production
from .cgroup import CgroupError, ServerCgroup, SharedCap, bandwidth, burst_requests, longest_busy_burst
from .cgroup import available as cgroups_available
from .clients import run_at_once
from .docroot import write_page
from .experiment import parse_cpu_list
from .metrics import session_members
from .registry import RegistryError, load_backends, load_references
from .record import CONTROL_SUFFIX
from .server import LaunchSpec, ProcessGuard, ServerProcess, enter_cgroup, free_port, settle
from .stats import Interval, bootstrap

# The size of the built-in page, which the reference servers answer with whatever the path:
# so a backend and its floor send responses of the same size.
PAGE_BYTES = 305


@dataclass
class Sample:
    requests_per_second: float
    server_cpu_us_per_request: float | None
    client_cpu_us_per_request: float | None = None
    client_cpu_share: float | None = None  # of one CPU, over the client's wall time
    # the server's tasks switched out while they could still run (cgroup.open_preemption_counters):
    # under the cap, a server of many runnable tasks is preempted once per task and period
    preemptions_per_request: float | None = None
    # the server's CPU over what its cap allowed while it was loaded (None: uncapped)
    cap_use: float | None = None
    # how often the client blocked per request (its voluntary context switches): on loopback the
    # server whose write wakes a sleeping client pays for the wake-up (docs/methodology.md,
    # "Which client"); None where not counted
    client_sleeps_per_request: float | None = None
    # the CFS period of the server's cap, and the server's part of one period's allowance (its
    # CPU per burst: share x period); None uncapped. burst_notes() compares what the server can
    # serve in one burst with what its client can have waiting
    cap_period_us: int | None = None
    cap_burst_us: float | None = None


@dataclass
class PeerResults:
    samples: dict[tuple[str, str], list[Sample]] = field(default_factory=dict)
    # --interleave: (a, b, client) -> a's and b's samples of each run that measured them in turns
    together: dict[tuple[str, str, str], list[tuple[Sample, Sample]]] = field(default_factory=dict)

    def add(self, server: str, client: str, sample: Sample) -> None:
        self.samples.setdefault((server, client), []).append(sample)

    def add_pair(self, a: str, b: str, client: str, sample_a: Sample, sample_b: Sample) -> None:
        """a and b measured in turns within one run (--interleave): each counts among its
        server's samples, and the two are kept together for their ratio."""
        self.add(a, client, sample_a)
        self.add(b, client, sample_b)
        self.together.setdefault((a, b, client), []).append((sample_a, sample_b))

    def median(self, server: str, client: str) -> tuple[float, float | None]:
        runs = self.samples.get((server, client), [])
        rps = statistics.median(s.requests_per_second for s in runs)
        cpu = [s.server_cpu_us_per_request for s in runs if s.server_cpu_us_per_request]
        return rps, statistics.median(cpu) if cpu else None

    def rounds(self, a: str, b: str, client: str) -> list[tuple[Sample, Sample]]:
        """a's and b's samples measured together: of the same round, or in an --interleave run
        of the same run of turns (none for two never measured together)."""
        if self.together:
            if (a, b, client) in self.together:
                return list(self.together[(a, b, client)])
            return [(x, y) for y, x in self.together.get((b, a, client), [])]
        return list(zip(self.samples.get((a, client), []), self.samples.get((b, client), [])))

    def paired_ratios(self, a: str, b: str, client: str, by_cpu: bool = False) -> list[float]:
        """One ratio per round, a against b measured in the same round (minutes apart at most,
        so the machine's slow drift cancels): a's requests/s over b's, or with ``by_cpu`` b's
        server CPU per request over a's (both: above 1 means a is faster; by CPU it holds even
        when the client, not the server, limits the rate). In an --interleave run, one ratio per
        run that measured the two in turns, and none for two never measured together."""
        out = []
        for x, y in self.rounds(a, b, client):
            if by_cpu:
                if x.server_cpu_us_per_request and y.server_cpu_us_per_request:
                    out.append(y.server_cpu_us_per_request / x.server_cpu_us_per_request)
            elif y.requests_per_second > 0:
                out.append(x.requests_per_second / y.requests_per_second)
        return out

    def ratio_interval(self, a: str, b: str, client: str, by_cpu: bool = False) -> Interval | None:
        """The median of the per-round ratios with its 95 % percentile-bootstrap interval (the
        analysis's, harness/stats.py); None without a round."""
        ratios = self.paired_ratios(a, b, client, by_cpu)
        return bootstrap(ratios) if ratios else None

    def median_client(self, server: str, client: str) -> tuple[float | None, float | None]:
        """The client's CPU per request and its share of one CPU (medians)."""
        runs = self.samples.get((server, client), [])
        cpu = [s.client_cpu_us_per_request for s in runs if s.client_cpu_us_per_request]
        share = [s.client_cpu_share for s in runs if s.client_cpu_share]
        return (statistics.median(cpu) if cpu else None,
                statistics.median(share) if share else None)


def _cpu_seconds(session_id: int) -> float:
    """User+system CPU of the server's processes, including reaped children (fork's). Counted
    in 10 ms ticks per process: a pool of hundreds of lightly loaded workers reads low."""
    return sum(p.cpu_user_s + p.cpu_sys_s for p in session_members(session_id))


def _run_client(argv: list[str], client_cpus: str) -> tuple[str, float, float, int | None]:
    """The client's output, its CPU seconds, its wall seconds and how often it slept
    (``_run_clients`` of one)."""
    return _run_clients([argv], client_cpus)[0]


def _run_clients(argvs: list[list[str]], client_cpus: str,
                 on_exit: Callable[[int, resource.struct_rusage], T] | None = None,
                 timeout_s: float = 600) -> list[tuple]:
    """Runs the clients at the same time (``clients.run_at_once``). For each, in order: its
    output, its CPU seconds (the rusage of its own process: taskset execs the client), its wall
    seconds, how often it slept (its voluntary context switches, from the same rusage) and,
    given ``on_exit``, what ``on_exit(i, usage)`` returned the moment client ``i`` was reaped (a
    server's counters at the end of its own load; ``usage`` is the client's rusage). A client
    that cannot be started, or still runs after ``timeout_s`` (then killed by its PID), raises."""
    with contextlib.ExitStack() as stack:
        outs = [stack.enter_context(tempfile.TemporaryFile(mode="w+")) for _ in argvs]
        ends = run_at_once(argvs, client_cpus, outs, timeout_s, on_exit=on_exit)
        for argv, end in zip(argvs, ends):
            if end.error is not None and end.error.startswith("still running"):
                raise subprocess.TimeoutExpired(argv, timeout_s)
            if end.error is not None:
                raise SystemExit(f"peers: {end.error}")
        rows = []
        for out, end in zip(outs, ends):
            out.seek(0)
            sleeps = end.usage.ru_nvcsw if end.usage is not None else None
            rows.append((out.read(), end.cpu_s, end.wall_s, sleeps, *((end.at_exit,) if on_exit else ())))
        return rows


def warmup_argv(client: str, concurrency: int, seconds: int, url: str) -> list[str]:
    """The client's command for an unmeasured run of ``seconds``: wrk's duration; ab's time
    limit (-t) with a request count (-n, after it: -t alone means -n 50000) that one ab, at
    under 100,000 new connections a second, does not reach first (ab allocates 32 bytes per
    request of -n up front)."""
    if client == "wrk":
        return ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s", url]
    return ["ab", "-q", f"-c{concurrency}", f"-t{seconds}", f"-n{100_000 * seconds}", url]


def warmup_concurrency(client: str, concurrency: int, pool: int) -> int:
    """The connections of a warm-up before a run with ``concurrency``, for a server whose
    ``pool`` workers each hold one connection (0: not such a server). A pool's keep-alive (wrk)
    warm-up opens a connection per worker: a blocking accept() wakes the worker that has waited
    longest, so with fewer connections the measured run's would go to workers that have not
    served since the fork, and their first requests (the pages each touches first) would be
    measured instead of the pool's steady state. ab's new connection per request already
    rotates through the pool."""
    return max(concurrency, pool) if client == "wrk" else concurrency


def _parse(client: str, output: str) -> tuple[float, int, int]:
    """requests/s, completed requests, failed requests (every kind failures() finds)."""
    if client == "wrk":
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
        n = int(re.search(r"(\d+) requests in", output).group(1))
        return rps, n, sum(failures(client, output).values())
    rps = float(re.search(r"Requests per second:\s+([\d.]+)", output).group(1))
    n = int(re.search(r"Complete requests:\s+(\d+)", output).group(1))
    failed = int(re.search(r"Failed requests:\s+(\d+)", output).group(1))
    return rps, n, failed + failures(client, output).get("non-2xx", 0)  # ab does not count non-2xx


def failures(client: str, output: str) -> dict[str, int]:
    """The client's failures by kind, in its own words (non-zero kinds only): wrk's non-2xx
    responses and socket errors; ab's failed requests by cause (printed when there are any) and
    its non-2xx responses, which ab itself does not count as failed."""
    if client == "wrk":
        patterns = [(("non-2xx",), r"Non-2xx or 3xx responses: (\d+)"),
                    (("connect", "read", "write", "timeout"),
                     r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")]
    else:
        patterns = [(("connect", "receive", "length", "exceptions"),
                     r"\(Connect: (\d+), Receive: (\d+), Length: (\d+), Exceptions: (\d+)\)"),
                    (("non-2xx",), r"Non-2xx responses:\s+(\d+)")]
    found: dict[str, int] = {}
    for kinds, pattern in patterns:
        m = re.search(pattern, output)
        if m:
            found.update((kind, int(n)) for kind, n in zip(kinds, m.groups()) if n != "0")
    return found


def server_and_args(name: str) -> tuple[str, tuple[str, ...]]:
    """The server a name in the list starts, and the options it adds to the usual ones: a name
    with spaces is a backend started with more options (``"sped --defer-accept 10"``: httpd-sped
    with --defer-accept 10), and the whole name stays its label in every table. An A/A
    control (``X:again``) is its server's."""
    words = name.removesuffix(CONTROL_SUFFIX).split()
    return (words[0], tuple(words[1:])) if words else ("", ())


T = TypeVar("T")


def round_order(servers: list[T], r: int) -> list[T]:
    """The order of round ``r`` (from 0): the servers rotated by ``r // 2`` places, backward in
    odd rounds. Each pair of rounds runs A … Z then Z … A, so a drift that is linear over two
    rounds hits every server alike; over 2n rounds every one of n servers runs in every
    position, forward and backward, so a cost of running first, last or in the middle (seen on
    this host with six servers) falls on all of them alike instead of on one."""
    k = (r // 2) % len(servers)
    rotated = servers[k:] + servers[:k]
    return rotated if r % 2 == 0 else rotated[::-1]


def controls(servers: list[str]) -> list[tuple[str, str]]:
    """(``X:again``, X) for every A/A control among ``servers`` whose server is there too: the
    one --control adds, or any named in the list (``ref-prefork:again``)."""
    return [(name, name.removesuffix(CONTROL_SUFFIX)) for name in servers
            if name.endswith(CONTROL_SUFFIX) and name.removesuffix(CONTROL_SUFFIX) in servers]


def with_control(servers: list[str], reference: str) -> list[str]:
    """``servers`` plus a second instance of ``reference`` (``<reference>:again``) at the end of
    the round farther from the reference, so that the A/A pair spans the round's positions."""
    if reference not in servers:
        raise SystemExit(f"peers: --control measures --reference twice, but '{reference}' is not among the servers")
    again = reference + CONTROL_SUFFIX
    if servers.index(reference) < len(servers) / 2:
        return [*servers, again]
    return [again, *servers]


def control_verdict(results: PeerResults, reference: str, client: str) -> str | None:
    """One line on the A/A pair for ``client``: how far apart this run puts a server and itself,
    and whether that is within the interval (None when the client did not run)."""
    iv = results.ratio_interval(reference + CONTROL_SUFFIX, reference, client)
    if iv is None:
        return None
    if iv.lo is None or iv.hi is None:
        return f"control {client}: {reference} ÷ itself {iv.value:.2f} (too few rounds for an interval)"
    line = f"control {client}: {reference} ÷ itself {_fmt(iv)}"
    if iv.excludes(1):
        return line + (" — excludes 1: this run's ratios are biased beyond their intervals;"
                       " run fewer servers per round or more rounds before trusting them")
    return line + f" — includes 1; differences within ±{iv.reach_from(1) * 100:.0f} % are not resolved by this run"


def _launch(name: str, workdir: Path, docroot: Path, build: Path, workers: int | None = None) -> LaunchSpec:
    """``workers``: a fixed pool's size (``_pools``: its default, or --pool). A name with
    options (``server_and_args``) starts its backend with them, after the usual ones."""
    label = name
    name, extra = server_and_args(name)  # the A/A control is the same server again
    pool = ("--workers", str(workers)) if workers is not None else ()
    backends = {b.name: b for b in load_backends(build)}
    if name in backends:
        return LaunchSpec(argv=(str(backends[name].binary), "--port", "0", "--docroot", str(docroot), *pool,
                                *extra))
    if extra:
        raise SystemExit(f"peers: '{label}': only a backend takes more options ('{name}' is not a built backend)")
    references = {r.name: r for r in load_references(build)}
    if name in references:  # no docroot: it answers every request with its canned page
        return LaunchSpec(argv=(str(references[name].binary), "--port", "0", *pool))
    exe = production.installed().get(name)
    if exe is None:
        raise SystemExit(f"peers: '{name}' is neither a built backend, a reference server (ref-<model>) "
                         f"nor an installed production server")
    return production.launch_spec(name, exe, workdir / name, docroot, free_port())


def _pools(servers: list[str], build: Path, size: int | None = None) -> dict[str, int]:
    """Server -> pool size, for those whose workers each hold one connection (prefork,
    threadpool and their references: ``workers_bound_connections``), from one read of the
    registry; an A/A control takes its server's. ``size`` (--pool): every such pool's size,
    instead of each one's default."""
    try:
        entries = {e.name: e for e in [*load_backends(build), *load_references(build)]}
    except RegistryError:
        return {}
    pools = {}
    for name in servers:
        entry = entries.get(server_and_args(name)[0])
        if entry is not None and entry.raw.get("workers_bound_connections") and entry.raw.get("default_workers"):
            pools[name] = size if size is not None else int(entry.raw["default_workers"])
    return pools


CLIENTS = ("wrk", "ab")


def cap_burst(server_share: float | None, servers: int, period_us: int | None) -> tuple[int, float] | None:
    """The period (µs) of a cap of ``servers`` times ``server_share`` (one server's cgroup, or a
    pair's SharedCap) with ``period_us`` (None: the shortest, ``bandwidth``), and each server's
    part of one period's allowance (µs of CPU); None uncapped."""
    if server_share is None:
        return None
    _, period = bandwidth(server_share * servers, period_us)
    return period, server_share * period


def parse_cap_periods(text: str) -> float | dict[str, float]:
    """``--cap-period-ms``: ``MS`` for every client, or ``CLIENT=MS[,CLIENT=MS]`` for the clients
    named (the others keep the shortest period). ValueError, naming the part, for anything else."""
    text = text.strip()
    if "=" not in text:
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"'{text}' is neither milliseconds nor CLIENT=MS (wrk=100)") from None
    periods: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",")):
        client, _, ms = (side.strip() for side in part.partition("="))
        if client not in CLIENTS:
            raise ValueError(f"'{part}': the client is wrk or ab")
        try:
            periods[client] = float(ms)
        except ValueError:
            raise ValueError(f"'{part}': '{ms}' is not milliseconds") from None
    return periods


def compare(servers: list[str], build: Path, rounds: int, seconds: int, ab_requests: int,
            concurrency: int, server_cpus: str, client_cpus: str,
            server_cpu_share: float | None = None, clients: tuple[str, ...] = CLIENTS,
            warmup_s: int = 1, interleave: int = 0, reference: str | None = None,
            turns: Path | None = None, pool: int | None = None,
            cap_period_ms: float | dict[str, float] | None = None, simultaneous: bool = False) -> PeerResults:
    """``server_cpu_share`` (0 < share < 1) caps the servers' CPU through a cgroup so that the
    server, not the client, is the bottleneck: requests/s then compares the servers' cost.
    ``clients``: wrk, ab or both (one client gives twice the rounds in the same time).
    ``warmup_s``: the client runs this long, unmeasured, before each measured run (0: none).
    ``interleave`` (slices, 0: off): the servers run in pairs (``pairs_of``), both started, each
    loaded in turns, ``interleave`` slices each (``_measure``).
    ``turns``: a file that gets one JSON line per client run measured (round, client, server,
    turn, requests, requests_per_s, server_cpu_s, preemptions: the server's tasks switched out
    while they could run), to see within a run what its medians hide (a slow first turn, a
    drift).
    ``pool``: the workers of every fixed pool among the servers (prefork, threadpool, their
    references; ``_pools``) instead of each one's default, as an experiment's ``[servers] pool``.
    ``cap_period_ms``: the CFS period of the cap instead of the shortest the kernel allows (4 ms
    at a quarter of a CPU), for every client, or per client ({"wrk": 100}: the others keep the
    shortest): a longer one throttles a server of many runnable tasks less often
    (docs/methodology.md, "What the cap costs a server of many tasks"), and only suits a client
    fast enough to keep the server busy through each of its longer bursts (``burst_notes``).
    ``simultaneous``: the servers run in pairs (``pairs_of``), both loaded at the same time by
    two clients, inside one cgroup capped at twice ``server_cpu_share`` (``_measure_together``):
    the host's drift then hits both sides of a ratio within the same milliseconds."""
    if not clients or any(c not in CLIENTS for c in clients):
        raise SystemExit(f"peers: --clients takes wrk, ab or wrk,ab, got {','.join(clients) or 'nothing'}")
    for tool in (*clients, "taskset"):
        if shutil.which(tool) is None:
            raise SystemExit(f"peers: '{tool}' is not installed (make deps)")
    if server_cpu_share is not None:
        if not 0 < server_cpu_share < 1:
            raise SystemExit(f"peers: --server-cpu-share must be between 0 and 1, got {server_cpu_share}")
        ok, why = cgroups_available()
        if not ok:
            raise SystemExit(f"peers: --server-cpu-share needs cgroups, but {why}")
    if warmup_s < 0:
        raise SystemExit(f"peers: --warmup must be 0 or more seconds, got {warmup_s}")
    periods_ms = (cap_period_ms if isinstance(cap_period_ms, dict)
                  else {client: cap_period_ms for client in clients} if cap_period_ms is not None else {})
    cap_period_us: dict[str, int] = {}
    for client, ms in periods_ms.items():
        if server_cpu_share is None:
            raise SystemExit("peers: --cap-period-ms sets the period of --server-cpu-share's cap: give both")
        if client not in clients:
            raise SystemExit(f"peers: --cap-period-ms {client}={ms:g}: {client} is not among --clients")
        cap_period_us[client] = round(ms * 1000)
        try:
            bandwidth(server_cpu_share, cap_period_us[client])
        except ValueError as exc:
            raise SystemExit(f"peers: --cap-period-ms {ms:g}: {exc}") from None
        if ms > 1000:
            raise SystemExit(f"peers: --cap-period-ms {ms:g}: at most 1000 ms (the kernel's limit)")
    if pool is not None and pool < 1:
        raise SystemExit(f"peers: --pool must be 1 or more workers, got {pool}")
    pools = _pools(servers, build, pool)
    if pool is not None and "wrk" in clients and pool < concurrency and pools:
        raise SystemExit(f"peers: --pool {pool} is below --concurrency {concurrency}: wrk keeps its "
                         f"connections alive, and those beyond the pool of {', '.join(pools)} would wait "
                         f"in the backlog for the whole run; use ab, or a pool of at least {concurrency}")
    pairs = None
    if simultaneous:
        if server_cpu_share is None:
            raise SystemExit("peers: --simultaneous shares one cap between the two servers of a pair: "
                             "give --server-cpu-share (each server's part of it)")
        if interleave:
            raise SystemExit("peers: --simultaneous and --interleave are two ways of measuring a pair: "
                             "give one of them")
        if 2 * server_cpu_share > 1:
            raise SystemExit(f"peers: --simultaneous caps a pair at twice --server-cpu-share, "
                             f"{2 * server_cpu_share:g} of one CPU: at most 0.5 each")
        for client, period_us in cap_period_us.items():
            try:
                bandwidth(2 * server_cpu_share, period_us)
            except ValueError as exc:
                raise SystemExit(f"peers: --cap-period-ms {periods_ms[client]:g}: {exc}") from None
        pairs = pairs_of(servers, reference, floors(servers, build))
    if interleave < 0:
        raise SystemExit(f"peers: --interleave must be 0 (off) or a number of slices, got {interleave}")
    if interleave > 0:
        if "wrk" in clients and (seconds % interleave or seconds < interleave):
            raise SystemExit(f"peers: --interleave {interleave} cuts each wrk run of --seconds {seconds} into "
                             f"{interleave} slices, and wrk takes whole seconds: make --seconds a multiple of it")
        if "ab" in clients and ab_requests < interleave:
            raise SystemExit(f"peers: --interleave {interleave} cuts --ab-requests {ab_requests} into "
                             f"{interleave} slices: too few requests")
        pairs = pairs_of(servers, reference, floors(servers, build))
    with open(turns, "w") if turns is not None else contextlib.nullcontext() as log:
        def write_turn(turn: dict) -> None:
            log.write(json.dumps(turn) + "\n")
            log.flush()
        return _compare(servers, build, rounds, seconds, ab_requests, concurrency, server_cpus, client_cpus,
                        server_cpu_share, clients, warmup_s, pairs, max(interleave, 1),
                        write_turn if log is not None else None, pools=pools, cap_period_us=cap_period_us,
                        simultaneous=simultaneous)


def ratio_pairs(servers: list[str], reference: str | None, floor_of: dict[str, str]) -> list[tuple[str, str]]:
    """The ratios a run reports, and the pairs an --interleave run measures (each in turns):
    every backend with its floor (``floor_of``), every A/A control with its server
    (``controls``), then every other server with ``reference``."""
    pairs = [(name, floor_of[name]) for name in servers if name in floor_of]
    pairs += [pair for pair in controls(servers) if pair not in pairs]
    if reference is not None:
        pairs += [(name, reference) for name in servers
                  if name != reference and (name, reference) not in pairs and (reference, name) not in pairs]
    return pairs


def pairs_of(servers: list[str], reference: str | None, floor_of: dict[str, str]) -> list[tuple[str, str]]:
    """``ratio_pairs``, for an --interleave or --simultaneous run: a server in none of them could not be compared
    with anything, and is refused, by name."""
    pairs = ratio_pairs(servers, reference, floor_of)
    alone = [name for name in servers if not any(name in pair for pair in pairs)]
    if alone:
        raise SystemExit(f"peers: --interleave and --simultaneous measure servers in pairs (each backend "
                         f"with its floor, every server with --reference), and {', '.join(alone)} would be in none: "
                         f"add their floors or a --reference")
    return pairs


def _cgroup(tag: str, share: float | None, server_cpus: str, period_us: int | None = None) -> ServerCgroup | None:
    """A fresh cgroup per server start: the cap (if any, with ``period_us`` its CFS period when
    given) and exact CPU accounting. Without root, None: CPU is then read from /proc (10 ms
    ticks per process)."""
    if share is None and not cgroups_available()[0]:
        return None
    try:
        return ServerCgroup(f"peers-{os.getpid()}-{tag}", share=share, cpus=parse_cpu_list(server_cpus),
                            cap_period_us=period_us)
    except CgroupError as exc:
        raise SystemExit(f"peers: {exc}") from None


def _compare(servers: list[str], build: Path, rounds: int, seconds: int, ab_requests: int,
             concurrency: int, server_cpus: str, client_cpus: str,
             server_share: float | None, clients: tuple[str, ...] = CLIENTS,
             warmup_s: int = 0, pairs: list[tuple[str, str]] | None = None, slices: int = 1,
             turn_log: Callable[[dict], None] | None = None,
             pools: dict[str, int] | None = None, cap_period_us: dict[str, int] | None = None,
             simultaneous: bool = False) -> PeerResults:
    """Each round runs every server alone, in ``round_order``; or, given ``pairs``, every pair
    with its two servers loaded in turns, ``slices`` each (the pairs in ``round_order``, and
    within a pair the other one first in odd rounds), or with ``simultaneous`` both at once.
    ``pools``: each fixed pool's size (``_pools``; read from the registry when not given).
    ``cap_period_us``: the cap's period per client (a client not in it: the shortest)."""
    results = PeerResults()
    guard = ProcessGuard()
    if pools is None:
        pools = _pools(servers, build)
    with tempfile.TemporaryDirectory(prefix="httpbench-peers-") as tmp:
        work = Path(tmp)
        docroot = work / "docroot"
        docroot.mkdir()
        write_page(docroot, PAGE_BYTES)  # the same 305-byte page the experiments serve
        try:
            for r in range(rounds):
                units = [(name,) for name in round_order(servers, r)] if pairs is None else round_order(pairs, r)
                for unit in units:
                    group = unit if r % 2 == 0 else unit[::-1]
                    for client in clients:
                        period_us = (cap_period_us or {}).get(client)
                        measure = _measure_together if simultaneous else _measure
                        samples = dict(zip(group, measure(group, client, r, build, work, docroot, guard, seconds,
                                                          ab_requests, concurrency, server_cpus, client_cpus,
                                                          server_share, warmup_s, slices, pools, turn_log,
                                                          period_us)))
                        if pairs is None:
                            results.add(unit[0], client, samples[unit[0]])
                        else:
                            results.add_pair(unit[0], unit[1], client, samples[unit[0]], samples[unit[1]])
        finally:
            guard.kill_all()
    return results


@dataclass
class _Tally:
    """One server's slices of one run, summed."""
    requests: int = 0
    loaded_s: float = 0.0  # the client's own measure of each slice: requests / its rate
    server_s: float = 0.0
    client_s: float = 0.0
    client_wall_s: float = 0.0
    failed: int = 0
    kinds: dict[str, int] = field(default_factory=dict)
    preemptions: int | None = None  # None: not counted (no cgroup, no tracefs)
    client_sleeps: int | None = None  # the client's voluntary context switches; None: not counted

    def sample(self, allowance_s: float | None = None, cap: tuple[int, float] | None = None) -> Sample:
        """The tally per request; ``allowance_s``: the CPU seconds the server's cap allowed
        while it was loaded (None: uncapped), which gives its use of the cap; ``cap``: the cap's
        period (µs) and the server's part of each period's allowance (µs of CPU)."""
        n = self.requests
        return Sample(n / self.loaded_s if self.loaded_s > 0 else 0.0,
                      self.server_s / n * 1e6 if n else None, self.client_s / n * 1e6 if n else None,
                      self.client_s / self.client_wall_s if self.client_wall_s > 0 else None,
                      self.preemptions / n if n and self.preemptions is not None else None,
                      self.server_s / allowance_s if allowance_s else None,
                      self.client_sleeps / n if n and self.client_sleeps is not None else None,
                      *(cap if cap is not None else (None, None)))


def _start_group(group: tuple[str, ...], client: str, build: Path, work: Path, docroot: Path,
                 guard: ProcessGuard, concurrency: int, server_cpus: str, client_cpus: str,
                 warmup_s: int, pools: dict[str, int] | None, cgroup_of: Callable[[int, str], ServerCgroup | None],
                 started: list[tuple[ServerProcess, ServerCgroup | None]], warm_together: bool = False,
                 batch: bool = False) -> list[str]:
    """Starts the servers of ``group`` (server ``i`` in ``cgroup_of(i, name)``; with ``batch``
    under SCHED_BATCH, ``server.enter_cgroup``), appending each to ``started`` as it starts (so the caller
    stops whatever did start), lets each pool settle, and warms them up: in turn, or with
    ``warm_together`` all at once. Returns their URLs."""
    urls = []
    for i, name in enumerate(group):
        spec = _launch(name, work, docroot, build, (pools or {}).get(name))  # a pool at its size
        cg = cgroup_of(i, name)
        srv = ServerProcess(spec, server_cpus, work / "logs" / f"{name}.log", guard,
                            cgroup_enter=enter_cgroup(cg, batch) if cg or batch else None)
        started.append((srv, cg))
        urls.append(f"http://127.0.0.1:{srv.start(timeout_s=20)}/index.html")
        # A pool that is still forking when the warm-up begins goes on doing so inside the
        # warm-up and the measured run. Servers warmed up together start together: each is
        # started before any settles, so neither pool has sat idle while the other forked
        # (started one after the other, the first of two ref-prefork pools cost 2-4 % more per
        # request than the second in 5 rounds of 6; started together, 0-3 %).
        if not warm_together:
            settle(srv, name)
    for (srv, _), name in zip(started, group) if warm_together else ():
        settle(srv, name)
    if warmup_s <= 0:
        return urls
    argvs = [warmup_argv(client, warmup_concurrency(client, concurrency, (pools or {}).get(name, 0)), warmup_s, url)
             for name, url in zip(group, urls)]
    runs = _run_clients(argvs, client_cpus) if warm_together else [_run_client(a, client_cpus) for a in argvs]
    for name, (warm_out, *_) in zip(group, runs):
        try:
            _parse(client, warm_out)
        except (AttributeError, ValueError):  # no rate: the client failed
            raise SystemExit(f"peers: the warm-up of {name} with {client} failed:\n"
                             f"{warm_out.strip()}") from None
    return urls


def _client_argv(client: str, concurrency: int, seconds: int, ab_requests: int, url: str) -> list[str]:
    return (["wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s", url] if client == "wrk"
            else ["ab", "-q", f"-c{concurrency}", f"-n{ab_requests}", url])


def _measure(group: tuple[str, ...], client: str, r: int, build: Path, work: Path, docroot: Path,
             guard: ProcessGuard, seconds: int, ab_requests: int, concurrency: int, server_cpus: str,
             client_cpus: str, server_share: float | None, warmup_s: int, slices: int = 1,
             pools: dict[str, int] | None = None,
             turn_log: Callable[[dict], None] | None = None, cap_period_us: int | None = None) -> list[Sample]:
    """Starts the servers of ``group`` (each in its own cgroup, with the same cap) and warms
    each up in turn; then loads them one at a time, ``slices`` times each, in the turns A B B A
    A B … (``seconds`` / ``slices`` of wrk, or ``ab_requests`` / ``slices`` of ab, per turn),
    and stops them. Returns one sample per server over all its slices; prints a line each."""
    started: list[tuple[ServerProcess, ServerCgroup | None]] = []
    tallies = [_Tally() for _ in group]
    try:
        urls = _start_group(group, client, build, work, docroot, guard, concurrency, server_cpus,
                            client_cpus, warmup_s, pools,
                            lambda i, name: _cgroup(f"{r}-{i}-{name}-{client}", server_share, server_cpus,
                                                    period_us=cap_period_us), started)

        def counters(i: int) -> tuple[float, int | None]:
            # The cgroup counts every thread and process (ns); without one, /proc's ticks.
            srv, cg = started[i]
            if cg is None:
                return _cpu_seconds(srv.pid), None
            reading = cg.read()
            return reading.cpu_ns / 1e9, reading.preemptions

        for j in range(slices):
            for i in range(len(group)) if j % 2 == 0 else reversed(range(len(group))):
                argv = _client_argv(client, concurrency, seconds // slices, ab_requests // slices, urls[i])
                before, preempted_before = counters(i)
                out, client_s, wall_s, sleeps = _run_client(argv, client_cpus)
                after, preempted_after = counters(i)
                preempted = (None if preempted_before is None or preempted_after is None
                             else preempted_after - preempted_before)
                _tally_run(tallies[i], client, out, after - before, preempted, client_s, wall_s, turn_log,
                           {"round": r + 1, "client": client, "server": group[i], "turn": j + 1}, sleeps)
    finally:
        for srv, cg in started:
            srv.stop()
            if cg is not None:
                cg.close()
    return _print_samples(group, client, r, tallies,
                          lambda name: f"in {slices} turns with {', '.join(g for g in group if g != name)}",
                          lambda t: server_share * t.client_wall_s if server_share else None,
                          cap_burst(server_share, 1, cap_period_us))


@contextlib.contextmanager
def started_together(name: str, group: tuple[str, ...], client: str, build: Path, work: Path, docroot: Path,
                     guard: ProcessGuard, concurrency: int, server_cpus: str, client_cpus: str, server_share: float,
                     warmup_s: int, pools: dict[str, int] | None, cap_period_us: int | None):
    """The servers of ``group`` started in one ``SharedCap`` named ``name`` (``len(group)`` times
    ``server_share``, a child ServerCgroup each), under SCHED_BATCH, settled and warmed up
    together (``_start_group``); yields ``(started, urls)``, ``started`` holding (server, its
    cgroup) pairs, and on the way out stops the servers and removes every cgroup."""
    try:
        shared = SharedCap(name, server_share * len(group), cap_period_us=cap_period_us)
    except (CgroupError, ValueError) as exc:
        raise SystemExit(f"peers: {exc}") from None
    started: list[tuple[ServerProcess, ServerCgroup]] = []
    try:
        def cgroup_of(i: int, server: str) -> ServerCgroup:
            try:
                return ServerCgroup(f"{i}-{server}", cpus=parse_cpu_list(server_cpus), group=shared.name)
            except CgroupError as exc:
                raise SystemExit(f"peers: {exc}") from None

        urls = _start_group(group, client, build, work, docroot, guard, concurrency, server_cpus, client_cpus,
                            warmup_s, pools, cgroup_of, started, warm_together=True, batch=True)
        yield started, urls
    finally:
        for srv, cg in started:
            srv.stop()
            cg.close()
        shared.close()


def _measure_together(group: tuple[str, ...], client: str, r: int, build: Path, work: Path, docroot: Path,
                      guard: ProcessGuard, seconds: int, ab_requests: int, concurrency: int, server_cpus: str,
                      client_cpus: str, server_share: float | None, warmup_s: int, slices: int = 1,
                      pools: dict[str, int] | None = None,
                      turn_log: Callable[[dict], None] | None = None,
                      cap_period_us: int | None = None) -> list[Sample]:
    """Starts the servers of ``group`` inside one cgroup capped at ``len(group)`` times
    ``server_share`` (a child cgroup each, equal weights: ``SharedCap``), warms them up together,
    then loads them all at once, one client each (``seconds`` of wrk or ``ab_requests`` of ab),
    and stops them. While all are busy each gets an equal part of the cap, and each child counts
    its own CPU: so a server's CPU per request is measured in the same moments as the other's,
    on the same host, under the same cap. Each server's CPU is read from before the clients
    start until its own client ends. The servers run under SCHED_BATCH (``server.enter_cgroup``): with the
    default policy a task of one server woken by its client preempts the other server's running
    task, and both pay a third more CPU per request for the switches (prefork beside
    ref-prefork: 28 µs instead of 19, 0.31 preemptions per request instead of 0.07), which
    pulls every ratio towards 1. Returns one sample per server; prints a line each."""
    assert server_share is not None
    tallies = [_Tally() for _ in group]
    with started_together(f"peers-{os.getpid()}-{r}-{client}", group, client, build, work, docroot, guard,
                          concurrency, server_cpus, client_cpus, server_share, warmup_s, pools,
                          cap_period_us) as (started, urls):
        before = [cg.read() for _, cg in started]
        argvs = [_client_argv(client, concurrency, seconds, ab_requests, url) for url in urls]
        runs = _run_clients(argvs, client_cpus, on_exit=lambda i, _: started[i][1].read())
        for i, (out, client_s, wall_s, sleeps, after) in enumerate(runs):
            preempted = (None if before[i].preemptions is None or after.preemptions is None
                         else after.preemptions - before[i].preemptions)
            _tally_run(tallies[i], client, out, (after.cpu_ns - before[i].cpu_ns) / 1e9, preempted, client_s,
                       wall_s, turn_log, {"round": r + 1, "client": client, "server": group[i], "turn": 1}, sleeps)
    return _print_samples(group, client, r, tallies,
                          lambda name: f"at once with {', '.join(g for g in group if g != name)}",
                          lambda t: server_share * t.client_wall_s,
                          cap_burst(server_share, len(group), cap_period_us))


def _tally_run(t: _Tally, client: str, out: str, server_s: float, preempted: int | None, client_s: float,
               wall_s: float, turn_log: Callable[[dict], None] | None, turn: dict,
               client_sleeps: int | None = None) -> None:
    """Adds one client run (its output, the server's CPU seconds and preemptions over it, and
    how often the client slept) to ``t``, and logs it as a turn."""
    t.server_s += server_s
    if preempted is not None:
        t.preemptions = (t.preemptions or 0) + preempted
    if client_sleeps is not None:
        t.client_sleeps = (t.client_sleeps or 0) + client_sleeps
    rps, n, failed = _parse(client, out)
    if turn_log is not None:
        turn_log({**turn, "requests": n, "requests_per_s": rps, "server_cpu_s": round(server_s, 6),
                  "preemptions": preempted, "client_sleeps": client_sleeps})
    t.requests += n
    t.loaded_s += n / rps if rps > 0 else 0.0
    t.client_s += client_s
    t.client_wall_s += wall_s
    t.failed += failed
    for kind, k in failures(client, out).items():
        t.kinds[kind] = t.kinds.get(kind, 0) + k


def _print_samples(group: tuple[str, ...], client: str, r: int, tallies: list[_Tally],
                   how: Callable[[str], str], allowance_s: Callable[[_Tally], float | None],
                   cap: tuple[int, float] | None = None) -> list[Sample]:
    """One sample per server of ``group``, each printed as a line: ``how`` says how it was
    measured beside the others, ``allowance_s`` the CPU seconds its cap allowed while loaded
    (None: uncapped), ``cap`` its cap's period and each server's part of it (``cap_burst``)."""
    samples = []
    for name, t in zip(group, tallies):
        sample = t.sample(allowance_s(t), cap)
        samples.append(sample)
        kinds = ", ".join(f"{kind} {k}" for kind, k in t.kinds.items())
        flag = f"  FAILED {t.failed} ({kinds})" if t.failed else ""
        note = f"  ({how(name)})" if len(group) > 1 else ""
        print(f"round {r + 1}  {name:<14} {client:<4} {sample.requests_per_second:>10.0f} req/s"
              f"  {sample.server_cpu_us_per_request or 0:>6.1f} us server CPU/req"
              + (f" ({sample.preemptions_per_request:.2f} preempted)"
                 if sample.preemptions_per_request is not None else "")
              # how much of its allowance the capped server used while loaded: well below 100 %,
              # and the client, not the server, set the rate (a cap period too long for it)
              + (f", {sample.cap_use:.0%} of its cap" if sample.cap_use is not None else "") +
              f"  {sample.client_cpu_us_per_request or 0:>6.1f} us client CPU/req"
              f" ({(sample.client_cpu_share or 0) * 100:.0f}% of a CPU"
              + (f", {sample.client_sleeps_per_request:.2f} sleeps/req"
                 if sample.client_sleeps_per_request is not None else "")
              + f"){flag}{note}", flush=True)
    return samples


def floors(servers: list[str], build: Path) -> dict[str, str]:
    """Backend name -> its reference server's name, for each pair both among ``servers``."""
    try:
        references = load_references(build)
    except RegistryError:
        return {}
    return {r.reference_for: r.name for r in references if r.name in servers and r.reference_for in servers}


def print_table(results: PeerResults, servers: list[str], reference: str | None,
                floor_of: dict[str, str] | None = None) -> None:
    """Medians per server; ratios against ``reference`` when given, and against each backend's
    floor (``floor_of``: backend -> reference server, both measured in this run). A client that
    did not run (``--clients``) shows as dashes."""
    floor_of = floor_of or {}
    print("\nus/req: server CPU per request; client: the client's CPU per request and its share"
          " of one CPU (near 100% = the client, not the server, limits)")
    width = max([14, *(len(name) for name in servers)])  # names with options are long
    print(f"{'server':<{width}} {'wrk req/s':>11} {'us/req':>7} {'client':>14} {'ab req/s':>10}"
          f" {'us/req':>7} {'client':>14}" + (f"   vs {reference} (wrk, ab)" if reference else "")
          + ("   vs its floor (wrk, ab)" if floor_of else ""))

    def medians(name: str, client: str) -> tuple[float | None, float | None]:
        """(requests/s, server µs/request), or Nones for a client that did not run."""
        return results.median(name, client) if results.samples.get((name, client)) else (None, None)

    def ratio(a: float | None, b: float | None) -> str:
        return f"{a / b:.2f}x" if a is not None and b else "–"

    for name in servers:
        cells, ratios, floors_ = [], [], []
        for client in CLIENTS:
            rps, cpu = medians(name, client)
            if rps is None:
                cells.append(f"{'–':>{11 if client == 'wrk' else 10}} {'–':>7} {'–':>14}")
            else:
                us, share = results.median_client(name, client)
                cells.append(f"{rps:>{11 if client == 'wrk' else 10}.0f} {cpu or 0:>7.1f} "
                             f"{f'{us or 0:>6.1f} ({(share or 0) * 100:>3.0f}%)':>14}")
            if reference:
                ratios.append(ratio(rps, medians(reference, client)[0]))
            if name in floor_of:
                floors_.append(ratio(rps, medians(floor_of[name], client)[0]))
        line = f"{name:<{width}} " + " ".join(cells)
        if reference:
            line += "   " + ", ".join(ratios)
        if floors_:
            line += "   " + ", ".join(floors_) + f" of {floor_of[name]}"
        print(line)


def _fmt(iv: Interval | None) -> str:
    if iv is None:
        return "–"
    if iv.lo is None or iv.hi is None:
        return f"{iv.value:.2f}"
    return f"{iv.value:.2f} [{iv.lo:.2f}–{iv.hi:.2f}]"


def print_ratio_intervals(results: PeerResults, servers: list[str], reference: str | None,
                          floor_of: dict[str, str] | None = None, concurrency: int | None = None) -> None:
    """Each backend against its floor, each A/A control against its server, and each server
    against ``reference``: the median of the
    per-round ratios with a 95 % bootstrap interval, by rate and by server CPU per request. A
    target (say ≥ 0.95× the floor) is met when the interval lies above it, missed when below,
    and not decided by this run when the interval straddles it. Then what makes a ratio by CPU
    per request more than the two servers' own work (``cap_warnings``, ``sleep_notes`` and,
    given the clients' ``concurrency``, ``burst_notes``)."""
    pairs = ratio_pairs(servers, reference, floor_of or {})
    if not pairs:
        return
    print("\nratios: median of the per-round ratios [95 % bootstrap interval]; above 1 = the first is faster;"
          " by CPU/req = the second's server CPU per request over the first's")
    width = max([30, *(len(a + ' ÷ ' + b) for a, b in pairs)])
    print(f"{'pair':<{width}} {'wrk req/s':>20} {'ab req/s':>20} {'wrk by CPU/req':>20} {'ab by CPU/req':>20}")
    for a, b in pairs:
        cells = [_fmt(results.ratio_interval(a, b, c, by_cpu)) for by_cpu in (False, True) for c in CLIENTS]
        print(f"{a + ' ÷ ' + b:<{width}} " + " ".join(f"{cell:>20}" for cell in cells))
    for _, server in controls(servers):
        for client in CLIENTS:
            verdict = control_verdict(results, server, client)
            if verdict:
                print(verdict)
    for warning in cap_warnings(results, pairs):
        print(warning)
    for note in sleep_notes(results, pairs):
        print(note)
    for note in burst_notes(results, pairs, concurrency) if concurrency else ():
        print(note)


UNEVEN_OVER, UNEVEN_UNDER = 1.10, 0.90  # a server above, its partner below, its part of the cap
PAIR_BUSY = 0.90  # a pair's mean use of its parts below this: the clients set the pace


def _both(results: PeerResults, a: str, b: str, client: str, field: str) -> list[tuple[float, float]]:
    """a's and b's ``field`` of each run that measured them together, where both have it."""
    return [(x, y) for sa, sb in results.rounds(a, b, client)
            for x, y in [(getattr(sa, field), getattr(sb, field))] if x is not None and y is not None]


def cap_warnings(results: PeerResults, pairs: list[tuple[str, str]]) -> list[str]:
    """What makes a pair's ratio by CPU per request not a comparison of two busy servers, from
    each server's use of its cap in each round: one server taking more than its part while its
    partner left its own unused (a server that polls when it has nothing to do counts that
    polling as CPU per request), or the pair using well under its cap (the clients, not the
    servers, set the pace). Uncapped runs give none."""
    out = []
    for a, b in pairs:
        for client in CLIENTS:
            uses = _both(results, a, b, client, "cap_use")
            if not uses:
                continue
            uneven = [(hi, lo) for x, y in uses for hi, lo in [(max(x, y), min(x, y))]
                      if hi > UNEVEN_OVER and lo < UNEVEN_UNDER]
            if uneven:
                out.append(f"cap {client}: {a} ÷ {b}: in {len(uneven)} of {len(uses)} rounds one used more than its "
                           f"part of the cap (up to {max(h for h, _ in uneven):.0%}) while the other left part of its "
                           f"own unused (down to {min(lo for _, lo in uneven):.0%}): a server that polls when it has "
                           f"nothing to do counts that polling as CPU per request; compare these two by rate")
            busy = statistics.median((x + y) / 2 for x, y in uses)
            if busy < PAIR_BUSY:
                out.append(f"cap {client}: {a} ÷ {b}: the two used a median {busy:.0%} of their caps: the clients, "
                           f"not the servers, set the pace; give them a smaller --server-cpu-share")
    return out


SLEEPS_NOTED = 0.05  # a client that slept at least this often per request ...
SLEEPS_UNEVEN = 0.05  # ... and this much more (relatively) for one server of a pair than the other


def sleep_notes(results: PeerResults, pairs: list[tuple[str, str]]) -> list[str]:
    """A line for each pair whose clients slept at different rates: on loopback the server's
    write wakes a client that sleeps, and the wake-up (an inter-processor interrupt, dear in a
    VM) is charged to that server, so a ratio by CPU per request then carries the clients'
    sleeping as well as the servers' own work — amplified, since the slower server's client
    sleeps more (docs/methodology.md, "Which client"; scripts/client_turns.py measures it)."""
    out = []
    for a, b in pairs:
        for client in CLIENTS:
            counted = _both(results, a, b, client, "client_sleeps_per_request")
            if not counted:
                continue
            sa, sb = (statistics.median(side) for side in zip(*counted))
            if max(sa, sb) < SLEEPS_NOTED:
                continue
            if abs(sa - sb) / max(sa, sb) < SLEEPS_UNEVEN:
                continue
            out.append(f"sleeps {client}: {a} ÷ {b}: their clients slept {sa:.2f} and {sb:.2f} times per request: "
                       f"each wake-up is paid by the server that wrote, so the ratio by CPU/req includes the "
                       f"clients' sleeping (docs/methodology.md, \"Which client\"; scripts/client_turns.py)")
    return out


def burst_notes(results: PeerResults, pairs: list[tuple[str, str]], concurrency: int) -> list[str]:
    """A line for each pair with a server that runs dry inside the cap's bursts: one burst of
    its part of the cap would serve more requests than its client has ready
    (``cgroup.burst_requests``, from the pair's medians), so it is woken for each request that
    arrives, which a busy server is not, and its CPU per request follows the client's pace; two
    servers with different wake-up costs then compare differently (sped and h2o with ab under
    a 100-ms period, docs/methodology.md, "A period longer than the client's backlog"). The
    client's rate is taken at its best, so the rule errs towards silence: a line is a finding,
    its absence no proof. The line gives the longest period that keeps such a server busy
    (``--cap-period-ms CLIENT=MS``). Uncapped runs give none."""
    out = []
    for a, b in pairs:
        for client in CLIENTS:
            rounds = results.rounds(a, b, client)
            dry = []
            for name, runs in ((a, [x for x, _ in rounds]), (b, [y for _, y in rounds])):
                runs = [s for s in runs if s.cap_burst_us and s.cap_period_us
                        and s.server_cpu_us_per_request and s.client_cpu_us_per_request]
                if not runs:
                    continue
                burst = statistics.median(s.cap_burst_us for s in runs)
                period = statistics.median(s.cap_period_us for s in runs)
                server = statistics.median(s.server_cpu_us_per_request for s in runs)
                client_us = statistics.median(s.client_cpu_us_per_request for s in runs)
                served, ready = burst_requests(burst, server, client_us, concurrency)
                longest = longest_busy_burst(server, client_us, concurrency)
                if served > ready and longest is not None:
                    dry.append((name, served, ready, period, period * longest / burst))
            if not dry:
                continue
            longest_ms = max(1, math.floor(min(longest for *_, longest in dry) / 1000))
            each = ", ".join(f"{name} about {served:.0f} against {ready:.0f}" for name, served, ready, _, _ in dry)
            out.append(f"burst {client}: {a} ÷ {b} ({dry[0][3] / 1000:g}-ms period): in one burst of the cap a "
                       f"server could serve more requests than its client has ready ({concurrency} connections "
                       f"and what it sends meanwhile): {each}; so it runs dry inside each burst, is woken for "
                       f"each arrival, and its CPU/req follows the client's pace; a period of at most "
                       f"{longest_ms} ms keeps it busy (--cap-period-ms {client}={longest_ms}, "
                       f"or none for the shortest)")
    return out
