"""Fixtures of the end-to-end suite: one real server binary per backend in backends.json.

Every test that takes `backend` (directly or through `server`) runs once per backend listed in
`$HTTPBENCH_BUILD/servers/backends.json` (default `<repo>/build`); nothing here names a backend.
`server` is module-scoped: each test module starts one server per backend and stops it with
SIGTERM at the end, asserting the clean-exit contract (exit 0, JSON stats line last).
"""

from __future__ import annotations

import resource
import sys
from pathlib import Path
from typing import Callable, Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from e2e_docroot import Docroot, create_docroot  # noqa: E402
from e2e_server import Backend, ServerProcess, load_backends, suite_args, suite_settings  # noqa: E402

BACKENDS, REGISTRY_PROBLEM = load_backends()


def pytest_configure(config: pytest.Config) -> None:
    # 500 concurrent connections plus the server's own fds must fit.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass


def pytest_report_header(config: pytest.Config) -> list[str]:
    if REGISTRY_PROBLEM:
        return [f"httpbench backends: NONE ({REGISTRY_PROBLEM})"]
    return [f"httpbench backends: {', '.join(b.name for b in BACKENDS)}"]


@pytest.fixture(
    scope="module",
    params=BACKENDS or [None],
    ids=[b.name for b in BACKENDS] or ["no-backends"],
)
def backend(request: pytest.FixtureRequest) -> Backend:
    """One backend from backends.json (the test runs once per backend)."""
    if request.param is None:
        pytest.fail(f"no backend to test: {REGISTRY_PROBLEM}", pytrace=False)
    assert request.param.binary.is_file(), f"{request.param.binary} listed but missing"
    return request.param


@pytest.fixture(scope="session")
def docroot(tmp_path_factory: pytest.TempPathFactory) -> Docroot:
    return create_docroot(tmp_path_factory.mktemp("docroot"))


@pytest.fixture(scope="module")
def server(backend: Backend, docroot: Docroot) -> Iterator[ServerProcess]:
    """The backend serving the suite docroot; stopped with SIGTERM after the module, which
    must exit 0 with its stats line last."""
    proc = ServerProcess(backend, suite_args(docroot, backend)).start()
    try:
        yield proc
    finally:
        result = proc.stop()
    proc.check_clean_exit(result)


@pytest.fixture
def start_server(backend: Backend) -> Iterator[Callable[[list[str]], ServerProcess]]:
    """Factory for servers a test owns (and usually stops itself); any left running are
    stopped (SIGTERM, then SIGKILL of the group) at the end of the test."""
    started: list[ServerProcess] = []

    def start(args: list[str]) -> ServerProcess:
        proc = ServerProcess(backend, suite_settings(backend) + args)
        started.append(proc)
        return proc.start()

    yield start
    for proc in started:
        proc.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """On failure, attach the tail of the server's stderr (sanitizer reports, crashes)."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        proc = getattr(item, "funcargs", {}).get("server")
        if isinstance(proc, ServerProcess):
            state = "alive" if proc.alive() else f"EXITED with {proc.proc.returncode}"
            tail = "\n".join(proc.stderr_lines[-30:]) or "(empty)"
            report.sections.append((f"server {proc.backend.name} pid {proc.pid} ({state}) stderr", tail))
