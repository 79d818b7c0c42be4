"""httpd-pth: one GNU Pth thread per connection. Pth waits with select(), so it cannot use
descriptors beyond FD_SETSIZE (1024): it declares max_connections 1000, holds that many, and
past the limit says so on stderr and closes the extra connections instead of crashing."""

from __future__ import annotations

from backend_checks import (
    need_descriptors,
    backend_named,
    keep_alive_rounds,
)
from e2e_server import assert_still_serving
from user_threads_checks import assert_past_the_limit_extra_connections_are_closed_with_a_message

NAME = "pth"


def test_declares_1000_connections_and_holds_them_with_keep_alive(launch):
    backend = backend_named(NAME)
    assert backend.max_connections == 1000
    need_descriptors(1000)
    server = launch(NAME)
    keep_alive_rounds(server, 1000, rounds=2, timeout_s=120)
    assert_still_serving(server)
    stats = server.check_clean_exit(server.stop())
    assert stats["errors"] == 0, stats


def test_past_fd_setsize_it_says_so_closes_the_extra_connections_and_keeps_serving(launch):
    need_descriptors(1200)
    server = launch(NAME)
    assert_past_the_limit_extra_connections_are_closed_with_a_message(server, 1100, 50, "FD_SETSIZE")
    stats = server.check_clean_exit(server.stop())
    assert stats["errors"] >= 50, stats


