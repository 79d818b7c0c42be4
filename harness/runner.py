"""The loop over points: one fresh server per point, one loadgen run, one line in runs.jsonl.

A point is (server, offered load, repetition). Every point gets a freshly started server so that
its peak memory, context switches and CPU time belong to that point alone. Each line of
runs.jsonl is flushed and fsync'ed as soon as the point ends, so an interrupted run keeps every
finished point and ``--resume`` continues where it stopped.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import resource
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator

from harness import envinfo, metrics, production, registry
from harness.cpulimit import CpuLimit, CpuLimitError
from harness.experiment import Experiment, experiment_summary, load_experiment, parse_cpu_list
from harness.loadgen import LoadgenError, loadgen_argv, run_loadgen, wall_limit_s
from harness.progress import Progress
from harness.server import LaunchSpec, ProcessGuard, ServerProcess, ServerStartError, free_port

RECORD_SCHEMA = 1
PAGE_FILE = "index.html"

# Concurrency model of each of our backends, for the report's grouping (event-driven vs threads).
BACKEND_CATEGORIES = {
    "sped": "event-driven",
    "symped": "event-driven",
    "pipeline": "event-driven",
    "uring": "event-driven",
    "amped": "event-driven",
    "coro": "event-driven",
    "fiber": "user-level threads",
    "st": "user-level threads",
    "pth": "user-level threads",
    "thread": "kernel threads",
    "threadpool": "kernel threads",
    "fork": "processes",
    "prefork": "processes",
}


class RunError(Exception):
    """The run cannot start (nothing to run, no loadgen, bad --only); the message says why."""


def category_of(name: str, model: str) -> str:
    if name in BACKEND_CATEGORIES:
        return BACKEND_CATEGORIES[name]
    m = model.lower()
    if "event" in m:
        return "event-driven"
    if any(w in m for w in ("user-level", "user-space", "fiber", "coroutine", "green")):
        return "user-level threads"
    if "thread" in m:
        return "kernel threads"
    if "process" in m or "fork" in m:
        return "processes"
    return "other"


@dataclass(frozen=True)
class Target:
    """One curve in the figures: a backend (or variant of one) or a production server."""

    label: str
    kind: str  # "toy" or "production"
    backend: str  # backend name in backends.json, or production server name
    model: str
    category: str
    executable: str
    args: tuple[str, ...] = ()
    max_connections: int | None = None


@dataclass(frozen=True)
class Point:
    target: Target
    level: int
    repetition: int

    @property
    def key(self) -> str:
        return point_key(self.target.label, self.level, self.repetition)


def point_key(label: str, level: int, repetition: int) -> str:
    return f"{label}|{level}|{repetition}"


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
        targets.append(Target(label=name, kind="toy", backend=name, model=b.model,
                              category=category_of(name, b.model), executable=str(b.binary),
                              args=exp.backend_args.get(name, ()), max_connections=b.max_connections))
    for v in exp.variants:
        if v.backend not in backends:
            raise RunError(f"variant {v.name!r}: backend {v.backend!r} is not built")
        b = backends[v.backend]
        targets.append(Target(label=v.name, kind="toy", backend=v.backend, model=b.model,
                              category=category_of(v.backend, b.model), executable=str(b.binary),
                              args=exp.backend_args.get(v.backend, ()) + v.args,
                              max_connections=b.max_connections))
    inst = production.installed()
    wanted = list(production.PRODUCTION_SERVERS) if exp.production == "all" else list(exp.production)
    for name in wanted:
        if name not in inst:
            notes.append(f"Production server {name} is not installed; skipped.")
            continue
        spec = production.PRODUCTION_SERVERS[name]
        targets.append(Target(label=name, kind="production", backend=name, model=spec.model,
                              category=spec.category, executable=inst[name]))
    return targets, notes


def plan_points(exp: Experiment, targets: list[Target]) -> list[Point]:
    """Repetition-major order, so a slow drift of the machine spreads over all servers."""
    return [
        Point(t, level, rep)
        for rep in range(exp.load.repetitions)
        for t in targets
        for level in exp.load.levels
    ]


def write_page(docroot: Path, size: int) -> Path:
    """The served page: valid HTML of exactly ``size`` bytes (305 in Kerneis & Chroboczek)."""
    head = "<!DOCTYPE html>\n<html><head><title>httpbench</title></head><body>\n<p>"
    tail = "</p>\n</body></html>\n"
    filler_len = size - len(head) - len(tail)
    if filler_len >= 0:
        text = "Are events fast? " * (filler_len // 17 + 1)
        body = head + text[:filler_len] + tail
    else:
        body = ("x" * size)
    docroot.mkdir(parents=True, exist_ok=True)
    page = docroot / PAGE_FILE
    page.write_bytes(body.encode("ascii"))
    os.chmod(docroot, 0o755)
    os.chmod(page, 0o644)
    return page


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


def read_records(run_dir: Path) -> list[dict[str, Any]]:
    """All lines of runs.jsonl; a torn last line (killed mid-write) is ignored."""
    path = run_dir / "runs.jsonl"
    records = []
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


def finished_keys(run_dir: Path) -> set[str]:
    return {r["key"] for r in read_records(run_dir) if r.get("status") in ("ok", "skipped") and "key" in r}


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP raise KeyboardInterrupt like Ctrl-C, so every ``finally`` runs."""

    def handler(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


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
        self.cpu_limit: CpuLimit | None = None
        self.loadgen = registry.loadgen_path(build)
        self.docroot = run_dir / "docroot"
        self.server_cpus = exp.server_cpus
        allowed = sorted(os.sched_getaffinity(0))
        if exp.client_cpus == "others":
            others = [c for c in allowed if c not in parse_cpu_list(exp.server_cpus)]
            self.client_cpus = ",".join(map(str, others or allowed))
        else:
            self.client_cpus = exp.client_cpus

    # -- setup -------------------------------------------------------------------------------

    def prepare(self) -> tuple[list[Point], list[str]]:
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
        if self.exp.server_cpu_share < 1.0:
            try:
                self.cpu_limit = CpuLimit(self.exp.server_cpu_share, self.run_dir.name)
            except CpuLimitError as exc:
                raise RunError(str(exc)) from None
        return plan_points(self.exp, targets), notes

    def write_meta(self, notes: list[str]) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        meta_path = self.run_dir / "meta.json"
        if self.resuming and meta_path.exists():
            meta = json.loads(meta_path.read_text())
            meta.setdefault("resumed_at", []).append(_now())
            meta["status"] = "running"
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
                "loadgen": str(self.loadgen),
                "docroot": str(self.docroot),
                "targets": [asdict(t) for t in self.targets],
                "notes": notes,
                "status": "running",
            }
        if self.cpu_limit is not None:
            meta["pinning"]["server_cpu_limit"] = {
                "quota_us": self.cpu_limit.quota_us, "period_us": self.cpu_limit.period_us,
                "cgroup": str(self.cpu_limit.path), "cgroup_version": self.cpu_limit.version}
        self._meta = meta
        self._save_meta()

    def _save_meta(self) -> None:
        tmp = self.run_dir / "meta.json.tmp"
        tmp.write_text(json.dumps(self._meta, indent=2, sort_keys=False) + "\n")
        os.replace(tmp, self.run_dir / "meta.json")

    # -- the loop ----------------------------------------------------------------------------

    def run(self) -> Path:
        points, notes = self.prepare()
        self.write_meta(notes)
        write_page(self.docroot, self.exp.page_size)
        scratch_docroot = None
        needs_public_docroot = any(t.kind == "production" for t in self.targets)
        if needs_public_docroot and os.geteuid() == 0 and not readable_by_everyone(self.docroot):
            # Production servers drop root for an unprivileged user that could not read a docroot
            # below a private directory (e.g. pytest's 0700 temporary directories).
            scratch_docroot = Path(tempfile.mkdtemp(prefix=f"httpbench-docroot-{self.run_dir.name}-"))
            os.chmod(scratch_docroot, 0o755)
            write_page(scratch_docroot, self.exp.page_size)
            self.docroot = scratch_docroot
            self._meta["docroot"] = str(scratch_docroot)
            self._save_meta()
        done = finished_keys(self.run_dir) if self.resuming else set()
        todo = [p for p in points if p.key not in done]
        raise_nofile_limit()
        previous_affinity = os.sched_getaffinity(0)
        with contextlib.suppress(OSError):
            # The harness (and its /proc sampler) stays off the server's CPU.
            os.sched_setaffinity(0, set(parse_cpu_list(self.client_cpus)))
        progress = Progress(len(todo), enabled=self.show_progress)
        for note in notes:
            progress.message(f"note: {note}")
        if done:
            progress.message(f"resuming: {len(done)} points already measured, {len(todo)} to go")
        status = "crashed"
        t0 = time.monotonic()
        try:
            with terminate_as_interrupt(), open(self.run_dir / "runs.jsonl", "a") as out:
                for point in todo:
                    progress.describe(f"{point.target.label} c={point.level} "
                                      f"rep {point.repetition + 1}/{self.exp.load.repetitions}")
                    record = self.measure(point)
                    out.write(json.dumps(record) + "\n")
                    out.flush()
                    os.fsync(out.fileno())
                    if record["status"] == "error":
                        progress.message(f"error: {point.target.label} c={point.level}: {record['error']}")
                    progress.advance()
            status = "complete"
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        finally:
            self.guard.kill_all()
            progress.close()
            if scratch_docroot is not None:
                shutil.rmtree(scratch_docroot, ignore_errors=True)
            if self.cpu_limit is not None:
                self.cpu_limit.remove()
            with contextlib.suppress(OSError):
                os.sched_setaffinity(0, previous_affinity)
            self._meta["status"] = status
            self._meta["finished"] = _now()
            self._meta["wall_s"] = round(self._meta.get("wall_s", 0) + time.monotonic() - t0, 1)
            self._save_meta()
        return self.run_dir

    def launch_spec(self, target: Target) -> LaunchSpec:
        if target.kind == "production":
            port = free_port()
            return production.launch_spec(target.backend, target.executable,
                                          self.run_dir / "servers" / target.label, self.docroot, port,
                                          self.exp.apache_pool)
        argv = [target.executable, "--bind", "127.0.0.1", "--port", "0", "--docroot", str(self.docroot)]
        if "--backlog" not in target.args:  # an experiment may lower it to reproduce Fig. 1(a)
            argv += ["--backlog", "4096"]
        if self.exp.workers is not None:
            argv += ["--workers", str(self.exp.workers)]
        argv += list(target.args)
        return LaunchSpec(argv=tuple(argv), ready="line")

    def measure(self, point: Point) -> dict[str, Any]:
        """Run one point; failures of the server or loadgen become an ``error`` record."""
        target = point.target
        record: dict[str, Any] = {
            "schema": RECORD_SCHEMA,
            "key": point.key,
            "backend": target.label,
            "base_backend": target.backend,
            "kind": target.kind,
            "model": target.model,
            "category": target.category,
            "offered_load": point.level,
            "repetition": point.repetition,
            "started_at": _now(),
            "status": "ok",
            "error": None,
        }
        # max_connections is how many connections a backend holds open at once. With a new
        # connection per request, clients beyond it wait in the accept queue (a process or
        # thread pool serves any level, as Apache prefork did in the paper); only connections
        # that stay open can exceed what the model holds.
        if (self.exp.load.keep_alive and target.max_connections is not None
                and point.level > target.max_connections):
            record.update(status="skipped",
                          error=f"offered load {point.level} exceeds the backend's max_connections "
                                f"{target.max_connections} (keep-alive)")
            return record
        t0 = time.monotonic()
        spec = self.launch_spec(target)
        logs = self.run_dir / "logs"
        srv = ServerProcess(spec, self.server_cpus, logs / f"{target.label}.log", self.guard,
                            cgroup_enter=self.cpu_limit.enter if self.cpu_limit else None)
        throttled_before = self.cpu_limit.throttled_s() if self.cpu_limit else 0.0
        sampler: metrics.TreeSampler | None = None
        try:
            port = srv.start(self.exp.load.ready_timeout_s)
            sid = srv.pid
            assert sid is not None
            before = metrics.snapshot(sid)
            runtime_before_s = metrics.tree_runtime_s(sid)
            sampler = metrics.TreeSampler(sid)
            sampler.start()
            json_path = self.run_dir / "tmp" / "loadgen.json"
            json_path.parent.mkdir(exist_ok=True)
            url = f"http://127.0.0.1:{port}{self.exp.load.path}"
            argv = loadgen_argv(self.loadgen, self.exp.load, point.level, url, json_path)
            record["loadgen_argv"] = argv
            result = run_loadgen(argv, self.client_cpus, self.guard, wall_limit_s(self.exp.load),
                                 logs / "loadgen.log")
            sampler.stop()
            after = sampler.take()
            pss = metrics.pss_sum_kib(sid)
            record["loadgen"] = result
            if not result.get("completed"):
                errors = {k: v for k, v in (result.get("errors") or {}).items() if v}
                record.update(status="error",
                              error="no request completed in the kept window; loadgen errors: "
                                    + (", ".join(f"{k}={v}" for k, v in errors.items()) or "none reported")
                                    + f" (see {logs / 'loadgen.log'})")
            record["server_metrics"] = {
                # replaced below by the precise rusage-based values once the server has exited
                "cpu_user_s": round(after.cpu_user_s - before.cpu_user_s, 4),
                "cpu_sys_s": round(after.cpu_sys_s - before.cpu_sys_s, 4),
                "cpu_source": "proc_ticks",
                "cpu_startup_s": round(runtime_before_s, 6),
                "peak_rss_kib": max(after.hwm_kib, sampler.max_rss_kib),
                "rss_sampled_max_kib": sampler.max_rss_kib,
                "hwm_sum_kib": after.hwm_kib,
                "pss_sum_kib": pss,
                "processes_max": sampler.max_processes,
                "threads_max": sampler.max_threads,
                "samples": sampler.samples,
            }
        except (ServerStartError, LoadgenError) as exc:
            record.update(status="error", error=str(exc))
        finally:
            if sampler is not None:
                sampler.stop()
            stop = srv.stop()
        record["server"] = {
            "argv": srv.argv,
            "pid": srv.pid,
            "port": srv.port,
            "cpus": self.server_cpus,
            "client_cpus": self.client_cpus,
            "startup_s": None if srv.startup_s is None else round(srv.startup_s, 4),
            "exit_code": stop.exit_code,
            "killed_after_grace": stop.killed,
            "stats": stop.stats,
            "rusage": stop.rusage,
        }
        if stop.exited_by_itself and record["status"] == "ok":
            record.update(status="error", error=f"the server exited by itself during the load (status "
                                                f"{stop.exit_code}); see {logs / (target.label + '.log')}")
        if self.cpu_limit is not None:
            record["server"]["cpu_share"] = self.exp.server_cpu_share
            record["server"]["throttled_s"] = round(self.cpu_limit.throttled_s() - throttled_before, 6)
        sm = record.get("server_metrics")
        if sm is not None:
            lg = record.get("loadgen", {})
            served = (stop.stats or {}).get("requests")
            sm["requests_served"] = served if isinstance(served, int) else lg.get("completed_total", lg.get("completed"))
            sm["ctx_voluntary"] = stop.rusage.get("ctx_voluntary")
            sm["ctx_involuntary"] = stop.rusage.get("ctx_involuntary")
            user, sys_ = stop.rusage.get("user_s"), stop.rusage.get("sys_s")
            if user is not None and sys_ is not None and user + sys_ > 0:
                # Whole-life rusage (µs precision, every thread and reaped child) minus the CPU
                # the server had used before the load started; split by the rusage ratio.
                window = max(0.0, user + sys_ - sm["cpu_startup_s"])
                sm["cpu_user_s"] = round(window * user / (user + sys_), 6)
                sm["cpu_sys_s"] = round(window * sys_ / (user + sys_), 6)
                sm["cpu_source"] = "rusage_minus_startup"
        record["duration_s"] = round(time.monotonic() - t0, 3)
        return record


def run_experiment(experiment_path: Path | None, out_dir: Path | None, quick: bool, resume_dir: Path | None,
                   only: set[str] | None, build: Path, show_progress: bool = True) -> Path:
    """Entry used by the CLI and the tests; returns the run directory."""
    known = registry.backend_names_or_none(build)
    if resume_dir is not None:
        meta_path = resume_dir / "meta.json"
        if not meta_path.exists():
            raise RunError(f"--resume {resume_dir}: no meta.json there; is it a run directory?")
        meta = json.loads(meta_path.read_text())
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
