"""httpd-amped: sped's loop plus helper threads that read file ranges missing from the page cache
(Flash's AMPED). A file evicted from the page cache is read by a helper (the stats line's
`disk_fetches`) and served whole; a cached one never goes to a helper; the helpers are
`--set helpers=N` threads beside the loop's; 10,000 keep-alive connections fit. That a miss does
not stop the loop is measured, not tested: scripts/amped-disk-experiment.sh (docs/backends.md)."""

from __future__ import annotations

import ctypes
import mmap
import os
from pathlib import Path

import pytest

from backend_checks import (
    assert_ab_without_failures,
    assert_holds_keep_alive_connections,
    backend_named,
    need_descriptors,
    thread_count,
    wait_until,
)
from e2e_client import request
from e2e_server import ServerProcess, fetch

NAME = "amped"
MANY = 10_000
BIG = 2 * 1024 * 1024  # above --sendfile-threshold: sent from the page cache by sendfile


@pytest.fixture
def disk_docroot(tmp_path: Path) -> Path:
    """A docroot with one large file whose pages are written to the disk (so they can be
    evicted from the page cache)."""
    root = tmp_path / "docroot"
    root.mkdir()
    (root / "index.html").write_bytes(b"<p>amped</p>\n")
    with open(root / "big.bin", "wb") as f:
        f.write(bytes(range(256)) * (BIG // 256))
        f.flush()
        os.fsync(f.fileno())
    return root


LIBC = ctypes.CDLL(None, use_errno=True)
LIBC.mmap.restype = ctypes.c_void_p
LIBC.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
LIBC.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
LIBC.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]


def cached_pages(path: Path) -> int:
    """How many of `path`'s pages are in the page cache, by mincore() on a mapping: unlike a
    read with RWF_NOWAIT, asking starts no readahead (which, finishing before the server looks,
    would put the file back in the cache)."""
    size = path.stat().st_size
    pages = (size + mmap.PAGESIZE - 1) // mmap.PAGESIZE
    fd = os.open(path, os.O_RDONLY)
    try:
        addr = LIBC.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        if addr in (None, ctypes.c_void_p(-1).value):
            raise OSError(ctypes.get_errno(), "mmap")
        try:
            vec = (ctypes.c_ubyte * pages)()
            if LIBC.mincore(addr, size, vec) != 0:
                raise OSError(ctypes.get_errno(), "mincore")
            return sum(v & 1 for v in vec)
        finally:
            LIBC.munmap(addr, size)
    finally:
        os.close(fd)


def evict(path: Path) -> None:
    """Drops `path`'s pages from the page cache, or skips the test where that is impossible."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    if cached_pages(path):
        pytest.skip(f"{path} stays in memory after POSIX_FADV_DONTNEED (tmpfs?)")


def serve_big_file_once(root: Path, residency: str) -> dict:
    """Starts amped on `root`, fetches /big.bin (checking every byte), stops it: its stats."""
    args = ["--port", "0", "--docroot", str(root), "--set", f"residency={residency}"]
    server = ServerProcess(backend_named(NAME), args).start()
    try:
        response = fetch(server, request("/big.bin"))
        assert response.status == 200 and response.body == (root / "big.bin").read_bytes()
    finally:
        result = server.stop()
    return server.check_clean_exit(result)


RESIDENCY = ["cachestat", "nowait"]  # the two ways to ask the page cache (--set residency=)


@pytest.mark.parametrize("residency", RESIDENCY)
def test_a_file_missing_from_the_page_cache_is_read_by_a_helper_and_served_whole(disk_docroot: Path, residency: str):
    evict(disk_docroot / "big.bin")
    stats = serve_big_file_once(disk_docroot, residency)
    assert stats["disk_fetches"] >= 1, stats
    assert stats["errors"] == 0, stats


@pytest.mark.parametrize("residency", RESIDENCY)
def test_a_cached_file_never_goes_to_a_helper(disk_docroot: Path, residency: str):
    (disk_docroot / "big.bin").read_bytes()  # now in the page cache
    stats = serve_big_file_once(disk_docroot, residency)
    assert stats["disk_fetches"] == 0, stats


def test_the_helpers_are_threads_beside_the_loop(launch):
    server = launch(NAME, "--set", "helpers=3")
    # The ready line comes before run() starts them.
    assert wait_until(lambda: thread_count(server.pid) == 4, 5), thread_count(server.pid)
    assert_ab_without_failures(server, requests=2000, concurrency=50, keep_alive=True)
    stats = server.check_clean_exit(server.stop())
    assert stats["errors"] == 0 and "disk_fetches" in stats, stats


def test_holds_10000_concurrent_keep_alive_connections(launch):
    need_descriptors(MANY)
    server = launch(NAME)
    assert_holds_keep_alive_connections(server, MANY)
