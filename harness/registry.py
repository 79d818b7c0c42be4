"""The built parts: backends.json (the only list of backends) and the loadgen binary."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent


class RegistryError(Exception):
    """backends.json is missing or malformed; the message says how to fix it."""


@dataclass(frozen=True)
class Backend:
    """One entry of build/servers/backends.json (the ``--describe`` fields plus ``binary``)."""

    name: str
    binary: Path
    model: str = ""
    summary: str = ""
    paper: str = ""
    max_connections: int | None = None
    tunables: tuple[dict[str, Any], ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, compare=False)


def build_dir() -> Path:
    """``$HTTPBENCH_BUILD`` or ``<repo>/build``."""
    env = os.environ.get("HTTPBENCH_BUILD")
    return Path(env).resolve() if env else REPO_ROOT / "build"


def backends_json_path(build: Path | None = None) -> Path:
    return (build or build_dir()) / "servers" / "backends.json"


def loadgen_path(build: Path | None = None) -> Path:
    return (build or build_dir()) / "loadgen" / "loadgen"


def load_backends(build: Path | None = None) -> list[Backend]:
    """Read backends.json; raise ``RegistryError`` with a fix when it is unusable."""
    path = backends_json_path(build)
    if not path.exists():
        raise RegistryError(
            f"{path} does not exist: the servers are not built. Run `make build` "
            f"(or set HTTPBENCH_BUILD to the build directory)."
        )
    try:
        data = json.loads(path.read_text())
        entries = data["backends"]
        if not isinstance(entries, list):
            raise TypeError("'backends' is not a list")
    except (ValueError, KeyError, TypeError) as exc:
        raise RegistryError(f"{path} is not a valid backend registry ({exc}); rebuild with `make build`.") from None
    backends = []
    for entry in entries:
        if not isinstance(entry, dict) or "name" not in entry or "binary" not in entry:
            raise RegistryError(f"{path}: every entry needs 'name' and 'binary'; got {entry!r}")
        max_conns = entry.get("max_connections")
        backends.append(
            Backend(
                name=str(entry["name"]),
                binary=Path(entry["binary"]),
                model=str(entry.get("model", "")),
                summary=str(entry.get("summary", "")),
                paper=str(entry.get("paper", "")),
                max_connections=int(max_conns) if isinstance(max_conns, (int, float)) else None,
                tunables=tuple(entry.get("tunables", []) or []),
                raw=entry,
            )
        )
    return backends


def backend_names_or_none(build: Path | None = None) -> tuple[str, ...] | None:
    """Names in backends.json, or ``None`` when it cannot be read (validation then defers)."""
    try:
        return tuple(b.name for b in load_backends(build))
    except RegistryError:
        return None
