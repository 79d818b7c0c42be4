#!/usr/bin/env bash
# Compares loadgen with wrk (keep-alive) and ab (a new connection per request) on one server,
# in alternating runs, client pinned to one CPU. Prints requests/s and client CPU per request
# of every run, then the medians. Not a test: the numbers are for the issue note.
# loadgen_k_nospin is loadgen -k with --spin-us 0 (it sleeps as soon as it has nothing to do).
# Client CPU per request includes loadgen's idle polling (it is CPU the client used).
#
# usage: loadgen/bench_vs_wrk_ab.sh URL [LOADGEN] [CLIENT_CPU] [RUNS] [SECONDS] [AB_REQUESTS]
# The server must already run (pinned elsewhere, e.g. `taskset -c 0 h2o -c conf`).
set -euo pipefail
url=${1:?usage: $0 URL [LOADGEN] [CLIENT_CPU] [RUNS] [SECONDS] [AB_REQUESTS]}
loadgen=${2:-build/loadgen/loadgen}
cpu=${3:-1}
runs=${4:-3}
secs=${5:-10}
ab_n=${6:-50000}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Runs a command pinned to $cpu under GNU time; prints "<req/s> <cpu_us_per_request>".
measure() {
  local kind=$1; shift
  /usr/bin/time -f "%U %S" -o "$tmp/time" taskset -c "$cpu" "$@" > "$tmp/out" 2>&1
  local rps
  case $kind in
    wrk) rps=$(awk '/^Requests\/sec:/ {print $2}' "$tmp/out") ;;
    ab) rps=$(awk '/^Requests per second:/ {print $4}' "$tmp/out") ;;
    loadgen) rps=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["requests_per_second"])' "$tmp/lg.json") ;;
  esac
  local n
  case $kind in
    wrk) n=$(awk '/requests in/ {print $1}' "$tmp/out") ;;
    ab) n=$(awk '/^Complete requests:/ {print $3}' "$tmp/out") ;;
    loadgen) n=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["completed_total"])' "$tmp/lg.json") ;;
  esac
  read -r user sys < "$tmp/time"
  /usr/bin/python3 -c "import sys; print(f'{float(sys.argv[1]):.0f} {(float(sys.argv[2])+float(sys.argv[3]))/int(sys.argv[4])*1e6:.2f}')" \
    "$rps" "$user" "$sys" "$n"
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

declare -A rps cpu_us
for i in $(seq 1 "$runs"); do
  for kind in wrk loadgen_k loadgen_k_nospin ab loadgen; do
    case $kind in
      wrk) line=$(measure wrk wrk -t1 -c100 -d"${secs}s" "$url") ;;
      loadgen_k) line=$(measure loadgen "$loadgen" -q -t1 -c100 -k -d"${secs}s" --json "$tmp/lg.json" "$url") ;;
      loadgen_k_nospin) line=$(measure loadgen "$loadgen" -q -t1 -c100 -k --spin-us 0 -d"${secs}s" --json "$tmp/lg.json" "$url") ;;
      ab) line=$(measure ab ab -q -c100 -n"$ab_n" "$url") ;;
      loadgen) line=$(measure loadgen "$loadgen" -q -c100 -n"$ab_n" --json "$tmp/lg.json" "$url") ;;
    esac
    echo "run $i $kind: $line req/s, client CPU us/request"
    rps[$kind]+="${line%% *}"$'\n'
    cpu_us[$kind]+="${line##* }"$'\n'
  done
done
for kind in wrk loadgen_k loadgen_k_nospin ab loadgen; do
  printf '%-16s median %8s req/s  %6s us CPU/request\n' "$kind" \
    "$(printf '%s' "${rps[$kind]}" | median)" "$(printf '%s' "${cpu_us[$kind]}" | median)"
done
