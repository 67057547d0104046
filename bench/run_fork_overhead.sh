#!/usr/bin/env bash
# fork() overhead: what cpprof's fork handlers add to each fork of a
# multi-threaded program, against other preloaded profilers and allocators
# that also act around fork, in one run.
#
#   bench/run_fork_overhead.sh [-n REPS] [-f FORKS] [BUILD_DIR]
#
# BUILD_DIR (default build/release) must already hold bin/fork_workload and
# lib/libcpprof.so; this script builds nothing. Each rep runs every
# configuration once, in a new random order; fork_workload (2 allocating
# threads, FORKS forks, default 2000) prints the median fork() in the
# parent and the median round trip (fork, child exits, waitpid). Reported:
# the median over reps of each, and its ratio to `none`.
#
#   none             the plain program
#   none-aa          the plain program again (A/A control: noise alone)
#   cpprof           LD_PRELOAD=libcpprof.so (no server)
#   cpprof-served    + CPPROF_HTTP=127.0.0.1:0 (the child closes its copies
#                    of the server's sockets)
#   cpprof-children  + CPPROF_CHILDREN=1 (each child also starts a thread
#                    that would serve 50 ms later; _exit comes first)
#   gperf            LD_PRELOAD=libprofiler.so.0 CPUPROFILE=... (gperftools)
#   tcmalloc         LD_PRELOAD=libtcmalloc.so.4 (locks its heap across fork)
#   jemalloc         LD_PRELOAD=libjemalloc.so.2 (the same)
set -euo pipefail

reps=5
forks=2000
while getopts "n:f:h" opt; do
  case "$opt" in
    n) reps="$OPTARG" ;;
    f) forks="$OPTARG" ;;
    *) sed -n '2,24p' "$0"; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
build="${1:-build/release}"
workload="$build/bin/fork_workload"
cpprof_lib="$build/lib/libcpprof.so"
libdir=/usr/lib/x86_64-linux-gnu
[[ -x "$workload" && -f "$cpprof_lib" ]] || { echo "no $workload or $cpprof_lib: build first" >&2; exit 2; }

configs=(none none-aa cpprof cpprof-served cpprof-children)
[[ -f $libdir/libprofiler.so.0 ]] && configs+=(gperf) || echo "skipping gperf (apt-get install libgoogle-perftools4)" >&2
[[ -f $libdir/libtcmalloc.so.4 ]] && configs+=(tcmalloc) || echo "skipping tcmalloc (apt-get install libgoogle-perftools4)" >&2
[[ -f $libdir/libjemalloc.so.2 ]] && configs+=(jemalloc) || echo "skipping jemalloc (apt-get install libjemalloc2)" >&2

out="$(mktemp -d /tmp/cpprof-fork-bench-XXXXXX)"
trap 'rm -rf "$out"' EXIT

run_one() {
  local config="$1"
  local -a env=(env CPPROF_LOG=off)
  case "$config" in
    none | none-aa) ;;
    cpprof) env+=(LD_PRELOAD="$cpprof_lib") ;;
    cpprof-served) env+=(LD_PRELOAD="$cpprof_lib" CPPROF_HTTP=127.0.0.1:0) ;;
    cpprof-children) env+=(LD_PRELOAD="$cpprof_lib" CPPROF_HTTP=127.0.0.1:0 CPPROF_CHILDREN=1) ;;
    gperf) env+=(LD_PRELOAD=$libdir/libprofiler.so.0 CPUPROFILE="$out/gperf.prof") ;;
    tcmalloc) env+=(LD_PRELOAD=$libdir/libtcmalloc.so.4) ;;
    jemalloc) env+=(LD_PRELOAD=$libdir/libjemalloc.so.2) ;;
  esac
  "${env[@]}" "$workload" "$forks" 2
}

for ((rep = 1; rep <= reps; rep++)); do
  echo "rep $rep/$reps" >&2
  for config in $(printf '%s\n' "${configs[@]}" | shuf); do
    line="$(run_one "$config")"
    echo "$config $line" >> "$out/results"
  done
done

# Columns: config, then fork_us median (field 4), round_trip median (field 11).
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
base_fork="$(awk '$1=="none" {print $4}' "$out/results" | median)"
base_trip="$(awk '$1=="none" {print $11}' "$out/results" | median)"
printf "%-16s %12s %8s %16s %8s\n" config "fork() us" ratio "round trip us" ratio
for config in "${configs[@]}"; do
  f="$(awk -v c="$config" '$1==c {print $4}' "$out/results" | median)"
  t="$(awk -v c="$config" '$1==c {print $11}' "$out/results" | median)"
  printf "%-16s %12.1f %8.2f %16.1f %8.2f\n" "$config" "$f" "$(awk -v a="$f" -v b="$base_fork" 'BEGIN {print a/b}')" \
    "$t" "$(awk -v a="$t" -v b="$base_trip" 'BEGIN {print a/b}')"
done
echo "($reps reps x $forks forks each, 2 allocating threads; $(nproc) CPUs)"
