"""`harness peers`: side-by-side wrk/ab runs, with the client's CPU to show which side limits."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness import peers
from harness.peers import PeerResults, Sample
from harness.registry import backends_json_path, build_dir


def test_client_cpu_medians_skip_runs_without_a_reading():
    results = PeerResults()
    results.add("sped", "wrk", Sample(100.0, 6.0, 7.0, 0.99))
    results.add("sped", "wrk", Sample(120.0, 6.5, None, None))
    results.add("sped", "wrk", Sample(110.0, 6.2, 9.0, 0.95))
    assert results.median("sped", "wrk") == (110.0, 6.2)
    assert results.median_client("sped", "wrk") == (8.0, 0.97)


@pytest.mark.parametrize("share", [0.0, 1.0, 1.5, -0.2])
def test_server_cpu_share_outside_zero_to_one_is_refused_naming_the_option(share: float):
    if shutil.which("wrk") is None or shutil.which("ab") is None:
        pytest.skip("wrk/ab not installed")
    with pytest.raises(SystemExit, match="--server-cpu-share must be between 0 and 1"):
        peers.compare(["sped"], Path("/nonexistent"), 1, 1, 100, 10, "0", "1", server_cpu_share=share)


def test_one_round_against_sped_reports_server_and_client_cpu(capsys):
    if not backends_json_path().exists():
        pytest.skip("servers not built (make build)")
    if shutil.which("wrk") is None or shutil.which("ab") is None:
        pytest.skip("wrk/ab not installed")
    results = peers.compare(["sped"], build_dir(), rounds=1, seconds=1, ab_requests=3000,
                            concurrency=10, server_cpus="0", client_cpus="1")
    for client in ("wrk", "ab"):
        rps, server_us = results.median("sped", client)
        client_us, share = results.median_client("sped", client)
        # CPU time comes in scheduler ticks: 3,000 requests take well over one.
        assert rps > 0 and server_us is not None and server_us > 0
        assert client_us is not None and client_us > 0
        assert share is not None and 0 < share <= 1.5
    peers.print_table(results, ["sped"], "sped")
    table = capsys.readouterr().out
    assert "1.00x, 1.00x" in table and "client" in table


def test_every_server_start_gets_the_requested_cpu_cap_not_the_last_clients_share(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # The cap must not change between runs: a client using 6 % of its CPU once must not turn
    # every later server's 25 % into 6 %.
    caps: list[float | None] = []

    class FakeCgroup:
        def __init__(self) -> None:
            self.cpu_ns = 0

        def enter(self) -> None: ...

        def read(self):
            self.cpu_ns += 10**8
            return self

        def close(self) -> None: ...

    class FakeServer:
        def __init__(self, *args, **kwargs) -> None:
            self.pid = 1

        def start(self, timeout_s: float) -> int:
            return 1

        def stop(self) -> None: ...

    def fake_cgroup(tag: str, share: float | None, server_cpus: str) -> FakeCgroup:
        caps.append(share)
        return FakeCgroup()

    monkeypatch.setattr(peers, "_launch", lambda *args: None)
    monkeypatch.setattr(peers, "_cgroup", fake_cgroup)
    monkeypatch.setattr(peers, "ServerProcess", FakeServer)
    monkeypatch.setattr(peers, "_run_client", lambda argv, cpus: ("", 0.06, 1.0))  # 6 % of a CPU
    monkeypatch.setattr(peers, "_parse", lambda client, output: (1000.0, 1000, 0))
    # rounds 2, 1 s, ab -n 10, -c 1, server CPU 0, client CPU 1, capped at 25 %
    results = peers._compare(["alpha", "beta"], tmp_path, 2, 1, 10, 1, "0", "1", 0.25)
    assert caps == [0.25] * 8
    assert results.median_client("beta", "ab") == pytest.approx((60.0, 0.06))
