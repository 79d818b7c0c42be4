#!/usr/bin/env bash
# Paired comparison of loadgen with wrk (keep-alive, -c100) and with ab (a new connection per
# request, -c100): many short rounds, each running both clients back to back (order swapped
# every round), so that drift of a shared or virtual machine hits both sides of a pair alike.
# Prints every pair, then the median of the per-round ratios and how many rounds loadgen led.
# Not a test: the numbers are for notes. Client pinned to CLIENT_CPU; start the server pinned
# elsewhere first (e.g. `taskset -c 0 h2o -c conf`).
#
# usage: loadgen/bench_paired.sh URL [LOADGEN] [CLIENT_CPU] [ROUNDS] [SECONDS] [AB_REQUESTS]
set -euo pipefail
url=${1:?usage: $0 URL [LOADGEN] [CLIENT_CPU] [ROUNDS] [SECONDS] [AB_REQUESTS]}
loadgen=${2:-build/loadgen/loadgen}
cpu=${3:-1}
rounds=${4:-16}
secs=${5:-3}
ab_n=${6:-40000}
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Runs a client pinned under GNU time; prints "<req/s> <client CPU us per request>".
run() {
  local kind=$1 rps n
  case $kind in
    wrk) /usr/bin/time -f "%U %S" -o "$tmp/time" taskset -c "$cpu" wrk -t1 -c100 -d"${secs}s" "$url" > "$tmp/out"
         rps=$(awk '/^Requests\/sec:/ {print $2}' "$tmp/out"); n=$(awk '/requests in/ {print $1}' "$tmp/out") ;;
    ab) /usr/bin/time -f "%U %S" -o "$tmp/time" taskset -c "$cpu" ab -q -c100 -n"$ab_n" "$url" > "$tmp/out"
        rps=$(awk '/^Requests per second:/ {print $4}' "$tmp/out"); n=$ab_n ;;
    loadgen_k|loadgen)
        local ka=(); [[ $kind == loadgen_k ]] && ka=(-k -d"${secs}s") || ka=(-n"$ab_n")
        /usr/bin/time -f "%U %S" -o "$tmp/time" taskset -c "$cpu" "$loadgen" -q -t1 -c100 "${ka[@]}" --json "$tmp/lg.json" "$url"
        read -r rps n < <($py -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["requests_per_second"], d["completed_total"])' "$tmp/lg.json") ;;
  esac
  read -r user sys < "$tmp/time"
  $py -c 'import sys; print(f"{float(sys.argv[1]):.0f} {(float(sys.argv[2])+float(sys.argv[3]))/int(sys.argv[4])*1e6:.2f}")' "$rps" "$user" "$sys" "$n"
}

for pair in "wrk loadgen_k" "ab loadgen"; do
  read -r peer ours <<< "$pair"
  : > "$tmp/ratios"
  for i in $(seq 1 "$rounds"); do
    if (( i % 2 )); then first=$peer second=$ours; else first=$ours second=$peer; fi
    declare -A line
    line[$first]=$(run "$first")
    line[$second]=$(run "$second")
    ratio=$($py -c 'import sys; print(f"{float(sys.argv[1])/float(sys.argv[2]):.3f}")' "${line[$ours]%% *}" "${line[$peer]%% *}")
    echo "$ratio ${line[$ours]##* } ${line[$peer]##* }" >> "$tmp/ratios"
    echo "round $i  $peer ${line[$peer]}  $ours ${line[$ours]}  (req/s, client us/request)  ratio $ratio"
  done
  $py - "$tmp/ratios" "$ours" "$peer" <<'PY'
import statistics, sys
rows = [tuple(map(float, l.split())) for l in open(sys.argv[1])]
ratios = [r[0] for r in rows]
print(f"{sys.argv[2]} vs {sys.argv[3]}: median ratio {statistics.median(ratios):.3f} "
      f"(led in {sum(r >= 1 for r in ratios)} of {len(ratios)} rounds); client CPU us/request "
      f"median {statistics.median(r[1] for r in rows):.2f} vs {statistics.median(r[2] for r in rows):.2f}")
PY
done
