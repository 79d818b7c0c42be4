"""The server process contract's stop (harness/server.py), on a stand-in server: a Python
script that prints its ready line and exits 0 on SIGTERM."""
from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

from harness.server import LaunchSpec, ServerProcess, settle

STAND_IN = """
import signal, socket, sys
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
print(f"listening on 127.0.0.1:{s.getsockname()[1]}", flush=True)
signal.pause()
"""


def stand_in(tmp_path: Path) -> ServerProcess:
    script = tmp_path / "stand_in.py"
    script.write_text(STAND_IN)
    return ServerProcess(LaunchSpec(argv=(sys.executable, str(script))))


def test_stop_of_a_server_the_caller_already_reaped_returns_at_once_with_its_exit_code(tmp_path: Path):
    server = stand_in(tmp_path)
    server.start(timeout_s=10)
    try:
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(10) == 0  # reaped through the Popen, as a test may do
        began = time.monotonic()
        result = server.stop(grace_s=5)
        took = time.monotonic() - began
    finally:
        server.stop()
    assert took < 1.0, f"stop waited {took:.1f} s for a process that was already reaped"
    assert result.exit_code == 0 and not result.killed


def test_stop_sends_the_signal_and_keeps_the_exit_code_and_rusage(tmp_path: Path):
    server = stand_in(tmp_path)
    server.start(timeout_s=10)
    result = server.stop(grace_s=5)
    assert result.exit_code == 0 and not result.killed
    assert "user_s" in result.rusage


STILL_STARTING = """
import os, signal, socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
print(f"listening on 127.0.0.1:{s.getsockname()[1]}", flush=True)
if os.fork() == 0:  # a pool still starting after the ready line: a child busy for BUSY_S
    end = time.monotonic() + BUSY_S
    while time.monotonic() < end:
        pass
    signal.pause()
signal.pause()
"""


def still_starting(tmp_path: Path, busy_s: float) -> ServerProcess:
    script = tmp_path / "still_starting.py"
    script.write_text(STILL_STARTING.replace("BUSY_S", repr(busy_s)))
    return ServerProcess(LaunchSpec(argv=(sys.executable, str(script))))


def test_wait_settled_waits_for_a_start_up_that_goes_on_after_the_ready_line(tmp_path: Path):
    server = still_starting(tmp_path, busy_s=0.8)
    try:
        server.start(timeout_s=10)
        assert server.wait_settled(timeout_s=10)
    finally:
        server.stop(grace_s=2)
    assert 0.6 <= server.settle_s < 10


def test_wait_settled_returns_at_once_for_an_idle_server(tmp_path: Path):
    server = stand_in(tmp_path)
    try:
        server.start(timeout_s=10)
        assert server.wait_settled(timeout_s=10)
    finally:
        server.stop(grace_s=2)
    assert server.settle_s < 1.0


def test_wait_settled_gives_up_after_its_timeout_on_a_server_that_stays_busy(tmp_path: Path):
    server = still_starting(tmp_path, busy_s=60)
    try:
        server.start(timeout_s=10)
        assert not server.wait_settled(timeout_s=0.6)
    finally:
        server.stop(grace_s=2)
    assert 0.6 <= server.settle_s < 3


def test_settle_names_a_server_that_stays_busy_in_one_warning_and_is_silent_otherwise(tmp_path: Path, capsys):
    busy = still_starting(tmp_path, busy_s=60)
    try:
        busy.start(timeout_s=10)
        assert not settle(busy, "pool-x", timeout_s=0.6)
    finally:
        busy.stop(grace_s=2)
    assert capsys.readouterr().err == "warning: pool-x was still busy 0.6 s after its ready line; measured anyway\n"
    calm = stand_in(tmp_path)
    try:
        calm.start(timeout_s=10)
        assert settle(calm, "calm", timeout_s=10)
    finally:
        calm.stop(grace_s=2)
    assert capsys.readouterr().err == ""
