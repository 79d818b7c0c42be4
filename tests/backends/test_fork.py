"""httpd-fork: one child process per connection, reaped by the parent; --max-conns caps the
live children."""

from __future__ import annotations

import signal
from concurrent.futures import ThreadPoolExecutor

from backend_checks import (
    INDEX,
    children_of,
    hold_served_connections,
    keep_alive_rounds,
    live_children_of,
    wait_until,
    waits_without_answer,
    zombies_of,
)
from e2e_client import request
from e2e_server import fetch

NAME = "fork"


def test_5000_connections_leave_no_zombie_children(launch):
    server = launch(NAME)
    zombies_seen: list[int] = []

    def one_shot(i: int) -> int:
        if i % 500 == 0:  # sample while children come and go: reaping keeps up
            zombies_seen.append(len(zombies_of(server.pid)))
        return fetch(server, request("/index.html", close=True)).status

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(one_shot, range(5000)))
    assert statuses.count(200) == 5000
    # Children exit as their connections close and the parent reaps them within moments
    # (a child that exited a microsecond ago may still be a zombie, but not for long).
    assert wait_until(lambda: not children_of(server.pid), 5), (
        f"after 5,000 connections: zombies {zombies_of(server.pid)}, running {live_children_of(server.pid)}"
    )
    # Without reaping they would number in the hundreds by the second sample; a parent that is
    # merely descheduled on a busy machine leaves a few dozen at most.
    assert max(zombies_seen) <= 64, f"zombies pile up while serving: samples {zombies_seen}"
    stats = server.check_clean_exit(server.stop())
    assert stats["connections"] == 5000 and stats["requests"] == 5000, stats


def test_each_connection_gets_its_own_child_and_it_exits_with_the_connection(launch):
    server = launch(NAME)
    held = hold_served_connections(server, 3)
    try:
        assert len(live_children_of(server.pid)) == 3
        held.pop().close()
        assert wait_until(lambda: len(live_children_of(server.pid)) == 2, 5)
    finally:
        for conn in held:
            conn.close()
    assert wait_until(lambda: not children_of(server.pid), 5), f"zombies: {zombies_of(server.pid)}"


def test_max_conns_caps_live_children_and_the_next_connection_waits(launch):
    server = launch(NAME, "--max-conns", "3")
    held = hold_served_connections(server, 3)
    extra = server.connect()
    try:
        extra.send(request("/plain.txt"))
        assert waits_without_answer(extra), "a 4th connection was served beyond --max-conns 3"
        assert len(live_children_of(server.pid)) == 3
        held.pop().close()
        assert extra.read_response().status == 200
        assert len(live_children_of(server.pid)) <= 3
    finally:
        for conn in held + [extra]:
            conn.close()
    server.check_clean_exit(server.stop())


def test_sigterm_ends_idle_children_and_the_parent_exits_cleanly(launch):
    server = launch(NAME)
    held = hold_served_connections(server, 20)
    try:
        children = live_children_of(server.pid)
        assert len(children) == 20
        result = server.stop(signal.SIGTERM)
        stats = server.check_clean_exit(result)
        # Idle children end at once; only a busy one would wait for the 2 s grace and be killed.
        assert result.elapsed_s < 1.5, f"stop took {result.elapsed_s:.1f}s with 20 idle children"
        assert stats["requests"] == 20, "requests served by children are missing from the stats line"
        for conn in held:
            assert conn.read_until_close(2)[1] == "eof", "an idle connection was not closed on stop"
    finally:
        for conn in held:
            conn.close()


def test_2000_concurrent_keep_alive_connections(launch):
    server = launch(NAME)
    elapsed = keep_alive_rounds(server, 2000, rounds=2, timeout_s=90)
    assert elapsed < 90
    assert fetch(server, request("/index.html")).body == INDEX
    server.check_clean_exit(server.stop())


def test_children_resolve_no_symbols_of_their_own(launch, tmp_path, monkeypatch):
    """Everything a child needs is bound and set up in the parent before it forks (`-z now`,
    the primed buffer pool): a child that resolved a symbol itself would run the dynamic linker's
    lookup and copy the pages it writes, once per connection (docs/methodology.md)."""
    monkeypatch.setenv("LD_DEBUG", "bindings")
    monkeypatch.setenv("LD_DEBUG_OUTPUT", str(tmp_path / "ld"))
    server = launch(NAME)
    for _ in range(5):
        assert fetch(server, request("/index.html", close=True)).status == 200
    parent = server.pid
    server.stop()
    by_pid: dict[int, list[str]] = {}
    for path in tmp_path.glob("ld.*"):
        for line in path.read_text(errors="replace").splitlines():
            head, _, rest = line.partition(":")
            if head.strip().isdigit() and "binding file" in rest:
                by_pid.setdefault(int(head), []).append(rest.strip())
    assert by_pid.get(parent), "LD_DEBUG recorded nothing for the parent: the check proves nothing"
    children = {pid: lines for pid, lines in by_pid.items() if pid != parent}
    assert not children, f"children bound symbols themselves: {list(children.values())[0][:5]}"
