"""Choosing the server's CPU share so that every comparison is server-bound.

The rule (issue: comparisons that measure the servers): the largest share of one CPU at which
the client stays at most ``client_max`` busy against the fastest server at the heaviest load.
With one client core, a faster server makes the client busier, so the fastest server decides.

1. Probe every server once at a trial share (``TRIAL_SHARE``, the paper's ratio of clock speeds
   is 600 MHz / 2.2 GHz ≈ 0.27) and the heaviest load: the server that keeps the client busiest
   is the fastest.
2. The client's work is proportional to the server's throughput, which is proportional to the
   server's share while the server is the bottleneck, so the share that gives ``client_max``
   is estimated as trial × client_max / measured; it is then verified on the fastest server
   and lowered by 10 % steps (at most ``MAX_STEPS``) until the client stays within bounds *and*
   the server uses at least ``server_min`` of its allowance: a share so large that the server
   waits for the client (a keep-alive load of a few connections drains a large quota before the
   client answers) would not be server-bound either.

Every probe is kept in meta.json (``calibration.probes``), and the throughput of each server at
the final share (``capacity_rps``) sizes the warm-up of each point.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from typing import TYPE_CHECKING, Any

from harness.experiment import Calibration

if TYPE_CHECKING:  # pragma: no cover
    from harness.runner import Runner, Target

TRIAL_SHARE = 0.25
MIN_SHARE = 0.05
MAX_SHARE = 1.0
MAX_STEPS = 4


def probe(runner: "Runner", target: "Target", level: int, share: float, seconds: float) -> dict[str, Any]:
    """One short measurement of ``target`` at ``level`` with the server capped at ``share``."""
    from harness.record import PointRecord

    load = dataclasses.replace(runner.exp.load, window_s=seconds)
    saved = runner.exp
    runner.exp = dataclasses.replace(saved, load=load)
    record = PointRecord(key=f"calibrate|{target.label}|{share}", backend=target.label, base_backend=target.backend,
                         kind=target.kind, model=target.model, category=target.category, ranked=target.ranked,
                         offered_load=level, repetition=0, started_at="")
    try:
        runner.run_point(target, level, share, f"calibrate-{target.label}-{share:.3f}", record,
                         warmup_s=min(1.0, max(0.3, 0.001 * level)))
    finally:
        runner.exp = saved
    lg = record.loadgen or {}
    sm = record.server_metrics or {}
    return {
        "server": target.label, "share": round(share, 4), "level": level, "status": record.status,
        "error": record.error,
        "requests_per_second": lg.get("requests_per_second"),
        "client_utilization": (lg.get("client_cpu") or {}).get("utilization"),
        "server_utilization": sm.get("utilization"),
        "errors_total": lg.get("errors_total"),
    }


def _say(show: bool, text: str) -> None:
    if show:
        print(text, file=sys.stderr, flush=True)


def calibrate(runner: "Runner", targets: list["Target"], level: int, cal: Calibration,
              show: bool = True, server_min: float = 0.9) -> dict[str, Any]:
    """Pick the share (see the module docstring); returns what meta.json keeps."""
    candidates = [t for t in targets if t.ranked]
    probes: list[dict[str, Any]] = []
    _say(show, f"calibrating the server CPU share: every server at {TRIAL_SHARE:.0%} of a CPU, "
               f"{level} clients, {cal.probe_s:g} s each")
    for t in candidates:
        p = probe(runner, t, level, TRIAL_SHARE, cal.probe_s)
        probes.append(p)
        _say(show, f"  {t.label:<15} {p['requests_per_second'] or 0:>9,.0f} req/s, client "
                   f"{(p['client_utilization'] or 0):.0%}, server {(p['server_utilization'] or 0):.0%}")
    usable = [p for p in probes if p["status"] == "ok" and p["client_utilization"]]
    if not usable:
        return {"method": "auto", "share": None, "probes": probes, "capacity_rps": {},
                "reason": "calibration failed: no server answered the probe; the run is uncapped"}
    fastest = max(usable, key=lambda p: p["client_utilization"])
    target = next(t for t in candidates if t.label == fastest["server"])
    estimate = TRIAL_SHARE * cal.client_max / fastest["client_utilization"]
    share = min(MAX_SHARE, max(MIN_SHARE, math.floor(estimate * 100) / 100))
    verified: dict[str, Any] | None = None
    for _ in range(MAX_STEPS):
        p = probe(runner, target, level, share, cal.probe_s)
        probes.append(p)
        _say(show, f"  check {target.label} at {share:.0%}: client {(p['client_utilization'] or 0):.0%}, "
                   f"server {(p['server_utilization'] or 0):.0%}")
        if (p["status"] == "ok" and p["client_utilization"] is not None and p["client_utilization"] <= cal.client_max
                and (p["server_utilization"] is None or p["server_utilization"] >= server_min)):
            verified = p
            break
        if share <= MIN_SHARE:
            break
        share = max(MIN_SHARE, math.floor(share * 0.9 * 100) / 100)
    if verified is None:
        return {"method": "auto", "share": share, "probes": probes, "fastest": target.label,
                "capacity_rps": _capacity(probes, share),
                "reason": f"at {share:.0%} of a CPU the client was still above {cal.client_max:.0%} busy or the "
                          f"server below {server_min:.0%} of its allowance; points may be left out as not "
                          f"server-bound"}
    _say(show, f"server CPU share: {share:.0%} of one CPU (fastest server {target.label}; client "
               f"{verified['client_utilization']:.0%} busy at {level} clients)")
    return {"method": "auto", "share": share, "rule": f"largest share with the client at most "
            f"{cal.client_max:.0%} busy, and the server using at least {server_min:.0%} of its allowance, against "
            f"the fastest server at the heaviest load",
            "client_max": cal.client_max, "server_min": server_min, "level": level, "fastest": target.label,
            "trial_share": TRIAL_SHARE, "probes": probes, "capacity_rps": _capacity(probes, share)}


def _capacity(probes: list[dict[str, Any]], share: float) -> dict[str, float]:
    """Each server's requests/s scaled from its trial probe to the final share (throughput is
    proportional to the share while the server is the bottleneck)."""
    out: dict[str, float] = {}
    for p in probes:
        if p["status"] == "ok" and p["requests_per_second"] and p["share"] == TRIAL_SHARE:
            out[p["server"]] = round(p["requests_per_second"] * share / TRIAL_SHARE, 1)
    return out
