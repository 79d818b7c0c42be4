"""The idle-memory measurement, against the real sped binary when it is built."""

from pathlib import Path

import pytest

from harness.idle_memory import measure
from harness.registry import backends_json_path, load_backends


def _sped() -> Path:
    if not backends_json_path().exists():
        pytest.skip("servers not built (make build)")
    found = [b.binary for b in load_backends() if b.name == "sped"]
    if not found:
        pytest.skip("sped is not in backends.json")
    return found[0]


def test_idle_keep_alive_connections_on_sped_hold_no_request_buffers():
    # Each connection has been served a request; a connection that kept its 16 KiB input or
    # output buffer while idle would cost > 16,000 bytes each.
    before, after = measure(_sped(), 300, "0", [])
    per_connection = (after - before) * 1024 / 300
    assert before > 0 and after >= before
    assert per_connection < 4096, f"{per_connection:.0f} bytes per idle connection"
