"""Optional CPU bandwidth limit for the server: the modern stand-in for the paper's downclocking.

Kerneis & Chroboczek ran the server at 600 MHz against a 2.2 GHz client so that the server, not
the client, was always the bottleneck. On one 2-core machine the loadgen's single thread is about
as fast as the fastest servers, so those points become client-bound. ``[pinning]
server_cpu_share = 0.25`` gives the server a quarter of its CPU through the CFS bandwidth
controller (cgroup v2 ``cpu.max`` or v1 ``cpu.cfs_quota_us``), with a short period so the
throttling is fine-grained. Needs root (or a delegated cgroup); off by default.
"""

from __future__ import annotations

import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PERIOD_US = 2000  # 2 ms: throttling pauses stay short compared with response times


class CpuLimitError(Exception):
    """The limit cannot be applied here; the message says why and how to do without it."""


def _find_v2_root() -> Path | None:
    for root in (CGROUP_ROOT, CGROUP_ROOT / "unified"):
        controllers = root / "cgroup.controllers"
        try:
            if "cpu" in controllers.read_text().split():
                return root
        except OSError:
            continue
    return None


def _find_v1_root() -> Path | None:
    for name in ("cpu", "cpu,cpuacct"):
        root = CGROUP_ROOT / name
        if (root / "cpu.cfs_quota_us").exists():
            return root
    return None


class CpuLimit:
    """One cgroup holding every server process, limited to ``share`` of one CPU."""

    def __init__(self, share: float, name: str):
        self.share = share
        v2 = _find_v2_root()
        v1 = _find_v1_root() if v2 is None else None
        if v2 is None and v1 is None:
            raise CpuLimitError("server_cpu_share needs the cgroup CPU controller (cgroup v2 cpu.max or v1 "
                                "cpu.cfs_quota_us) and neither is available; remove server_cpu_share")
        self.version = 2 if v2 is not None else 1
        root = v2 if v2 is not None else v1
        assert root is not None
        self.path = root / "httpbench" / name
        quota = max(1000, int(PERIOD_US * share))  # the kernel's minimum quota is 1 ms
        try:
            if self.version == 2:
                parent = self.path.parent
                parent.mkdir(exist_ok=True)
                (root / "cgroup.subtree_control").write_text("+cpu")
                (parent / "cgroup.subtree_control").write_text("+cpu")
                self.path.mkdir(exist_ok=True)
                period = max(PERIOD_US, int(quota / share))
                (self.path / "cpu.max").write_text(f"{quota} {period}")
            else:
                self.path.mkdir(parents=True, exist_ok=True)
                period = max(PERIOD_US, int(quota / share))
                (self.path / "cpu.cfs_period_us").write_text(str(period))
                (self.path / "cpu.cfs_quota_us").write_text(str(quota))
        except OSError as exc:
            raise CpuLimitError(f"cannot set up the CPU limit in {self.path}: {exc.strerror}; run as root or "
                                f"remove [pinning] server_cpu_share") from None
        self.quota_us, self.period_us = quota, period

    def enter(self) -> None:
        """preexec_fn: move the calling (about to exec) process into the limited cgroup."""
        with open(self.path / "cgroup.procs", "w") as fh:
            fh.write(str(os.getpid()))

    def throttled_s(self) -> float:
        """Total time the group spent throttled so far (cpu.stat)."""
        try:
            text = (self.path / "cpu.stat").read_text()
        except OSError:
            return 0.0
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "throttled_usec":
                return int(value) / 1e6
            if key == "throttled_time":  # v1, nanoseconds
                return int(value) / 1e9
        return 0.0

    def remove(self) -> None:
        """Remove the run's cgroup (and the shared parent when no other run uses it)."""
        for path in (self.path, self.path.parent):
            try:
                path.rmdir()
            except OSError:
                pass
