"""`harness peers`: side-by-side wrk/ab runs, with the client's CPU to show which side limits."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from harness import peers
from harness.cgroup import available as cgroups_available
from harness.peers import PeerResults, Sample
from harness.registry import backends_json_path, build_dir
from harness.server import enter_cgroup
from harness.tests.conftest import REPO, alive, remove_cgroups


class StartedServer:
    """Stands in for ServerProcess: starts at once on port 1, settled, stops."""

    def __init__(self, *args, **kwargs) -> None:
        self.pid = 1

    def start(self, timeout_s: float) -> int:
        return 1

    def wait_settled(self, timeout_s: float = 10.0) -> bool:
        return True

    def stop(self) -> None: ...


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
    periods: list[int | None] = []

    class FakeCgroup:
        def __init__(self) -> None:
            self.cpu_ns = 0
            self.preemptions = None  # a reading without the tracepoint counter

        def enter(self) -> None: ...

        def read(self):
            self.cpu_ns += 10**8
            return self

        def close(self) -> None: ...

    def fake_cgroup(tag: str, share: float | None, server_cpus: str, period_us: int | None = None) -> FakeCgroup:
        caps.append(share)
        periods.append(period_us)
        return FakeCgroup()

    monkeypatch.setattr(peers, "_launch", lambda *args: None)
    monkeypatch.setattr(peers, "_cgroup", fake_cgroup)
    monkeypatch.setattr(peers, "ServerProcess", StartedServer)
    monkeypatch.setattr(peers, "_run_client", lambda argv, cpus: ("", 0.06, 1.0, 0))  # 6 % of a CPU
    monkeypatch.setattr(peers, "_parse", lambda client, output: (1000.0, 1000, 0))
    # rounds 2, 1 s, ab -n 10, -c 1, server CPU 0, client CPU 1, capped at 25 %
    results = peers._compare(["alpha", "beta"], tmp_path, 2, 1, 10, 1, "0", "1", 0.25)
    assert caps == [0.25] * 8 and periods == [None] * 8  # the shortest period, unless asked
    assert results.median_client("beta", "ab") == pytest.approx((60.0, 0.06))
    caps.clear()
    periods.clear()
    peers._compare(["alpha"], tmp_path, 1, 1, 10, 1, "0", "1", 0.25, ("wrk",), cap_period_us={"wrk": 100_000})
    assert caps == [0.25] and periods == [100_000]


@pytest.mark.parametrize("share, period_ms, match", [
    (None, 100, "give both"),
    (0.25, 2, "quota of 500 µs, below the kernel's 1000 µs"),
    (0.25, 2000, "at most 1000 ms"),
])
def test_a_cap_period_the_kernel_cannot_have_is_refused_naming_the_option(share, period_ms, match, monkeypatch):
    monkeypatch.setattr(peers, "cgroups_available", lambda: (True, ""))
    with pytest.raises(SystemExit, match=match):
        peers.compare(["sped"], Path("/nonexistent"), 1, 1, 100, 10, "0", "1", server_cpu_share=share,
                      clients=("wrk",), cap_period_ms=period_ms)


def _fake_runs(monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], list[list[str]]]:
    """Replaces servers and clients with fakes for peers._compare: every run serves 1,000
    requests. Returns the lists the fakes fill: servers started (by name), client argvs."""
    started: list[str] = []
    argvs: list[list[str]] = []

    class FakeServer:
        def __init__(self, spec, *args, **kwargs) -> None:
            self.pid = 1
            started.append(spec)

        def start(self, timeout_s: float) -> int:
            return 1

        def wait_settled(self, timeout_s: float = 10.0) -> bool:
            return True

        def stop(self) -> None: ...

    def fake_client(argv, cpus):
        argvs.append(argv)
        return "", 0.1, 1.0, 0

    monkeypatch.setattr(peers, "_launch", lambda name, *args: name)
    monkeypatch.setattr(peers, "_cgroup", lambda *args, **kwargs: None)
    monkeypatch.setattr(peers, "_cpu_seconds", lambda pid: 0.0)
    monkeypatch.setattr(peers, "ServerProcess", FakeServer)
    monkeypatch.setattr(peers, "_run_client", fake_client)
    monkeypatch.setattr(peers, "_parse", lambda client, output: (1000.0, 1000, 0))
    return started, argvs


def test_rounds_run_the_servers_forward_then_backward_starting_one_further_every_two_rounds(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A B C, C B A, B C A: a drift that is linear over two rounds hits every server alike."""
    started, _ = _fake_runs(monkeypatch)
    results = peers._compare(["a", "b", "c"], tmp_path, 3, 1, 10, 1, "0", "1", None)
    assert started[::2] == ["a", "b", "c", "c", "b", "a", "b", "c", "a"]  # each runs wrk, then ab
    assert all(len(results.samples[(n, c)]) == 3 for n in "abc" for c in ("wrk", "ab"))


@pytest.mark.parametrize("n", [2, 3, 4, 6])
def test_over_two_n_rounds_every_server_runs_twice_in_every_position(n: int):
    servers = [f"s{i}" for i in range(n)]
    orders = [peers.round_order(servers, r) for r in range(2 * n)]
    assert all(sorted(order) == servers for order in orders)
    for position in range(n):
        assert sorted(order[position] for order in orders) == sorted(servers * 2)
    # each pair of rounds is one order and its reverse
    assert all(orders[r + 1] == orders[r][::-1] for r in range(0, 2 * n, 2))


def test_with_three_servers_six_rounds_run_all_six_orders():
    orders = {tuple(peers.round_order(["a", "b", "c"], r)) for r in range(6)}
    assert len(orders) == 6


def _two_servers(rounds: list[tuple[float, float, float, float]]) -> PeerResults:
    """(a's req/s, a's CPU µs/req, b's req/s, b's CPU µs/req) per round, the same for wrk and ab."""
    results = PeerResults()
    for a_rps, a_cpu, b_rps, b_cpu in rounds:
        for client in ("wrk", "ab"):
            results.add("sped", client, Sample(a_rps, a_cpu))
            results.add("ref-sped", client, Sample(b_rps, b_cpu))
    return results


