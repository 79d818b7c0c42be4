"""Experiment files: the TOML schema, its validation and the ``--quick`` shrinking.

An experiment names the servers to run, the offered loads, the per-point request count and the
pinning. Everything is checked before anything runs; a mistake produces one line per problem
naming the file, the field and what is allowed (``ExperimentError``), never a traceback.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PRODUCTION_NAMES = ("nginx", "lighttpd", "h2o", "apache-prefork", "apache-worker", "node")
CLAIM_SETS = ("kerneis2009",)  # harness.claims.CLAIM_SETS
LOAD_MODES = ("closed",)
# What an experiment sweeps, and so which analysis and report pages it gets:
#   load-sweep        offered load (Kerneis & Chroboczek's Fig. 1 and 2; the default)
#   idle-connections  idle keep-alive connections held beside a fixed active load (von Leitner 2003)
#   dynamic-page      a dynamic page against a static file of the same size (Fremlin 2008)
#   many-connections  thousands of keep-alive connections ramped in (the SXE posts, 2010)
KINDS = ("load-sweep", "idle-connections", "dynamic-page", "many-connections")
CPU_LIST_RE = re.compile(r"^\d+(-\d+)?(,\d+(-\d+)?)*$")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class ExperimentError(Exception):
    """The experiment file is unusable; ``problems`` holds one readable line per mistake."""

    def __init__(self, path: Path | str, problems: list[str]):
        self.path = Path(path)
        self.problems = problems
        super().__init__("\n".join(f"{self.path}: {p}" for p in problems))


@dataclass(frozen=True)
class LoadSpec:
    """How each point is loaded: closed loop, ``level`` requests in flight (ab-style)."""

    mode: str = "closed"
    levels: tuple[int, ...] = (1, 10, 100)
    keep_alive: bool = False
    requests: int = 10000
    discard: int = 1000
    repetitions: int = 1
    threads: int = 1
    timeout_s: float = 30.0
    path: str = "/index.html"
    ready_timeout_s: float = 10.0
    idle_connections: tuple[int, ...] = ()  # idle-connections: held beside the active load
    keep_alive_modes: tuple[bool, ...] = ()  # dynamic-page: both, when keep_alive = [false, true]
    ramp_s: float | None = None  # loadgen --ramp: spread the connection starts over this long
    spin_us: int | None = None  # loadgen --spin-us: µs of polling before it sleeps (None: its default)
    window_s: float | None = None  # kept window per point (time-based points); None: requests/discard
    warmup_s: float | None = None  # None with window_s: chosen per point from the calibration


@dataclass(frozen=True)
class Variant:
    """A backend run with extra arguments under its own label (e.g. sped with poll)."""

    name: str
    backend: str
    args: tuple[str, ...] = ()
    ranked: bool = True  # False: a series drawn for a figure (e.g. Fig. 1(a)), never ranked
    repetitions: int | None = None  # run in the first N repetitions only (None: all)
    max_connections: int | None = None  # what this configuration holds, if less than the backend (select)


@dataclass(frozen=True)
class Validity:
    """Kerneis & Chroboczek's points are meaningful only when the server is the bottleneck: a
    point beyond the knee counts when the server used at least ``server_min`` of its CPU
    allowance in the kept window and the client at most ``client_max`` of its CPU."""

    server_min: float = 0.9
    client_max: float = 0.6


@dataclass(frozen=True)
class Calibration:
    """``server_cpu_share = "auto"``: the largest share at which the client stays at most
    ``client_max`` busy against the fastest server at the heaviest load (probes of ``probe_s``).
    ``steadiness_s`` > 0: first run harness/steadiness.py's two fixed loops (arithmetic, a chase
    through the cache) on the server's CPU for that long, so the report can say how much of every interval is the machine's own variation."""

    client_max: float = 0.5
    probe_s: float = 1.5
    steadiness_s: float = 0.0


@dataclass(frozen=True)
class Microbench:
    """The microbenchmark programs run after the points (the report's primitives chapter)."""

    programs: tuple[str, ...] = ()
    repetitions: int = 1
    min_time_s: float = 0.05


@dataclass(frozen=True)
class Experiment:
    path: Path
    name: str
    title: str
    description: str = ""
    paper: str = ""
    kind: str = "load-sweep"  # one of KINDS
    claims: tuple[str, ...] = ()  # claim sets checked by the report (harness.claims)
    backends: str | tuple[str, ...] = "all"  # "all" or explicit names from backends.json
    production: str | tuple[str, ...] = "all"  # "all" or names from PRODUCTION_NAMES
    # Reference servers (ref-<model>, servers/reference/), each the floor of one backend's model:
    # () none, "all" the reference of every backend in the run that has one, or explicit names.
    references: str | tuple[str, ...] = ()
    # Each backend measured at the same time as its reference server, one loadgen each, in one
    # cgroup capped at twice the share (harness.runner.Runner.measure_together): the host's drift
    # cancels within the pair, as in `harness peers --simultaneous`.
    beside_reference: bool = False
    # With beside_reference, one reference is also measured beside itself at every load and
    # repetition (an A/A control, in controls.jsonl): what the run can resolve.
    beside_control: bool = True
    backend_args: dict[str, tuple[str, ...]] = field(default_factory=dict)
    variants: tuple[Variant, ...] = ()
    workers: int | None = None
    # The size of every fixed pool of the toy servers (prefork's processes, threadpool's threads)
    # and of their reference servers; None: each backend's default. Apache's is apache_pool.
    pool: int | None = None
    apache_pool: int = 64
    load: LoadSpec = LoadSpec()
    page_size: int = 305
    dynamic_page: str = "/hello?name=TLUG"  # dynamic-page: the page measured against its static twin
    server_cpus: str = "0"
    client_cpus: str = "1"
    server_cpu_share: float | str = "auto"  # "auto" (calibrated), or a fraction of one CPU; 1.0 = no cap
    validity: Validity = Validity()
    calibration: Calibration = Calibration()
    memory_connections: int = 0  # > 0: bytes per idle keep-alive connection, SXE-style
    microbench: "Microbench | None" = None  # the primitives chapter's measurements, if any
    quick_overrides: dict[str, Any] = field(default_factory=dict)
    is_quick: bool = False
    source_text: str = ""

    def quick(self) -> "Experiment":
        """The smoke-test version: fewer levels, fewer requests, one repetition."""
        levels = self.load.levels
        default_levels = tuple(sorted({levels[0], levels[len(levels) // 2], levels[-1]}))
        requests = min(self.load.requests, 3000)
        overrides: dict[str, Any] = {
            "levels": default_levels,
            "requests": requests,
            "discard": min(self.load.discard, 100),
            "repetitions": 1,
        }
        if self.load.window_s is not None:
            overrides["window_s"] = min(self.load.window_s, 1.0)
        overrides.update({k: v for k, v in self.quick_overrides.items() if k != "memory_connections"})
        memory = self.quick_overrides.get("memory_connections", min(self.memory_connections, 200))
        return dataclasses.replace(
            self, load=dataclasses.replace(self.load, **overrides), is_quick=True, memory_connections=memory,
            calibration=dataclasses.replace(self.calibration, probe_s=min(self.calibration.probe_s, 1.0),
                                            steadiness_s=min(self.calibration.steadiness_s, 1.0)),
        )


def parse_cpu_list(text: str) -> list[int]:
    """``"0,2-3"`` → ``[0, 2, 3]`` (the taskset -c syntax)."""
    cpus: list[int] = []
    for part in text.split(","):
        if "-" in part:
            lo, hi = part.split("-")
            cpus.extend(range(int(lo), int(hi) + 1))
        else:
            cpus.append(int(part))
    return sorted(set(cpus))


class _Checker:
    """Walks the parsed TOML, recording problems instead of raising on the first one."""

    def __init__(self, path: Path):
        self.path = path
        self.problems: list[str] = []

    def fail(self, field_name: str, message: str) -> None:
        self.problems.append(f"field '{field_name}': {message}")

    def table(self, data: dict, key: str, required: bool, allowed: tuple[str, ...]) -> dict:
        value = data.get(key)
        if value is None:
            if required:
                self.fail(key, f"missing table [{key}] (it holds: {', '.join(allowed)})")
            return {}
        if not isinstance(value, dict):
            self.fail(key, f"must be a table [{key}], got {_describe(value)}")
            return {}
        self.unknown_keys(value, key, allowed)
        return value

    def unknown_keys(self, data: dict, prefix: str, allowed: tuple[str, ...]) -> None:
        for key in data:
            if key not in allowed:
                self.fail(f"{prefix}.{key}", f"unknown key; allowed keys: {', '.join(allowed)}")

    def string(self, data: dict, prefix: str, key: str, default: str | None, pattern=None,
               hint: str = "") -> str | None:
        value = data.get(key, default)
        name = f"{prefix}.{key}"
        if value is None:
            self.fail(name, "required, a string" + (f" ({hint})" if hint else ""))
            return None
        if not isinstance(value, str):
            self.fail(name, f"must be a string{' (' + hint + ')' if hint else ''}, got {_describe(value)}")
            return default
        if pattern is not None and not pattern.match(value):
            self.fail(name, f"{value!r} is not valid; expected {hint}")
            return default
        return value

    def integer(self, data: dict, prefix: str, key: str, default: int | None, minimum: int) -> int | None:
        value = data.get(key, default)
        name = f"{prefix}.{key}"
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(name, f"must be an integer ≥ {minimum}, got {_describe(value)}")
            return default
        if value < minimum:
            self.fail(name, f"must be an integer ≥ {minimum}, got {value}")
            return default
        return value

    def number(self, data: dict, prefix: str, key: str, default):
        value = data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            self.fail(f"{prefix}.{key}", f"must be a positive number of seconds, got {_describe(value)}")
            return default
        return float(value)

    def seconds_or_zero(self, data: dict, prefix: str, key: str, default: float) -> float:
        value = data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 60:
            self.fail(f"{prefix}.{key}", f"must be a number of seconds from 0 (off) to 60, got {_describe(value)}")
            return default
        return float(value)

    def fraction(self, data: dict, prefix: str, key: str, default: float) -> float:
        value = data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
            self.fail(f"{prefix}.{key}", f"must be a fraction between 0 and 1 (e.g. 0.6 = 60 % of a CPU), "
                      f"got {_describe(value)}")
            return default
        return float(value)

    def boolean(self, data: dict, prefix: str, key: str, default: bool) -> bool:
        value = data.get(key, default)
        if not isinstance(value, bool):
            self.fail(f"{prefix}.{key}", f"must be true or false, got {_describe(value)}")
            return default
        return value

    def choice(self, data: dict, prefix: str, key: str, default: str, choices: tuple[str, ...]) -> str:
        value = data.get(key, default)
        if value not in choices:
            self.fail(f"{prefix}.{key}", f"must be one of {', '.join(map(repr, choices))}, got {_describe(value)}")
            return default
        return value

    def levels(self, data: dict, prefix: str, default: tuple[int, ...] | None) -> tuple[int, ...] | None:
        value = data.get("levels", default)
        name = f"{prefix}.levels"
        if value is None:
            self.fail(name, "required, a non-empty list of positive integers (concurrent clients)")
            return None
        if (
            not isinstance(value, (list, tuple))
            or not value
            or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value)
        ):
            self.fail(name, f"must be a non-empty list of positive integers (concurrent clients), got {_describe(value)}")
            return default
        return tuple(sorted(set(value)))

    def names(self, data: dict, prefix: str, key: str, allowed: tuple[str, ...] | None,
              what: str) -> str | tuple[str, ...]:
        """``"all"`` or a list of names, each checked against ``allowed`` when that is known."""
        value = data.get(key, "all")
        name = f"{prefix}.{key}"
        allowed_text = ", ".join(allowed) if allowed else "(none available)"
        if value == "all":
            return "all"
        if not isinstance(value, list) or any(not isinstance(v, str) for v in value):
            self.fail(name, f'must be "all" or a list of {what} names; allowed: {allowed_text}')
            return "all"
        if allowed is not None:
            for v in value:
                if v not in allowed:
                    self.fail(name, f"unknown {what} {v!r}; allowed: {allowed_text}")
        return tuple(dict.fromkeys(value))


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"string {value!r}"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return f"list {value!r}"
    return f"{type(value).__name__} {value!r}"


TOP_KEYS = ("experiment", "servers", "load", "page", "pinning", "validity", "calibration", "memory", "microbench",
            "quick")
EXPERIMENT_KEYS = ("name", "title", "description", "paper", "kind", "claims")
SERVERS_KEYS = ("backends", "production", "references", "beside_reference", "beside_control", "args", "variant",
                "workers", "pool", "apache_pool")
REFERENCE_RE = re.compile(r"^ref-[A-Za-z0-9_-]+$")
REFERENCE_PAGE_SIZE = 305  # the built-in page every reference server answers with
LOAD_KEYS = ("mode", "levels", "keep_alive", "requests", "discard", "repetitions", "threads",
             "timeout_s", "path", "ready_timeout_s", "window_s", "warmup_s", "idle_connections", "ramp_s", "spin_us")
PAGE_KEYS = ("size_bytes", "dynamic")
PINNING_KEYS = ("server_cpus", "client_cpus", "server_cpu_share")
QUICK_KEYS = ("levels", "requests", "discard", "repetitions", "window_s", "memory_connections", "idle_connections")
VARIANT_KEYS = ("name", "backend", "args", "ranked", "repetitions", "max_connections")
VALIDITY_KEYS = ("server_min_utilization", "client_max_utilization")
CALIBRATION_KEYS = ("client_max_utilization", "probe_s", "steadiness_s")
MEMORY_KEYS = ("connections",)
MICROBENCH_KEYS = ("programs", "repetitions", "min_time_s")


def load_experiment(path: Path | str, known_backends: tuple[str, ...] | None = None) -> Experiment:
    """Parse and validate ``path``.

    ``known_backends`` are the names in backends.json; ``None`` when the build is missing (names
    are then checked only when the run starts).
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ExperimentError(path, [f"cannot read the file: {exc.strerror}"]) from None
    return parse_experiment(text, path, known_backends)


def parse_experiment(text: str, path: Path | str, known_backends: tuple[str, ...] | None = None) -> Experiment:
    path = Path(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ExperimentError(path, [f"not valid TOML: {exc}"]) from None

    c = _Checker(path)
    for key in data:
        if key not in TOP_KEYS:
            c.fail(key, f"unknown table or key; allowed: {', '.join(TOP_KEYS)}")

    exp = c.table(data, "experiment", True, EXPERIMENT_KEYS)
    name = c.string(exp, "experiment", "name", None, NAME_RE, "letters, digits, '-', '_' or '.'") if exp else None
    title = c.string(exp, "experiment", "title", None, hint="a one-line title") if exp else None
    description = c.string(exp, "experiment", "description", "") or ""
    paper = c.string(exp, "experiment", "paper", "") or ""
    kind = c.choice(exp, "experiment", "kind", "load-sweep", KINDS) if exp else "load-sweep"
    claims: tuple[str, ...] = ()
    raw_claims = exp.get("claims", []) if exp else []
    if not isinstance(raw_claims, list) or any(v not in CLAIM_SETS for v in raw_claims):
        c.fail("experiment.claims", f"must be a list of claim sets; known: {', '.join(CLAIM_SETS)}; "
               f"got {_describe(raw_claims)}")
    else:
        claims = tuple(raw_claims)

    srv = c.table(data, "servers", True, SERVERS_KEYS)
    backends = c.names(srv, "servers", "backends", known_backends, "backend")
    production = c.names(srv, "servers", "production", PRODUCTION_NAMES, "production server")
    references: str | tuple[str, ...] = ()
    raw_refs = srv.get("references", []) if srv else []
    if raw_refs == "all":
        references = "all"
    elif not isinstance(raw_refs, list) or any(not isinstance(v, str) or not REFERENCE_RE.match(v) for v in raw_refs):
        c.fail("servers.references", f'must be "all" or a list of reference servers named ref-<model> '
               f'(e.g. ["ref-sped", "ref-fork"]); got {_describe(raw_refs)}')
    else:
        references = tuple(dict.fromkeys(raw_refs))
    beside_reference = c.boolean(srv, "servers", "beside_reference", False) if srv else False
    beside_control = c.boolean(srv, "servers", "beside_control", True) if srv else True
    if beside_reference and not references:
        c.fail("servers.beside_reference", 'measures each backend at the same time as its reference server: it '
               'needs servers.references ("all" or a list)')
    workers = c.integer(srv, "servers", "workers", None, 1)
    pool = c.integer(srv, "servers", "pool", None, 1)
    apache_pool = c.integer(srv, "servers", "apache_pool", 64, 1) or 64

    backend_args: dict[str, tuple[str, ...]] = {}
    args_table = srv.get("args", {})
    if not isinstance(args_table, dict):
        c.fail("servers.args", "must be a table: backend name = [\"--flag\", \"value\", ...]")
    else:
        for bname, bargs in args_table.items():
            if known_backends is not None and bname not in known_backends:
                c.fail(f"servers.args.{bname}", f"unknown backend; allowed: {', '.join(known_backends)}")
            if not isinstance(bargs, list) or any(not isinstance(a, str) for a in bargs):
                c.fail(f"servers.args.{bname}", f"must be a list of strings, got {_describe(bargs)}")
                continue
            backend_args[bname] = tuple(bargs)

    variants: list[Variant] = []
    raw_variants = srv.get("variant", [])
    if not isinstance(raw_variants, list):
        c.fail("servers.variant", "must be an array of tables [[servers.variant]] with name, backend, args")
        raw_variants = []
    for i, raw in enumerate(raw_variants):
        prefix = f"servers.variant[{i}]"
        if not isinstance(raw, dict):
            c.fail(prefix, "must be a table with name, backend, args")
            continue
        c.unknown_keys(raw, prefix, VARIANT_KEYS)
        vname = c.string(raw, prefix, "name", None, NAME_RE, "letters, digits, '-', '_' or '.'")
        vbackend = c.string(raw, prefix, "backend", None, hint="a backend name")
        if vbackend and known_backends is not None and vbackend not in known_backends:
            c.fail(f"{prefix}.backend", f"unknown backend {vbackend!r}; allowed: {', '.join(known_backends)}")
        vargs = raw.get("args", [])
        if not isinstance(vargs, list) or any(not isinstance(a, str) for a in vargs):
            c.fail(f"{prefix}.args", f"must be a list of strings, got {_describe(vargs)}")
            vargs = []
        ranked = c.boolean(raw, prefix, "ranked", True)
        vreps = c.integer(raw, prefix, "repetitions", None, 1)
        vmax = c.integer(raw, prefix, "max_connections", None, 1)
        if vname and vbackend:
            variants.append(Variant(vname, vbackend, tuple(vargs), ranked, vreps, vmax))

    ld = c.table(data, "load", True, LOAD_KEYS)
    mode = c.choice(ld, "load", "mode", "closed", LOAD_MODES)
    levels = c.levels(ld, "load", None) if ld else None
    keep_alive_modes: tuple[bool, ...] = ()
    if isinstance(ld.get("keep_alive"), list):
        modes = ld["keep_alive"]
        if not modes or any(not isinstance(m, bool) for m in modes) or kind != "dynamic-page":
            c.fail("load.keep_alive", "a list of true/false is allowed only with kind = \"dynamic-page\"; "
                   f"otherwise true or false, got {_describe(modes)}")
        else:
            keep_alive_modes = tuple(dict.fromkeys(modes))
        keep_alive = bool(keep_alive_modes and keep_alive_modes[0])
    else:
        keep_alive = c.boolean(ld, "load", "keep_alive", False)
    idle_connections: tuple[int, ...] = ()
    if "idle_connections" in ld:
        idle = ld["idle_connections"]
        if (not isinstance(idle, list) or not idle
                or any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in idle)):
            c.fail("load.idle_connections", f"must be a non-empty list of integers ≥ 0, got {_describe(idle)}")
        else:
            idle_connections = tuple(sorted(set(idle)))
    if kind == "idle-connections" and not idle_connections:
        c.fail("load.idle_connections", "required with kind = \"idle-connections\" (the counts of idle "
               "keep-alive connections held beside the active load)")
    ramp_s = c.number(ld, "load", "ramp_s", None) if "ramp_s" in ld else None
    spin_us = c.integer(ld, "load", "spin_us", None, 0) if "spin_us" in ld else None
    if spin_us is not None and spin_us > 1_000_000:
        c.fail("load.spin_us", f"must be at most 1000000 µs (the loadgen's --spin-us), got {spin_us}")
    requests = c.integer(ld, "load", "requests", 10000, 1) or 10000
    discard = c.integer(ld, "load", "discard", 1000, 0)
    discard = 1000 if discard is None else discard
    repetitions = c.integer(ld, "load", "repetitions", 1, 1) or 1
    threads = c.integer(ld, "load", "threads", 1, 1) or 1
    timeout_s = c.number(ld, "load", "timeout_s", 30.0)
    ready_timeout_s = c.number(ld, "load", "ready_timeout_s", 10.0)
    url_path = c.string(ld, "load", "path", "/index.html", re.compile(r"^/\S*$"), "a URL path starting with '/'")
    window_s = c.number(ld, "load", "window_s", None) if "window_s" in ld else None
    warmup_s = None
    if "warmup_s" in ld and ld["warmup_s"] != "auto":
        warmup_s = c.number(ld, "load", "warmup_s", None)
    if "warmup_s" in ld and window_s is None:
        c.fail("load.warmup_s", "needs load.window_s (time-based points); without it the first and last "
               "load.discard samples are dropped instead")
    if window_s is None and requests <= 2 * discard:
        c.fail("load.requests", f"must be larger than 2 × load.discard = {2 * discard} "
               f"(the first and last {discard} samples are discarded), got {requests}")

    page = c.table(data, "page", False, PAGE_KEYS)
    page_size = c.integer(page, "page", "size_bytes", 305, 1) or 305
    if references and page_size != REFERENCE_PAGE_SIZE:
        c.fail("page.size_bytes", f"must be {REFERENCE_PAGE_SIZE} when servers.references is set: a reference "
               f"server answers every request with the built-in {REFERENCE_PAGE_SIZE}-byte page; got {page_size}")
    if references and kind != "load-sweep":
        c.fail("servers.references", f"reference servers take part in load-sweep experiments only (they answer "
               f"one canned page and hold no idle-connection or dynamic-page behaviour); this one is {kind!r}")
    dynamic_page = c.string(page, "page", "dynamic", "/hello?name=TLUG", re.compile(r"^/\S*$"),
                            "a URL path starting with '/'") or "/hello?name=TLUG"

    pin = c.table(data, "pinning", False, PINNING_KEYS)
    cpu_hint = "a taskset CPU list such as \"0\", \"1-3\" or \"0,2\""
    server_cpus = c.string(pin, "pinning", "server_cpus", "0", CPU_LIST_RE, cpu_hint) or "0"
    client_cpus = c.string(pin, "pinning", "client_cpus", "1", re.compile(r"^(others|" + CPU_LIST_RE.pattern[1:-1] + r")$"),
                           cpu_hint + " or \"others\"") or "1"

    share: float | str = pin.get("server_cpu_share", "auto")
    if share != "auto" and (isinstance(share, bool) or not isinstance(share, (int, float))
                            or not 0.05 <= share <= 1.0):
        c.fail("pinning.server_cpu_share", f'must be "auto" (calibrated before the run) or a number from 0.05 '
               f"to 1.0 (fraction of one CPU the server may use; 1.0 = no limit), got {_describe(share)}")
        share = "auto"
    if beside_reference and share != "auto" and not (isinstance(share, (int, float)) and share <= 0.5):
        c.fail("pinning.server_cpu_share", "with servers.beside_reference two servers share one cap of twice "
               f"the share on one CPU: it must be \"auto\" or at most 0.5, got {_describe(share)}")

    val = c.table(data, "validity", False, VALIDITY_KEYS)
    validity = Validity(server_min=c.fraction(val, "validity", "server_min_utilization", 0.9),
                        client_max=c.fraction(val, "validity", "client_max_utilization", 0.6))
    cal = c.table(data, "calibration", False, CALIBRATION_KEYS)
    calibration = Calibration(client_max=c.fraction(cal, "calibration", "client_max_utilization", 0.5),
                              probe_s=c.number(cal, "calibration", "probe_s", 1.5),
                              steadiness_s=c.seconds_or_zero(cal, "calibration", "steadiness_s", 0.0))
    mem = c.table(data, "memory", False, MEMORY_KEYS)
    memory_connections = c.integer(mem, "memory", "connections", 0, 0) or 0
    mb = c.table(data, "microbench", False, MICROBENCH_KEYS)
    microbench = None
    if mb:
        from harness.microbench import PROGRAMS

        progs = mb.get("programs", "all")
        if progs == "all":
            progs = list(PROGRAMS)
        if not isinstance(progs, list) or any(p not in PROGRAMS for p in progs):
            c.fail("microbench.programs", f'must be "all" or a list of {", ".join(PROGRAMS)}; got {_describe(progs)}')
            progs = []
        microbench = Microbench(programs=tuple(progs),
                                repetitions=c.integer(mb, "microbench", "repetitions", 1, 1) or 1,
                                min_time_s=c.number(mb, "microbench", "min_time_s", 0.05))

    quick_raw = c.table(data, "quick", False, QUICK_KEYS)
    quick: dict[str, Any] = {}
    if "levels" in quick_raw:
        ql = c.levels(quick_raw, "quick", None)
        if ql:
            quick["levels"] = ql
    for key, minimum in (("requests", 1), ("discard", 0), ("repetitions", 1), ("memory_connections", 0)):
        if key in quick_raw:
            v = c.integer(quick_raw, "quick", key, None, minimum)
            if v is not None:
                quick[key] = v
    if "window_s" in quick_raw:
        quick["window_s"] = c.number(quick_raw, "quick", "window_s", 1.0)
    if "idle_connections" in quick_raw:
        qi = quick_raw["idle_connections"]
        if not isinstance(qi, list) or not qi or any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in qi):
            c.fail("quick.idle_connections", f"must be a non-empty list of integers ≥ 0, got {_describe(qi)}")
        else:
            quick["idle_connections"] = tuple(sorted(set(qi)))
    if window_s is None and ("requests" in quick or "discard" in quick):
        qr = quick.get("requests", min(requests, 3000))
        qd = quick.get("discard", min(discard, 100))
        if qr <= 2 * qd:
            c.fail("quick.requests", f"must be larger than 2 × quick.discard = {2 * qd}, got {qr}")

    if c.problems:
        raise ExperimentError(path, c.problems)

    assert name is not None and title is not None and levels is not None and url_path is not None
    load = LoadSpec(mode=mode, levels=levels, keep_alive=keep_alive, requests=requests, discard=discard,
                    repetitions=repetitions, threads=threads, timeout_s=timeout_s, path=url_path,
                    ready_timeout_s=ready_timeout_s, window_s=window_s, warmup_s=warmup_s,
                    idle_connections=idle_connections, keep_alive_modes=keep_alive_modes, ramp_s=ramp_s,
                    spin_us=spin_us)
    return Experiment(path=path, name=name, title=title, description=description, paper=paper, kind=kind,
                      claims=claims, dynamic_page=dynamic_page,
                      backends=backends, production=production, references=references,
                      beside_reference=beside_reference, beside_control=beside_control, backend_args=backend_args,
                      variants=tuple(variants), workers=workers, pool=pool, apache_pool=apache_pool, load=load,
                      page_size=page_size, server_cpus=server_cpus, client_cpus=client_cpus,
                      server_cpu_share=share if share == "auto" else float(share), validity=validity,
                      calibration=calibration, memory_connections=memory_connections, microbench=microbench,
                      quick_overrides=quick, source_text=text)


def experiment_summary(exp: Experiment) -> dict[str, Any]:
    """A JSON-ready description of the resolved experiment (stored in meta.json)."""
    return {
        "name": exp.name,
        "title": exp.title,
        "description": exp.description,
        "paper": exp.paper,
        "kind": exp.kind,
        "claims": list(exp.claims),
        "file": str(exp.path),
        "quick": exp.is_quick,
        "backends": exp.backends if isinstance(exp.backends, str) else list(exp.backends),
        "production": exp.production if isinstance(exp.production, str) else list(exp.production),
        "references": exp.references if isinstance(exp.references, str) else list(exp.references),
        "beside_reference": exp.beside_reference,
        "beside_control": exp.beside_control,
        "backend_args": {k: list(v) for k, v in exp.backend_args.items()},
        "variants": [dataclasses.asdict(v) for v in exp.variants],
        "workers": exp.workers,
        "pool": exp.pool,
        "apache_pool": exp.apache_pool,
        "load": dataclasses.asdict(exp.load),
        "page_size": exp.page_size,
        "dynamic_page": exp.dynamic_page,
        "server_cpus": exp.server_cpus,
        "client_cpus": exp.client_cpus,
        "server_cpu_share": exp.server_cpu_share,
        "validity": dataclasses.asdict(exp.validity),
        "calibration": dataclasses.asdict(exp.calibration),
        "memory_connections": exp.memory_connections,
        "microbench": dataclasses.asdict(exp.microbench) if exp.microbench else None,
    }
