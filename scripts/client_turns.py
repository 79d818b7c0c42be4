#!/usr/bin/python3
"""How the client's way of waiting moves a server's CPU per request, and a pair's ratio: one
backend and its floor started once, side by side as `harness peers --simultaneous` starts a pair
(one cgroup capped at twice --share, a child each, SCHED_BATCH), then loaded by turns with each
client in --clients (one client per server, both at once, a turn of --seconds), the clients'
order rotating by round. For every turn: each server's CPU per request (its cgroup), how often
its client slept per request (the client's voluntary context switches) and the floor's CPU per
request ÷ the backend's; then per client the medians with the ratio's bootstrap interval.

    /usr/bin/python3 scripts/client_turns.py thread
    /usr/bin/python3 scripts/client_turns.py prefork ref-prefork --pool 128 --rounds 6
    /usr/bin/python3 scripts/client_turns.py sped --clients "wrk,loadgen,loadgen --spin-us 0"

A client is `wrk` (wrk -t1, keep-alive) or `loadgen` followed by any of the loadgen's own options
(closed loop, -k). Every client keeps --connections connections alive. Why it matters
(docs/methodology.md, "Which client"): on loopback a server's write runs the client's receive
path and wakes the client if it sleeps, a cross-CPU wake-up that costs the writer several µs in
this VM; wrk sleeps whenever it has nothing to read, the loadgen polls 50 µs first (--spin-us),
so the same pair reads differently by client. Needs root (cgroups), taskset, wrk. Numbers for
notes, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import peers  # noqa: E402
from harness.registry import RegistryError, build_dir, load_references  # noqa: E402
from harness.docroot import write_page  # noqa: E402
from harness.server import ProcessGuard  # noqa: E402
from harness.stats import Interval, bootstrap  # noqa: E402

DEFAULT_CLIENTS = "wrk,loadgen,loadgen --spin-us 0"


@dataclass(frozen=True)
class Client:
    label: str  # as given: "wrk", "loadgen --spin-us 0"
    kind: str  # wrk | loadgen
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class Turn:
    """One turn of one client: per server (backend first, floor second) its requests, its CPU
    seconds and its client's voluntary switches."""
    round: int
    client: str
    requests: tuple[int, int]
    cpu_s: tuple[float, float]
    client_sleeps: tuple[int, int]

    def cpu_us(self, i: int) -> float:
        return self.cpu_s[i] / self.requests[i] * 1e6

    def sleeps_per_request(self, i: int) -> float:
        return self.client_sleeps[i] / self.requests[i]

    @property
    def ratio(self) -> float:
        """The floor's CPU per request ÷ the backend's (the issue's figure: 1 = the backend
        costs what its model's floor costs)."""
        return self.cpu_us(1) / self.cpu_us(0)


def parse_clients(text: str) -> list[Client]:
    """"wrk,loadgen --spin-us 0" -> the clients; a clear error for anything else."""
    clients = []
    for label in (part.strip() for part in text.split(",")):
        words = shlex.split(label)
        if not words or words[0] not in ("wrk", "loadgen") or (words[0] == "wrk" and len(words) > 1):
            raise ValueError(f"--clients: {label!r} is not 'wrk' or 'loadgen [loadgen options]'")
        clients.append(Client(label, words[0], tuple(words[1:])))
    if len({c.label for c in clients}) != len(clients):
        raise ValueError(f"--clients: {text!r} names a client twice")
    return clients


def client_argv(client: Client, connections: int, seconds: int, url: str, json_path: Path,
                loadgen: Path) -> list[str]:
    """The client's command for one turn: keep-alive, ``connections`` in flight, ``seconds``."""
    if client.kind == "wrk":
        return ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", url]
    return [str(loadgen), "-c", str(connections), "-k", "-d", f"{seconds}s", "--discard", "0",
            *client.options, "--json", str(json_path), url]


def requests_of(client: Client, output: str, json_path: Path) -> int:
    """The requests answered in a turn; a run with a failed or non-2xx response is an error
    (a server answering 404 is cheap and fast, and wrk still prints a rate)."""
    if client.kind == "wrk":
        bad = peers.failures("wrk", output)
        if any(bad.values()):
            raise RuntimeError(f"{client.label}: failed responses {bad}:\n{output.strip()}")
        return peers._parse("wrk", output)[1]
    try:
        result = json.loads(json_path.read_text())
    except (OSError, ValueError) as exc:
        raise RuntimeError(f"{client.label}: no result ({exc}):\n{output.strip()}") from None
    if result.get("errors_total"):
        raise RuntimeError(f"{client.label}: errors {result['errors']}")
    return int(result["completed"])


def reference_of(backend: str, build: Path) -> str | None:
    """The reference server that is ``backend``'s floor (backends.json), or None."""
    try:
        return next((r.name for r in load_references(build) if r.reference_for == backend), None)
    except RegistryError:
        return None


def client_order(clients: list[Client], r: int) -> list[Client]:
    """Round ``r``'s order: rotated by one each round, so no client is always first."""
    k = r % len(clients)
    return clients[k:] + clients[:k]


def summary(turns: list[Turn], clients: list[Client]) -> list[tuple[Client, dict]]:
    """Per client, the medians over its turns and the ratio's bootstrap interval."""
    rows = []
    for client in clients:
        mine = [t for t in turns if t.client == client.label]
        if not mine:
            continue
        rows.append((client, {
            "turns": len(mine),
            "cpu_us": tuple(statistics.median(t.cpu_us(i) for t in mine) for i in (0, 1)),
            "sleeps": tuple(statistics.median(t.sleeps_per_request(i) for t in mine) for i in (0, 1)),
            "ratio": bootstrap([t.ratio for t in mine]),
        }))
    return rows


