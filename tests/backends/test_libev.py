"""httpd-libev: the SPED model on libev's loop (SXE's library): 10,000 keep-alive connections on one
ev_io each, every deadline served by one ev_timer over the core's deadline lists, and an idle
connection that costs no more than its slot and its watcher."""

from __future__ import annotations

from backend_checks import assert_holds_keep_alive_connections, need_descriptors
from event_loop_checks import (
    assert_idle_connection_costs_at_most,
    assert_idle_connections_expire_one_timeout_after_their_last_request,
)

NAME = "libev"
MANY = 10_000


def test_holds_10000_concurrent_keep_alive_connections(launch):
    need_descriptors(MANY)
    server = launch(NAME)
    assert_holds_keep_alive_connections(server, MANY)


def test_idle_connections_expire_one_timeout_after_their_last_request_and_busy_ones_never(launch):
    server = launch(NAME, "--idle-timeout", "1")
    assert_idle_connections_expire_one_timeout_after_their_last_request(server, idle_timeout_s=1)


def test_an_idle_keep_alive_connection_costs_at_most_1_kib(launch):
    # sped: about 240 bytes; a 16 KiB buffer pinned to each idle connection would be 16,384.
    assert_idle_connection_costs_at_most(launch(NAME), 1024, MANY)
