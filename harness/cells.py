"""Cells: the experiments that sweep something other than the offered load.

A *cell* is one server under one condition — a count of idle connections held beside the load
(von Leitner 2003), a page and a keep-alive mode (Fremlin 2008), or one many-connection run (the
SXE posts) — over its repetitions. Each cell gets the medians of its valid repetitions with 95 %
bootstrap intervals, as the load sweep's points do (harness.analysis). Every point of these
experiments is meant to saturate the server, so the validity rule applies to all of them.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from harness.analysis import CLIENT_MAX, SERVER_MIN, load_memory, load_records, per_request, record_flags
from harness.stats import Interval, bootstrap


@dataclass
class Cell:
    backend: str
    kind: str  # toy / production
    category: str
    condition: tuple  # what the experiment varies, e.g. (idle,) or (page, keep_alive)
    repetitions: int
    valid: int
    requests_per_second: Interval | None
    mean_response_ms: Interval | None
    cpu_us_per_request: Interval | None
    ctx_switches_per_request: float | None
    peak_memory_bytes: float | None
    flags: list[str] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class CellRun:
    run_dir: Path
    meta: dict[str, Any]
    cells: list[Cell]
    records: list[dict[str, Any]]  # ok records, with _valid and _flags
    errors: list[dict[str, Any]]
    skipped: list[dict[str, Any]]
    memory: dict[str, dict[str, Any]]

    def cell(self, backend: str, condition: tuple) -> Cell | None:
        return next((c for c in self.cells if c.backend == backend and c.condition == condition), None)

    def backends(self) -> list[str]:
        return list(dict.fromkeys(c.backend for c in self.cells))

    def excluded(self) -> tuple[int, int]:
        return len(self.records), sum(1 for r in self.records if not r["_valid"])


def _iv(values: list[float]) -> Interval | None:
    vs = [v for v in values if v is not None]
    return bootstrap(vs) if vs else None


def cell_run(run_dir: Path, condition: Callable[[dict[str, Any]], tuple]) -> CellRun:
    """Group the run's ok records by (server, ``condition(record)``) into cells."""
    run_dir = Path(run_dir)
    meta = json.loads((run_dir / "meta.json").read_text()) if (run_dir / "meta.json").exists() else {}
    validity = (meta.get("experiment") or {}).get("validity") or {}
    every = load_records(run_dir)
    ok = [r for r in every if r.get("status") == "ok" and isinstance(r.get("loadgen"), dict)
          and r["loadgen"].get("mean_response_ms") is not None]
    for r in ok:
        flags = record_flags(r, True, validity.get("server_min", SERVER_MIN), validity.get("client_max", CLIENT_MAX))
        r["_flags"] = [f.kind for f in flags]
        r["_valid"] = not flags
    groups: dict[tuple[str, tuple], list[dict[str, Any]]] = {}
    for r in ok:
        groups.setdefault((r["backend"], condition(r)), []).append(r)
    cells = []
    for (backend, cond), recs in groups.items():
        use = [r for r in recs if r["_valid"]] or recs
        per = [per_request(r) for r in use]
        mem = [(r.get("server_metrics") or {}).get("peak_memory_bytes") for r in use]
        ctx = [p["ctx"] for p in per if p["ctx"] is not None]
        cells.append(Cell(
            backend=backend, kind=recs[0].get("kind", "toy"), category=recs[0].get("category", "other"),
            condition=cond, repetitions=len(recs), valid=sum(1 for r in recs if r["_valid"]),
            requests_per_second=_iv([r["loadgen"].get("requests_per_second") for r in use]),
            mean_response_ms=_iv([r["loadgen"].get("mean_response_ms") for r in use]),
            cpu_us_per_request=_iv([p["cpu_us"] for p in per]),
            ctx_switches_per_request=statistics.median(ctx) if ctx else None,
            peak_memory_bytes=max((m for m in mem if m), default=None),
            flags=sorted({f for r in recs for f in r["_flags"]}), records=recs))
    return CellRun(run_dir=run_dir, meta=meta, cells=cells, records=ok,
                   errors=[r for r in every if r.get("status") == "error"],
                   skipped=[r for r in every if r.get("status") == "skipped"], memory=load_memory(run_dir))


def ratio(a: Interval | None, b: Interval | None) -> Interval | None:
    """a / b with a conservative interval (the extremes of the two intervals)."""
    if a is None or b is None or b.value == 0:
        return None
    lo_a, hi_a = a.bounds()
    lo_b, hi_b = b.bounds()
    if lo_b <= 0:
        return Interval(a.value / b.value)
    return Interval(a.value / b.value, lo_a / hi_b, hi_a / lo_b)
