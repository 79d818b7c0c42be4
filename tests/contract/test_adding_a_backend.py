""""A backend is one file plus one line" (docs/adding-a-backend.md), proved: in a copy of the
tree, add the page's example file and its meson line exactly as the page prints them, build, and
check that the build has the new backend beside every other, that backends.json lists it and
that the end-to-end suite runs on it with no other change. It compiles the core and the new
backend only (-Donly_backends), unoptimised (-Dbuildtype=plain) and niced."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "adding-a-backend.md"
NAME = "example"
BUILD_TIMEOUT_S = 1800
SUITE_TIMEOUT_S = 900


def fenced_blocks(markdown: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", markdown, flags=re.S)


def the_page_says() -> tuple[str, str]:
    """(the example file, the meson line) as printed on the page."""
    text = DOC.read_text()
    files = [b for b in fenced_blocks(text, "cpp") if b.startswith(f"// {NAME} — ")]
    lines = [b.strip() for b in fenced_blocks(text, "meson") if f"'name' : '{NAME}'" in b]
    assert len(files) == 1, f"{DOC} should print exactly one complete file starting '// {NAME} — '"
    assert len(lines) == 1, f"{DOC} should print exactly one meson line for '{NAME}'"
    return files[0], lines[0]


def copy_of_the_tree(destination: Path) -> Path:
    """The files git tracks, plus untracked ones it does not ignore (work in progress)."""
    listed = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        check=True, capture_output=True,
    ).stdout.decode().split("\0")
    for relative in filter(None, listed):
        source = REPO / relative
        if source.is_file():
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


def add_one_line(meson_build: Path, line: str) -> None:
    """Appends `line` as the last entry of the `backends = [...]` list."""
    text = meson_build.read_text()
    start = text.index("backends = [")
    end = text.index("\n]", start)
    meson_build.write_text(text[:end] + "\n  " + line + text[end:])


def run_niced(command: list[str], cwd: Path, timeout: float, env: dict | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(["nice", "-n", "10", *command], cwd=cwd, env=env, capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.mark.skipif(shutil.which("meson") is None, reason="meson is not installed")
def test_one_file_plus_one_line_is_built_registered_and_served_by_the_e2e_suite(tmp_path: Path):
    source, line = the_page_says()
    tree = copy_of_the_tree(tmp_path / "tree")
    backends = tree / "servers" / "backends"
    assert not (backends / f"{NAME}.cpp").exists(), f"the tree already has a backend called {NAME}"

    (backends / f"{NAME}.cpp").write_text(source)
    add_one_line(backends / "meson.build", line)

    build = tree / "build"
    run_niced(["meson", "setup", str(build), "-Dwerror=true", "-Dbuildtype=plain", "-Dunit_tests=disabled",
               "-Dmicrobench=disabled"], tree, BUILD_TIMEOUT_S)
    targets = json.loads(run_niced(["meson", "introspect", "--targets", str(build)], tree, 120).stdout)
    servers = {t["name"] for t in targets if t["name"].startswith("httpd-")}
    existing = (REPO / "servers" / "backends" / "meson.build").read_text().count("{'name' :")
    assert f"httpd-{NAME}" in servers, f"the build has no httpd-{NAME}: {sorted(servers)}"
    assert len(servers) == existing + 1, "the new backend should come in addition to every existing one"

    # Only the new backend is compiled (the others were built and tested by the main build).
    run_niced(["meson", "configure", str(build), f"-Donly_backends={NAME}"], tree, 120)
    run_niced(["meson", "compile", "-C", str(build), "servers/backends.json"], tree, BUILD_TIMEOUT_S)

    registry = json.loads((build / "servers" / "backends.json").read_text())["backends"]
    entry = next((b for b in registry if b["name"] == NAME), None)
    assert entry is not None, f"backends.json does not list {NAME}: {[b['name'] for b in registry]}"
    assert entry["category"] == "thread" and Path(entry["binary"]).is_file(), entry

    env = dict(os.environ, HTTPBENCH_BUILD=str(build), HTTPBENCH_BACKENDS=NAME)
    # Four workers, as `make test` runs it: the suite mostly waits (idle timeouts of 2 s), 22 s in
    # one process, 9 s in four.
    suite = run_niced([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "4",
                       "tests/e2e"], tree, SUITE_TIMEOUT_S, env)
    summary = suite.stdout.strip().splitlines()[-1]
    passed = int(re.search(r"(\d+) passed", summary).group(1))
    assert passed >= 150 and "failed" not in summary and "error" not in summary, summary
