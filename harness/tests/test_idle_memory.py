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


def test_an_installed_production_server_is_measured_through_its_launch_spec():
    from harness import production
    from harness.idle_memory import measure_production

    exe = production.installed().get("node")
    if exe is None:
        pytest.skip("node.js is not installed")
    before, after = measure_production("node", exe, 200, "0")
    # node's baseline alone is tens of MB (V8's heap and code): the server measured was node.
    assert before > 10_000 and after > before, (before, after)


def test_a_name_that_is_neither_a_backend_nor_a_production_server_is_refused(tmp_path: Path):
    from harness.idle_memory import run

    if not backends_json_path().exists():
        pytest.skip("servers not built (make build)")
    with pytest.raises(SystemExit, match="neither in backends.json nor an installed production server"):
        run(["no-such-server"], 10, "0", backends_json_path().parents[1])
