"""Running ``build/loadgen/loadgen`` for one point and reading its ``--json`` output.

The command line and the JSON fields are those of docs/interfaces.md. The loadgen runs pinned
to the client CPUs, in its own session (so it is killed with certainty on Ctrl-C) and under a
wall-clock limit so a wedged point cannot stall a whole run.
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import Any

from harness.clients import pinned, run_at_once
from harness.experiment import LoadSpec
from harness.server import ProcessGuard

# How long the loadgen polls before it sleeps when not told (--spin-us; loadgen/cli.cpp): long
# enough that against a busy server it hardly ever sleeps, so servers are not charged for waking
# it (docs/methodology.md, "Which client").
DEFAULT_SPIN_US = 50

REQUIRED_FIELDS = (
    "completed",
    "elapsed_s",
    "requests_per_second",
    "mean_response_ms",
    "measured_load",
)


class LoadgenError(Exception):
    """The loadgen failed, timed out or wrote unusable JSON; the message says which."""


def loadgen_argv(loadgen: Path, load: LoadSpec, level: int, url: str, json_path: Path,
                 warmup_s: float | None = None) -> list[str]:
    """The closed-loop command line for ``level`` requests in flight: time-based (a warm-up, then
    a kept window of ``load.window_s``) when the experiment gives a window, else ``-n`` requests
    with the first and last ``load.discard`` samples dropped (the paper's rule)."""
    argv = [str(loadgen), "-c", str(level)]
    if load.window_s is not None:
        warm = warmup_s if warmup_s is not None else 1.0
        argv += ["-d", f"{warm + load.window_s:.3f}s", "--warmup", f"{warm:.3f}s"]
    else:
        argv += ["-n", str(load.requests), "--discard", str(load.discard)]
    argv += [
        "-t", str(load.threads),
        "--timeout", f"{load.timeout_s:g}s",
        "--json", str(json_path),
    ]
    if load.keep_alive:
        argv.append("-k")
    if load.ramp_s is not None:
        argv += ["--ramp", f"{load.ramp_s:g}s"]
    if load.spin_us is not None:
        argv += ["--spin-us", str(load.spin_us)]
    argv.append(url)
    return argv


def wall_limit_s(load: LoadSpec, warmup_s: float | None = None) -> float:
    """Generous upper bound for one point: the run's length (time-based) or at least 200
    requests/s (request-based), plus slack for the last timeouts."""
    if load.window_s is not None:
        return 30.0 + (warmup_s or 1.0) + load.window_s + 2 * load.timeout_s
    return 60.0 + load.requests / 200.0 + 2 * load.timeout_s


def run_loadgen(argv: list[str], cpus: str | None, guard: ProcessGuard, limit_s: float,
                log_path: Path) -> dict[str, Any]:
    """Run the loadgen to completion and return its JSON object."""
    result = run_loadgens([argv], cpus, guard, limit_s, [log_path])[0]
    if isinstance(result, LoadgenError):
        raise result
    return result


def run_loadgens(argvs: list[list[str]], cpus: str | None, guard: ProcessGuard, limit_s: float,
                 log_paths: list[Path]) -> list[dict[str, Any] | LoadgenError]:
    """Run several loadgens at the same time (two servers measured side by side) and return
    each one's JSON object, or the LoadgenError that says why it has none. All are started
    before any is waited for, each is killed (its whole session, by PID) if it outlasts
    ``limit_s`` or the wait is interrupted (``clients.run_at_once``)."""
    with contextlib.ExitStack() as stack:
        logs = []
        for argv, log_path in zip(argvs, log_paths):
            Path(argv[argv.index("--json") + 1]).unlink(missing_ok=True)
            full = pinned(argv, cpus)
            log_path.parent.mkdir(parents=True, exist_ok=True)
            log = stack.enter_context(open(log_path, "ab"))
            log.write(f"\n=== {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(full)}\n".encode())
            log.flush()
            logs.append(log)
        ends = run_at_once(argvs, cpus, logs, limit_s, guard)
    results: list[dict[str, Any] | LoadgenError] = []
    for end, argv, log_path in zip(ends, argvs, log_paths):
        if end.error is not None:
            results.append(LoadgenError(end.error.replace("still running", "loadgen still running")))
        elif end.status != 0:
            results.append(LoadgenError(f"loadgen exited with status {end.status}; see {log_path}"))
        else:
            try:
                results.append(read_result(Path(argv[argv.index("--json") + 1])))
            except LoadgenError as exc:
                results.append(exc)
    return results


def read_result(json_path: Path) -> dict[str, Any]:
    try:
        data = json.loads(json_path.read_text())
    except OSError:
        raise LoadgenError(f"loadgen wrote no JSON file {json_path}") from None
    except ValueError as exc:
        raise LoadgenError(f"loadgen JSON {json_path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise LoadgenError(f"loadgen JSON {json_path} is not an object")
    missing = [f for f in REQUIRED_FIELDS if f not in data]
    if missing:
        raise LoadgenError(f"loadgen JSON lacks {', '.join(missing)} (docs/interfaces.md lists them)")
    return data
