#!/usr/bin/python3
"""What a server touches to answer one keep-alive request, counted exactly: instructions, and the
distinct cache lines (64 B) and pages (4 KiB) of code and of data, under valgrind's lackey tool
(which sees every instruction and every load and store). Unlike a timed run, the count has no
noise, so it can tell a backend from its model's floor (servers/reference/) where capped runs
cannot resolve a few per cent: after a switch to another process or thread, each of these lines
and pages may have to come back into the caches and the TLB.

    /usr/bin/python3 scripts/footprint.py prefork ref-prefork
    /usr/bin/python3 scripts/footprint.py sped ref-sped --functions 15

Each server runs alone under valgrind with one worker; one client connection sends --requests
requests one at a time (a pause after each, so that every request is a fresh wake-up). The trace
of the process that served them is cut at each call of the --split function it calls about once
per response (writev, write, sendmsg or send), and the figures are the medians over the middle
third of those pieces. Needs valgrind. Numbers for notes, not a test.
"""

from __future__ import annotations

import argparse
import bisect
import collections
import functools
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.metrics import session_members  # noqa: E402
from harness.peers import PAGE_BYTES, _launch  # noqa: E402
from harness.registry import build_dir, load_backends, load_references  # noqa: E402
from harness.docroot import write_page  # noqa: E402

LINE, PAGE = 64, 4096
# wrk's request for http://127.0.0.1:PORT/index.html, byte for byte
REQUEST = "GET /index.html HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"
KINDS = ("program code", "library code", "stack+heap", "program data", "library data", "other")


@dataclass
class Mapping:
    start: int
    end: int
    offset: int
    perms: str
    path: str


@dataclass
class Trace:
    pid: int
    maps: list[Mapping]
    file: Path


@dataclass
class Piece:
    instructions: int = 0
    lines: dict[str, set[int]] = field(default_factory=lambda: collections.defaultdict(set))
    pages: dict[str, set[int]] = field(default_factory=lambda: collections.defaultdict(set))
    by_function: collections.Counter = field(default_factory=collections.Counter)
    # With --functions: the code and data lines each function touched, a line counted for the
    # first function that touched it in the piece (lackey lists an instruction's data accesses
    # right after it, so a data line goes to the function whose instruction read or wrote it).
    code_lines_by_function: collections.Counter = field(default_factory=collections.Counter)
    data_lines_by_function: collections.Counter = field(default_factory=collections.Counter)
    # With --pages: each page touched, (page, code?) -> the instruction that touched it first.
    first_touch: dict[tuple[int, bool], int] = field(default_factory=dict)


def read_maps(pid: int) -> list[Mapping]:
    maps = []
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        parts = line.split(maxsplit=5)
        start, end = (int(x, 16) for x in parts[0].split("-"))
        maps.append(Mapping(start, end, int(parts[2], 16), parts[1], parts[5] if len(parts) > 5 else ""))
    return maps


def describe(name: str, build: Path) -> dict:
    for entry in [*load_backends(build), *load_references(build)]:
        if entry.name == name:
            return entry.raw
    raise SystemExit(f"footprint: '{name}' is neither a built backend nor a reference server")


