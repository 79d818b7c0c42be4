#!/usr/bin/env bash
# AMPED's reason to exist (Flash, Pai et al. 1999; Pariag et al. 2007 §2): when the files do not
# fit in the server's memory, a SPED loop stops on every page-cache miss — sendfile waits for the
# disk, and every other connection with it — while AMPED hands the miss to a helper and serves
# the others. A benchmark experiment, not a test (it needs root, drops the page cache and takes
# a few minutes):
#
#   sudo scripts/amped-disk-experiment.sh
#
# The docroot: FILES files of FILE_KIB KiB (default 10,000 × 32 KiB ≈ 313 MiB) of random bytes,
# made once under DOCROOT on a real disk (not tmpfs) and reused. Both servers run with
# --sendfile-threshold THRESHOLD_KIB (16 KiB), so every file is sent from the page cache rather
# than loaded into memory at start. Why 32 KiB: the stall is what a miss costs beyond its CPU, and
# on a VM whose disk answers in a few hundred µs, sending and reclaiming 100 KiB costs about as
# much CPU as the wait (docs/backends.md has both). Two conditions, each server alone on CPU 0
# and the client on CPU 1:
#   limited  the server in a memory cgroup of MEMORY_MIB (64) MiB (v1 memory.limit_in_bytes,
#            or v2 memory.max), which also holds the page cache it reads, after
#            `echo 1 > /proc/sys/vm/drop_caches`: most requests miss;
#   cached   no memory limit, every file read once beforehand: no request misses.
# Client: `wrk -t1 -c CONNECTIONS -d RUN_SECONDS` with a Lua script that asks for a uniformly random
# file each time (same seed for every run). ROUNDS rounds, the backends alternating inside each
# round (the order rotates from round to round); requests/s medians and amped / sped ratios.
# A run with socket errors or non-2xx responses is reported and fails the script.
#
# Environment (defaults): DOCROOT (/var/tmp/httpbench-amped-docroot), FILES (10000), FILE_KIB
# (32), THRESHOLD_KIB (16, below FILE_KIB), MEMORY_MIB (64), ROUNDS (3), RUN_SECONDS (10),
# CONNECTIONS (100), HELPERS (8), BACKENDS ("sped amped"), CONDITIONS ("limited cached"),
# BUILD (build), SERVER_CPU (0), CLIENT_CPU (1).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$root/build}
docroot=${DOCROOT:-/var/tmp/httpbench-amped-docroot}
files=${FILES:-10000}
file_kib=${FILE_KIB:-32}
memory_mib=${MEMORY_MIB:-64}
rounds=${ROUNDS:-3}
seconds=${RUN_SECONDS:-10}  # not SECONDS: bash's own clock
connections=${CONNECTIONS:-100}
helpers=${HELPERS:-8}
threshold_kib=${THRESHOLD_KIB:-16}  # --sendfile-threshold of both servers
read -r -a backends <<<"${BACKENDS:-sped amped}"
read -r -a conditions <<<"${CONDITIONS:-limited cached}"
server_cpu=${SERVER_CPU:-0}
client_cpu=${CLIENT_CPU:-1}

