"""Machine facts for meta.json, and the ``check`` command's environment verdicts."""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from harness import production, registry
from harness.experiment import parse_cpu_list
from harness.loadgen import DEFAULT_SPIN_US


def read_text(path: str | Path, default: str = "") -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return default


def sysctl_int(name: str) -> int | None:
    text = read_text("/proc/sys/" + name.replace(".", "/"))
    try:
        return int(text.split()[0])
    except (ValueError, IndexError):
        return None


def cpu_facts(cpuinfo: str | None = None) -> tuple[str, bool]:
    """The CPU's model name and whether it runs under a hypervisor (the ``hypervisor`` flag),
    from one read of /proc/cpuinfo (or the text given)."""
    text = read_text("/proc/cpuinfo") if cpuinfo is None else cpuinfo
    model = platform.processor() or "unknown"
    for line in text.splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return model, "hypervisor" in text.split()


def cpu_jiffies(stat: str) -> tuple[int, int, int]:
    """(busy, all, CPUs) from /proc/stat's text: the jiffies of every CPU together that were busy
    (anything but idle and iowait; steal counts as busy — the host ran something else) and in
    all, and how many CPUs there are. guest time is already inside user and nice."""
    busy = total = cpus = 0
    for line in stat.splitlines():
        name, _, rest = line.partition(" ")
        if name == "cpu":
            fields = [int(f) for f in rest.split()[:8]] + [0] * 8
            user, nice, system, idle, iowait, irq, softirq, steal = fields[:8]
            busy = user + nice + system + irq + softirq + steal
            total = busy + idle + iowait
        elif name.startswith("cpu") and name[3:].isdigit():
            cpus += 1
    return busy, total, cpus


def busy_cpus(seconds: float = 1.0, read: Callable[[], str] = lambda: read_text("/proc/stat")) -> float | None:
    """How many CPUs' worth of time the machine spent busy over the next ``seconds`` (0: idle; 2:
    both CPUs of a 2-CPU machine busy). Unlike the load average, which decays over minutes and so
    still counts a build that has just finished, this says what runs now. None when /proc/stat
    cannot be read."""
    busy0, total0, cpus = cpu_jiffies(read())
    time.sleep(seconds)
    busy1, total1, _ = cpu_jiffies(read())
    if total1 <= total0 or cpus == 0:
        return None
    return round((busy1 - busy0) / (total1 - total0) * cpus, 3)


def governors() -> dict[str, str]:
    """CPU → scaling governor; empty when cpufreq is not exposed (common in VMs)."""
    out = {}
    for path in sorted(Path("/sys/devices/system/cpu").glob("cpu[0-9]*/cpufreq/scaling_governor")):
        out[path.parent.parent.name] = read_text(path)
    return out


def idle_wakeups(root: str | Path = "/sys") -> dict[str, Any]:
    """How an idle CPU waits, which sets what waking a sleeping client or server costs the waker:
    the cpuidle driver, and in a KVM guest with the haltpoll driver how long an idle vCPU polls
    before it halts (``guest_halt_poll_ns``; 0: it halts at once, so every wake-up of it is an
    inter-processor interrupt and a VM exit for the waker). None where the kernel does not say."""
    root = Path(root)
    poll = read_text(root / "module/haltpoll/parameters/guest_halt_poll_ns")
    return {
        "cpuidle_driver": read_text(root / "devices/system/cpu/cpuidle/current_driver") or None,
        "guest_halt_poll_ns": int(poll) if poll.isdigit() else None,
    }


def idle_verdict(idle: dict[str, Any]) -> Verdict:
    """What waking a sleeping client costs a server here (docs/methodology.md, "Which client"):
    informational, since it moves absolute figures and a client's comparisons, not validity."""
    poll = idle.get("guest_halt_poll_ns")
    driver = idle.get("cpuidle_driver") or "not exposed"
    if poll == 0:
        return Verdict(
            "idle CPUs", "ok", f"{driver}, guest_halt_poll_ns 0",
            "Idle vCPUs halt at once: a server that wakes a sleeping client on loopback pays an "
            "interrupt and a VM exit (8-10 µs each on the VM of docs/methodology.md, \"Which client\"). Our "
            f"loadgen polls {DEFAULT_SPIN_US} µs before it sleeps, so the harness's figures leave that out; wrk "
            "and ab sleep at once, so compare servers with one client at a time.")
    value = driver if poll is None else f"{driver}, guest_halt_poll_ns {poll}"
    return Verdict("idle CPUs", "ok", value, "How an idle CPU waits is recorded with every run "
                   "(meta.json environment.idle).")


