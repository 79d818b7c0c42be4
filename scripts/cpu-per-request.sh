#!/usr/bin/env bash
# Server CPU per request of httpd-<backend>s, each capped at a quarter of CPU 0 as
# `harness peers --server-cpu-share 0.25` caps them, over many short alternating runs: the
# number to compare when the machine is shared and requests/s swing by ±20 % from run to run
# (CPU per request moves far less). A benchmark, not a test; needs root (cgroup v1 cpu and
# cpuacct controllers).
#
#   sudo scripts/cpu-per-request.sh "sped coro uring" -k -c 100 -n 150000   # keep-alive
#   sudo scripts/cpu-per-request.sh "sped coro uring" -c 100 -n 25000       # new connections
#
# The first argument names the backends; the rest goes to build/loadgen/loadgen (URL added).
# Each round runs every backend once, in the same order; ROUNDS (default 6) rounds. Per run:
# the server (pinned to SERVER_CPU, default 0) in its own cgroup with cpu.cfs_quota_us 2500 of
# cpu.cfs_period_us 10000, the client pinned to CLIENT_CPU (default 1); CPU = the cgroup's
# cpuacct.usage over the client's run, requests = the server's stats line (which counts the
# whole run, so the start and stop add a few requests' worth at most). Prints every run, then
# the medians of CPU per request and of requests/s.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$root/build}
rounds=${ROUNDS:-6}
server_cpu=${SERVER_CPU:-0}
client_cpu=${CLIENT_CPU:-1}
(($# >= 2)) || { sed -n '2,18p' "$0" >&2; exit 2; }
read -r -a backends <<<"$1"
shift
[[ $(id -u) -eq 0 ]] || { echo "cpu-per-request: needs root (cgroups)" >&2; exit 1; }
[[ -d /sys/fs/cgroup/cpu && -d /sys/fs/cgroup/cpuacct ]] ||
  { echo "cpu-per-request: needs the cgroup v1 cpu and cpuacct controllers" >&2; exit 1; }

work=$(mktemp -d)
cpu_cg=/sys/fs/cgroup/cpu/httpbench-cpr-$$
acct_cg=/sys/fs/cgroup/cpuacct/httpbench-cpr-$$
server_pid=""
cleanup() {
  if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    sleep 2
    kill -KILL "$server_pid" 2>/dev/null || true
  fi
  rmdir "$cpu_cg" "$acct_cg" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$cpu_cg" "$acct_cg"
echo 10000 >"$cpu_cg/cpu.cfs_period_us"
echo 2500 >"$cpu_cg/cpu.cfs_quota_us"

# run_one BACKEND LOADGEN-ARGS...: prints "CPU_US_PER_REQUEST REQUESTS_PER_S"
run_one() {
  local backend=$1
  shift
  rm -f "$work/ready"
  bash -c 'echo $$ >"$1/cgroup.procs" && echo $$ >"$2/cgroup.procs" && shift 2 && exec taskset -c "$@"' _ \
    "$cpu_cg" "$acct_cg" "$server_cpu" "$build/servers/httpd-$backend" --port 0 --ready-file "$work/ready" \
    >"$work/server.out" 2>"$work/server.err" &
  server_pid=$!
  for _ in $(seq 200); do [[ -s $work/ready ]] && break; sleep 0.05; done
  [[ -s $work/ready ]] || { cat "$work/server.err" >&2; echo "cpu-per-request: $backend did not start" >&2; exit 1; }
  local before after rps
  before=$(cat "$acct_cg/cpuacct.usage")
  rps=$(taskset -c "$client_cpu" "$build/loadgen/loadgen" "$@" "http://$(head -n1 "$work/ready")/" |
    awk '/^Requests per second:/ {print $4}')
  after=$(cat "$acct_cg/cpuacct.usage")
  kill -TERM "$server_pid"
  wait "$server_pid" || true
  server_pid=""
  local requests
  requests=$(sed -n 's/.*"requests": \([0-9]*\).*/\1/p' "$work/server.out")
  awk -v ns=$((after - before)) -v n="$requests" -v r="$rps" 'BEGIN {printf "%.2f %.0f\n", ns / 1000 / n, r}'
}

median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

echo "$(date -u +%FT%TZ): loadgen $* (client CPU $client_cpu); servers on CPU $server_cpu at 25 %"
declare -A cpu rps
for ((r = 1; r <= rounds; r++)); do
  for b in "${backends[@]}"; do
    read -r c q < <(run_one "$b" "$@")
    printf 'round %d  %-8s %8.2f us CPU/req %9.0f req/s\n' "$r" "$b" "$c" "$q"
    cpu[$b]+="$c "
    rps[$b]+="$q "
  done
done
echo
printf '%-8s %16s %12s   %s\n' backend "us CPU/req" "req/s" "(medians of $rounds; ratios to ${backends[0]})"
base_cpu=$(tr ' ' '\n' <<<"${cpu[${backends[0]}]}" | grep . | median)
for b in "${backends[@]}"; do
  c=$(tr ' ' '\n' <<<"${cpu[$b]}" | grep . | median)
  q=$(tr ' ' '\n' <<<"${rps[$b]}" | grep . | median)
  awk -v b="$b" -v c="$c" -v q="$q" -v base="$base_cpu" \
    'BEGIN {printf "%-8s %16.2f %12.0f   CPU/req %.2fx (throughput at the cap %.2fx)\n", b, c, q, c / base, base / c}'
done