def test_ratios_pair_servers_within_a_round_so_drift_between_rounds_cancels():
    # The machine is twice as fast in the even rounds; sped is 0.9x its floor in every round.
    rounds = [(900.0 * (2 if r % 2 else 1), 10.0, 1000.0 * (2 if r % 2 else 1), 9.0) for r in range(7)]
    results = _two_servers(rounds)
    assert results.paired_ratios("sped", "ref-sped", "wrk") == pytest.approx([0.9] * 7)
    iv = results.ratio_interval("sped", "ref-sped", "wrk")
    assert iv.value == pytest.approx(0.9) and iv.lo == pytest.approx(0.9) and iv.hi == pytest.approx(0.9)
    # Each server's own rates vary twofold between rounds; the paired ratio does not.
    rates = [x.requests_per_second for x in results.samples[("sped", "wrk")]]
    assert max(rates) == 2 * min(rates)
    # By CPU: the floor's µs per request over sped's.
    assert results.ratio_interval("sped", "ref-sped", "ab", by_cpu=True).value == pytest.approx(0.9)


def test_ratio_interval_widens_with_disagreeing_rounds_and_is_none_without_rounds():
    noisy = _two_servers([(r, 10.0, 100.0, 10.0) for r in (80.0, 90.0, 95.0, 100.0, 105.0, 110.0, 120.0)])
    iv = noisy.ratio_interval("sped", "ref-sped", "wrk")
    assert iv.value == pytest.approx(1.0)
    assert iv.lo < 0.96 and iv.hi > 1.04
    assert PeerResults().ratio_interval("sped", "ref-sped", "wrk") is None


def test_ratio_table_lists_each_backend_against_its_floor_and_the_reference(capsys):
    results = _two_servers([(900.0, 10.0, 1000.0, 9.0)] * 3)
    for client in ("wrk", "ab"):
        for _ in range(3):
            results.add("h2o", client, Sample(800.0, 12.0))
    peers.print_ratio_intervals(results, ["sped", "ref-sped", "h2o"], "h2o", {"sped": "ref-sped"})
    out = capsys.readouterr().out
    assert "sped ÷ ref-sped" in out and "0.90 [0.90–0.90]" in out
    assert "sped ÷ h2o" in out and "1.12 [1.12–1.12]" in out  # 900 / 800
    assert "ref-sped ÷ h2o" in out and "h2o ÷ h2o" not in out


def test_one_client_only_runs_that_client_and_the_table_shows_dashes_for_the_other(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys):
    _, argvs = _fake_runs(monkeypatch)
    results = peers._compare(["a", "b"], tmp_path, 2, 1, 10, 1, "0", "1", None, ("ab",))
    assert [argv[0] for argv in argvs] == ["ab"] * 4
    assert ("a", "wrk") not in results.samples and len(results.samples[("a", "ab")]) == 2
    peers.print_table(results, ["a", "b"], "b")
    peers.print_ratio_intervals(results, ["a", "b"], "b")
    out = capsys.readouterr().out
    assert "–, 1.00x" in out  # no wrk ratio, ab ratio 1
    assert "a ÷ b" in out


def test_both_tables_keep_their_columns_aligned_for_a_long_name_with_options(capsys):
    long = "sped --defer-accept 10"
    results = PeerResults()
    for name, rate in ((long, 900.0), ("h2o", 800.0)):
        for client in ("wrk", "ab"):
            for _ in range(3):
                results.add(name, client, Sample(rate, 10.0, 9.0, 0.2))
    peers.print_table(results, [long, "h2o"], "h2o")
    peers.print_ratio_intervals(results, [long, "h2o"], "h2o")
    lines = capsys.readouterr().out.splitlines()
    header, row, other = (next(line for line in lines if line.startswith(start))
                          for start in ("server ", long + " ", "h2o "))
    for line in (row, other):  # the last column ends where its heading does, whatever the name
        assert line.rindex("%)") + 2 == header.rindex("client") + len("client"), (header, line)
    pair_header = next(line for line in lines if line.startswith("pair "))
    pair_row = next(line for line in lines if line.startswith(long + " ÷ h2o"))
    assert len(pair_row) == len(pair_header)


def test_an_unknown_client_is_refused_naming_the_option():
    with pytest.raises(SystemExit, match="--clients takes wrk, ab or wrk,ab"):
        peers.compare(["sped"], Path("/nonexistent"), 1, 1, 100, 10, "0", "1", clients=("curl",))


# ---- the A/A control (--control) ----

def test_the_control_goes_to_the_end_of_the_round_farther_from_the_reference():
    assert peers.with_control(["sped", "uring", "fiber"], "sped") == ["sped", "uring", "fiber", "sped:again"]
    assert peers.with_control(["uring", "fiber", "sped"], "sped") == ["sped:again", "uring", "fiber", "sped"]
    with pytest.raises(SystemExit, match="--control measures --reference twice"):
        peers.with_control(["uring", "fiber"], "sped")


def test_the_control_is_started_as_the_same_server_again():
    if not backends_json_path().exists():
        pytest.skip("servers not built (make build)")
    spec = peers._launch("sped:again", Path("/tmp"), Path("/tmp"), build_dir())
    assert Path(spec.argv[0]).name == "httpd-sped"


def test_a_name_with_options_starts_its_backend_with_them_and_keeps_the_whole_name_as_label():
    assert peers.server_and_args("sped --defer-accept 10") == ("sped", ("--defer-accept", "10"))
    assert peers.server_and_args("sped --defer-accept 10:again") == ("sped", ("--defer-accept", "10"))
    assert peers.server_and_args("h2o") == ("h2o", ())
    if not backends_json_path().exists():
        pytest.skip("servers not built (make build)")
    spec = peers._launch("sped --defer-accept 10", Path("/tmp"), Path("/tmp"), build_dir())
    assert Path(spec.argv[0]).name == "httpd-sped" and spec.argv[-2:] == ("--defer-accept", "10")
    assert "--docroot" in spec.argv  # the usual options are all still there
    pools = peers._pools(["prefork --defer-accept 10", "prefork"], build_dir(), 8)
    assert pools == {"prefork --defer-accept 10": 8, "prefork": 8}
    with pytest.raises(SystemExit, match="only a backend takes more options"):
        peers._launch("ref-sped --defer-accept 10", Path("/tmp"), Path("/tmp"), build_dir())


