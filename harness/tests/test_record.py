"""The run record's JSON: what runs.jsonl holds for a point (results/schema.md)."""

from __future__ import annotations

from harness.record import SCHEMA, CgroupInfo, PointRecord, ServerInfo


def _record(**kw) -> PointRecord:
    return PointRecord(key="sped|100|0", backend="sped", base_backend="sped", kind="toy", model="m",
                       category="event-driven", ranked=True, offered_load=100, repetition=0,
                       started_at="2026-11-30T00:00:00+00:00", **kw)


def test_a_plain_point_has_no_optional_fields_and_the_schema_version():
    out = _record().to_json()
    assert out["schema"] == SCHEMA and out["status"] == "ok" and out["error"] is None
    for absent in ("idle_connections", "page", "keep_alive", "loadgen", "server", "extra"):
        assert absent not in out
    assert out["cgroup"] is None  # always present: null without cgroups


def test_conditions_and_nested_parts_are_written_when_set():
    r = _record(idle_connections=600, page="dynamic", keep_alive=False)
    r.server = ServerInfo(argv=["x"], pid=1, port=2, cpus="0", client_cpus="1", startup_s=0.1, exit_code=0,
                          killed_after_grace=False, stats={"requests": 5}, rusage={})
    r.cgroup = CgroupInfo(share=0.3, quota_us=1000, period_us=3333, perf_error=None)
    out = r.to_json()
    assert (out["idle_connections"], out["page"], out["keep_alive"]) == (600, "dynamic", False)
    assert out["server"]["stats"] == {"requests": 5} and out["cgroup"]["quota_us"] == 1000


def test_the_first_failure_is_the_one_reported():
    r = _record()
    r.fail("the server did not start")
    r.fail("no request completed")
    assert (r.status, r.error) == ("error", "the server did not start") and not r.ok
