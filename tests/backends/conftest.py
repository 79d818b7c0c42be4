"""Fixtures of the backend-specific tests: they reuse the end-to-end suite's server handling
(tests/e2e/e2e_server.py) and start the one backend a test names.

A test whose backend is not in `$HTTPBENCH_BUILD/servers/backends.json` (or is filtered out by
`$HTTPBENCH_BACKENDS`) is skipped. Every server a test starts is stopped at its end (SIGTERM,
then SIGKILL of its own process group); only PIDs started here are ever signalled.
"""

from __future__ import annotations

import resource
import sys
from pathlib import Path
from typing import Callable, Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))

from e2e_docroot import Docroot, create_docroot  # noqa: E402
from e2e_server import ServerProcess  # noqa: E402

from backend_checks import backend_named  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    # 2,000 client sockets in this process, plus pytest's own descriptors.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass


@pytest.fixture(scope="session")
def docroot(tmp_path_factory: pytest.TempPathFactory) -> Docroot:
    return create_docroot(tmp_path_factory.mktemp("docroot"))


@pytest.fixture
def launch(docroot: Docroot) -> Iterator[Callable[..., ServerProcess]]:
    """`launch(name, *extra_args)` starts httpd-<name> on an ephemeral loopback port serving the
    test docroot; every server started is stopped when the test ends."""
    started: list[ServerProcess] = []

    def start(name: str, *extra: str) -> ServerProcess:
        args = ["--port", "0", "--docroot", str(docroot.root), "--idle-timeout", "30", *extra]
        proc = ServerProcess(backend_named(name), args)
        started.append(proc)
        return proc.start()

    yield start
    for proc in started:
        proc.stop()