def _interval(iv: Interval) -> str:
    if iv.lo is None or iv.hi is None:
        return f"{iv.value:.3f}"
    return f"{iv.value:.3f} [{iv.lo:.3f}–{iv.hi:.3f}]"


def table(rows: list[tuple[Client, dict]], backend: str, floor: str) -> str:
    width = max([len("client")] + [len(c.label) for c, _ in rows])
    head = (f"{'client':<{width}}  turns  {'µs/req ' + backend:>16}  {'µs/req ' + floor:>18}  "
            f"{'sleeps/req ' + backend:>20}  {'sleeps/req ' + floor:>22}  floor ÷ backend")
    lines = [head]
    for client, s in rows:
        lines.append(f"{client.label:<{width}}  {s['turns']:>5}  {s['cpu_us'][0]:>16.2f}  {s['cpu_us'][1]:>18.2f}  "
                     f"{s['sleeps'][0]:>20.3f}  {s['sleeps'][1]:>22.3f}  {_interval(s['ratio'])}")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("backend")
    ap.add_argument("floor", nargs="?", help="default: the backend's reference (ref-BACKEND)")
    ap.add_argument("--clients", default=DEFAULT_CLIENTS, help=f"comma-separated (default {DEFAULT_CLIENTS!r})")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=4, help="length of a turn")
    ap.add_argument("--share", type=float, default=0.25, help="each server's part of a CPU (default 0.25)")
    ap.add_argument("--connections", type=int, default=100)
    ap.add_argument("--pool", type=int, help="workers of a pool backend and its floor")
    ap.add_argument("--cap-period-ms", type=float, default=100.0)
    ap.add_argument("--warmup", type=int, default=3, help="seconds of wrk before the first turn")
    ap.add_argument("--server-cpu", type=int, default=0)
    ap.add_argument("--client-cpu", type=int, default=1)
    args = ap.parse_args()
    try:
        clients = parse_clients(args.clients)
    except ValueError as exc:
        ap.error(str(exc))
    if args.rounds < 1 or args.seconds < 1 or not 0 < args.share <= 0.5:
        ap.error("--rounds and --seconds must be at least 1, --share in (0, 0.5]")
    build = build_dir()
    floor = args.floor or reference_of(args.backend, build)
    if floor is None:
        ap.error(f"{args.backend} has no reference server: name its floor")
    pair = (args.backend, floor)
    loadgen = build / "loadgen" / "loadgen"
    pools = peers._pools(list(pair), build, args.pool)  # a pool at --pool or its default
    small = {name: size for name, size in pools.items() if size < args.connections}
    if small:
        ap.error(f"every client keeps {args.connections} connections alive, and a worker of "
                 f"{', '.join(small)} holds one ({', '.join(map(str, small.values()))} workers): give "
                 f"--pool {args.connections} or more")
    turns: list[Turn] = []
    guard = ProcessGuard()
    with tempfile.TemporaryDirectory(prefix="client-turns-") as tmp:
        work = Path(tmp)
        (work / "logs").mkdir()
        docroot = work / "docroot"
        docroot.mkdir()
        write_page(docroot, peers.PAGE_BYTES)
        try:
            with peers.started_together(f"client-turns-{os.getpid()}", pair, "wrk", build, work, docroot, guard,
                                        args.connections, str(args.server_cpu), str(args.client_cpu), args.share,
                                        args.warmup, pools, int(args.cap_period_ms * 1000)) as (started, urls):
                for r in range(args.rounds):
                    for client in client_order(clients, r):
                        jsons = [work / f"turn-{i}.json" for i in range(2)]
                        for j in jsons:
                            j.unlink(missing_ok=True)
                        argvs = [client_argv(client, args.connections, args.seconds, url, j, loadgen)
                                 for url, j in zip(urls, jsons)]
                        before = [cg.read() for _, cg in started]
                        runs = peers._run_clients(argvs, str(args.client_cpu),
                                                  on_exit=lambda i, _: started[i][1].read(),
                                                  timeout_s=args.seconds + 60)
                        turn = Turn(r + 1, client.label,
                                    tuple(requests_of(client, out, j) for (out, *_), j in zip(runs, jsons)),
                                    tuple((end.cpu_ns - b.cpu_ns) / 1e9 for (*_, end), b in zip(runs, before)),
                                    tuple(sleeps for (_, _, _, sleeps, _) in runs))
                        turns.append(turn)
                        print(f"round {turn.round} {client.label:<{max(len(c.label) for c in clients)}}  "
                              f"{args.backend} {turn.cpu_us(0):6.2f} µs/req ({turn.sleeps_per_request(0):.3f} "
                              f"sleeps/req)  {floor} {turn.cpu_us(1):6.2f} µs/req "
                              f"({turn.sleeps_per_request(1):.3f})  ratio {turn.ratio:.3f}", flush=True)
        except RuntimeError as exc:
            print(f"client_turns: {exc}", file=sys.stderr)
            return 1
        finally:
            guard.kill_all()
    print()
    print(table(summary(turns, clients), args.backend, floor))
    return 0


if __name__ == "__main__":
    sys.exit(main())
