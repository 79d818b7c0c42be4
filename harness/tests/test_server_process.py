"""The server process contract's stop (harness/server.py), on a stand-in server: a Python
script that prints its ready line and exits 0 on SIGTERM."""
from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

from harness.server import LaunchSpec, ServerProcess

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