def governor_summary() -> str:
    govs = governors()
    if not govs:
        return "not exposed (no cpufreq; typical of a virtual machine)"
    values = sorted(set(govs.values()))
    return ", ".join(values)


def _run(argv: list[str], timeout: float = 5.0) -> str:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (proc.stdout + proc.stderr).strip()


def compiler(build: Path) -> str:
    """The C++ compiler Meson used (build/meson-info), or ``c++ --version``."""
    info = build / "meson-info" / "intro-compilers.json"
    try:
        data = json.loads(info.read_text())
        cpp = data.get("host", {}).get("cpp", {})
        if cpp:
            return f"{cpp.get('id', '?')} {cpp.get('full_version') or cpp.get('version', '')}".strip()
    except (OSError, ValueError, AttributeError):
        pass
    first = _run(["c++", "--version"]).splitlines()
    return first[0] if first else "unknown"


def git_revision(repo: Path) -> str:
    rev = _run(["git", "-C", str(repo), "rev-parse", "--short=12", "HEAD"])
    if not rev or " " in rev:
        return "unknown"
    dirty = _run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"])
    return rev + ("-dirty" if dirty else "")


def production_versions() -> dict[str, str]:
    versions = {}
    commands = {
        "nginx": ["-v"],
        "lighttpd": ["-v"],
        "h2o": ["--version"],
        "apache-prefork": ["-v"],
        "apache-worker": ["-v"],
        "node": ["--version"],
    }
    for name, exe in production.installed().items():
        text = _run([exe, *commands[name]])
        versions[name] = text.splitlines()[0] if text else "unknown"
    return versions


