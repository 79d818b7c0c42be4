"""The loop over points: one fresh server per point, in its own cgroup, one loadgen run, one line
in runs.jsonl.

A point is (server, offered load, repetition). Every point gets a freshly started server in a
fresh cgroup, so its CPU time, context switches and peak memory belong to that point alone; they
are read from the cgroup over the loadgen's kept window only (``harness.accounting``). The
servers are capped to the share of a CPU the calibration chose (``harness.calibrate``), so that
the server, not the client, is the bottleneck. Repetitions run the points in a freshly shuffled
order each, so a drift of the machine spreads over every server. Each line of runs.jsonl is
flushed and fsync'ed as soon as the point ends, so an interrupted run keeps every finished point
and ``--resume`` continues where it stopped (and refuses if the binaries changed meanwhile).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import os
import random
import resource
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness import envinfo, metrics, production, registry
from harness.accounting import StatusClient, WindowSampler, window_metrics
from harness.cgroup import CgroupError, ServerCgroup, SharedCap
from harness.cgroup import available as cgroups_available
from harness.docroot import STATIC_TWIN, write_page, write_static_twin
from harness.experiment import Experiment, experiment_summary, load_experiment, parse_cpu_list
from harness.loadgen import LoadgenError, loadgen_argv, run_loadgen, run_loadgens, wall_limit_s
from harness.progress import Progress
from harness.record import SCHEMA as RECORD_SCHEMA
from harness.record import CONTROL_SUFFIX, CONTROLS_FILE, CgroupInfo, PointRecord, ServerInfo, number
from harness.server import (LaunchSpec, ProcessGuard, ServerProcess, ServerStartError, enter_cgroup, free_port,
                            settle, terminate_as_interrupt)

# The CFS period of the cap a backend and its reference share ([servers] beside_reference). At
# the shortest period (4.5 ms at a shared 22 %) the scheduler stopped every runnable task of both
# servers once per period, and the server started second paid for it: in `make floors`
# (2026-12-02) threadpool and thread cost 20–70 % more per request when started second, with
# 2–5 preemptions per request against 1–3. At 100 ms, as `harness peers --simultaneous
# --cap-period-ms 100`, a pair's preemptions fell to those of a lone server.
PAIR_CAP_PERIOD_US = 100_000
STATUS_PATH = "/server-status"

# The report groups servers by concurrency model. backends.json's `category` (from each
# binary's --describe) names it; these are the report's words for those categories.
CATEGORY_WORDS = {
    "event": "event-driven",
    "pipeline": "event-driven",
    "user-thread": "user-level threads",
    "thread": "kernel threads",
    "process": "processes",
}


class RunError(Exception):
    """The run cannot start (nothing to run, no loadgen, bad --only); the message says why."""


def category_of(backend: registry.Backend) -> str:
    """The report's name for the backend's described category ("other" if it has none)."""
    described = backend.raw.get("category")
    if isinstance(described, str) and described:
        return CATEGORY_WORDS.get(described, described)
    return "other"


def sizes_a_pool(backend: registry.Backend) -> bool:
    """--workers sizes a pool that bounds the connections served at once (prefork, threadpool)."""
    return backend.raw.get("workers_bound_connections") is True


def pool_size(args: tuple[str, ...], exp: Experiment) -> int | None:
    """The workers a fixed pool runs with: the last ``--workers N`` of its own arguments (a
    variant's come last on its command line), else the experiment's ``[servers] pool``; None:
    its default."""
    given = [args[i + 1] for i, a in enumerate(args[:-1]) if a == "--workers"]
    return int(given[-1]) if given and given[-1].isdigit() else exp.pool


def _held(*bounds: int | None) -> int | None:
    """The smallest of the bounds given on the connections a server holds; None if there is none."""
    return min((b for b in bounds if b), default=None)


@dataclass(frozen=True)
class Target:
    """One curve in the figures: a backend (or variant of one), a reference server (the floor of
    one backend's model, servers/reference/) or a production server."""

    label: str
    kind: str  # "toy", "reference" or "production"
    backend: str  # backend name in backends.json, or production server name
    model: str
    category: str
    executable: str
    args: tuple[str, ...] = ()
    max_connections: int | None = None
    ranked: bool = True  # False: a series drawn for a figure (Fig. 1(a)), left out of rankings
    pool: bool = False  # --workers sizes a pool of processes or threads
    workers: int | None = None  # a pool's size as launched (pool_size); None: not a pool, or its default
    repetitions: int | None = None  # measured in the first N repetitions only (None: every one)
    reference_for: str = ""  # a reference server: the backend whose model it is the floor of


@dataclass(frozen=True)
class Point:
    """One measurement. Beside the offered load, an experiment may sweep idle keep-alive
    connections held during the load (``idle``), the page (``page``: "static" or "dynamic") and
    keep-alive (``keep_alive``; None: the experiment's)."""

    target: Target
    level: int
    repetition: int
    idle: int = 0
    page: str | None = None
    keep_alive: bool | None = None

    @property
    def key(self) -> str:
        return point_key(self.target.label, self.level, self.repetition, self.idle, self.page, self.keep_alive)

    @property
    def tag(self) -> str:
        """The key as a cgroup name may hold it."""
        return self.key.replace("|", "-").replace("=", "")


def point_key(label: str, level: int, repetition: int, idle: int = 0, page: str | None = None,
              keep_alive: bool | None = None) -> str:
    key = f"{label}|{level}|{repetition}"
    if idle:
        key += f"|idle={idle}"
    if page is not None:
        key += f"|page={page}"
    if keep_alive is not None:
        key += f"|keep_alive={str(keep_alive).lower()}"
    return key


def resolve_targets(exp: Experiment, build: Path) -> tuple[list[Target], list[str]]:
    """The servers this experiment runs on this machine, and notes on what was left out."""
    notes: list[str] = []
    targets: list[Target] = []
    try:
        backends = {b.name: b for b in registry.load_backends(build)}
    except registry.RegistryError as exc:
        if exp.backends != "all" or exp.variants:
            raise RunError(str(exc)) from None
        backends = {}
        notes.append(f"No toy backends: {exc}")
    names = list(backends) if exp.backends == "all" else list(exp.backends)
    for name in names:
        if name not in backends:
            raise RunError(f"backend {name!r} is not in backends.json; built: {', '.join(backends) or 'none'}")
        b = backends[name]
        args = exp.backend_args.get(name, ())
        workers = pool_size(args, exp) if sizes_a_pool(b) else None
        targets.append(Target(label=name, kind="toy", backend=name, model=b.model, category=category_of(b),
                              executable=str(b.binary), args=args, max_connections=_held(b.max_connections, workers),
                              pool=sizes_a_pool(b), workers=workers))
    for v in exp.variants:
        if v.backend not in backends:
            raise RunError(f"variant {v.name!r}: backend {v.backend!r} is not built")
        b = backends[v.backend]
        args = exp.backend_args.get(v.backend, ()) + v.args
        workers = pool_size(args, exp) if sizes_a_pool(b) else None
        targets.append(Target(label=v.name, kind="toy", backend=v.backend, model=b.model, category=category_of(b),
                              executable=str(b.binary), args=args,
                              max_connections=_held(b.max_connections, workers, v.max_connections),
                              ranked=v.ranked, pool=sizes_a_pool(b), workers=workers, repetitions=v.repetitions))
    targets += _reference_targets(exp, build, backends, [t.backend for t in targets])
    inst = production.installed()
    wanted = list(production.PRODUCTION_SERVERS) if exp.production == "all" else list(exp.production)
    for name in wanted:
        if name not in inst:
            notes.append(f"Production server {name} is not installed; skipped.")
            continue
        spec = production.PRODUCTION_SERVERS[name]
        targets.append(Target(label=name, kind="production", backend=name, model=spec.model,
                              category=spec.category, executable=inst[name],
                              pool=name.startswith("apache")))
    return targets, notes


def _reference_targets(exp: Experiment, build: Path, backends: dict[str, registry.Backend],
                       in_run: list[str]) -> list[Target]:
    """The reference servers the experiment names ("all": the floor of every backend in the run
    that has one). They are drawn and set beside their backends, never ranked."""
    if not exp.references:
        return []
    try:
        built = {r.name: r for r in registry.load_references(build)}
    except registry.RegistryError as exc:
        raise RunError(str(exc)) from None
    if exp.references == "all":
        names = [r.name for r in built.values() if r.reference_for in in_run]
    else:
        names = list(exp.references)
        unknown = [n for n in names if n not in built]
        if unknown:
            raise RunError(f"servers.references: {', '.join(unknown)} not in backends.json; built: "
                           f"{', '.join(built) or 'none'}")
    targets = []
    for name in names:
        r = built[name]
        of = backends.get(r.reference_for)
        pool = sizes_a_pool(of) if of is not None else False
        targets.append(Target(label=name, kind="reference", backend=name, model=r.model,
                              category=category_of(r), executable=str(r.binary), ranked=False,
                              pool=pool, workers=exp.pool if pool else None, reference_for=r.reference_for))
    return targets


def plan_points(exp: Experiment, targets: list[Target], seed: int) -> list[Point]:
    """Repetition after repetition, each in its own shuffled order of (server, load), so that a
    slow drift of the machine, or a disturbance, spreads over every server instead of hitting
    the ones that happen to run last. ``seed`` (kept in meta.json) makes the order repeatable."""
    points: list[Point] = []
    for rep in range(exp.load.repetitions):
        batch = [p for t in targets if t.repetitions is None or rep < t.repetitions
                 for level in exp.load.levels for p in _points_of(exp, t, level, rep)]
        random.Random(seed * 1009 + rep).shuffle(batch)
        points.extend(batch)
    return points


def plan_groups(exp: Experiment, targets: list[Target], seed: int) -> list[tuple[Point, ...]]:
    """The points as measured: one at a time, or with ``[servers] beside_reference`` each
    backend's point together with its reference's at the same load and repetition (a pair is
    shuffled as one). A backend whose reference is not in the run, and a reference whose
    backend is not, are measured alone. With ``beside_control`` the floor of the first paired
    backend is also measured beside itself (``X:again``) at every load and repetition: an A/A
    control, whose records go to controls.jsonl. Same order rules and seed as ``plan_points``. The
    server started first alternates with the repetition: the first of two servers in one shared
    cap took more than half of it in the runs here (docs/methodology.md, "Both at once")."""
    if not exp.beside_reference:
        return [(p,) for p in plan_points(exp, targets, seed)]
    floor_of = {t.reference_for: t for t in targets if t.kind == "reference"}
    paired = {t.label for t in targets if t.kind == "toy" and t.backend in floor_of and t.label == t.backend}
    # The A/A control: the floor of the first paired backend, beside a second instance of itself.
    control = next((floor_of[t.backend] for t in targets if t.label in paired), None) if exp.beside_control else None
    groups: list[tuple[Point, ...]] = []
    for rep in range(exp.load.repetitions):
        batch: list[tuple[Point, ...]] = []
        if control is not None:
            again = dataclasses.replace(control, label=control.label + CONTROL_SUFFIX)
            batch += [(p, dataclasses.replace(p, target=again)) if rep % 2 == 0
                      else (dataclasses.replace(p, target=again), p)
                      for level in exp.load.levels for p in _points_of(exp, control, level, rep)]
        for t in targets:
            if t.repetitions is not None and rep >= t.repetitions:
                continue
            if t.kind == "reference" and t.reference_for in paired:
                continue  # measured with its backend
            for level in exp.load.levels:
                for p in _points_of(exp, t, level, rep):
                    if t.label in paired:
                        q = dataclasses.replace(p, target=floor_of[t.backend])
                        batch.append((p, q) if rep % 2 == 0 else (q, p))
                    else:
                        batch.append((p,))
        random.Random(seed * 1009 + rep).shuffle(batch)
        groups.extend(batch)
    return groups


def _points_of(exp: Experiment, t: Target, level: int, rep: int) -> list[Point]:
    if exp.kind == "idle-connections":
        return [Point(t, level, rep, idle=n) for n in exp.load.idle_connections]
    if exp.kind == "dynamic-page":
        # Production servers have no dynamic page: they serve its static twin, the reference.
        pages = ("dynamic", "static") if t.kind == "toy" else ("static",)
        modes = exp.load.keep_alive_modes or (exp.load.keep_alive,)
        return [Point(t, level, rep, page=page, keep_alive=ka) for page in pages for ka in modes]
    return [Point(t, level, rep)]


def dynamic_body(path: str) -> bytes:
    """The body our core answers for the dynamic hello page (servers/core/content.cpp):
    <h1>Hello NAME</h1> with NAME HTML-escaped."""
    import html
    from urllib.parse import parse_qs, urlsplit

    name = parse_qs(urlsplit(path).query).get("name", ["world"])[0]
    return f"<h1>Hello {html.escape(name, quote=True)}</h1>".encode()


def readable_by_everyone(path: Path) -> bool:
    """True if an unprivileged user (nginx's nobody, Apache's www-data) can reach ``path``."""
    path = path.resolve()
    for p in [path, *path.parents]:
        try:
            mode = p.stat().st_mode
        except OSError:
            return False
        if not mode & 0o001:
            return False
    return bool(path.stat().st_mode & 0o004)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """All lines of a .jsonl file; a torn last line (killed mid-write) is ignored."""
    records: list[dict[str, Any]] = []
    if not path.exists():
        return records
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


def read_records(run_dir: Path) -> list[dict[str, Any]]:
    return read_jsonl(run_dir / "runs.jsonl")


def finished_keys(run_dir: Path) -> set[str]:
    """The keys of the points measured (``control:`` before those of controls.jsonl, whose
    first server's key is also a point of runs.jsonl)."""
    done = {r["key"] for r in read_records(run_dir) if r.get("status") in ("ok", "skipped") and "key" in r}
    return done | {"control:" + r["key"] for r in read_jsonl(run_dir / CONTROLS_FILE)
                   if r.get("status") in ("ok", "skipped") and "key" in r}


def is_control(group: tuple[Point, ...]) -> bool:
    """An A/A control pair (plan_groups): a reference beside a second instance of itself."""
    return any(p.target.label.endswith(CONTROL_SUFFIX) for p in group)


def group_keys(group: tuple[Point, ...]) -> list[str]:
    """The keys ``finished_keys`` knows the group's points by."""
    return [("control:" if is_control(group) else "") + p.key for p in group]


def raise_nofile_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _now() -> str:
    return dt.datetime.now().astimezone().isoformat(timespec="seconds")


def new_run_dir(exp: Experiment, results_root: Path) -> Path:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    suffix = "-quick" if exp.is_quick else ""
    path = results_root / f"{stamp}-{exp.name}{suffix}"
    n = 1
    while path.exists():
        n += 1
        path = results_root / f"{stamp}-{exp.name}{suffix}-{n}"
    return path


def _sha256(path: Path) -> str | None:
    try:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()
    except OSError:
        return None


def fingerprint(targets: list[Target], loadgen: Path) -> dict[str, Any]:
    """What a resumed run must still be measuring: the git revision and every binary's hash."""
    binaries = {t.executable: _sha256(Path(t.executable)) for t in targets if t.kind in ("toy", "reference")}
    binaries[str(loadgen)] = _sha256(loadgen)
    return {"git_revision": envinfo.git_revision(registry.REPO_ROOT), "binaries": binaries}


def fingerprint_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    changes = []
    if old.get("git_revision") != new.get("git_revision"):
        changes.append(f"git revision {old.get('git_revision')} → {new.get('git_revision')}")
    for path, digest in (old.get("binaries") or {}).items():
        now = (new.get("binaries") or {}).get(path, _sha256(Path(path)))
        if now != digest:
            changes.append(f"{path} was rebuilt or removed")
    return changes


def slope_so_far(records: list[dict[str, Any]], label: str) -> float | None:
    """Least-squares slope (ms per client) through the median response time of each load."""
    from harness.stats import line_of_medians

    groups: dict[int, list[float]] = {}
    for r in records:
        if r.get("backend") == label and r.get("status") == "ok":
            groups.setdefault(r["offered_load"], []).append(float(r["loadgen"]["mean_response_ms"]))
    line = line_of_medians(groups)
    return line.slope if line else None


class Runner:
    """Runs every point of one experiment into one run directory."""

    def __init__(self, exp: Experiment, run_dir: Path, build: Path, only: set[str] | None = None,
                 show_progress: bool = True, resuming: bool = False):
        self.exp = exp
        self.run_dir = run_dir
        self.build = build
        self.only = only
        self.show_progress = show_progress
        self.resuming = resuming
        self.guard = ProcessGuard()
        self.loadgen = registry.loadgen_path(build)
        self.docroot = run_dir / "docroot"
        self.server_cpus = exp.server_cpus
        allowed = sorted(os.sched_getaffinity(0))
        if exp.client_cpus == "others":
            others = [c for c in allowed if c not in parse_cpu_list(exp.server_cpus)]
            self.client_cpus = ",".join(map(str, others or allowed))
        else:
            self.client_cpus = exp.client_cpus
        self.targets: list[Target] = []
        self.use_cgroups = False
        self.share: float | None = None  # the cap on every server; None = uncapped
        self.capacity: dict[str, float] = {}  # label → requests/s at the heaviest load, capped
        self.records: list[dict[str, Any]] = []
        self._meta: dict[str, Any] = {}

    # -- setup -------------------------------------------------------------------------------

    def prepare(self) -> list[str]:
        if not self.loadgen.exists():
            raise RunError(f"{self.loadgen} does not exist: the load generator is not built. Run `make build` "
                           f"(or set HTTPBENCH_BUILD).")
        targets, notes = resolve_targets(self.exp, self.build)
        if self.only is not None:
            labels = {t.label for t in targets}
            unknown = sorted(self.only - labels)
            if unknown:
                raise RunError(f"--only: unknown server {', '.join(unknown)}; this experiment runs: "
                               f"{', '.join(sorted(labels))}")
            targets = [t for t in targets if t.label in self.only]
        if not targets:
            raise RunError("nothing to run: no backend is built and no production server is installed")
        self.targets = targets
        ok, why = cgroups_available()
        share = self.exp.server_cpu_share
        if isinstance(share, float) and share < 1.0 and not ok:
            raise RunError(f"[pinning] server_cpu_share = {share} needs cgroups, but {why}; run as root, or "
                           f'set server_cpu_share = "auto" to fall back to an uncapped run')
        if self.exp.beside_reference and not ok:
            raise RunError(f"[servers] beside_reference = true measures each backend and its reference in one "
                           f"shared cgroup cap, which needs cgroups, but {why}; run as root")
        self.use_cgroups = ok
        if not ok:
            notes.append(f"Uncapped run: {why}. Every server ran at the full speed of its CPU, so on a "
                         f"machine where one client core saturates first the ranking measures the client.")
        elif isinstance(share, float):
            self.share = share if share < 1.0 else None
        return notes

    def write_meta(self, notes: list[str]) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        meta_path = self.run_dir / "meta.json"
        fp = fingerprint(self.targets, self.loadgen)
        if self.resuming and meta_path.exists():
            meta = json.loads(meta_path.read_text())
            changes = fingerprint_changes(meta.get("fingerprint") or {}, fp)
            if changes:
                raise RunError(f"--resume {self.run_dir}: refusing to mix measurements of different builds: "
                               + "; ".join(changes) + ". Start a new run instead.")
            meta.setdefault("resumed_at", []).append(_now())
            meta["status"] = "running"
            cal = meta.get("calibration") or {}
            self.share = cal.get("share") if self.use_cgroups else None
            self.capacity = dict(cal.get("capacity_rps") or {})
        else:
            (self.run_dir / "experiment.toml").write_text(self.exp.source_text)
            meta = {
                "schema": RECORD_SCHEMA,
                "run_id": self.run_dir.name,
                "created": _now(),
                "command_line": " ".join([Path(sys.executable).name, "-m", "harness", *sys.argv[1:]]),
                "experiment": experiment_summary(self.exp),
                "experiment_file": "experiment.toml",
                "environment": envinfo.collect_meta(self.build),
                "pinning": {"server_cpus": self.server_cpus, "client_cpus": self.client_cpus,
                            "server_cpu_share": self.exp.server_cpu_share},
                "server_bound": None,  # decided by the calibration
                "cgroups": self.use_cgroups,
                "shuffle_seed": random.SystemRandom().randrange(1, 1 << 30),
                "fingerprint": fp,
                "loadgen": str(self.loadgen),
                "docroot": str(self.docroot),
                "targets": [asdict(t) for t in self.targets],
                "only": sorted(self.only) if self.only is not None else None,  # --only, kept for --resume
                "notes": notes,
                "status": "running",
            }
        self._meta = meta
        self._save_meta()

    def _save_meta(self) -> None:
        tmp = self.run_dir / "meta.json.tmp"
        tmp.write_text(json.dumps(self._meta, indent=2, sort_keys=False) + "\n")
        os.replace(tmp, self.run_dir / "meta.json")

    def _record_share(self, calibration: dict[str, Any] | None) -> None:
        if calibration is not None:
            self._meta["calibration"] = calibration
        pin = self._meta["pinning"]
        pin["server_cpu_share_used"] = self.share
        if self.share is not None:
            from harness.cgroup import bandwidth, throttling_summary

            quota, period = bandwidth(self.share)
            pin["server_cpu_limit"] = {"quota_us": quota, "period_us": period, "per": "server, one cgroup each"}
            if self.exp.beside_reference:
                quota2, period2 = bandwidth(2 * self.share, PAIR_CAP_PERIOD_US)
                pin["server_cpu_limit_beside_reference"] = {
                    "quota_us": quota2, "period_us": period2,
                    "per": "backend and its reference, measured at the same time in one shared cgroup "
                           "(a child each, equal weight, SCHED_BATCH)"}
            pin["cap_throttling"] = throttling_summary(parse_cpu_list(self.server_cpus)[0])
        self._meta["server_bound"] = self.share is not None
        self._save_meta()

    # -- the loop ----------------------------------------------------------------------------

    def run(self) -> Path:
        notes = self.prepare()
        self.write_meta(notes)
        write_page(self.docroot, self.exp.page_size)
        if self.exp.kind == "dynamic-page":
            write_static_twin(self.docroot, dynamic_body(self.exp.dynamic_page))
        scratch_docroot = None
        needs_public_docroot = any(t.kind == "production" for t in self.targets)
        if needs_public_docroot and os.geteuid() == 0 and not readable_by_everyone(self.docroot):
            # Production servers drop root for an unprivileged user that could not read a docroot
            # below a private directory (e.g. pytest's 0700 temporary directories).
            scratch_docroot = Path(tempfile.mkdtemp(prefix=f"httpbench-docroot-{self.run_dir.name}-"))
            os.chmod(scratch_docroot, 0o755)
            write_page(scratch_docroot, self.exp.page_size)
            if self.exp.kind == "dynamic-page":
                write_static_twin(scratch_docroot, dynamic_body(self.exp.dynamic_page))
            self.docroot = scratch_docroot
            self._meta["docroot"] = str(scratch_docroot)
            self._save_meta()
        self.records = read_records(self.run_dir) if self.resuming else []
        done = finished_keys(self.run_dir) if self.resuming else set()
        raise_nofile_limit()
        previous_affinity = os.sched_getaffinity(0)
        with contextlib.suppress(OSError):
            # The harness (and its samplers) stays off the server's CPU.
            os.sched_setaffinity(0, set(parse_cpu_list(self.client_cpus)))
        status = "crashed"
        t0 = time.monotonic()
        progress: Progress | None = None
        try:
            with terminate_as_interrupt():
                if "steadiness" not in self._meta and self.exp.calibration.steadiness_s > 0:
                    self.measure_steadiness()
                if "calibration" not in self._meta:
                    self.calibrate_share(notes)
                groups = plan_groups(self.exp, self.targets, self._meta["shuffle_seed"])
                # A pair is written whole, so it is either done or to do.
                todo = [g for g in groups if not all(k in done for k in group_keys(g))]
                memory_todo = self.memory_todo()
                progress = Progress(len(todo) + len(memory_todo), enabled=self.show_progress)
                if done:
                    progress.message(f"resuming: {len(done)} points already measured, {len(todo)} to go")
                with open(self.run_dir / "runs.jsonl", "a") as out, \
                        open(self.run_dir / CONTROLS_FILE, "a") if self.exp.beside_reference else \
                        contextlib.nullcontext() as controls:
                    for group in todo:
                        point = group[0]
                        extra = (f" +{point.idle} idle" if point.idle else "") + (f" {point.page}" if point.page else "")
                        together = "".join(f" beside {p.target.label}" for p in group[1:])
                        progress.describe(f"{point.target.label}{together} c={point.level}{extra} "
                                          f"rep {point.repetition + 1}/{self.exp.load.repetitions}")
                        records = [self.measure(point)] if len(group) == 1 else self.measure_together(group)
                        for record in (r.to_json() for r in records):
                            if is_control(group):
                                _append(controls, record)
                            else:
                                _append(out, record)
                                self.records.append(record)
                            progress.message(self.point_line(record))
                        progress.advance()
                with open(self.run_dir / "memory.jsonl", "a") as out:
                    for target in memory_todo:
                        progress.describe(f"{target.label}: memory per idle connection")
                        record = self.measure_memory(target)
                        _append(out, record)
                        progress.message(_memory_line(record))
                        progress.advance()
                self.run_microbench(progress)
            status = "complete"
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        finally:
            self.guard.kill_all()
            if progress is not None:
                progress.close()
            if scratch_docroot is not None:
                shutil.rmtree(scratch_docroot, ignore_errors=True)
            with contextlib.suppress(OSError):
                os.sched_setaffinity(0, previous_affinity)
            self._meta["status"] = status
            self._meta["finished"] = _now()
            self._meta["wall_s"] = round(self._meta.get("wall_s", 0) + time.monotonic() - t0, 1)
            self._save_meta()
        return self.run_dir

    def measure_steadiness(self) -> None:
        """The machine's own variation on the server's CPU (harness/steadiness.py), before any
        server runs: meta.json's ``steadiness``, with the narrowest interval it allows."""
        from harness import steadiness

        cpu = parse_cpu_list(self.server_cpus)[0]
        secs = self.exp.calibration.steadiness_s
        if self.show_progress:
            print(f"steadiness: two fixed loops (arithmetic, cache) on CPU {cpu} for {secs:g} s", file=sys.stderr, flush=True)
        try:
            s = steadiness.probe(self.build, cpu, secs, steadiness.window_for(secs))
        except steadiness.SteadinessError as exc:
            self._meta["steadiness"] = {"error": str(exc)}
        else:
            reps = self.exp.load.repetitions
            self._meta["steadiness"] = {**s.as_dict(), "repetitions": reps,
                                        "interval_floor": round(steadiness.interval_floor(s.cv, reps), 4)}
        self._save_meta()

    def calibrate_share(self, notes: list[str]) -> None:
        from harness.calibrate import calibrate

        if not self.use_cgroups:
            self._record_share({"method": "none", "reason": "no cgroups; uncapped", "share": None})
            return
        if self.exp.server_cpu_share != "auto":
            self._record_share({"method": "fixed", "share": self.share,
                                "capacity_rps": {}})
            return
        cal = self.exp.calibration
        if self.exp.beside_reference:  # two loadgens share the client CPU: each gets half the limit
            cal = dataclasses.replace(cal, client_max=cal.client_max / 2)
        result = calibrate(self, self.targets, max(self.exp.load.levels), cal,
                           show=self.show_progress, server_min=self.exp.validity.server_min)
        self.share = result["share"]
        self.capacity = dict(result.get("capacity_rps") or {})
        if self.share is None:
            notes.append(result.get("reason", "calibration found no share"))
            self._meta["notes"] = notes
        self._record_share(result)

    # -- one server --------------------------------------------------------------------------

    def launch_spec(self, target: Target, workers: int | None = None) -> LaunchSpec:
        if target.kind == "production":
            port = free_port()
            return production.launch_spec(target.backend, target.executable,
                                          self.run_dir / "servers" / target.label, self.docroot, port,
                                          workers or self.exp.apache_pool)
        argv = [target.executable, "--bind", "127.0.0.1", "--port", "0"]
        if target.kind == "toy":  # a reference server has no docroot: it answers its canned page
            argv += ["--docroot", str(self.docroot)]
        if "--backlog" not in target.args:  # a variant may lower it to reproduce Fig. 1(a)
            argv += ["--backlog", "4096"]
        takes_workers = target.kind == "toy" or target.pool  # of the references, only the pools
        if workers is not None and takes_workers:
            argv += ["--workers", str(workers)]
        elif target.workers is not None and "--workers" not in target.args:  # a pool at the experiment's size
            argv += ["--workers", str(target.workers)]
        elif self.exp.workers is not None and takes_workers:
            argv += ["--workers", str(self.exp.workers)]
        argv += list(target.args)
        return LaunchSpec(argv=tuple(argv), ready="line")

    def status_client(self, target: Target, port: int) -> StatusClient | None:
        if target.kind == "toy":
            return StatusClient("127.0.0.1", port, STATUS_PATH, "httpbench")
        if target.kind == "reference":
            return None  # no counters: the floor does not count (servers/reference/README.md)
        page = production.status_page(target.backend)
        if page is None:
            return None
        path, kind, self_counted = page
        return StatusClient("127.0.0.1", port, path, kind, self_counted=self_counted)

    def new_cgroup(self, tag: str, share: float | None) -> ServerCgroup | None:
        if not self.use_cgroups:
            return None
        # The harness's pid in the name: two runs whose directories share a name (tests in
        # parallel, each with its own tmp/run) must not share a cgroup, or closing one point's
        # cgroup kills the other run's server by pid.
        name = f"{self.run_dir.name}-{os.getpid()}-{tag}".replace("/", "_")[-200:]
        try:
            return ServerCgroup(name, share=share, cpus=parse_cpu_list(self.server_cpus))
        except CgroupError as exc:
            raise RunError(str(exc)) from None

    def warmup_for(self, target: Target, level: int) -> float:
        """Warm-up before the kept window: two response times at this load (estimated from
        the calibration's throughput), at least 0.3 s and at most 6 s."""
        if self.exp.load.warmup_s is not None:
            return self.exp.load.warmup_s
        rate = self.capacity.get(target.label)
        response_s = level / rate if rate else 0.003 * level
        return min(6.0, max(0.3, 2 * response_s))

    def point_path(self, page: str | None) -> str:
        if page == "dynamic":
            return self.exp.dynamic_page
        if page == "static":
            return "/" + STATIC_TWIN
        return self.exp.load.path

    def run_point(self, target: Target, level: int, share: float | None, tag: str, record: PointRecord,
                  warmup_s: float | None = None, idle: int = 0, path: str | None = None,
                  keep_alive: bool | None = None) -> None:
        """Launch the server in a fresh cgroup, load it (beside ``idle`` idle keep-alive
        connections), collect the kept window's accounting, stop it: fills ``record``."""
        running = self.launch(target, share, tag, record)
        try:
            if running.port is not None:
                result = self.load(running, level, warmup_s, idle, path, keep_alive, record)
                if result is not None:
                    self.collect(running, result, share, record)
        finally:
            self.stop(running, record)

    def launch(self, target: Target, share: float | None, tag: str, record: PointRecord) -> "_Running":
        """A fresh cgroup, the server started in it and ready, and the samplers started."""
        running = self.start_server(target, self.new_cgroup(tag, share), record)
        if running.port is not None:
            self.make_ready(running, record)
        return running

    def start_server(self, target: Target, cg: ServerCgroup | None, record: PointRecord,
                     batch: bool = False) -> "_Running":
        """The server started in ``cg`` (under SCHED_BATCH with ``batch``) and listening; on a
        failure the record says why and the port stays None."""
        logs = self.run_dir / "logs"
        srv = ServerProcess(self.launch_spec(target), self.server_cpus, logs / f"{target.label}.log", self.guard,
                            cgroup_enter=enter_cgroup(cg, batch) if cg is not None or batch else None)
        running = _Running(target=target, cgroup=cg, server=srv, log=logs / f"{target.label}.log")
        try:
            running.port = srv.start(self.exp.load.ready_timeout_s)
        except ServerStartError as exc:
            record.fail(str(exc))
        return running

    def make_ready(self, running: "_Running", record: PointRecord) -> None:
        """Waits for a started server to settle, and starts its samplers."""
        srv, target, cg = running.server, running.target, running.cgroup
        assert srv.pid is not None and running.port is not None
        # A pool may go on forking or spawning after its ready line: not inside the point.
        if not settle(srv, target.label, self.exp.load.ready_timeout_s):
            record.extra["settled"] = False
        if cg is None:  # no cgroup: the /proc sampler of an uncapped run without root
            running.cpu_at_start_s = metrics.tree_runtime_s(srv.pid)
            running.legacy = metrics.TreeSampler(srv.pid)
            running.legacy.start()
        running.sampler = WindowSampler(cg, self.status_client(target, running.port))
        running.sampler.start()

    def load(self, running: "_Running", level: int, warmup_s: float | None, idle: int, path: str | None,
             keep_alive: bool | None, record: PointRecord) -> dict[str, Any] | None:
        """The loadgen against the running server, beside ``idle`` held connections; its JSON,
        or None when the point failed."""
        from harness.idle_memory import hold_idle_connections

        argv, limit_s = self.loadgen_command(running, level, warmup_s, path, keep_alive, record)
        try:
            with hold_idle_connections(running.port, idle, self.exp.page_size, timeout_s=30) as held:
                if held < idle:
                    raise ServerStartError(f"the server held only {held} of {idle} idle keep-alive connections")
                record.idle_held = held if idle else None
                log = self.run_dir / "logs" / "loadgen.log"
                result = run_loadgen(argv, self.client_cpus, self.guard, limit_s, log)
        except (ServerStartError, LoadgenError) as exc:
            record.fail(str(exc))
            return None
        finally:
            running.sampler.stop()
        return self.take_result(result, record, log)

    def loadgen_command(self, running: "_Running", level: int, warmup_s: float | None, path: str | None,
                        keep_alive: bool | None, record: PointRecord) -> tuple[list[str], float]:
        """The loadgen's command line against ``running`` (its JSON in a file of its own) and
        its wall-clock limit."""
        json_path = self.run_dir / "tmp" / f"loadgen-{running.target.label}.json"
        json_path.parent.mkdir(exist_ok=True)
        url = f"http://127.0.0.1:{running.port}{path or self.exp.load.path}"
        warm = warmup_s if warmup_s is not None else self.warmup_for(running.target, level)
        load = self.exp.load if keep_alive is None else dataclasses.replace(self.exp.load, keep_alive=keep_alive)
        argv = loadgen_argv(self.loadgen, load, level, url, json_path, warm)
        record.loadgen_argv = argv
        return argv, wall_limit_s(load, warm)

    def take_result(self, result: dict[str, Any], record: PointRecord, log: Path) -> dict[str, Any]:
        """The loadgen's JSON into the record; a run with no completed request fails it."""
        record.loadgen = result
        if not result.get("completed"):
            errors = {k: v for k, v in (result.get("errors") or {}).items() if v}
            record.fail("no request completed in the kept window; loadgen errors: "
                        + (", ".join(f"{k}={v}" for k, v in errors.items()) or "none reported")
                        + f" (see {log})")
        return result

    def collect(self, running: "_Running", result: dict[str, Any], share: float | None, record: PointRecord) -> None:
        """The server's costs over the loadgen's kept window (harness/accounting.py)."""
        cg, sampler = running.cgroup, running.sampler
        cpus = len(parse_cpu_list(self.server_cpus))
        sm: dict[str, Any] = {}
        start_ns, end_ns = result.get("window_start_ns"), result.get("window_end_ns")
        if cg is not None and isinstance(start_ns, int) and isinstance(end_ns, int):
            sm = window_metrics(sampler, start_ns, end_ns, share, cpus)
        elif cg is not None:
            # A loadgen without window timestamps: the window is taken as the last elapsed_s
            # of the run (the end of the run is known to within one sampling interval).
            end = sampler.readings[-1].t_ns
            sm = window_metrics(sampler, end - int(float(result.get("elapsed_s", 0)) * 1e9), end, share, cpus)
            sm["window_approximate"] = True
        if cg is not None:
            sm["peak_memory_bytes"] = cg.memory_peak_bytes()
        if running.legacy is not None:
            running.legacy.stop()
            after = running.legacy.take()
            sm.update(source="proc", peak_rss_kib=max(after.hwm_kib, running.legacy.max_rss_kib),
                      processes_max=running.legacy.max_processes, threads_max=running.legacy.max_threads,
                      cpu_startup_s=round(running.cpu_at_start_s, 6))
        record.server_metrics = sm

    def stop(self, running: "_Running", record: PointRecord) -> None:
        """Stop the samplers and the server, remove its cgroup; the server's part of the record."""
        if running.sampler is not None:
            running.sampler.stop()
        if running.legacy is not None:
            running.legacy.stop()
        srv, cg = running.server, running.cgroup
        stopped = srv.stop()
        leftovers = cg.close() if cg is not None else 0
        record.server = ServerInfo(
            argv=srv.argv, pid=srv.pid, port=srv.port, cpus=self.server_cpus, client_cpus=self.client_cpus,
            startup_s=None if srv.startup_s is None else round(srv.startup_s, 4),
            settle_s=None if srv.settle_s is None else round(srv.settle_s, 3), exit_code=stopped.exit_code,
            killed_after_grace=stopped.killed, stats=stopped.stats, rusage=stopped.rusage,
            cgroup_leftovers_killed=leftovers)
        record.cgroup = None if cg is None else CgroupInfo(share=cg.share, quota_us=cg.quota_us,
                                                           period_us=cg.period_us, perf_error=cg.perf_error)
        if stopped.exited_by_itself and record.ok:
            record.fail(f"the server exited by itself during the load (status {stopped.exit_code}); see {running.log}")
        sm = record.server_metrics
        if sm is not None and cg is None:
            # No cgroup: whole-life rusage (µs, every thread and reaped child) minus start-up.
            user, sys_ = stopped.rusage.get("user_s"), stopped.rusage.get("sys_s")
            if user is not None and sys_ is not None and record.loadgen is not None:
                sm["cpu_s"] = round(max(0.0, user + sys_ - sm.get("cpu_startup_s", 0.0)), 6)
                sm["ctx_switches"] = stopped.rusage.get("ctx_voluntary", 0) + stopped.rusage.get("ctx_involuntary", 0)
                sm["source"] = "rusage_minus_startup"
                elapsed = float(record.loadgen.get("run_s") or record.loadgen.get("elapsed_s") or 0)
                sm["cpu_allowance_s"] = round(elapsed * len(parse_cpu_list(self.server_cpus)), 6)
                sm["utilization"] = round(sm["cpu_s"] / sm["cpu_allowance_s"], 4) if elapsed > 0 else None
                sm["window_s"] = elapsed

    def new_record(self, point: Point) -> PointRecord:
        target = point.target
        return PointRecord(key=point.key, backend=target.label, base_backend=target.backend, kind=target.kind,
                           model=target.model, category=target.category, ranked=target.ranked,
                           offered_load=point.level, repetition=point.repetition, started_at=_now(),
                           idle_connections=point.idle or None, page=point.page, keep_alive=point.keep_alive)

    def too_many_connections(self, point: Point) -> str | None:
        """Why the point cannot be measured, if it holds open more connections than its server can."""
        # max_connections is how many connections a backend holds open at once. With a new
        # connection per request, clients beyond it wait in the accept queue (a process or
        # thread pool serves any level, as Apache prefork did in the paper); only connections
        # that stay open can exceed what the model holds.
        keep_alive = self.exp.load.keep_alive if point.keep_alive is None else point.keep_alive
        held_open = point.idle + (point.level if keep_alive else 0)
        if point.target.max_connections is not None and held_open > point.target.max_connections:
            return (f"{held_open} connections held open (offered load {point.level}"
                    f"{' kept alive' if keep_alive else ''}, {point.idle} idle) exceed the backend's "
                    f"max_connections {point.target.max_connections}")
        return None

    def measure(self, point: Point) -> PointRecord:
        """Run one point; failures of the server or loadgen make an ``error`` record."""
        target = point.target
        record = self.new_record(point)
        why_not = self.too_many_connections(point)
        if why_not is not None:
            record.skip(why_not)
            return record
        t0 = time.monotonic()
        self.run_point(target, point.level, self.share, point.tag, record,
                       idle=point.idle, path=self.point_path(point.page), keep_alive=point.keep_alive)
        record.duration_s = round(time.monotonic() - t0, 3)
        return record

    def measure_together(self, group: tuple[Point, ...]) -> list[PointRecord]:
        """A backend's point and its reference's (``plan_groups``) measured at the same time, as
        `harness peers --simultaneous` measures a pair: one ``SharedCap`` at twice the share, a
        child cgroup each (equal weight, so each gets the share while both are busy, and each
        counts its own CPU), both servers under SCHED_BATCH (neither's wake-ups preempt the
        other), both started before either settles, and one loadgen each, started together with
        the same warm-up so that their kept windows coincide. The host's drift then hits both
        alike within milliseconds. Each record keeps its own server's accounting and names the
        other (``beside``), with the pair's use of the shared cap (``pair_utilization``) and the
        two loadgens' CPU together (``clients_utilization``), which decide its validity
        (harness.analysis). Falls back to one at a time when a point must be skipped or the run
        is uncapped."""
        if self.share is None or any(self.too_many_connections(p) for p in group):
            return [self.measure(p) for p in group]
        t0 = time.monotonic()
        records = [self.new_record(p) for p in group]
        try:
            shared = SharedCap(f"{self.run_dir.name}-{os.getpid()}-{group[0].tag}-pair".replace("/", "_")[-200:],
                               2 * self.share, cap_period_us=PAIR_CAP_PERIOD_US)
        except (CgroupError, ValueError) as exc:
            raise RunError(str(exc)) from None
        runnings: list[_Running] = []
        try:
            for i, (point, record) in enumerate(zip(group, records)):
                try:
                    cg = ServerCgroup(f"{i}-{point.target.label}", cpus=parse_cpu_list(self.server_cpus),
                                      group=shared.name)
                except CgroupError as exc:
                    raise RunError(str(exc)) from None
                runnings.append(self.start_server(point.target, cg, record, batch=True))
                if runnings[-1].port is None:
                    break
            if len(runnings) == len(group) and all(r.port is not None for r in runnings):
                for running, record in zip(runnings, records):
                    self.make_ready(running, record)
                level = group[0].level
                warm = (self.exp.load.warmup_s if self.exp.load.warmup_s is not None
                        else max(self.warmup_for(p.target, level) for p in group))
                commands = [self.loadgen_command(r, level, warm, self.point_path(p.page), p.keep_alive, rec)
                            for r, p, rec in zip(runnings, group, records)]
                logs = [self.run_dir / "logs" / f"loadgen-{r.target.label}.log" for r in runnings]
                try:
                    results = run_loadgens([c[0] for c in commands], self.client_cpus, self.guard,
                                           max(c[1] for c in commands), logs)
                finally:
                    for running in runnings:
                        running.sampler.stop()
                for running, record, result, log in zip(runnings, records, results, logs):
                    if isinstance(result, LoadgenError):
                        record.fail(str(result))
                    else:
                        self.collect(running, self.take_result(result, record, log), self.share, record)
        finally:
            for running, record in zip(runnings, records):
                self.stop(running, record)
            shared.close()
        self._pair_figures(group, records)
        for record in records:
            record.extra["shared_cap"] = {"share": shared.share, "quota_us": shared.quota_us,
                                          "period_us": shared.period_us}
            record.duration_s = round(time.monotonic() - t0, 3)
        return records

    @staticmethod
    def _pair_figures(group: tuple[Point, ...], records: list[PointRecord]) -> None:
        """What the records of a pair measured together share: each names the others, the
        pair's CPU over its shared allowance, the loadgens' CPU together; a record left without a
        measurement because the other side failed says so."""
        allowance = [number((r.server_metrics or {}).get("cpu_allowance_s")) for r in records]
        used = [number((r.server_metrics or {}).get("cpu_s")) for r in records]
        clients = [number(((r.loadgen or {}).get("client_cpu") or {}).get("utilization")) for r in records]
        for i, record in enumerate(records):
            others = [p.target.label for j, p in enumerate(group) if j != i]
            record.extra["beside"] = others[0] if len(others) == 1 else others
            record.extra["started"] = i + 1  # 1: started first (plan_groups alternates it)
            if record.ok and record.loadgen is None:
                record.fail(f"not measured: {', '.join(others)}, to be measured beside it, failed")
            if None not in allowance and None not in used and sum(allowance) > 0:
                record.extra["pair_utilization"] = round(sum(used) / sum(allowance), 4)
            if None not in clients:
                record.extra["clients_utilization"] = round(sum(clients), 4)

    def point_line(self, record: dict[str, Any]) -> str:
        """One line per finished point, as hyperfine prints one per benchmark."""
        cond = ""
        if record.get("idle_connections"):
            cond += f" +{record['idle_connections']} idle"
        if record.get("page"):
            cond += f" {record['page']}"
        if "keep_alive" in record:
            cond += " keep-alive" if record["keep_alive"] else " new-conn"
        head = f"  {record['backend']:<15} c={record['offered_load']:<5}{cond} rep {record['repetition'] + 1}: "
        if record["status"] != "ok":
            return head + f"{record['status'].upper()}: {(record.get('error') or '').splitlines()[0][:100]}"
        lg = record["loadgen"]
        sm = record.get("server_metrics") or {}
        parts = [f"{lg['requests_per_second']:>9,.0f} req/s", f"mean {lg['mean_response_ms']:.2f} ms",
                 f"l_m {lg.get('measured_load', 0):.0f}"]
        if sm.get("utilization") is not None:
            parts.append(f"server {sm['utilization']:.0%}")
        util = (lg.get("client_cpu") or {}).get("utilization")
        if util is not None:
            parts.append(f"client {util:.0%}")
        slope = slope_so_far(self.records, record["backend"])
        if slope is not None:
            parts.append(f"slope so far {slope:.4f} ms/client")
        return head + ", ".join(parts)

    # -- the primitives chapter --------------------------------------------------------------

    def run_microbench(self, progress: Progress) -> None:
        """The experiment's microbenchmark programs, pinned to the server CPUs with nothing else
        running, into <run>/microbench/ and <run>/microbench.json (the report's primitives
        chapter). A failing program is noted, not fatal: the servers' points are what the run is for."""
        mb = self.exp.microbench
        if mb is None or not mb.programs or (self.run_dir / "microbench.json").exists():
            return
        from harness.microbench import MicrobenchError, load, run_all, write_combined

        progress.message(f"microbenchmarks: {', '.join(mb.programs)} ({mb.repetitions} × {mb.min_time_s:g} s each)")
        try:
            path = run_all(self.build, self.run_dir / "microbench", programs=mb.programs,
                           cpus=self.server_cpus, repetitions=mb.repetitions, min_time_s=mb.min_time_s, echo=False)
            write_combined(self.run_dir, load(path))
        except (MicrobenchError, OSError) as exc:
            self._meta.setdefault("notes", []).append(f"Microbenchmarks failed: {exc}")
            self._save_meta()
            progress.message(f"microbenchmarks failed: {exc}")

    # -- memory per idle connection ----------------------------------------------------------

    def memory_todo(self) -> list[Target]:
        n = self.exp.memory_connections
        if n <= 0:
            return []
        done = {r.get("backend") for r in read_jsonl(self.run_dir / "memory.jsonl") if r.get("status") == "ok"}
        return [t for t in self.targets if t.ranked and t.label not in done]

    def measure_memory(self, target: Target) -> dict[str, Any]:
        from harness.idle_memory import hold_idle_connections
        from harness.metrics import pss_sum_kib

        def rss_kib(session: int) -> int:
            # Proportional set size: a page shared by a pool's processes counts once in all, so
            # process-per-connection models are not charged each process's shared libraries.
            return pss_sum_kib(session) or 0

        n = self.exp.memory_connections
        if target.max_connections:
            n = min(n, target.max_connections)
        if target.kind == "production" and target.pool:
            n = min(n, self.exp.apache_pool)
        record: dict[str, Any] = {"schema": RECORD_SCHEMA, "backend": target.label, "kind": target.kind,
                                  "category": target.category, "connections": n, "status": "ok", "error": None}
        cg = self.new_cgroup(f"{target.label}-memory", None)
        workers = n if (target.pool and target.kind == "toy") else None
        spec = self.launch_spec(target, workers=workers)
        if target.kind == "toy":
            spec = LaunchSpec(argv=spec.argv + ("--idle-timeout", "300"), ready=spec.ready)
        srv = ServerProcess(spec, self.server_cpus, self.run_dir / "logs" / f"{target.label}.log", self.guard,
                            cgroup_enter=cg.enter if cg else None)
        try:
            port = srv.start(self.exp.load.ready_timeout_s)
            assert srv.pid is not None
            settle(srv, target.label, self.exp.load.ready_timeout_s)  # the whole pool is in the baseline
            with hold_idle_connections(port, 1, self.exp.page_size):
                pass  # lazily built state (date cache, pools) belongs to the baseline
            time.sleep(0.3)
            before_rss = rss_kib(srv.pid)
            before_cg = cg.read().memory_bytes if cg else None
            with hold_idle_connections(port, n, self.exp.page_size) as held:
                time.sleep(1.0)
                after_rss = rss_kib(srv.pid)
                after_cg = cg.read().memory_bytes if cg else None
            record.update(held=held, pss_before_kib=before_rss, pss_after_kib=after_rss,
                          bytes_per_connection=round((after_rss - before_rss) * 1024 / held, 1) if held else None,
                          total_bytes_per_connection=round(after_rss * 1024 / held, 1) if held else None,
                          measure="pss")
            if before_cg is not None and after_cg is not None and held:
                record["cgroup_bytes_per_connection"] = round((after_cg - before_cg) / held, 1)
            if target.pool:
                record["note"] = ("pool pre-allocated at start: the growth per connection leaves out the "
                                  "pool's own memory; total memory per connection includes it")
        except (ServerStartError, OSError) as exc:
            record.update(status="error", error=str(exc))
        finally:
            srv.stop()
            if cg is not None:
                cg.close()
        return record


@dataclass
class _Running:
    """A server between launch and stop: its cgroup, process, port and samplers."""

    target: Target
    cgroup: ServerCgroup | None
    server: ServerProcess
    log: Path
    port: int | None = None
    sampler: WindowSampler | None = None
    legacy: metrics.TreeSampler | None = None
    cpu_at_start_s: float = 0.0


def _append(out, record: dict[str, Any]) -> None:
    out.write(json.dumps(record) + "\n")
    out.flush()
    os.fsync(out.fileno())


def _memory_line(record: dict[str, Any]) -> str:
    if record["status"] != "ok":
        return f"  {record['backend']:<15} memory: ERROR {record.get('error')}"
    return (f"  {record['backend']:<15} memory: {record.get('bytes_per_connection') or 0:,.0f} bytes per idle "
            f"keep-alive connection ({record.get('held')} held)")


def run_experiment(experiment_path: Path | None, out_dir: Path | None, quick: bool, resume_dir: Path | None,
                   only: set[str] | None, build: Path, show_progress: bool = True) -> Path:
    """Entry used by the CLI and the tests; returns the run directory."""
    known = registry.backend_names_or_none(build)
    if resume_dir is not None:
        meta_path = resume_dir / "meta.json"
        if not meta_path.exists():
            raise RunError(f"--resume {resume_dir}: no meta.json there; is it a run directory?")
        meta = json.loads(meta_path.read_text())
        if only is None and meta.get("only"):  # the servers the run was started with (--only)
            only = set(meta["only"])
        exp = load_experiment(resume_dir / "experiment.toml", known)
        if meta.get("experiment", {}).get("quick"):
            exp = exp.quick()
        run_dir = resume_dir
        resuming = True
    else:
        assert experiment_path is not None
        exp = load_experiment(experiment_path, known)
        if quick:
            exp = exp.quick()
        run_dir = out_dir if out_dir is not None else new_run_dir(exp, registry.REPO_ROOT / "results")
        if (run_dir / "runs.jsonl").exists():
            raise RunError(f"{run_dir} already holds a run; use --resume {run_dir} to continue it")
        resuming = False
    runner = Runner(exp, run_dir, build, only=only, show_progress=show_progress, resuming=resuming)
    return runner.run()
