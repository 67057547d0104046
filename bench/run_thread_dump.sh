#!/usr/bin/env bash
# Thread dumps of a 1,000-thread process: cpprof's /debug/pprof/goroutine
# against gdb and eu-stack, and what each does to the threads it dumps.
#
#   bench/run_thread_dump.sh [-n REPS] [-t THREADS] [BUILD_DIR]
#
# BUILD_DIR (default build/release) must hold bin/thread_dump_target
# (`scripts/setup.sh release` builds it). The target parks THREADS threads
# (default 1000): 70 % on a condition variable, 20 % in read(), 10 % in a
# nanosleep() loop that counts EINTR. For each tool a fresh target is
# started, dumped REPS times (default 10; gdb and eu-stack 3 times: they
# take seconds), and then asked how many EINTRs its sleepers saw.
#
#   cpprof-debug0   GET /debug/pprof/goroutine (protobuf, grouped, symbolized)
#   cpprof-debug1   GET ?debug=1 (Go's grouped text)
#   cpprof-debug2   GET ?debug=2 (every thread, symbolized)
#   gdb             gdb -p PID -batch -ex 'thread apply all bt' (ptrace)
#   eu-stack        eu-stack -p PID (elfutils; ptrace)
#
# The time is wall-clock per dump, as curl (time_total) or the shell sees
# it; the first cpprof request (which loads libdw and reads the DWARF) is
# a warm-up and not counted. The ratio is the tool's median over
# cpprof-debug2's (the like-for-like dump: every thread, symbolized).
# Missing gdb or eu-stack are skipped with a note (apt-get install gdb
# elfutils).
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
reps=10
threads=1000
while getopts "n:t:h" opt; do
  case "$opt" in
    n) reps="$OPTARG" ;;
    t) threads="$OPTARG" ;;
    h) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) exit 2 ;;
  esac
done
shift $((OPTIND - 1))
build="${1:-$repo/build/release}"
target="$build/bin/thread_dump_target"
[[ -x "$target" ]] || { echo "no $target (scripts/setup.sh release builds it)" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'exec 3>&- 2>/dev/null || true; rm -rf "$tmp"' EXIT

median() { sort -g | awk '{v[NR]=$1} END {if (NR==0) print "nan"; else if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }

# Starts a target; sets pid and port; its stdin is fd 3.
start_target() {
  mkfifo "$tmp/in"
  "$target" "$threads" <"$tmp/in" >"$tmp/out" 2>"$tmp/err" &
  pid=$!
  exec 3>"$tmp/in"
  rm -f "$tmp/in"
  for _ in $(seq 600); do grep -q '^ready' "$tmp/out" 2>/dev/null && break; sleep 0.1; done
  grep -q '^ready' "$tmp/out" || { echo "target did not start: $(cat "$tmp/err")" >&2; exit 1; }
  port=$(awk '/^port/ {print $2}' "$tmp/out")
}

# Ends the target; sets `eintr` to the EINTRs its sleepers saw.
stop_target() {
  exec 3>&-
  wait "$pid" || true
  eintr=$(awk '/^eintr/ {print $2}' "$tmp/out")
}

declare -A result eintr_seen
run_cpprof() {  # name query
  local name="$1" query="$2"
  start_target
  curl -s -o /dev/null "http://127.0.0.1:$port/debug/pprof/goroutine?$query"  # warm-up
  for _ in $(seq "$reps"); do
    curl -s -o "$tmp/body" -w '%{time_total}\n' "http://127.0.0.1:$port/debug/pprof/goroutine?$query"
  done >"$tmp/times"
  if [[ "$query" == "debug=2" ]]; then
    dumped=$(grep -c '^goroutine ' "$tmp/body")
    [[ "$dumped" -ge "$threads" ]] || echo "warning: debug=2 listed $dumped threads" >&2
  fi
  result[$name]=$(median <"$tmp/times")
  stop_target
  eintr_seen[$name]="$eintr"
}

run_external() {  # name command...
  local name="$1"
  shift
  command -v "$1" >/dev/null || { echo "skipping $name: no $1 (apt-get install gdb elfutils)" >&2; return; }
  start_target
  local n=$((reps < 3 ? reps : 3))
  for _ in $(seq "$n"); do
    local t0 t1
    t0=$(date +%s%N)
    "$@" "$pid" >"$tmp/dump" 2>&1 || true
    t1=$(date +%s%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN {print (b - a) / 1e9}'
  done >"$tmp/times"
  result[$name]=$(median <"$tmp/times")
  stop_target
  eintr_seen[$name]="$eintr"
}

run_cpprof cpprof-debug0 "debug=0"
run_cpprof cpprof-debug1 "debug=1"
run_cpprof cpprof-debug2 "debug=2"
run_external gdb gdb -batch -nx -ex 'set pagination off' -ex 'thread apply all bt' -p
run_external eu-stack eu-stack -p

base="${result[cpprof-debug2]}"
printf '%-15s %12s %10s %14s\n' tool "ms/dump" "ratio" "EINTRs seen"
for name in cpprof-debug0 cpprof-debug1 cpprof-debug2 gdb eu-stack; do
  [[ -n "${result[$name]:-}" ]] || continue
  awk -v n="$name" -v t="${result[$name]}" -v b="$base" -v e="${eintr_seen[$name]}" \
    'BEGIN {printf "%-15s %12.1f %10.2f %14s\n", n, t * 1000, t / b, e}'
done
echo "($threads threads; $(nproc) CPUs; $(uname -r); cpprof medians of $reps dumps)"
