"""scripts/profile_pair.py's arithmetic, on a small perf report written here: each sample goes to
the server whose process or thread it caught, becomes µs per request of that server, and the
table ranks symbols by their difference (the perf run itself is a measurement for notes, not a
test)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "profile_pair.py"
spec = importlib.util.spec_from_file_location("profile_pair", SCRIPT)
profile_pair = importlib.util.module_from_spec(spec)
sys.modules["profile_pair"] = profile_pair
spec.loader.exec_module(profile_pair)

# 10,000 samples at 10,000/s: 1 % of them is 10 ms
REPORT = """\
# Overhead  Pid:Command          Shared Object      Symbol
# ........  .................  .................  ......
#
    10.00%  101:httpd-prefork  [kernel.kallsyms]  [k] finish_task_switch.isra.0
     5.00%  102:httpd-prefork  httpd-prefork      [.] httpbench::core::content_store::find
    12.00%  201:ref-prefork    [kernel.kallsyms]  [k] finish_task_switch.isra.0
     2.00%  201:ref-prefork    libc.so.6          [.] __GI___memmem
     4.00%  300:wrk            [kernel.kallsyms]  [k] tcp_sendmsg
     1.00%  999:perf-exec      [kernel.kallsyms]  [k] finish_task_switch.isra.0
"""


def test_samples_go_to_the_server_whose_task_they_caught_as_microseconds_per_request():
    profiles = profile_pair.per_request(REPORT, {"prefork": {101, 102}, "ref-prefork": {201}},
                                        {"prefork": 1000, "ref-prefork": 2000}, samples=10_000, frequency=10_000)
    kernel = ("[kernel.kallsyms]", "finish_task_switch.isra.0")
    assert profiles["prefork"][kernel] == pytest.approx(100.0)  # 100 ms over 1,000 requests
    assert profiles["ref-prefork"][kernel] == pytest.approx(60.0)  # 120 ms over 2,000
    assert profiles["prefork"][("httpd-prefork", "httpbench::core::content_store::find")] == pytest.approx(50.0)
    # the client's and perf's own samples belong to neither server
    assert sum(profiles["prefork"].values()) == pytest.approx(150.0)
    assert sum(profiles["ref-prefork"].values()) == pytest.approx(70.0)


def test_the_table_totals_each_class_and_ranks_symbols_by_their_difference():
    profiles = profile_pair.per_request(REPORT, {"prefork": {101, 102}, "ref-prefork": {201}},
                                        {"prefork": 1000, "ref-prefork": 2000}, samples=10_000, frequency=10_000)
    text = profile_pair.table(profiles, "prefork", "ref-prefork", {"httpd-prefork", "ref-prefork"}, top=2)
    lines = text.splitlines()
    assert lines[1].split() == ["program", "50.000", "0.000", "+50.000"]
    assert lines[2].split() == ["library", "0.000", "10.000", "-10.000"]
    assert lines[3].split() == ["kernel", "100.000", "60.000", "+40.000"]
    assert lines[5].split() == ["all", "150.000", "70.000", "+80.000"]
    ranked = [line.split()[-1] for line in lines[7:]]
    assert ranked == ["httpbench::core::content_store::find", "finish_task_switch.isra.0"]
