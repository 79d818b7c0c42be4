"""Fixtures: a fake build directory (fake servers + fake loadgen, no C++ needed)."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FAKES = Path(__file__).resolve().parent / "fakes"
DATA = Path(__file__).resolve().parent / "data"

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


@pytest.fixture
def fake_build(tmp_path: Path) -> Path:
    """build/ with httpd-alpha, httpd-beta (max 20 connections) and a loadgen, all fakes."""
    build = tmp_path / "build"
    (build / "servers").mkdir(parents=True)
    (build / "loadgen").mkdir()
    entries = []
    for name, max_conns in (("alpha", 10000), ("beta", 20)):
        binary = build / "servers" / f"httpd-{name}"
        shutil.copy(FAKES / "fake_server.py", binary)
        binary.chmod(0o755)
        entries.append({"name": name, "model": f"fake {name} model", "summary": "test double", "category": "event",
                        "max_connections": max_conns, "tunables": [], "binary": str(binary)})
    (build / "servers" / "backends.json").write_text(json.dumps({"backends": entries}))
    shutil.copy(FAKES / "fake_loadgen.py", build / "loadgen" / "loadgen")
    (build / "loadgen" / "loadgen").chmod(0o755)
    return build


@pytest.fixture
def pid_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Fake processes record their pids here so tests can prove they are gone."""
    d = tmp_path / "pids"
    d.mkdir()
    monkeypatch.setenv("FAKE_PID_DIR", str(d))
    return d


def write_experiment(directory: Path, levels=(1, 5, 30), backends='["alpha", "beta"]', repetitions=1,
                     extra: str = "", ready_timeout_s: float = 5,
                     pinning: str = "[pinning]\nserver_cpu_share = 1.0\n") -> Path:
    """A small experiment on the fake backends; uncapped (no calibration) unless ``pinning`` says
    otherwise. ``extra`` lands in the [load] table (or opens later tables)."""
    path = directory / "exp.toml"
    path.write_text(
        f"""[experiment]
name = "fake"
title = "fake experiment"
[servers]
backends = {backends}
production = []
[load]
levels = {list(levels)}
requests = 300
discard = 10
repetitions = {repetitions}
ready_timeout_s = {ready_timeout_s}
{extra}
{pinning if "[pinning]" not in extra else ""}"""
    )
    return path


def alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] not in "ZX"


def remove_cgroups(name_glob: str) -> list[Path]:
    """Removes the (empty) cgroups matching ``name_glob`` under the harness's parent, in every
    hierarchy, and returns those it found: a harness killed or failing before it could close
    them leaves them behind (their names hold its pid), and they would stay on the machine."""
    from harness.cgroup import PARENT, CgroupError, detect_layout

    try:
        layout = detect_layout()
    except CgroupError:  # no cgroups here: no run made any
        return []
    found = [cg for root in layout.roots() for cg in (root / PARENT).glob(name_glob)]
    for leftover in found:
        for _ in range(100):  # its last task may still be leaving
            try:
                leftover.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.02)
    return found


def recorded_pids(pid_dir: Path) -> list[int]:
    return [int(p.name.split(".")[0]) for p in pid_dir.iterdir()]


def harness_env(build: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["HTTPBENCH_BUILD"] = str(build)
    env["PYTHONPATH"] = str(REPO)
    env.update(extra or {})
    return env