def run_server(name: str, argv: list[str], args: argparse.Namespace, work: Path) -> list[Trace]:
    """Starts `name` (`argv`) under lackey, sends the requests, and returns every process's trace
    with its memory map (read while the process is still alive)."""
    if describe(name, build_dir()).get("default_workers", 1) > 1:
        argv = [*argv, "--workers", "1"]
    traces = work / name
    traces.mkdir()
    proc = subprocess.Popen(["valgrind", "--tool=lackey", "--trace-mem=yes",
                             f"--log-file={traces}/trace.%p", "--", *argv],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        line = proc.stdout.readline()
        match = re.fullmatch(r"listening on .*:(\d+)\s*", line)
        if not match:
            raise SystemExit(f"footprint: {name} did not start under valgrind: {line!r}")
        port = int(match.group(1))
        request = REQUEST.format(port=port).encode()
        with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
            for _ in range(args.requests):
                conn.sendall(request)
                read_response(conn, name)
                time.sleep(args.pause)
            # Its own session: valgrind, the server and any processes it forked.
            maps = {member.pid: read_maps(member.pid) for member in session_members(proc.pid)}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: the server and its workers
            proc.wait()
    return [Trace(pid, m, traces / f"trace.{pid}") for pid, m in maps.items() if (traces / f"trace.{pid}").exists()]


def read_response(conn: socket.socket, name: str) -> None:
    data = b""
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            raise SystemExit(f"footprint: {name} closed the connection")
        data += chunk
        head_end = data.find(b"\r\n\r\n")
        if head_end < 0:
            continue
        if not data.startswith(b"HTTP/1.1 200"):
            raise SystemExit(f"footprint: {name} answered {data[:40]!r}")
        length = re.search(rb"(?im)^content-length:\s*(\d+)", data[:head_end])
        if length and len(data) >= head_end + 4 + int(length.group(1)):
            return


@functools.cache
def dynamic_symbols(path: str) -> dict[str, int]:
    """A library's exported functions and their offsets (`nm -D`), read once per library."""
    out = subprocess.run(["nm", "-D", "--defined-only", path], capture_output=True, text=True, check=True).stdout
    symbols = {}
    for line in out.splitlines():
        addr, _, name = line.split(maxsplit=2)
        symbols.setdefault(name.split("@")[0], int(addr, 16))
    return symbols


class Symbols:
    """Addresses to (file kind, function) through the process's maps and `nm`."""

    def __init__(self, maps: list[Mapping], program: str):
        self.maps = sorted(maps, key=lambda m: m.start)
        self.program = program
        self.bases = {}
        for m in self.maps:
            if m.path.startswith("/"):
                self.bases.setdefault(m.path, m.start - m.offset)
        self.tables: dict[str, list[tuple[int, str]]] = {}
        self.starts = [m.start for m in self.maps]

    def mapping(self, address: int) -> Mapping | None:
        i = bisect.bisect_right(self.starts, address) - 1
        if i >= 0 and address < self.maps[i].end:
            return self.maps[i]
        return None

    def kind(self, address: int, code: bool) -> str:
        m = self.mapping(address)
        if m is None:
            return "other"
        if not m.path.startswith("/"):
            return "stack+heap" if m.path in ("", "[stack]", "[heap]") or m.path.startswith("[anon") else "other"
        own = os.path.basename(m.path) == self.program
        if code:
            return "program code" if own else "library code"
        return "program data" if own else "library data"

    def address_of(self, library: str, symbol: str) -> int:
        path = next((p for p in self.bases if os.path.basename(p).startswith(library)), None)
        if path is None:
            raise SystemExit(f"footprint: the server has no {library} mapped")
        offset = dynamic_symbols(path).get(symbol)
        if offset is None:
            raise SystemExit(f"footprint: {symbol} is not in {path}")
        return self.bases[path] + offset

    def function(self, address: int) -> str:
        m = self.mapping(address)
        if m is None or not m.path.startswith("/"):
            return "?"
        table = self.tables.get(m.path)
        if table is None:
            out = subprocess.run(["nm", "-C", "-n", "--defined-only", m.path], capture_output=True, text=True).stdout
            if not out.strip():
                out = subprocess.run(["nm", "-C", "-n", "-D", "--defined-only", m.path], capture_output=True,
                                     text=True).stdout
            table = []
            for line in out.splitlines():
                match = re.match(r"([0-9a-f]+) [tTwWiI] (.*)", line)
                if match:
                    table.append((int(match.group(1), 16), match.group(2)))
            table.sort()
            self.tables[m.path] = table
        rel = address - self.bases[m.path]
        i = bisect.bisect_right(table, (rel, "\uffff")) - 1
        name = table[i][1] if i >= 0 else "?"
        return f"{os.path.basename(m.path)}: {name}"


def pieces(trace: Trace, program: str, split: str, functions: bool, pages: bool = False) -> list[Piece]:
    """The trace cut at each entry of the libc function `split`."""
    symbols = Symbols(trace.maps, program)
    cut = symbols.address_of("libc.so", split)
    out: list[Piece] = [Piece()]
    kind_cache: dict[tuple[int, bool], str] = {}
    current = 0  # address of the last instruction: the function data accesses are charged to
    with trace.file.open() as f:
        for line in f:
            if line.startswith("=="):
                continue
            code = line[0] == "I"
            try:
                address_text, size_text = line[2:].strip().split(",")
                address, size = int(address_text, 16), int(size_text)
            except ValueError:
                continue
            if code and address == cut:
                out.append(Piece())
            piece = out[-1]
            if code:
                piece.instructions += 1
                current = address
                if functions:
                    piece.by_function[address] += 1
            page = address // PAGE
            kind = kind_cache.get((page, code))
            if kind is None:
                kind = kind_cache[(page, code)] = symbols.kind(address, code)
            last = address + max(size, 1) - 1  # an access may cross into the next line or page
            touched = range(address // LINE, last // LINE + 1)
            if functions:
                first = [line for line in touched if line not in piece.lines[kind]]
                if first:
                    (piece.code_lines_by_function if code else piece.data_lines_by_function)[current] += len(first)
            piece.lines[kind].update(touched)
            piece.pages[kind].update(range(page, last // PAGE + 1))
            if pages:
                for p in range(page, last // PAGE + 1):
                    piece.first_touch.setdefault((p, code), current)
    if functions:
        for piece in out:
            for attribute in ("by_function", "code_lines_by_function", "data_lines_by_function"):
                named = collections.Counter()
                for address, n in getattr(piece, attribute).items():
                    named[symbols.function(address)] += n
                setattr(piece, attribute, named)
    return out


def calls(trace: Trace, program: str, functions: list[str]) -> collections.Counter:
    """How often the trace enters each of the libc `functions` (those libc has)."""
    symbols = Symbols(trace.maps, program)
    entries = {}
    for function in functions:
        try:
            entries[symbols.address_of("libc.so", function)] = function
        except SystemExit:
            continue
    counts: collections.Counter = collections.Counter()
    with trace.file.open() as f:
        for line in f:
            if line.startswith("I"):
                function = entries.get(int(line[2:].strip().split(",")[0], 16))
                if function:
                    counts[function] += 1
    return counts


def split_point(traces: list[Trace], program: str, functions: list[str], requests: int) -> tuple[Trace, str]:
    """The process and the function of `functions` it calls closest to once per request."""
    best, distance = None, None
    for trace in traces:
        for function, n in calls(trace, program, functions).items():
            if n >= requests // 2 and (distance is None or abs(n - requests) < distance):
                best, distance = (trace, function), abs(n - requests)
    if best is None:
        raise SystemExit(f"footprint: no process of {program} called any of {', '.join(functions)} about "
                         f"once per request; name the function it writes with in --split")
    return best


def measure(name: str, args: argparse.Namespace, work: Path) -> tuple[dict[str, float], list[Piece]]:
    argv = list(_launch(name, work, work / "docroot", build_dir()).argv)
    program = os.path.basename(argv[0])
    traces = run_server(name, argv, args, work)
    trace, function = split_point(traces, program, args.split.split(","), args.requests)
    best = pieces(trace, program, function, args.functions > 0, args.pages)
    middle = best[len(best) // 3: 2 * len(best) // 3]
    if args.pages:
        print_pages(name, trace, program, middle)
    row = {"instructions": statistics.median(p.instructions for p in middle)}
    code = [k for k in KINDS if "code" in k]
    for label, kinds in (("code lines", code), ("data lines", [k for k in KINDS if k not in code])):
        row[label] = statistics.median(sum(len(p.lines[k]) for k in kinds) for p in middle)
    for label, kinds in (("code pages", code), ("data pages", [k for k in KINDS if k not in code])):
        row[label] = statistics.median(sum(len(p.pages[k]) for k in kinds) for p in middle)
    for kind in KINDS:
        row[f"  lines: {kind}"] = statistics.median(len(p.lines[kind]) for p in middle)
    return row, middle


def print_pages(name: str, trace: Trace, program: str, middle: list[Piece]) -> None:
    """Every page one request (the median piece of the middle third) touched: its mapping, the
    page's place in it, and the function whose instruction touched it first."""
    symbols = Symbols(trace.maps, program)
    piece = middle[len(middle) // 2]
    print(f"\n--- {name}: the {len(piece.first_touch)} pages one request touched (code/data, mapping, "
          f"page in it, first toucher) ---")
    for (page, code), at in sorted(piece.first_touch.items(), key=lambda item: (not item[0][1], item[0][0])):
        m = symbols.mapping(page * PAGE)
        where = (os.path.basename(m.path) or "[anon]") if m else "?"
        index = (page * PAGE - m.start) // PAGE if m else 0
        print(f"  {'code' if code else 'data'}  {where:<28} +{index:<6} {symbols.function(at)[:90]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("servers", nargs="+", help="backends and reference servers (ref-<model>)")
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--pause", type=float, default=0.005, help="seconds between requests")
    parser.add_argument("--split", default="writev,write,sendmsg,send",
                        help="libc functions, one of which the server calls once per response")
    parser.add_argument("--functions", type=int, default=0,
                        help="also list the N functions with most instructions, with the code and data lines "
                             "each touched")
    parser.add_argument("--pages", action="store_true",
                        help="also list every page one request touched, with the function that touched it first")
    args = parser.parse_args()
    if subprocess.run(["which", "valgrind"], capture_output=True).returncode != 0:
        raise SystemExit("footprint: needs valgrind (apt-get install valgrind)")
    with tempfile.TemporaryDirectory(prefix="footprint-") as tmp:
        work = Path(tmp)
        write_page(work / "docroot", PAGE_BYTES)
        results = {name: measure(name, args, work) for name in args.servers}
    rows = list(next(iter(results.values()))[0])
    print(f"per keep-alive request (medians of the middle third of {args.requests}), counted by valgrind lackey")
    width = max(14, *(len(name) + 2 for name in args.servers))
    print(f"{'':<26}" + "".join(f"{name:>{width}}" for name in args.servers))
    for row in rows:
        print(f"{row:<26}" + "".join(f"{results[n][0][row]:>{width}.0f}" for n in args.servers))
    for name in args.servers if args.functions else []:
        middle = results[name][1]
        piece = middle[len(middle) // 2]
        print(f"\n--- {name}: by function, one request (instructions, code lines, data lines) ---")
        for function, n in piece.by_function.most_common(args.functions):
            print(f"{n:>8} {piece.code_lines_by_function[function]:>5} "
                  f"{piece.data_lines_by_function[function]:>5}  {function[:100]}")
        rest = set(piece.code_lines_by_function) - {f for f, _ in piece.by_function.most_common(args.functions)}
        if rest:
            print(f"{'':>8} {sum(piece.code_lines_by_function[f] for f in rest):>5} "
                  f"{sum(piece.data_lines_by_function[f] for f in rest):>5}  ({len(rest)} other functions)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
