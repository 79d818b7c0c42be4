"""Real HTTP clients (ab, wrk, curl) against every backend: zero failures, zero errors.
A test is skipped, not failed, when its client is not installed."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from e2e_docroot import FILES
from e2e_server import ServerProcess, assert_still_serving

INDEX = FILES["/index.html"][0]
CLIENT_TIMEOUT_S = 90


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed")
    return path


def run_tool(argv: list[str]) -> subprocess.CompletedProcess:
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=CLIENT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate(timeout=5)
        pytest.fail(f"{' '.join(argv)} did not finish within {CLIENT_TIMEOUT_S}s\n{out[-2000:]}\n{err[-2000:]}")
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def ab_field(output: str, name: str) -> int | None:
    match = re.search(rf"^{re.escape(name)}:\s+(\d+)", output, re.MULTILINE)
    return int(match.group(1)) if match else None


@pytest.mark.parametrize(
    ("options", "path", "requests"),
    [
        ([], "/index.html", 2000),
        (["-k"], "/index.html", 2000),
        (["-k"], "/hello?name=ab", 1000),
        ([], "/big.bin", 200),
    ],
    ids=["new-connection-per-request", "keep-alive", "keep-alive-hello", "large-file"],
)
def test_ab_completes_every_request_without_failures(server: ServerProcess, options: list[str], path: str, requests: int):
    argv = [tool("ab"), *options, "-n", str(requests), "-c", "50", "-s", "10", "-q", server.url(path)]
    result = run_tool(argv)
    report = f"$ {' '.join(argv)}\n{result.stdout[-3000:]}\n{result.stderr[-2000:]}"
    assert result.returncode == 0, f"ab exited {result.returncode}\n{report}"
    assert ab_field(result.stdout, "Complete requests") == requests, report
    assert ab_field(result.stdout, "Failed requests") == 0, report
    assert ab_field(result.stdout, "Non-2xx responses") in (None, 0), report
    assert ab_field(result.stdout, "Write errors") in (None, 0), report
    if "-k" in options:
        assert ab_field(result.stdout, "Keep-Alive requests") == requests, f"keep-alive not honoured\n{report}"
    assert_still_serving(server)


def test_wrk_reports_no_errors_and_no_non_2xx(server: ServerProcess):
    argv = [tool("wrk"), "-t1", "-c50", "-d1s", "--timeout", "5s", server.url("/index.html")]
    result = run_tool(argv)
    report = f"$ {' '.join(argv)}\n{result.stdout}\n{result.stderr}"
    assert result.returncode == 0, report
    # wrk prints these two lines only when there is something to report.
    assert "Socket errors" not in result.stdout, report
    assert "Non-2xx or 3xx responses" not in result.stdout, report
    match = re.search(r"(\d+) requests in", result.stdout)
    assert match and int(match.group(1)) > 0, report
    assert_still_serving(server)


def test_curl_http10_head_gets_headers_only(server: ServerProcess):
    argv = [tool("curl"), "-sS", "--http1.0", "--max-time", "10", "-I", server.url("/index.html")]
    result = run_tool(argv)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert re.match(r"HTTP/1\.[01] 200", lines[0]), result.stdout
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if ":" in line)}
    assert headers.get("content-length") == str(len(INDEX)), result.stdout
    assert headers.get("content-type", "").startswith("text/html"), result.stdout


@pytest.mark.parametrize("path", ["/index.html", "/big.bin", "/file%20with%20space.txt"])
def test_curl_http10_get_downloads_byte_exact(server: ServerProcess, path: str):
    argv = [tool("curl"), "-sS", "--http1.0", "--max-time", "10", "-o", "-", "-w", "", server.url(path)]
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    expected = FILES[path.replace("%20", " ")][0]
    assert proc.stdout == expected, f"curl {path}: {len(proc.stdout)} bytes, want {len(expected)}"
