"""The built parts: backends.json (the only list of backends, and of the reference servers that
are their models' floors) and the loadgen binary."""

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
    """One entry of build/servers/backends.json (the ``--describe`` fields plus ``binary``):
    a backend, or a reference server, whose ``reference_for`` names the backend it is the floor
    of (empty for a backend)."""

    name: str
    binary: Path
    model: str = ""
    summary: str = ""
    paper: str = ""
    max_connections: int | None = None
    tunables: tuple[dict[str, Any], ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, compare=False)
    reference_for: str = ""

    @property
    def is_reference(self) -> bool:
        return bool(self.reference_for)


def build_dir() -> Path:
    """``$HTTPBENCH_BUILD`` or ``<repo>/build``."""
    env = os.environ.get("HTTPBENCH_BUILD")
    return Path(env).resolve() if env else REPO_ROOT / "build"


def backends_json_path(build: Path | None = None) -> Path:
    return (build or build_dir()) / "servers" / "backends.json"


def loadgen_path(build: Path | None = None) -> Path:
    return (build or build_dir()) / "loadgen" / "loadgen"


def _registry_entries(build: Path | None, key: str) -> tuple[Path, list[Any]]:
    """The list under ``key`` in backends.json; ``[]`` for a missing "references" (a build from
    before reference servers existed)."""
    path = backends_json_path(build)
    if not path.exists():
        raise RegistryError(
            f"{path} does not exist: the servers are not built. Run `make build` "
            f"(or set HTTPBENCH_BUILD to the build directory)."
        )
    try:
        data = json.loads(path.read_text())
        entries = data[key] if key == "backends" else data.get(key, [])
        if not isinstance(entries, list):
            raise TypeError(f"'{key}' is not a list")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise RegistryError(f"{path} is not a valid backend registry ({exc}); rebuild with `make build`.") from None
    return path, entries


def _record(path: Path, entry: Any, required: tuple[str, ...]) -> Backend:
    if not isinstance(entry, dict) or any(k not in entry for k in required):
        raise RegistryError(f"{path}: every entry needs {', '.join(repr(k) for k in required)}; got {entry!r}")
    max_conns = entry.get("max_connections")
    return Backend(
        name=str(entry["name"]),
        binary=Path(entry["binary"]),
        model=str(entry.get("model", "")),
        summary=str(entry.get("summary", "")),
        paper=str(entry.get("paper", "")),
        max_connections=int(max_conns) if isinstance(max_conns, (int, float)) else None,
        tunables=tuple(entry.get("tunables", []) or []),
        raw=entry,
        reference_for=str(entry.get("reference_for", "")),
    )


def load_backends(build: Path | None = None) -> list[Backend]:
    """Read backends.json; raise ``RegistryError`` with a fix when it is unusable."""
    path, entries = _registry_entries(build, "backends")
    return [_record(path, entry, ("name", "binary")) for entry in entries]


def load_references(build: Path | None = None) -> list[Backend]:
    """The reference servers of backends.json ("references": build/servers/ref-<model>, the
    canned-reply floor of each model, servers/reference/), each with ``reference_for`` set.
    They are not backends: ``load_backends`` never returns one, so nothing that iterates the
    backends (experiments, the report) runs them unless asked by name."""
    path, entries = _registry_entries(build, "references")
    return [_record(path, entry, ("name", "binary", "reference_for")) for entry in entries]


def backend_names_or_none(build: Path | None = None) -> tuple[str, ...] | None:
    """Names in backends.json, or ``None`` when it cannot be read (validation then defers)."""
    try:
        return tuple(b.name for b in load_backends(build))
    except RegistryError:
        return None
