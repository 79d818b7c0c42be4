"""scripts/client_turns.py's bookkeeping: which clients it accepts, the command each turn runs,
how a turn's requests are counted (a failed response is an error, not a cheap request), the
rotation of the clients' order and the per-client summary (the run itself is a measurement for
notes, not a test)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "client_turns.py"
spec = importlib.util.spec_from_file_location("client_turns", SCRIPT)
client_turns = importlib.util.module_from_spec(spec)
sys.modules["client_turns"] = client_turns
spec.loader.exec_module(client_turns)

WRK_OK = """Running 4s test @ http://127.0.0.1:4242/index.html
  1 threads and 100 connections
  181234 requests in 4.00s, 100.00MB read
Requests/sec:  45308.50
Transfer/sec:     25.00MB
"""


def test_clients_are_wrk_or_the_loadgen_with_its_own_options():
    clients = client_turns.parse_clients("wrk, loadgen,loadgen --spin-us 0")
    assert [(c.label, c.kind, c.options) for c in clients] == [
        ("wrk", "wrk", ()), ("loadgen", "loadgen", ()), ("loadgen --spin-us 0", "loadgen", ("--spin-us", "0"))]


@pytest.mark.parametrize("text", ["ab", "wrk -t2", "", "wrk,,loadgen", "wrk,wrk"])
def test_any_other_client_list_is_refused_naming_the_option(text):
    with pytest.raises(ValueError, match="--clients"):
        client_turns.parse_clients(text)


def test_every_client_keeps_the_connections_alive_for_the_turn(tmp_path: Path):
    wrk, plain, sleeping = client_turns.parse_clients("wrk,loadgen,loadgen --spin-us 0")
    url, out = "http://127.0.0.1:4242/index.html", tmp_path / "t.json"
    assert client_turns.client_argv(wrk, 100, 4, url, out, Path("/b/lg")) == ["wrk", "-t1", "-c100", "-d4s", url]
    argv = client_turns.client_argv(sleeping, 100, 4, url, out, Path("/b/lg"))
    assert argv[:7] == ["/b/lg", "-c", "100", "-k", "-d", "4s", "--discard"]
    assert argv[-5:] == ["--spin-us", "0", "--json", str(out), url]
    assert "--spin-us" not in client_turns.client_argv(plain, 100, 4, url, out, Path("/b/lg"))


def test_a_turn_counts_the_answered_requests_and_refuses_failed_ones(tmp_path: Path):
    wrk, loadgen = client_turns.parse_clients("wrk,loadgen")
    assert client_turns.requests_of(wrk, WRK_OK, tmp_path / "none") == 181234
    with pytest.raises(RuntimeError, match="non-2xx"):  # a 404 is cheap: never a measurement
        client_turns.requests_of(wrk, WRK_OK + "  Non-2xx or 3xx responses: 181234\n", tmp_path / "none")
    result = tmp_path / "r.json"
    result.write_text(json.dumps({"completed": 5000, "errors_total": 0, "errors": {}}))
    assert client_turns.requests_of(loadgen, "", result) == 5000
    result.write_text(json.dumps({"completed": 5000, "errors_total": 3, "errors": {"bad_status": 3}}))
    with pytest.raises(RuntimeError, match="bad_status"):
        client_turns.requests_of(loadgen, "", result)
    with pytest.raises(RuntimeError, match="no result"):
        client_turns.requests_of(loadgen, "loadgen: cannot connect", tmp_path / "missing.json")


def test_the_clients_order_rotates_so_that_none_is_always_first():
    clients = client_turns.parse_clients("wrk,loadgen,loadgen --spin-us 0")
    firsts = [client_turns.client_order(clients, r)[0].label for r in range(3)]
    assert firsts == ["wrk", "loadgen", "loadgen --spin-us 0"]
    assert all(sorted(c.label for c in client_turns.client_order(clients, r)) ==
               sorted(c.label for c in clients) for r in range(5))


def test_a_turn_gives_cpu_and_sleeps_per_request_and_the_floors_ratio():
    turn = client_turns.Turn(1, "wrk", requests=(40_000, 50_000), cpu_s=(1.0, 1.0), client_sleeps=(20_000, 10_000))
    assert turn.cpu_us(0) == pytest.approx(25.0) and turn.cpu_us(1) == pytest.approx(20.0)
    assert turn.sleeps_per_request(0) == pytest.approx(0.5) and turn.sleeps_per_request(1) == pytest.approx(0.2)
    assert turn.ratio == pytest.approx(0.8)  # the floor costs 0.8 of the backend


def test_the_summary_takes_each_clients_turns_only_with_the_ratios_interval():
    clients = client_turns.parse_clients("wrk,loadgen")
    turns = [client_turns.Turn(r, "wrk", (1000, 1000), (0.025, 0.020 + r * 0.001), (400, 300)) for r in range(1, 6)]
    turns += [client_turns.Turn(r, "loadgen", (1000, 1000), (0.020, 0.019), (5, 5)) for r in range(1, 4)]
    rows = dict((c.label, s) for c, s in client_turns.summary(turns, clients))
    assert rows["wrk"]["turns"] == 5 and rows["loadgen"]["turns"] == 3
    assert rows["wrk"]["cpu_us"] == pytest.approx((25.0, 23.0))
    assert rows["wrk"]["sleeps"] == pytest.approx((0.4, 0.3))
    wrk_ratio = rows["wrk"]["ratio"]
    assert wrk_ratio.value == pytest.approx(0.92) and wrk_ratio.lo <= 0.92 <= wrk_ratio.hi
    assert 0.84 - 1e-9 <= wrk_ratio.lo < 0.92 < wrk_ratio.hi <= 1.0 + 1e-9  # within the turns' range (0.84-1.00)
    assert rows["loadgen"]["ratio"].value == pytest.approx(0.95)
    text = client_turns.table(client_turns.summary(turns, clients), "thread", "ref-thread")
    lines = text.splitlines()
    assert "µs/req thread" in lines[0] and "floor ÷ backend" in lines[0]
    assert lines[1].split()[:4] == ["wrk", "5", "25.00", "23.00"] and "0.920 [" in lines[1]


def test_a_real_pair_loaded_by_turns_gives_each_clients_cpu_sleeps_and_ratio():
    """sped beside ref-sped for one short round of each client: the script runs end to end
    (shared cap, both servers, both clients, every response checked) and its table is sane."""
    import shutil
    import subprocess

    from harness.cgroup import available as cgroups_available
    from harness.registry import backends_json_path

    if not backends_json_path().exists() or shutil.which("wrk") is None:
        pytest.skip("needs the built servers and wrk")
    ok, why = cgroups_available()
    if not ok:
        pytest.skip(why)
    done = subprocess.run([sys.executable, str(SCRIPT), "sped", "--clients", "wrk,loadgen --spin-us 0",
                           "--rounds", "1", "--seconds", "1", "--warmup", "1", "--connections", "20"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = {label: line[len(label):].split() for line in done.stdout.splitlines()
            for label in ("wrk", "loadgen --spin-us 0") if line.startswith(label + "  ")}
    assert set(rows) == {"wrk", "loadgen --spin-us 0"}
    for turns, backend_us, floor_us, backend_sleeps, floor_sleeps, ratio, *_ in rows.values():
        assert turns == "1" and float(backend_us) > 0 and float(floor_us) > 0
        assert float(backend_sleeps) >= 0 and float(floor_sleeps) >= 0
        assert 0.5 < float(ratio) < 2.0  # the floor and the backend answer the same page at similar cost