def _control_rounds(ratios: list[float]) -> PeerResults:
    results = PeerResults()
    for ratio in ratios:
        results.add("sped", "wrk", Sample(1000.0, 10.0))
        results.add("sped:again", "wrk", Sample(1000.0 * ratio, 10.0 / ratio))
    return results


def test_a_control_whose_interval_includes_one_says_what_the_run_cannot_resolve():
    verdict = peers.control_verdict(_control_rounds([0.96, 0.99, 1.0, 1.01, 1.03, 1.05]), "sped", "wrk")
    assert "sped ÷ itself" in verdict and "includes 1" in verdict and "±" in verdict
    assert peers.control_verdict(_control_rounds([1.0]), "sped", "ab") is None  # ab did not run


def test_a_control_whose_interval_excludes_one_warns_that_the_ratios_are_biased():
    verdict = peers.control_verdict(_control_rounds([0.86, 0.88, 0.90, 0.90, 0.91, 0.93]), "sped", "wrk")
    assert "excludes 1" in verdict and "biased" in verdict


def test_the_ratio_table_ends_with_the_control_verdict(capsys):
    results = _control_rounds([0.97, 1.0, 1.02])
    peers.print_ratio_intervals(results, ["sped", "sped:again"], "sped")
    out = capsys.readouterr().out
    assert "sped:again ÷ sped" in out and "control wrk: sped ÷ itself" in out


def test_control_without_a_reference_is_refused_naming_both_options(capsys):
    from harness import cli
    with pytest.raises(SystemExit, match="--control needs --reference"):
        cli.main(["peers", "sped,uring", "--control"])


def test_peers_without_a_build_says_so_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys):
    if shutil.which("wrk") is None or shutil.which("ab") is None:
        pytest.skip("wrk/ab not installed")
    from harness import cli
    monkeypatch.setenv("HTTPBENCH_BUILD", str(tmp_path))
    assert cli.main(["peers", "sped", "--rounds", "1"]) == 2
    err = capsys.readouterr().err
    assert "backends.json does not exist" in err and "Traceback" not in err


WRK_WITH_ERRORS = """Running 3s test @ http://127.0.0.1:40000/index.html
  1 threads and 100 connections
  36412 requests in 3.00s, 23.06MB read
  Socket errors: connect 0, read 0, write 0, timeout 4
  Non-2xx or 3xx responses: 2
Requests/sec:  12137.04
Transfer/sec:      7.69MB
"""

AB_WITH_404 = """Concurrency Level:      100
Complete requests:      2000
Failed requests:        3
   (Connect: 0, Receive: 0, Length: 3, Exceptions: 0)
Non-2xx responses:      2000
Requests per second:    10531.50 [#/sec] (mean)
"""


def test_wrk_socket_errors_and_non_2xx_responses_are_failures_and_say_their_kind():
    assert peers._parse("wrk", WRK_WITH_ERRORS) == (12137.04, 36412, 6)
    assert peers.failures("wrk", WRK_WITH_ERRORS) == {"non-2xx": 2, "timeout": 4}


def test_ab_non_2xx_responses_are_failures_though_ab_does_not_count_them():
    """A docroot the server cannot read answers 404 to everything, and ab still prints a rate."""
    assert peers._parse("ab", AB_WITH_404) == (10531.50, 2000, 2003)
    assert peers.failures("ab", AB_WITH_404) == {"length": 3, "non-2xx": 2000}