die() { echo "amped-disk-experiment: $*" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || die "needs root (memory cgroup, drop_caches)"
for tool in wrk taskset; do command -v "$tool" >/dev/null || die "$tool is not installed"; done
for b in "${backends[@]}"; do [[ -x $build/servers/httpd-$b ]] || die "$build/servers/httpd-$b missing: build first"; done
# Smaller files would be loaded into the server's memory at start, not read from the disk.
((file_kib > threshold_kib)) || die "FILE_KIB ($file_kib) must exceed THRESHOLD_KIB ($threshold_kib)"

# -- the docroot -----------------------------------------------------------------------------
stamp="$docroot/.made-${files}x${file_kib}k"
if [[ ! -e $stamp ]]; then
  echo "making $files files of $file_kib KiB in $docroot ..."
  rm -rf "$docroot"
  mkdir -p "$docroot"
  for ((i = 1; i <= files; i++)); do head -c $((file_kib * 1024)) /dev/urandom >"$docroot/f$i.bin"; done
  echo "<p>amped experiment</p>" >"$docroot/index.html"
  sync
  touch "$stamp"
fi
fstype=$(stat -f -c %T "$docroot")
[[ $fstype != tmpfs && $fstype != ramfs ]] || die "$docroot is on $fstype: no disk to miss"
# Each file is kept open by the server (the core opens every large file at start).
(( $(ulimit -Hn) > files + connections + 64 )) || die "ulimit -Hn $(ulimit -Hn) is below FILES + CONNECTIONS + 64"

# -- the memory cgroup -----------------------------------------------------------------------
work=$(mktemp -d)
cgroup=""
server_pid=""
cleanup() {
  if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    sleep 2
    kill -KILL "$server_pid" 2>/dev/null || true
  fi
  [[ -n $cgroup && -d $cgroup ]] && rmdir "$cgroup" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
if [[ -e /sys/fs/cgroup/memory/memory.limit_in_bytes ]]; then
  cgroup=/sys/fs/cgroup/memory/httpbench-amped-$$
  mkdir "$cgroup"
  echo $((memory_mib * 1024 * 1024)) >"$cgroup/memory.limit_in_bytes"
  cgroup_kind="v1 memory.limit_in_bytes"
elif grep -qw memory /sys/fs/cgroup/cgroup.controllers 2>/dev/null; then
  grep -qw memory /sys/fs/cgroup/cgroup.subtree_control || echo +memory >/sys/fs/cgroup/cgroup.subtree_control
  cgroup=/sys/fs/cgroup/httpbench-amped-$$
  mkdir "$cgroup"
  echo $((memory_mib * 1024 * 1024)) >"$cgroup/memory.max"
  cgroup_kind="v2 memory.max"
else
  die "no cgroup memory controller (v1 or v2) to limit the server with"
fi

cat >"$work/random-file.lua" <<EOF
-- A uniformly random file of the docroot per request; the same sequence in every run.
math.randomseed(20070321)
request = function()
  return wrk.format("GET", "/f" .. math.random(1, $files) .. ".bin")
end
EOF

# run_one BACKEND CONDITION: prints "REQ_PER_S DISK_FETCHES"; fails on client errors.
run_one() {
  local backend=$1 condition=$2 args
  args=(--port 0 --docroot "$docroot" --ready-file "$work/ready" --max-conns $((connections + 16))
        --sendfile-threshold "${threshold_kib}k")
  [[ $backend == amped ]] && args+=(--set "helpers=$helpers")
  rm -f "$work/ready"
  if [[ $condition == limited ]]; then
    sync
    echo 1 >/proc/sys/vm/drop_caches
    # Joins the cgroup, then becomes the server: its page cache is charged there.
    bash -c 'echo $$ >"$1/cgroup.procs" && shift && exec taskset -c "$@"' _ "$cgroup" \
      "$server_cpu" "$build/servers/httpd-$backend" "${args[@]}" >"$work/server.out" 2>"$work/server.err" &
  else
    cat "$docroot"/f*.bin >/dev/null  # everything cached, in the root cgroup
    taskset -c "$server_cpu" "$build/servers/httpd-$backend" "${args[@]}" >"$work/server.out" 2>"$work/server.err" &
  fi
  server_pid=$!
  for _ in $(seq 600); do [[ -s $work/ready ]] && break; sleep 0.05; done
  [[ -s $work/ready ]] || { cat "$work/server.err" >&2; die "$backend did not start"; }
  local address cpu_before cpu_after
  address=$(head -n1 "$work/ready")
  cpu_before=$(cpu_ticks "$server_pid")
  taskset -c "$client_cpu" wrk -t1 -c"$connections" -d"${seconds}s" --timeout 10s \
    -s "$work/random-file.lua" "http://$address/" >"$work/wrk.out" 2>&1
  cpu_after=$(cpu_ticks "$server_pid")
  kill -TERM "$server_pid"
  wait "$server_pid" || true
  server_pid=""
  if grep -qE "Socket errors|Non-2xx" "$work/wrk.out"; then
    cat "$work/wrk.out" >&2
    die "$backend ($condition): the client saw errors"
  fi
  local rps fetches requests
  rps=$(awk '/^Requests\/sec:/ {print $2}' "$work/wrk.out")
  fetches=$(sed -n 's/.*"disk_fetches": \([0-9]*\).*/\1/p' "$work/server.out")
  requests=$(sed -n 's/.*"requests": \([0-9]*\).*/\1/p' "$work/server.out")
  # Server CPU (all its threads) over the client's run, per request: unlike requests/s it does
  # not depend on which side limits, nor on what else the machine runs meanwhile.
  echo "$rps ${fetches:--} $(awk -v t=$((cpu_after - cpu_before)) -v hz="$(getconf CLK_TCK)" -v n="$requests" \
    'BEGIN {printf "%.1f", t / hz * 1e6 / n}')"
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }  # utime + stime of every thread

median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

echo "$(date -u +%FT%TZ) $(uname -r); docroot $files × $file_kib KiB ($fstype); cgroup $cgroup_kind = $memory_mib MiB"
echo "client: wrk -t1 -c$connections -d${seconds}s, a random file per request; server CPU $server_cpu, client CPU $client_cpu; amped helpers=$helpers; --sendfile-threshold ${threshold_kib}k"
declare -A results cpu_results
for ((r = 0; r < rounds; r++)); do
  for condition in "${conditions[@]}"; do
    n=${#backends[@]}
    for ((k = 0; k < n; k++)); do
      backend=${backends[$(((k + r) % n))]}
      read -r rps fetches cpu < <(run_one "$backend" "$condition")
      printf 'round %d  %-8s %-8s %10.0f req/s %8.1f us CPU/req   disk_fetches %s\n' $((r + 1)) \
        "$condition" "$backend" "$rps" "$cpu" "$fetches"
      results[$condition.$backend]+="$rps "
      cpu_results[$condition.$backend]+="$cpu "
    done
  done
done

echo
printf '%-8s' condition
for b in "${backends[@]}"; do printf ' %14s %12s' "$b req/s" "us CPU/req"; done
printf '   %s\n' "req/s ratios to ${backends[0]} (medians of $rounds rounds)"
for condition in "${conditions[@]}"; do
  printf '%-8s' "$condition"
  base=$(tr ' ' '\n' <<<"${results[$condition.${backends[0]}]}" | grep . | median)
  ratios=""
  for b in "${backends[@]}"; do
    m=$(tr ' ' '\n' <<<"${results[$condition.$b]}" | grep . | median)
    c=$(tr ' ' '\n' <<<"${cpu_results[$condition.$b]}" | grep . | median)
    printf ' %14.0f %12.1f' "$m" "$c"
    ratios+=$(awk -v m="$m" -v b="$base" -v n="$b" 'BEGIN {printf "  %s %.2fx", n, m / b}')
  done
  echo "  $ratios"
done
