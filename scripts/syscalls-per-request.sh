#!/usr/bin/env bash
# System calls per request of httpd-<backend>s under one fixed loadgen run each — the number
# io_uring is meant to lower (issue 11: "uring ... with fewer syscalls per request than sped").
# A benchmark, not a test: it prints numbers and asserts nothing.
#
#   scripts/syscalls-per-request.sh [BACKEND...]        (default: sped uring)
#
# For each backend, twice: the server runs under `strace -c -f` (the per-call table; ptrace stops
# the server at every call, which slows it down and so makes every loop batch more work per
# wake-up: its counts per request are lower than in a free run), then under
# `perf stat -e raw_syscalls:sys_enter` (a counter only, almost no slow-down). The server is
# pinned to CPU 0 and the client, `loadgen -k -c 100 -n 50000` by default, to CPU 1. Calls per
# request = the server's calls over the whole run (start-up and stop included, a few hundred) /
# the requests its stats line counts.
#
# Environment: BUILD (default build), REQUESTS (50000), CONCURRENCY (100), KEEPALIVE (1; 0 = a new
# connection per request), SERVER_CPU (0), CLIENT_CPU (1). Needs strace and perf (linux-perf);
# perf needs root or kernel.perf_event_paranoid <= 1 for the tracepoint.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$root/build}
requests=${REQUESTS:-50000}
concurrency=${CONCURRENCY:-100}
keepalive=${KEEPALIVE:-1}
server_cpu=${SERVER_CPU:-0}
client_cpu=${CLIENT_CPU:-1}
backends=("$@")
((${#backends[@]})) || backends=(sped uring)

for tool in strace perf taskset; do
  command -v "$tool" >/dev/null || { echo "syscalls-per-request: $tool is not installed" >&2; exit 1; }
done
[[ -x $build/loadgen/loadgen ]] || { echo "syscalls-per-request: build first ($build/loadgen/loadgen missing)" >&2; exit 1; }

work=$(mktemp -d)
tracer_pid=""
server_of() { ps -o pid= --ppid "$1" | tr -d ' '; }  # the tracer's one child
cleanup() {
  # Only what this script started: the tracer (strace or perf) and its child, the server.
  if [[ -n $tracer_pid ]] && kill -0 "$tracer_pid" 2>/dev/null; then
    local server
    server=$(server_of "$tracer_pid")
    [[ -n $server ]] && kill -TERM "$server" 2>/dev/null
    sleep 1
    kill -KILL "$tracer_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

loadgen_args=(-c "$concurrency" -n "$requests" -q)
[[ $keepalive == 1 ]] && loadgen_args=(-k "${loadgen_args[@]}")

# run_traced BACKEND MODE: starts the server under the tracer, drives it, stops it; leaves
# $work/MODE.out (server stdout) and $work/MODE.trace (the tracer's report).
run_traced() {
  local backend=$1 mode=$2 binary=$build/servers/httpd-$1
  [[ -x $binary ]] || { echo "syscalls-per-request: $binary missing" >&2; exit 1; }
  rm -f "$work/ready" "$work/$mode.out" "$work/$mode.trace"
  local tracer
  case $mode in
    strace) tracer=(strace -c -f -S calls -o "$work/$mode.trace") ;;
    perf) tracer=(perf stat -e raw_syscalls:sys_enter -x, -o "$work/$mode.trace") ;;
  esac
  taskset -c "$server_cpu" "${tracer[@]}" "$binary" --port 0 --ready-file "$work/ready" \
    >"$work/$mode.out" 2>"$work/$mode.err" &
  tracer_pid=$!
  for _ in $(seq 200); do [[ -s $work/ready ]] && break; sleep 0.05; done
  [[ -s $work/ready ]] || { echo "syscalls-per-request: $backend did not start" >&2; cat "$work/$mode.err" >&2; exit 1; }
  local address
  address=$(head -n1 "$work/ready")
  taskset -c "$client_cpu" "$build/loadgen/loadgen" "${loadgen_args[@]}" "http://$address/" >/dev/null
  # SIGTERM to the server (the tracer's only child); then the tracer writes its report.
  kill -TERM "$(server_of "$tracer_pid")"
  wait "$tracer_pid" || true
  tracer_pid=""
}

served() {  # the requests the stats line counts
  sed -n 's/.*"requests": \([0-9]*\).*/\1/p' "$1" | tail -n1
}

printf '%s: loadgen %s http://HOST/ (server on CPU %s, client on CPU %s)\n\n' \
  "$(date -u +%FT%TZ)" "${loadgen_args[*]}" "$server_cpu" "$client_cpu"
summary=()
for backend in "${backends[@]}"; do
  run_traced "$backend" strace
  strace_requests=$(served "$work/strace.out")
  strace_calls=$(awk '$NF == "total" {print $4}' "$work/strace.trace")  # % s us/call CALLS
  echo "== $backend under strace -c -f: $strace_calls calls for $strace_requests requests"
  grep -v '^-' "$work/strace.trace" | head -n 9
  echo

  run_traced "$backend" perf
  perf_requests=$(served "$work/perf.out")
  perf_calls=$(awk -F, '/raw_syscalls:sys_enter/ {print $1}' "$work/perf.trace")
  echo "== $backend under perf stat: $perf_calls calls for $perf_requests requests"
  echo
  summary+=("$(awk -v b="$backend" -v sc="$strace_calls" -v sr="$strace_requests" \
                   -v pc="$perf_calls" -v pr="$perf_requests" \
    'BEGIN { printf "%-8s %12.2f %12.2f", b, sc / sr, pc / pr }')")
done

printf '%-8s %12s %12s\n' backend "strace -c" "perf stat"
printf '%-8s %12s %12s\n' "" "calls/req" "calls/req"
printf '%s\n' "${summary[@]}"
