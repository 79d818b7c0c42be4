"""The run record: one line of runs.jsonl per point, as dataclasses (results/schema.md).

The loadgen's JSON object is kept verbatim (its fields are the loadgen's contract,
docs/loadgen.md), and so is the window accounting (harness/accounting.py); everything the
harness itself decides is typed here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

SCHEMA = 2
# The second instance of a server measured beside itself (an A/A control): `harness peers
# --control` labels it so, and so does a runner's side-by-side run ([servers] beside_control),
# which writes those pairs to CONTROLS_FILE beside runs.jsonl.
CONTROL_SUFFIX = ":again"
CONTROLS_FILE = "controls.jsonl"


def number(value: Any) -> float | None:
    """``value`` as a float when it is a number (not a bool), else None: a record's fields may
    be missing or null."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


@dataclass
class ServerInfo:
    """How the server ran and how it stopped."""

    argv: list[str]
    pid: int | None
    port: int | None
    cpus: str
    client_cpus: str
    startup_s: float | None  # from exec to ready
    exit_code: int | None  # negative: killed by that signal
    killed_after_grace: bool  # the stop signal was not enough
    stats: dict[str, Any] | None  # the server's final stats line (docs/interfaces.md)
    rusage: dict[str, float]  # whole life: user_s, sys_s, ctx_voluntary, ctx_involuntary
    cgroup_leftovers_killed: int = 0  # processes still in its cgroup after the stop, killed by pid
    settle_s: float | None = None  # from ready to idle: a pool's start-up after its ready line


@dataclass
class CgroupInfo:
    share: float | None  # the CPU cap, None = uncapped
    quota_us: int | None
    period_us: int | None
    perf_error: str | None  # why context switches could not be counted


@dataclass
class PointRecord:
    """One point: a server at one offered load (and, for some experiments, one more condition),
    one repetition."""

    key: str
    backend: str  # the curve's label
    base_backend: str  # entry of backends.json or production server it runs
    kind: str  # toy / reference / production
    model: str
    category: str
    ranked: bool
    offered_load: int
    repetition: int
    started_at: str
    status: str = "ok"  # ok / error / skipped
    error: str | None = None
    schema: int = SCHEMA
    idle_connections: int | None = None  # idle-connections experiments
    idle_held: int | None = None
    page: str | None = None  # dynamic-page experiments: "dynamic" or "static"
    keep_alive: bool | None = None  # when the experiment varies it
    duration_s: float | None = None
    loadgen_argv: list[str] | None = None
    loadgen: dict[str, Any] | None = None  # the loadgen's --json object, verbatim
    server_metrics: dict[str, Any] | None = None  # the kept window's accounting
    server: ServerInfo | None = None
    cgroup: CgroupInfo | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # probes' own notes

    OPTIONAL = ("idle_connections", "idle_held", "page", "keep_alive", "duration_s", "loadgen_argv", "loadgen",
                "server_metrics", "server")

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def fail(self, message: str) -> None:
        """The point failed (the first failure's message is kept)."""
        if self.status == "ok":
            self.status, self.error = "error", message

    def skip(self, message: str) -> None:
        self.status, self.error = "skipped", message

    def to_json(self) -> dict[str, Any]:
        """The runs.jsonl object: optional fields only when set."""
        out = asdict(self)
        out.update(out.pop("extra"))
        for name in self.OPTIONAL:
            if out.get(name) is None:
                out.pop(name, None)
        return out