def test_each_measured_run_follows_an_unmeasured_warmup_with_the_same_client(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A pool forking its workers after the ready line would otherwise be measured starting up."""
    _, argvs = _fake_runs(monkeypatch)
    server_cpu = [0.0]

    def fake_client(argv, cpus):
        argvs.append(argv)
        warmup = "-d2s" in argv or "-t2" in argv
        server_cpu[0] += 5.0 if warmup else 1.0  # the server's CPU during each run, seconds
        return "", 0.1, 1.0, 0

    monkeypatch.setattr(peers, "_run_client", fake_client)
    monkeypatch.setattr(peers, "_cpu_seconds", lambda pid: server_cpu[0])
    results = peers._compare(["a"], tmp_path, 1, 3, 10, 7, "0", "1", None, ("wrk", "ab"), 2)
    assert [argv[:4] for argv in argvs] == [
        ["wrk", "-t1", "-c7", "-d2s"], ["wrk", "-t1", "-c7", "-d3s"],
        ["ab", "-q", "-c7", "-t2"], ["ab", "-q", "-c7", "-n10"]]
    assert "-n200000" in argvs[2]  # ab's -t alone would stop at 50,000 requests
    # 1 s of server CPU over 1,000 requests: the warm-up's 5 s are not counted
    assert results.median("a", "wrk") == (1000.0, pytest.approx(1000.0))
    assert results.median("a", "ab") == (1000.0, pytest.approx(1000.0))


def test_a_warmup_the_client_could_not_run_stops_with_the_clients_output(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    _fake_runs(monkeypatch)
    monkeypatch.setattr(peers, "_run_client", lambda argv, cpus: ("unable to connect to 127.0.0.1:1", 0.0, 1.0, 0))
    monkeypatch.setattr(peers, "_parse", lambda client, output: float(output))  # no rate in it
    with pytest.raises(SystemExit, match="warm-up of a with wrk failed:\nunable to connect"):
        peers._compare(["a"], tmp_path, 1, 3, 10, 7, "0", "1", None, ("wrk",), 1)


# ---- --interleave: pairs measured in turns ----

def test_a_clients_cpu_time_is_its_own_not_that_of_other_children_of_the_harness():
    """A child the harness reaped before the client (a finished run) is not the client's CPU."""
    subprocess.run(["/bin/sh", "-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done"], check=True)
    out, cpu, wall, _ = peers._run_client(["/bin/sh", "-c", "sleep 0.3; echo slept; echo err >&2"], "0")
    assert "slept" in out and "err" in out
    assert cpu < 0.05 and wall >= 0.3
    out, cpu, _, _ = peers._run_client(["/bin/sh", "-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done"], "0")
    assert cpu > 0.05


def test_pairs_are_each_backend_with_its_floor_the_control_with_its_server_then_the_rest_with_the_reference():
    servers = ["sped", "ref-sped", "thread", "ref-thread", "h2o", "h2o:again"]
    pairs = peers.pairs_of(servers, "h2o", {"sped": "ref-sped", "thread": "ref-thread"})
    assert pairs == [("sped", "ref-sped"), ("thread", "ref-thread"), ("h2o:again", "h2o"), ("sped", "h2o"),
                     ("ref-sped", "h2o"), ("thread", "h2o"), ("ref-thread", "h2o")]
    assert peers.pairs_of(["sped", "ref-sped"], None, {"sped": "ref-sped"}) == [("sped", "ref-sped")]


def test_a_server_in_no_pair_is_refused_naming_it():
    with pytest.raises(SystemExit, match="and h2o, nginx would be in none"):
        peers.pairs_of(["sped", "ref-sped", "h2o", "nginx"], None, {"sped": "ref-sped"})


@pytest.mark.parametrize("slices, seconds, ab_requests, match", [
    (-1, 4, 100, "--interleave must be 0"), (3, 4, 100, "make --seconds a multiple of it"),
    (8, 4, 100, "make --seconds a multiple of it"), (4, 4, 3, "too few requests")])
def test_slices_that_do_not_divide_the_run_are_refused_naming_the_options(slices, seconds, ab_requests, match):
    if shutil.which("wrk") is None or shutil.which("ab") is None:
        pytest.skip("wrk/ab not installed")
    with pytest.raises(SystemExit, match=match):
        peers.compare(["a", "b"], Path("/nonexistent"), 1, seconds, ab_requests, 10, "0", "1",
                      interleave=slices, reference="b")


def test_a_pair_is_started_together_and_loaded_one_at_a_time_in_turns_a_b_b_a(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    started, argvs = _fake_runs(monkeypatch)
    pairs = [("a", "ref-a"), ("b", "h")]
    urls = {}

    class FakeServer:
        def __init__(self, spec, *args, **kwargs) -> None:
            self.pid, self.name = 1, spec
            started.append(spec)

        def start(self, timeout_s: float) -> int:
            urls[len(urls) + 1] = self.name
            return len(urls)  # the port names the server

        def wait_settled(self, timeout_s: float = 10.0) -> bool:
            return True

        def stop(self) -> None: ...

    monkeypatch.setattr(peers, "ServerProcess", FakeServer)
    results = peers._compare(["a", "ref-a", "b", "h"], tmp_path, 2, 4, 10, 1, "0", "1", None, ("wrk",), 1, pairs, 4)
    # round 1: the pairs in order, each as given; round 2: backward, each pair the other way round
    assert started == ["a", "ref-a", "b", "h", "h", "b", "ref-a", "a"]
    loaded = [urls[int(argv[-1].split(":")[2].split("/")[0])] for argv in argvs]
    # each server warmed up in turn (-d1s), then 4 slices of 1 s each in the turns A B B A A B B A
    assert loaded[:10] == ["a", "ref-a", "a", "ref-a", "ref-a", "a", "a", "ref-a", "ref-a", "a"]
    assert [argv[3] for argv in argvs[:10]] == ["-d1s"] * 10
    assert [len(rows) for rows in results.together.values()] == [2, 2]
    # a sample sums its slices: 4 x 1,000 requests at 1,000/s -> 1,000 req/s
    assert results.samples[("a", "wrk")][0].requests_per_second == pytest.approx(1000.0)


def test_interleaved_ratios_come_only_from_runs_that_measured_the_two_together():
    results = PeerResults()
    # the host slows down fourfold between the rounds; a is 0.9x b in each run of the pair
    for speed in (1.0, 0.25, 0.5):
        results.add_pair("a", "b", "wrk", Sample(900.0 * speed, 10.0 / speed), Sample(1000.0 * speed, 9.0 / speed))
    results.add_pair("c", "b", "wrk", Sample(500.0, 20.0), Sample(1000.0, 10.0))
    assert results.paired_ratios("a", "b", "wrk") == pytest.approx([0.9] * 3)
    assert results.paired_ratios("b", "a", "wrk") == pytest.approx([1 / 0.9] * 3)
    assert results.paired_ratios("a", "b", "wrk", by_cpu=True) == pytest.approx([0.9] * 3)
    assert results.paired_ratios("a", "c", "wrk") == []  # never measured together
    assert len(results.samples[("b", "wrk")]) == 4  # b's medians pool every run it was in


def test_a_control_named_in_the_list_pairs_with_its_server_and_gets_a_verdict(capsys):
    servers = ["prefork", "ref-prefork", "ref-prefork:again"]
    assert peers.pairs_of(servers, None, {"prefork": "ref-prefork"}) == [
        ("prefork", "ref-prefork"), ("ref-prefork:again", "ref-prefork")]
    results = PeerResults()
    for ratio in (0.97, 1.0, 1.02):
        results.add_pair("ref-prefork:again", "ref-prefork", "wrk", Sample(1000.0 * ratio, 10.0), Sample(1000.0, 10.0))
    peers.print_ratio_intervals(results, servers, None, {"prefork": "ref-prefork"})
    out = capsys.readouterr().out
    assert "ref-prefork:again ÷ ref-prefork" in out and "control wrk: ref-prefork ÷ itself 1.00" in out


def test_a_pools_warmup_opens_a_connection_per_worker_so_the_measured_run_meets_warm_workers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Blocking accept() wakes the longest-waiting worker: with 100 warm-up connections and 256
    workers, the measured run's connections would all go to workers that never served."""
    _, argvs = _fake_runs(monkeypatch)
    (tmp_path / "servers").mkdir()
    (tmp_path / "servers" / "backends.json").write_text(json.dumps({
        "backends": [{"name": "prefork", "binary": "/x/httpd-prefork", "default_workers": 256,
                      "workers_bound_connections": True},
                     {"name": "sped", "binary": "/x/httpd-sped", "default_workers": 1,
                      "workers_bound_connections": False}],
        "references": [{"name": "ref-prefork", "binary": "/x/ref-prefork", "reference_for": "prefork",
                        "default_workers": 256, "workers_bound_connections": True}]}))
    peers._compare(["prefork", "ref-prefork:again", "sped"], tmp_path, 1, 3, 10, 100, "0", "1", None, ("wrk",), 1)
    warmups = [argv[2] for argv in argvs if "-d1s" in argv]
    measured = [argv[2] for argv in argvs if "-d3s" in argv]
    assert warmups == ["-c256", "-c256", "-c100"] and measured == ["-c100"] * 3


def test_abs_warmup_keeps_its_concurrency_for_a_pool_since_each_new_connection_rotates_workers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    _, argvs = _fake_runs(monkeypatch)
    (tmp_path / "servers").mkdir()
    (tmp_path / "servers" / "backends.json").write_text(json.dumps({
        "backends": [{"name": "prefork", "binary": "/x/httpd-prefork", "default_workers": 256,
                      "workers_bound_connections": True}]}))
    peers._compare(["prefork"], tmp_path, 1, 3, 10, 100, "0", "1", None, ("ab",), 1)
    assert [argv[2] for argv in argvs] == ["-c100", "-c100"]


def test_each_server_has_finished_starting_before_its_warm_up_and_one_that_stays_busy_is_named(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """A pool may go on forking after its ready line: the warm-up waits until it is idle."""
    events: list[str] = []

    class FakeServer:
        def __init__(self, spec, *args, **kwargs) -> None:
            self.pid, self.name = 1, spec

        def start(self, timeout_s: float) -> int:
            events.append(f"start {self.name}")
            return 1

        def wait_settled(self, timeout_s: float = 10.0) -> bool:
            events.append(f"settled {self.name}")
            return self.name != "busy"

        def stop(self) -> None: ...

    def fake_client(argv, cpus):
        events.append("client")
        return "", 0.1, 1.0, 0

    monkeypatch.setattr(peers, "_launch", lambda name, *args: name)
    monkeypatch.setattr(peers, "_cgroup", lambda *args, **kwargs: None)
    monkeypatch.setattr(peers, "ServerProcess", FakeServer)
    monkeypatch.setattr(peers, "_run_client", fake_client)
    monkeypatch.setattr(peers, "_parse", lambda client, output: (1000.0, 1000, 0))
    peers._compare(["calm", "busy"], tmp_path, 1, 2, 10, 1, "0", "1", None, ("wrk",), 1, [("calm", "busy")], 2)
    assert events[:4] == ["start calm", "settled calm", "start busy", "settled busy"]
    assert events[4:] == ["client"] * 6  # two warm-ups, then two turns each
    assert "warning: busy was still busy" in capsys.readouterr().err


def test_every_measured_turn_is_logged_with_its_server_round_and_counts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """--turns: one record per client run measured, in the order A B B A, none for warm-ups."""

    class FakeServer:
        def __init__(self, spec, *args, **kwargs) -> None:
            self.pid, self.name = 1, spec

        def start(self, timeout_s: float) -> int:
            return 1

        def wait_settled(self, timeout_s: float = 10.0) -> bool:
            return True

        def stop(self) -> None: ...

    rates = iter([500.0, 1000.0, 2000.0, 4000.0, 8000.0, 16000.0])
    monkeypatch.setattr(peers, "_launch", lambda name, *args: name)
    monkeypatch.setattr(peers, "_cgroup", lambda *args, **kwargs: None)
    monkeypatch.setattr(peers, "ServerProcess", FakeServer)
    monkeypatch.setattr(peers, "_run_client", lambda argv, cpus: ("", 0.1, 1.0, 0))
    monkeypatch.setattr(peers, "_cpu_seconds", lambda pid: 0.0)
    monkeypatch.setattr(peers, "_parse", lambda client, output: (next(rates), 1000, 0))
    turns: list[dict] = []
    peers._compare(["a", "b"], tmp_path, 1, 2, 10, 1, "0", "1", None, ("wrk",), 1, [("a", "b")], 2, turns.append)
    # Two warm-ups (500, 1000 req/s) are not turns; then a, b, b, a.
    assert [(t["server"], t["turn"], t["requests_per_s"]) for t in turns] == [
        ("a", 1, 2000.0), ("b", 1, 4000.0), ("b", 2, 8000.0), ("a", 2, 16000.0)]
    assert all(t["round"] == 1 and t["client"] == "wrk" and t["requests"] == 1000 for t in turns)
    assert all(t["preemptions"] is None for t in turns)  # uncapped, no cgroup: not counted


@pytest.mark.parametrize("kwargs, match", [
    ({}, "give --server-cpu-share"),
    ({"server_cpu_share": 0.25, "interleave": 2}, "give one of them"),
    ({"server_cpu_share": 0.6}, "at most 0.5 each"),
    ({"server_cpu_share": 0.25, "cap_period_ms": 1.5}, "below the kernel's 1000 µs"),
])
def test_simultaneous_is_refused_without_a_cap_beside_interleave_or_beyond_half_a_cpu_each(kwargs, match, monkeypatch):
    monkeypatch.setattr(peers, "cgroups_available", lambda: (True, ""))
    monkeypatch.setattr(peers.shutil, "which", lambda tool: f"/usr/bin/{tool}")
    with pytest.raises(SystemExit, match=match):
        peers.compare(["a", "b"], Path("/nonexistent"), 1, 2, 100, 10, "0", "1", clients=("wrk",),
                      reference="b", simultaneous=True, **kwargs)


def test_simultaneous_pairs_share_one_cap_of_twice_the_share_and_are_loaded_at_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys):
    shared_caps: list[tuple[str, float, int | None]] = []
    cgroups: list[tuple[str, str | None]] = []
    loads: list[list[list[str]]] = []

    class FakeShared:
        def __init__(self, name, share, cap_period_us=None) -> None:
            self.name = name
            shared_caps.append((name, share, cap_period_us))

        def close(self) -> None: ...

    class FakeCgroup:
        def __init__(self, name, cpus, group=None) -> None:
            self.cpu_ns, self.preemptions = 0, 0
            self.per_read = 10**8 if "a" in name.split("-", 1)[1] else 2 * 10**8  # b costs twice a
            cgroups.append((name, group))

        def enter(self) -> None: ...

        def read(self):
            from harness.cgroup import Reading
            self.cpu_ns += self.per_read
            return Reading(t_ns=0, cpu_ns=self.cpu_ns, cpu_user_ns=None, cpu_sys_ns=None, nr_periods=None,
                           nr_throttled=None, throttled_ns=None, memory_bytes=None, ctx_switches=None,
                           preemptions=self.preemptions)

        def close(self) -> None: ...

    def fake_clients(argvs, cpus, on_exit=None):
        loads.append(argvs)
        return [("", 0.1, 1.0, 0, *((on_exit(i, None),) if on_exit else ())) for i in range(len(argvs))]

    monkeypatch.setattr(peers, "_launch", lambda name, *args: name)
    monkeypatch.setattr(peers, "settle", lambda srv, name: None)
    monkeypatch.setattr(peers, "SharedCap", FakeShared)
    monkeypatch.setattr(peers, "ServerCgroup", FakeCgroup)
    monkeypatch.setattr(peers, "ServerProcess", StartedServer)
    monkeypatch.setattr(peers, "_run_clients", fake_clients)
    monkeypatch.setattr(peers, "_parse", lambda client, output: (1000.0, 1000, 0))
    results = peers._compare(["a", "b"], tmp_path, 2, 4, 10, 1, "0", "1", 0.25, ("wrk",), warmup_s=1,
                             pairs=[("a", "b")], cap_period_us={"wrk": 100_000}, simultaneous=True)
    # one cap per pair and round, twice each server's share, with the period asked for
    assert [(share, period) for _, share, period in shared_caps] == [(0.5, 100_000)] * 2
    # both servers inside it, each in its own child
    assert [group for _, group in cgroups] == [shared_caps[0][0]] * 2 + [shared_caps[1][0]] * 2
    # per round: both warmed up at once, then both loaded at once for the whole --seconds
    assert len(loads) == 4 and all(len(argvs) == 2 for argvs in loads)
    assert all("-d4s" in argv for argv in loads[1]) and all("-d1s" in argv for argv in loads[0])
    # b's child counted twice a's CPU over the same run: a is twice as cheap per request
    assert results.paired_ratios("a", "b", "wrk", by_cpu=True) == pytest.approx([2.0, 2.0])
    assert "at once with b" in capsys.readouterr().out


def test_a_server_started_for_a_simultaneous_pair_runs_under_sched_batch():
    out = subprocess.run(["/bin/sh", "-c", "chrt -p $$"], preexec_fn=enter_cgroup(None, batch=True),
                         capture_output=True, text=True, timeout=10, check=True).stdout
    assert "SCHED_BATCH" in out
    plain = subprocess.run(["/bin/sh", "-c", "chrt -p $$"], preexec_fn=enter_cgroup(None, batch=False),
                           capture_output=True, text=True, timeout=10, check=True).stdout
    assert "SCHED_OTHER" in plain


def test_clients_run_at_once_each_with_its_own_output_cpu_and_end(tmp_path: Path):
    other = subprocess.Popen(["sleep", "0.5"])  # a child that is not a client (a server) is not reaped
    marks: list[int] = []
    rows = peers._run_clients([["sh", "-c", "echo slow; sleep 0.4"], ["sh", "-c", "echo fast"]], "1",
                              on_exit=lambda i, usage: marks.append(i) or (i, usage.ru_nvcsw))
    assert [row[0].strip() for row in rows] == ["slow", "fast"]
    assert marks == [1, 0]  # each reaped (and its server read) when it ended
    assert rows[1][2] < 0.3 <= rows[0][2] and [row[4][0] for row in rows] == [0, 1]
    assert rows[0][4][1] >= 1  # the slow client slept in sleep(1): a voluntary switch, in its rusage
    assert rows[0][3] == rows[0][4][1]  # and each row gives those sleeps itself
    assert other.wait(timeout=5) == 0
    started = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        peers._run_clients([["sleep", "30"]], "1", timeout_s=0.3)
    assert time.monotonic() - started < 5  # killed by its PID, not waited for


def skip_unless_capped_servers_can_run() -> None:
    """Skips a test that runs built servers capped, under wrk, without a build, wrk or cgroups."""
    if not backends_json_path().exists():
        pytest.skip("servers not built (make build)")
    if shutil.which("wrk") is None:
        pytest.skip("wrk not installed")
    ok, why = cgroups_available()
    if not ok:
        pytest.skip(why)


def test_a_capped_server_of_many_processes_reports_its_preemptions_per_request(capsys):
    skip_unless_capped_servers_can_run()
    results = peers.compare(["prefork"], build_dir(), rounds=1, seconds=1, ab_requests=0, concurrency=20,
                            server_cpus="0", client_cpus="1", server_cpu_share=0.25, clients=("wrk",),
                            warmup_s=0)
    [sample] = results.samples[("prefork", "wrk")]
    if sample.preemptions_per_request is None:
        pytest.skip("preemptions cannot be counted here (no tracefs)")
    # 20 busy workers under a 4-ms period: preempted at least now and then, and said so per run.
    assert 0 < sample.preemptions_per_request < 20
    assert "preempted)" in capsys.readouterr().out


def test_a_server_loaded_at_once_with_itself_gets_half_the_shared_cap_and_the_same_cpu_per_request(capsys):
    skip_unless_capped_servers_can_run()
    results = peers.compare(["ref-prefork", "ref-prefork:again"], build_dir(), rounds=1, seconds=2, ab_requests=0,
                            concurrency=20, server_cpus="0", client_cpus="1", server_cpu_share=0.25,
                            clients=("wrk",), warmup_s=1, reference="ref-prefork", pool=20, cap_period_ms=100,
                            simultaneous=True)
    [a] = results.samples[("ref-prefork", "wrk")]
    [b] = results.samples[("ref-prefork:again", "wrk")]
    for sample in (a, b):
        # each child counted its own server: about a quarter of a CPU each, not the pair's half
        used = sample.server_cpu_us_per_request * sample.requests_per_second / 1e6
        assert 0.15 < used < 0.35, used
    assert 0.8 < results.paired_ratios("ref-prefork:again", "ref-prefork", "wrk", by_cpu=True)[0] < 1.25
    assert "at once with ref-prefork" in capsys.readouterr().out
    assert not remove_cgroups(f"peers-{os.getpid()}-*"), "a shared cap was left behind"


def test_turns_file_holds_one_json_line_per_turn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    def fake_compare(*args, **kwargs):
        turn_log = args[-1]
        turn_log({"round": 1, "server": "a", "turn": 1})
        turn_log({"round": 1, "server": "b", "turn": 1})
        return peers.PeerResults()

    monkeypatch.setattr(peers, "_compare", fake_compare)
    monkeypatch.setattr(peers.shutil, "which", lambda tool: f"/usr/bin/{tool}")
    out = tmp_path / "turns.jsonl"
    peers.compare(["a"], tmp_path, 1, 1, 10, 1, "0", "1", None, ("wrk",), 0, 0, None, turns=out)
    assert [json.loads(line)["server"] for line in out.read_text().splitlines()] == ["a", "b"]


def test_sigterm_to_peers_stops_its_servers_and_clients_and_removes_their_cgroups():
    import signal
    import time

    from harness.cgroup import PARENT, detect_layout

    skip_unless_capped_servers_can_run()
    proc = subprocess.Popen(
        ["/usr/bin/python3", "-m", "harness", "peers", "sped", "--clients", "wrk", "--seconds", "30",
         "--rounds", "1", "--server-cpu-share", "0.5"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    name_glob = f"peers-{proc.pid}-*"  # peers names each server's cgroup after its own pid

    def inside() -> list[int]:
        return [int(pid) for root in detect_layout().roots() for cg in (root / PARENT).glob(name_glob)
                if (cg / "cgroup.procs").exists() for pid in (cg / "cgroup.procs").read_text().split()]

    try:
        deadline = time.monotonic() + 30
        children: list[int] = []
        while time.monotonic() < deadline:  # the server in its cgroup, and the client running
            children = [int(c) for c in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()]
            if inside() and len(children) >= 2:
                break
            time.sleep(0.1)
        started = set(inside()) | set(children)
        assert len(started) >= 2, f"the server and a client did not start: {started}"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    left = remove_cgroups(name_glob)  # a failing run must not leave them behind either
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    time.sleep(0.2)  # an orphan of the harness would still be alive now
    assert not [pid for pid in started if alive(pid)]
    assert not left


def test_a_pair_where_one_server_took_its_partners_unused_cap_is_flagged_and_an_even_one_is_not():
    results = PeerResults()
    for a_use, b_use in [(1.22, 0.81), (0.99, 1.01), (1.15, 0.85), (1.01, 0.98)]:
        results.add("fiber", "ab", Sample(5000.0, 50.0, cap_use=a_use))
        results.add("ref-fiber", "ab", Sample(5000.0, 36.0, cap_use=b_use))
        results.add("sped", "ab", Sample(6000.0, 38.0, cap_use=1.0))
        results.add("ref-sped", "ab", Sample(6000.0, 37.0, cap_use=0.99))
    warnings = peers.cap_warnings(results, [("fiber", "ref-fiber"), ("sped", "ref-sped")])
    assert len(warnings) == 1
    assert warnings[0].startswith("cap ab: fiber ÷ ref-fiber: in 2 of 4 rounds one used more than its part")
    assert "up to 122%" in warnings[0] and "down to 81%" in warnings[0] and "by rate" in warnings[0]


def test_a_pair_that_left_its_caps_unused_is_said_to_be_paced_by_its_clients():
    results = PeerResults()
    for _ in range(3):
        results.add("a", "wrk", Sample(1000.0, 10.0, cap_use=0.7))
        results.add("b", "wrk", Sample(1000.0, 10.0, cap_use=0.75))
    (warning,) = peers.cap_warnings(results, [("a", "b")])
    assert "a median 72% of their caps" in warning and "smaller --server-cpu-share" in warning
    uncapped = PeerResults()
    uncapped.add("a", "wrk", Sample(1000.0, 10.0))
    uncapped.add("b", "wrk", Sample(1000.0, 10.0))
    assert peers.cap_warnings(uncapped, [("a", "b")]) == []


def test_a_pair_whose_clients_slept_at_different_rates_is_said_to_carry_the_clients_wake_ups():
    results = PeerResults()
    for a_sleeps, b_sleeps in [(0.39, 0.35), (0.41, 0.36), (0.37, 0.33)]:
        results.add("thread", "wrk", Sample(13000.0, 20.5, client_sleeps_per_request=a_sleeps))
        results.add("ref-thread", "wrk", Sample(14000.0, 18.8, client_sleeps_per_request=b_sleeps))
        # an event loop's client hardly sleeps: nothing to say however the two differ
        results.add("sped", "wrk", Sample(30000.0, 9.9, client_sleeps_per_request=0.002))
        results.add("ref-sped", "wrk", Sample(31000.0, 9.6, client_sleeps_per_request=0.004))
        # sleeping alike: the wake-ups cost both servers the same per request
        results.add("st", "wrk", Sample(20000.0, 10.0, client_sleeps_per_request=0.30))
        results.add("ref-st", "wrk", Sample(20000.0, 9.8, client_sleeps_per_request=0.30))
        results.add("pth", "wrk", Sample(9000.0, 20.0))  # not counted
        results.add("ref-pth", "wrk", Sample(9000.0, 19.0))
    (note,) = peers.sleep_notes(results, [("thread", "ref-thread"), ("sped", "ref-sped"), ("st", "ref-st"),
                                          ("pth", "ref-pth")])
    assert note.startswith("sleeps wrk: thread ÷ ref-thread: their clients slept 0.39 and 0.35 times per request")
    assert "paid by the server that wrote" in note and "Which client" in note


def test_a_clients_sleeps_are_summed_over_its_runs_and_given_per_request(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(peers, "_parse", lambda client, output: (1000.0, 1000, 0))
    t, turns = peers._Tally(), []
    for sleeps in (300, 500):  # two turns of 1,000 requests each
        peers._tally_run(t, "wrk", "", 1.0, None, 0.5, 1.0, turns.append, {"turn": len(turns) + 1}, sleeps)
    assert t.sample().client_sleeps_per_request == pytest.approx(0.4)
    assert [turn["client_sleeps"] for turn in turns] == [300, 500]
    uncounted = peers._Tally()
    peers._tally_run(uncounted, "wrk", "", 1.0, None, 0.5, 1.0, None, {})
    assert uncounted.sample().client_sleeps_per_request is None


def test_cap_period_ms_takes_one_period_for_every_client_or_one_per_client_named():
    assert peers.parse_cap_periods("100") == 100.0
    assert peers.parse_cap_periods("wrk=100") == {"wrk": 100.0}
    assert peers.parse_cap_periods(" wrk=100, ab=20 ") == {"wrk": 100.0, "ab": 20.0}
    for bad, match in [("fast", "neither milliseconds nor CLIENT=MS"), ("curl=5", "'curl=5': the client is wrk or ab"),
                       ("wrk=soon", "'soon' is not milliseconds")]:
        with pytest.raises(ValueError, match=match):
            peers.parse_cap_periods(bad)


def test_a_period_given_for_one_client_caps_only_that_clients_runs_and_the_other_keeps_the_shortest(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    periods: list[int | None] = []

    class FakeCgroup:
        def read(self):
            from harness.cgroup import Reading
            return Reading(t_ns=0, cpu_ns=0, cpu_user_ns=None, cpu_sys_ns=None, nr_periods=None, nr_throttled=None,
                           throttled_ns=None, memory_bytes=None, ctx_switches=None, preemptions=None)

        def close(self) -> None: ...

    def fake_cgroup(tag: str, share: float | None, server_cpus: str, period_us: int | None = None) -> FakeCgroup:
        periods.append(period_us)
        return FakeCgroup()

    monkeypatch.setattr(peers, "_launch", lambda *args: None)
    monkeypatch.setattr(peers, "_cgroup", fake_cgroup)
    monkeypatch.setattr(peers, "ServerProcess", StartedServer)
    monkeypatch.setattr(peers, "_run_client", lambda argv, cpus: ("", 0.06, 1.0, 0))
    monkeypatch.setattr(peers, "_parse", lambda client, output: (1000.0, 1000, 0))
    results = peers._compare(["alpha"], tmp_path, 1, 1, 10, 1, "0", "1", 0.25, ("wrk", "ab"),
                             cap_period_us={"wrk": 100_000})
    assert periods == [100_000, None]
    # each sample knows its cap: 100 ms and a quarter of it for wrk; the shortest (4 ms at 25 %) for ab
    [wrk] = results.samples[("alpha", "wrk")]
    [ab] = results.samples[("alpha", "ab")]
    assert (wrk.cap_period_us, wrk.cap_burst_us) == (100_000, pytest.approx(25_000))
    assert (ab.cap_period_us, ab.cap_burst_us) == (4_000, pytest.approx(1_000))


def test_a_period_for_a_client_not_run_or_without_a_cap_is_refused_naming_it(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(peers, "cgroups_available", lambda: (True, ""))
    monkeypatch.setattr(peers.shutil, "which", lambda tool: f"/usr/bin/{tool}")
    with pytest.raises(SystemExit, match="ab=100: ab is not among --clients"):
        peers.compare(["sped"], Path("/nonexistent"), 1, 1, 100, 10, "0", "1", server_cpu_share=0.25,
                      clients=("wrk",), cap_period_ms={"ab": 100})
    with pytest.raises(SystemExit, match="give both"):
        peers.compare(["sped"], Path("/nonexistent"), 1, 1, 100, 10, "0", "1", clients=("wrk",),
                      cap_period_ms={"wrk": 100})


def test_a_cap_burst_is_each_servers_part_of_one_period_of_its_cap():
    assert peers.cap_burst(None, 1, None) is None
    assert peers.cap_burst(0.25, 1, None) == (4_000, pytest.approx(1_000))  # the shortest: a 1-ms quota
    assert peers.cap_burst(0.25, 2, 100_000) == (100_000, pytest.approx(25_000))  # a pair's SharedCap
    assert peers.cap_burst(0.15, 2, None) == (3_333, pytest.approx(500, abs=1))


def _ab_pair(period_us: int, share: float = 0.15) -> PeerResults:
    """sped and h2o under ab as measured here (2026-12-02): 30 and 35 µs of server CPU per new
    connection, ab's 65 µs each, in a shared cap of twice ``share``."""
    results = PeerResults()
    for _ in range(3):
        burst = share * period_us
        results.add_pair("sped", "h2o", "ab",
                         Sample(5000.0, 30.0, 65.0, cap_period_us=period_us, cap_burst_us=burst),
                         Sample(4800.0, 35.0, 65.0, cap_period_us=period_us, cap_burst_us=burst))
    return results


def test_a_server_that_could_serve_more_in_one_burst_than_its_client_has_ready_is_said_to_run_dry():
    # 50 ms at 0.15: 7.5 ms of CPU a burst, 250 new connections for sped against ab's 100 and
    # about 115 more; 214 for h2o
    (note,) = peers.burst_notes(_ab_pair(50_000), [("sped", "h2o")], concurrency=100)
    assert note.startswith("burst ab: sped ÷ h2o (50-ms period): in one burst of the cap a server could serve more")
    assert ": sped about 250 against 215; so it runs dry" in note and "h2o about" not in note
    # the longest period that keeps sped busy: 100 / (1/30 - 1/65) µs of CPU, over 0.15
    assert "a period of at most 37 ms keeps it busy (--cap-period-ms ab=37," in note


def test_no_burst_note_for_a_period_within_the_clients_backlog_a_faster_client_or_an_uncapped_run():
    assert peers.burst_notes(_ab_pair(20_000), [("sped", "h2o")], concurrency=100) == []
    keep_alive = PeerResults()  # wrk answers faster than a thread server: it never runs dry
    keep_alive.add_pair("thread", "ref-thread", "wrk",
                        Sample(12000.0, 20.5, 8.0, cap_period_us=100_000, cap_burst_us=25_000),
                        Sample(13000.0, 18.8, 8.0, cap_period_us=100_000, cap_burst_us=25_000))
    assert peers.burst_notes(keep_alive, [("thread", "ref-thread")], concurrency=100) == []
    uncapped = PeerResults()
    uncapped.add_pair("sped", "h2o", "ab", Sample(5000.0, 30.0, 65.0), Sample(4800.0, 35.0, 65.0))
    assert peers.burst_notes(uncapped, [("sped", "h2o")], concurrency=100) == []