def collect_meta(build: Path) -> dict[str, Any]:
    """Everything about this machine that a reader needs to interpret the numbers."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    mem_kib = 0
    for line in read_text("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    try:
        import matplotlib

        mpl = matplotlib.__version__
    except ImportError:  # pragma: no cover
        mpl = "not installed"
    model, hypervisor = cpu_facts()
    return {
        "hostname": platform.node(),
        "kernel": platform.release(),
        "kernel_version": platform.version(),
        "os": read_text("/etc/debian_version") and f"Debian {read_text('/etc/debian_version')}" or platform.platform(),
        "cpu_model": model,
        "cores": os.cpu_count(),
        "cpus_allowed": sorted(os.sched_getaffinity(0)),
        "memory_mib": mem_kib // 1024,
        "governor": governor_summary(),
        "idle": idle_wakeups(),
        "hypervisor": hypervisor,
        "somaxconn": sysctl_int("net.core.somaxconn"),
        "tcp_max_syn_backlog": sysctl_int("net.ipv4.tcp_max_syn_backlog"),
        "tcp_tw_reuse": sysctl_int("net.ipv4.tcp_tw_reuse"),
        "ip_local_port_range": read_text("/proc/sys/net/ipv4/ip_local_port_range").replace("\t", "-"),
        "nofile_soft": soft,
        "nofile_hard": hard,
        "loadavg_at_start": read_text("/proc/loadavg"),
        "busy_cpus_at_start": busy_cpus(0.25),
        "compiler": compiler(build),
        "git_revision": git_revision(registry.REPO_ROOT),
        "python": sys.version.split()[0],
        "matplotlib": mpl,
        "production_versions": production_versions(),
        "build_dir": str(build),
    }


@dataclass(frozen=True)
class Verdict:
    name: str
    status: str  # "ok", "warn" or "fail"
    value: str
    explanation: str
    fix: str = ""


def check_environment(build: Path, server_cpus: str = "0", client_cpus: str = "1",
                      max_level: int = 1000, keep_alive: bool = False, steadiness_s: float = 0.0,
                      repetitions: int = 5) -> list[Verdict]:
    """Verdicts on whatever would distort or break a run with these settings (``steadiness_s`` > 0:
    also how steady the server's CPU is, measured for that long, and the narrowest interval of a
    median of ``repetitions`` it allows)."""
    verdicts: list[Verdict] = []
    somax = sysctl_int("net.core.somaxconn")
    if somax is None:
        verdicts.append(Verdict("somaxconn", "warn", "unreadable",
                                "Could not read net.core.somaxconn.", ""))
    elif somax < max_level:
        verdicts.append(Verdict(
            "somaxconn", "fail", str(somax),
            f"The kernel caps every listen() backlog at somaxconn; with {max_level} clients "
            "connecting at once the accept queue overflows, SYNs are dropped and retried after "
            "a second, and measured load stays far below offered load (Kerneis & Chroboczek's "
            "Fig. 1(a)).",
            "sudo sysctl -w net.core.somaxconn=4096"))
    else:
        verdicts.append(Verdict("somaxconn", "ok", str(somax),
                                f"Accept queues can hold {somax} pending connections (≥ {max_level} clients)."))

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 2 * max_level + 256
    if hard < need:
        verdicts.append(Verdict(
            "open files", "fail", f"soft {soft}, hard {hard}",
            f"{max_level} clients need about {need} descriptors between server and client; the "
            "hard limit is lower, so connections will fail with EMFILE.",
            "raise the hard limit in /etc/security/limits.conf (nofile) or run with `ulimit -Hn 65536` as root"))
    else:
        verdicts.append(Verdict(
            "open files", "ok", f"soft {soft}, hard {hard}",
            f"The harness raises its soft limit to the hard limit ({hard}) for the servers and "
            f"the loadgen; {need} are needed at {max_level} clients."))

    ncpu = len(os.sched_getaffinity(0))
    if ncpu < 2:
        verdicts.append(Verdict(
            "CPU count", "warn", str(ncpu),
            "With one CPU the client and the server compete for it: response times then "
            "include the client's own work and the client may be the bottleneck.",
            "run on a machine with at least 2 cores"))
    else:
        verdicts.append(Verdict("CPU count", "ok", str(ncpu),
                                "Server and client can each have their own CPU."))

    govs = governors()
    if not govs:
        verdicts.append(Verdict(
            "CPU governor", "ok", "not exposed",
            "No cpufreq interface (typical of a VM): frequency cannot be controlled here; "
            "compare results only within one run."))
    elif set(govs.values()) != {"performance"}:
        verdicts.append(Verdict(
            "CPU governor", "warn", governor_summary(),
            "A power-saving governor changes clock speed with load, so low-load points run "
            "slower than high-load points and the response-time slope is distorted.",
            "sudo cpupower frequency-set -g performance"))
    else:
        verdicts.append(Verdict("CPU governor", "ok", "performance", "Clock speed is fixed at its maximum."))
    verdicts.append(idle_verdict(idle_wakeups()))

    allowed = os.sched_getaffinity(0)
    try:
        scpus = set(parse_cpu_list(server_cpus))
        ccpus = set(sorted(allowed - scpus)) if client_cpus == "others" else set(parse_cpu_list(client_cpus))
    except ValueError:
        scpus, ccpus = set(), set()
    missing = (scpus | ccpus) - allowed
    taskset_ok = _run(["taskset", "-c", server_cpus, "true"]) == "" and bool(scpus)
    if missing or not taskset_ok:
        verdicts.append(Verdict(
            "pinning", "fail", f"server {server_cpus}, client {client_cpus}",
            f"CPUs {sorted(missing) or server_cpus} are not available to this process "
            f"(allowed: {sorted(allowed)}) or taskset failed, so servers cannot be pinned.",
            "install util-linux (taskset) and choose [pinning] CPUs from the allowed set"))
    else:
        verdicts.append(Verdict("pinning", "ok", f"server {server_cpus}, client {client_cpus}",
                                "taskset pins the server and the client to their CPUs."))

    overlap = scpus & ccpus
    if overlap or not ccpus:
        verdicts.append(Verdict(
            "client/server CPUs", "warn", f"shared: {sorted(overlap) or 'no client CPU'}",
            "The client would share a CPU with the server: its work is then charged to the "
            "server's response time and the server is never alone on its CPU.",
            "set [pinning] server_cpus and client_cpus to disjoint sets (e.g. \"0\" and \"1\")"))
    else:
        verdicts.append(Verdict("client/server CPUs", "ok", f"server {sorted(scpus)}, client {sorted(ccpus)}",
                                "The client never runs on the server's CPU."))

    if not keep_alive:
        lo_hi = read_text("/proc/sys/net/ipv4/ip_local_port_range").split()
        tw_reuse = sysctl_int("net.ipv4.tcp_tw_reuse")
        ports = int(lo_hi[1]) - int(lo_hi[0]) + 1 if len(lo_hi) == 2 else 0
        if tw_reuse == 0:
            verdicts.append(Verdict(
                "ephemeral ports", "warn", f"{ports} ports, tcp_tw_reuse=0",
                "A new connection per request leaves sockets in TIME_WAIT for 60 s; at 20,000 "
                "requests/s the ephemeral ports run out within seconds (EADDRNOTAVAIL).",
                "sudo sysctl -w net.ipv4.tcp_tw_reuse=1"))
        else:
            verdicts.append(Verdict(
                "ephemeral ports", "ok", f"{ports} ports, tcp_tw_reuse={tw_reuse}",
                "TIME_WAIT ports can be reused on loopback, so new-connection runs do not run out."))

    from harness.cgroup import available as cgroups_available

    usable, why = cgroups_available()
    if usable:
        verdicts.append(Verdict(
            "cgroups", "ok", "CPU cap and accounting available",
            "Each server runs in its own cgroup: capped so that the server, not the client, is the bottleneck "
            "(server-bound), with its CPU time, context switches and peak memory read exactly."))
    else:
        verdicts.append(Verdict(
            "cgroups", "warn", "unavailable",
            f"Servers cannot be capped ({why}): runs are uncapped, and where one client core saturates first "
            "the ranking measures the client. The report says so in red.",
            "run the harness as root (sudo make bench) on a machine with the cgroup cpu controller"))

    if usable:
        verdicts.append(throttle_verdict(parse_cpu_list(server_cpus)[0]))

    verdicts.append(idle_machine_verdict(busy_cpus(IDLE_SAMPLE_S), read_text("/proc/loadavg", "0")))

    if steadiness_s > 0:
        verdicts.append(steadiness_verdict(build, parse_cpu_list(server_cpus)[0], steadiness_s, repetitions))

    lg = registry.loadgen_path(build)
    bj = registry.backends_json_path(build)
    verdicts.append(Verdict(
        "loadgen", "ok" if lg.exists() else "fail", str(lg),
        "The load generator is built." if lg.exists() else "The load generator is not built; no experiment can run.",
        "" if lg.exists() else "make build"))
    try:
        names = [b.name for b in registry.load_backends(build)]
        verdicts.append(Verdict("backends", "ok", f"{len(names)} built", ", ".join(names)))
    except registry.RegistryError as exc:
        verdicts.append(Verdict("backends", "warn", str(bj), str(exc), "make build"))
    inst = production.installed()
    absent = [n for n in production.PRODUCTION_SERVERS if n not in inst]
    verdicts.append(Verdict(
        "production servers", "ok" if not absent else "warn",
        f"{len(inst)} installed",
        "installed: " + (", ".join(inst) or "none") + ("; missing: " + ", ".join(absent) if absent else ""),
        "make deps (installs nginx, lighttpd, h2o, apache2)" if absent else ""))
    return verdicts


IDLE_SAMPLE_S = 1.0  # how long `check` watches the CPUs for other work
BUSY_CPUS_WARN = 0.1  # CPUs' worth of other work that makes `check` warn


def idle_machine_verdict(busy: float | None, loadavg: str) -> Verdict:
    """Whether anything else runs, judged by what the CPUs did over the last ``IDLE_SAMPLE_S``
    (``busy``, from busy_cpus) and, where that is unknown, by the 1-minute load average. A high
    load average on CPUs that are idle now is a recent burst (`make bench` builds first), not
    work that will disturb the run."""
    load1 = float((loadavg.split() or ["0"])[0])
    value = (f"load average {load1:.2f}" if busy is None
             else f"{busy:.2f} CPUs busy over {IDLE_SAMPLE_S:g} s; load average {load1:.2f}")
    if (busy is None and load1 > 0.5) or (busy is not None and busy > BUSY_CPUS_WARN):
        return Verdict("idle machine", "warn", value,
                       "Other work is running (compilers, other benchmarks): it steals CPU from the "
                       "server or the client and adds noise to every point.",
                       "wait until the machine is idle (see `top`) before a run whose numbers matter")
    if busy is not None and load1 > 0.5:
        return Verdict("idle machine", "ok", value,
                       "Nothing else runs now; the load average still counts work of the last minutes "
                       "(such as the build before `make bench`), which is over.")
    return Verdict("idle machine", "ok", value, "Nothing else is busy.")


def throttle_verdict(cpu: int) -> Verdict:
    """How this kernel throttles a capped group (cgroup.throttle_probe): per task since Linux
    6.18, which charges a capped server one context switch per runnable task and period."""
    from harness.cgroup import throttling_summary

    t = throttling_summary(cpu)
    if not t["measured"]:
        return Verdict("cap throttling", "warn", "not measured", f"The probe could not run: {t['problem']}.")
    value = (f"{t['switches_per_period']:.1f} switches per throttled period with {t['tasks']} runnable tasks "
             f"({t['preemptions']} in {t['periods']} periods)")
    if not t["per_task"]:
        return Verdict("cap throttling", "ok", value,
                       "A throttled server is taken off its CPU as a whole: the cap costs about one switch per "
                       "period, whatever its number of threads or processes.")
    return Verdict(
        "cap throttling", "warn", value,
        "This kernel stops a throttled group's tasks one by one (Linux 6.18's throttling per task): every "
        "runnable thread or process of a capped server is switched out once per period, and switched back "
        "later. A server with many runnable tasks (thread, fork, prefork, threadpool, Apache) pays that on "
        "top of its requests (with 100 busy connections, a third of its allowance was seen going to it at a "
        "4-ms period), a single-threaded event loop does not: capped comparisons across those models are "
        "biased against the many-task ones. The report's switches column shows each server's preemptions "
        "per request (docs/methodology.md, \"What the cap costs a server of many tasks\").",
        "compare many-task models with each other, or read their preemptions per request beside the ranks")


STEADY_CV = 0.02  # a machine whose fixed loops vary less than this between windows is steady


def steadiness_verdict(build: Path, cpu: int, seconds: float, repetitions: int = 5) -> Verdict:
    from harness import steadiness

    try:
        s = steadiness.probe(build, cpu, seconds, steadiness.window_for(seconds))
    except steadiness.SteadinessError as exc:
        return Verdict("steadiness", "warn", "not measured", str(exc), "make build-bench")
    floor = steadiness.interval_floor(s.cv, repetitions)
    value = (f"CPU {cpu}: {s.cv:.1%} between {s.window_s:g}-s windows of the {s.loop} loop "
             f"(slowest {s.slowest - 1:+.0%}, fastest {s.fastest - 1:+.0%})")
    if s.cache_cv is not None and s.arithmetic_cv is not None:
        value += f"; arithmetic {s.arithmetic_cv:.1%}, cache chase ({s.cache_kib} KiB) {s.cache_cv:.1%}"
    if s.cv <= STEADY_CV:
        return Verdict("steadiness", "ok", value,
                       "Fixed loops (arithmetic, and a chase through the cache) run at a steady rate on the "
                       "server's CPU.")
    return Verdict(
        "steadiness", "warn", value,
        f"A fixed loop runs at a varying rate: the machine itself (a host whose other guests share this "
        f"core's caches or time, or a changing clock) makes a server cost more in some seconds than in others. "
        f"With {repetitions} repetitions, a median's 95 % interval cannot be much narrower than ±{floor:.0%} "
        f"here, whatever the server.",
        "more repetitions or longer windows narrow intervals; comparisons within one run stay fair "
        "(servers are interleaved)")
