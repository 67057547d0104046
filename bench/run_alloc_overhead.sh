#!/usr/bin/env bash
# Allocation-interposition overhead: cpprof's always-on allocation counting
# against heap profilers and replacement allocators, in one run.
#
#   bench/run_alloc_overhead.sh [-n REPS] [-i ITERATIONS] [-o OUT_DIR] [BUILD_DIR]
#   bench/run_alloc_overhead.sh -g [-i ITERATIONS] [BUILD_DIR]   (instruction counts)
#
# BUILD_DIR (default build/release) must already hold bin/alloc_workload and
# lib/libcpprof.so; this script builds nothing. It runs bench/alloc_workload
# (2 threads, a fixed amount of allocation-heavy work, ~113 M allocation-family
# calls) REPS times (default 5) in each configuration, interleaved: every rep
# runs all of them in a new random order, so slow drifts of the machine's
# load hit all alike. Configurations (CONFIGS picks; the default is every
# one except the two that are hundreds of times slower, see below):
#
#   none             the plain program (glibc malloc)
#   none-aa          the plain program again: an A/A control, whose "ratio"
#                    shows how large a difference noise alone produces
#   cpprof           LD_PRELOAD=libcpprof.so and nothing else: no server, no
#                    thread; the allocation hooks and their per-thread
#                    counters are the whole cost (always on)
#   cpprof-served    the same with CPPROF_HTTP=127.0.0.1:0: the server's
#                    threads are up but idle (no profile requested)
#   jemalloc         LD_PRELOAD=libjemalloc.so.2: allocator replaced, the
#                    baseline of jemalloc-prof
#   jemalloc-prof    + MALLOC_CONF=prof:true,lg_prof_sample:19 (a stack every
#                    ~512 KiB allocated); allocator replaced
#   tcmalloc         LD_PRELOAD=libtcmalloc.so.4 TCMALLOC_SAMPLE_PARAMETER=0:
#                    allocator replaced, the baseline of the two below
#   tcmalloc-sample  TCMALLOC_SAMPLE_PARAMETER=524288 (a stack every ~512 KiB)
#   gperf-heap       tcmalloc with HEAPPROFILE=file (gperftools' heap
#                    profiler: a stack for every allocation). Not in the
#                    default set: ~500x slower here; run it with a small -i
#   cpprof-rate1     cpprof with CPPROF_HEAP_RATE=1: every allocation sampled
#                    (its stack walked and kept until freed), heaptrack's
#                    job; not in the default set: run it with a small -i
#   heaptrack        `heaptrack -o file prog` (glibc malloc, every allocation
#                    traced to a separate heaptrack_interpret process). Not
#                    in the default set: ~100x; run it with a small -i
#
# Adding a configuration is one line in config_setup() below (and one in
# baseline_of()/allocator_of() if it replaces the allocator).
#
# Two CPU times are compared, each as a ratio to `none` (of the medians, and
# for work CPU also the median and range of the per-rep ratios, each run
# over the `none` run of its rep, and the ratio of the least run of each),
# and for the allocator-replaced profilers also to their own allocator's
# plain run ("vs own baseline"):
#   work CPU   user+sys of the workload process (getrusage RUSAGE_SELF, all
#              its threads) from just before its workers start to just after
#              they are joined, as the workload prints it. The main number.
#   tree CPU   user+sys of every process of the run from exec to exit
#              (GNU time around the command): includes start-up, exit (a
#              profile written at exit) and helper processes
#              (heaptrack_interpret), which work CPU cannot see.
# Every run must report the same ops count and checksum (the work is
# deterministic whatever the allocator); the script stops if one differs.
#
# -g: instead of timing, count instructions with valgrind's callgrind (one
# run per configuration without a launcher, collection limited to the
# workers' code and what it calls), and report the instructions per
# allocation-family call each configuration adds to `none`, and the
# functions that cost most in each. Instruction counts are repeatable on a
# noisy machine; valgrind serialises threads and has its own cache model,
# so they say what is executed, not how long it takes. Default -i 100000.
#
# Environment: CONFIGS (space-separated; `none` is required), RUN_TIMEOUT
# seconds per run (default 600), JEMALLOC_LIB, TCMALLOC_LIB (defaults in
# /usr/lib/x86_64-linux-gnu), VERIFY=0 to skip the profilers' sanity checks.
#
# Output: a table on stdout; OUT_DIR (default BUILD_DIR/bench-results) gets
# alloc_overhead-<timestamp>.csv (every run) and .md (the summary).
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
reps=5
iterations=""
out_dir=""
callgrind=0
while getopts "n:i:o:gh" opt; do
  case "$opt" in
    n) reps="$OPTARG" ;;
    i) iterations="$OPTARG" ;;
    o) out_dir="$OPTARG" ;;
    g) callgrind=1 ;;
    h) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: $0 [-n REPS] [-i ITERATIONS] [-o OUT_DIR] [-g] [BUILD_DIR]" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
build="${1:-$repo/build/release}"
[[ "$reps" =~ ^[1-9][0-9]*$ ]] || { echo "run_alloc_overhead: -n wants a positive number" >&2; exit 2; }

libdir=/usr/lib/x86_64-linux-gnu
workload="$build/bin/alloc_workload"
cpprof_lib="$build/lib/libcpprof.so"
jemalloc_lib="${JEMALLOC_LIB:-$libdir/libjemalloc.so.2}"
tcmalloc_lib="${TCMALLOC_LIB:-$libdir/libtcmalloc.so.4}"
run_timeout="${RUN_TIMEOUT:-600}"
read -ra configs <<<"${CONFIGS:-none none-aa cpprof cpprof-served jemalloc jemalloc-prof tcmalloc tcmalloc-sample}"
out_dir="${out_dir:-$build/bench-results}"
linger_ms=300  # the workload sleeps this long after its result line (we read cpprof's threads)

die() { echo "run_alloc_overhead: $*" >&2; exit 1; }
[[ -x "$workload" ]] || die "no $workload (build first: scripts/setup.sh release)"
[[ " ${configs[*]} " == *" none "* ]] || die "CONFIGS must include none (the baseline)"
[[ -x /usr/bin/time ]] || die "GNU time is needed (apt-get install time)"

# --- the configurations -------------------------------------------------------
# config_setup CONFIG: sets env_args (environment of the workload only) and
# launcher (a command the workload runs under). One line per configuration.
config_setup() {
  env_args=() launcher=()
  # shellcheck disable=SC2054  # the commas are MALLOC_CONF's own
  case "$1" in
    none | none-aa) ;;
    cpprof) env_args=(LD_PRELOAD="$cpprof_lib") ;;
    cpprof-served) env_args=(LD_PRELOAD="$cpprof_lib" CPPROF_HTTP=127.0.0.1:0 CPPROF_LOG="$tmp/cpprof.log") ;;
    cpprof-rate1) env_args=(LD_PRELOAD="$cpprof_lib" CPPROF_HEAP_RATE=1) ;;
    jemalloc) env_args=(LD_PRELOAD="$jemalloc_lib") ;;
    jemalloc-prof) env_args=(LD_PRELOAD="$jemalloc_lib" MALLOC_CONF=prof:true,lg_prof_sample:19) ;;
    tcmalloc) env_args=(LD_PRELOAD="$tcmalloc_lib" TCMALLOC_SAMPLE_PARAMETER=0) ;;
    tcmalloc-sample) env_args=(LD_PRELOAD="$tcmalloc_lib" TCMALLOC_SAMPLE_PARAMETER=524288) ;;
    gperf-heap) env_args=(LD_PRELOAD="$tcmalloc_lib" HEAPPROFILE="$tmp/gperf-heap") ;;
    heaptrack) launcher=(heaptrack -o "$tmp/heaptrack") ;;
    *) die "unknown configuration $1" ;;
  esac
}
# The run each configuration's "vs own baseline" ratio is taken against.
baseline_of() {
  case "$1" in
    jemalloc-prof) echo jemalloc ;;
    tcmalloc-sample | gperf-heap) echo tcmalloc ;;
    *) echo none ;;
  esac
}
# The allocator that serves the workload's calls.
allocator_of() {
  case "$1" in
    jemalloc*) echo "jemalloc (replaced)" ;;
    tcmalloc* | gperf-heap) echo "tcmalloc (replaced)" ;;
    *) echo glibc ;;
  esac
}

for config in "${configs[@]}"; do
  case "$config" in
    cpprof*) [[ -f "$cpprof_lib" ]] || die "no $cpprof_lib" ;;
    jemalloc*) [[ -f "$jemalloc_lib" ]] || die "no $jemalloc_lib (apt-get install libjemalloc2)" ;;
    tcmalloc* | gperf-heap) [[ -f "$tcmalloc_lib" ]] || die "no $tcmalloc_lib (apt-get install libgoogle-perftools4)" ;;
    heaptrack) command -v heaptrack >/dev/null || die "no heaptrack (apt-get install heaptrack)" ;;
  esac
done

workload_args=(--threads 2 --linger-ms "$linger_ms")
[[ -n "$iterations" ]] && workload_args+=(--iterations "$iterations")

# Whether libcpprof.so defines malloc itself (the interposer is built in).
cpprof_interposes="no"
if [[ -f "$cpprof_lib" ]] && nm -D --defined-only "$cpprof_lib" 2>/dev/null | grep -qw 'T malloc'; then
  cpprof_interposes="yes"
fi

# --- temporary files and stragglers ---------------------------------------
tmp="$(mktemp -d "${TMPDIR:-/tmp}/alloc_overhead.XXXXXX")"
bg_pids=()  # everything we start in the background, killed on exit
cleanup() {
  local pid
  for pid in "${bg_pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${bg_pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

forget_pid() {  # drop a finished pid from bg_pids
  local keep=() p
  for p in "${bg_pids[@]}"; do [[ "$p" == "$1" ]] || keep+=("$p"); done
  bg_pids=("${keep[@]}")
}

# Waits up to $2 seconds for background pid $1 to end, kills it otherwise;
# returns its exit status (or 124 if it had to be killed).
wait_or_kill() {
  local pid="$1" limit="$2" waited=0
  while kill -0 "$pid" 2>/dev/null && ((waited < limit * 10)); do
    sleep 0.1
    waited=$((waited + 1))
  done
  local rc=0
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rc=124
  else
    wait "$pid" 2>/dev/null || rc=$?
  fi
  forget_pid "$pid"
  return "$rc"
}

# Prints the value of key $2 in the workload's `key=value` line $1.
field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"$1"; }

# CPU nanoseconds of pid $1's threads whose name starts with "cpprof".
cpprof_threads_cpu() {
  # Bash builtins only: no process is started while the workload lingers.
  local pid="$1" task name ns rest all=0
  for task in /proc/"$pid"/task/*; do
    name="" ns=0
    { read -r name <"$task/comm"; } 2>/dev/null || continue
    [[ "$name" == cpprof* ]] || continue
    { read -r ns rest <"$task/schedstat"; } 2>/dev/null || continue
    all=$((all + ns))
  done
  echo "$all"
}

# --- one run ----------------------------------------------------------------
# run_one CONFIG: sets r_line (the workload's result line), r_tree_ns (CPU of
# every process of the run), r_own_ns (cpprof's threads), r_note.
run_one() {
  local config="$1"
  local start_fifo="$tmp/start.fifo" out_fifo="$tmp/out.fifo"
  local err="$tmp/stderr" times="$tmp/times"
  rm -rf "$start_fifo" "$out_fifo" "$times" "$tmp/cpprof.log" "$tmp"/gperf-heap* "$tmp"/heaptrack*
  mkfifo "$start_fifo" "$out_fifo"
  r_line="" r_tree_ns="" r_own_ns="" r_note=""
  config_setup "$config"
  local cmd=("${launcher[@]}")
  ((${#env_args[@]})) && cmd+=(env "${env_args[@]}")
  cmd+=("$workload" "${workload_args[@]}" --start-fifo "$start_fifo")

  # Our end of the result FIFO is opened read-write, so opening it never
  # blocks whatever happens to the workload. GNU time measures the whole
  # tree; `env` sets the preload for the workload only.
  local out_fd
  exec {out_fd}<>"$out_fifo"
  timeout -k 5 "$run_timeout" /usr/bin/time -o "$times" -f '%U %S' "${cmd[@]}" \
    >"$out_fifo" 2>"$err" {out_fd}<&- &
  local run_pid=$!
  bg_pids+=("$run_pid")

  # The work starts now. Opening the FIFO blocks until the workload opens
  # its end, so write from a background shell and give up if the workload
  # died at start-up.
  sh -c 'echo go >"$0"' "$start_fifo" &
  local go_pid=$!
  bg_pids+=("$go_pid")
  while kill -0 "$go_pid" 2>/dev/null; do
    if ! kill -0 "$run_pid" 2>/dev/null; then
      cat "$err" >&2
      die "$config: the workload exited before starting its work"
    fi
    sleep 0.02
  done
  wait_or_kill "$go_pid" 1 || true

  # The result line, skipping what a launcher prints (heaptrack does). `read
  # -t 1` wakes once a second to check that the run is still alive; bash
  # reads a pipe a byte at a time, so a timeout can fall inside a line: it
  # leaves the part read so far in `part`, which is kept for the next read.
  # Once the run has ended, what it wrote is all in the FIFO already.
  local line="" part="" alive=1
  while :; do
    if IFS= read -r -t 1 -u "$out_fd" part; then
      line+="$part"
      [[ "$line" == "alloc_workload "* ]] && break
      line=""
      continue
    fi
    line+="$part"
    if ((!alive)); then
      line=""
      break
    fi
    kill -0 "$run_pid" 2>/dev/null || alive=0
  done

  # While the workload lingers: the CPU of cpprof's threads, if it has any.
  if [[ -n "$line" && -s "$tmp/cpprof.log" ]]; then
    local pid
    pid="$(sed -n 's/.*(pid \([0-9]*\)).*/\1/p' "$tmp/cpprof.log" | tail -1)"
    [[ -n "$pid" ]] && r_own_ns="$(cpprof_threads_cpu "$pid")"
    grep -q "serving http://" "$tmp/cpprof.log" || r_note+="cpprof-not-serving "
  fi

  local rc=0
  wait_or_kill "$run_pid" $((run_timeout + 10)) || rc=$?
  exec {out_fd}<&-
  if [[ "$rc" != 0 || -z "$line" ]]; then
    cat "$err" >&2 || true
    die "$config: workload failed (exit $rc)"
  fi
  r_line="$line"
  r_tree_ns="$(awk '{printf "%.0f", ($1 + $2) * 1e9}' "$times")"
  # Evidence that each profiler did its job, and nothing left behind.
  grep -q "<jemalloc>" "$err" && r_note+="jemalloc-warned "
  case "$config" in
    gperf-heap) r_note+="heap-files=$(find "$tmp" -maxdepth 1 -name 'gperf-heap*.heap' | wc -l) " ;;
    heaptrack) r_note+="trace-bytes=$(cat "$tmp"/heaptrack* 2>/dev/null | wc -c) " ;;
  esac
  rm -rf "$tmp"/gperf-heap* "$tmp"/heaptrack*
  return 0
}

median() { sort -g | awk '{v[NR]=$1} END {if (NR==0) {print ""; exit}
  if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }

cpu_model="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out_dir"

# --- -g: instruction counts ----------------------------------------------------
if ((callgrind)); then
  command -v valgrind >/dev/null || die "no valgrind (apt-get install valgrind)"
  cg_args=(--threads 2 --iterations "${iterations:-100000}")
  echo "# callgrind, $workload ${cg_args[*]}; cpprof interposes malloc: $cpprof_interposes"
  echo "| config | allocator | instructions in the workers | ops | instructions per op | added per op vs none | added per op vs own baseline |"
  echo "|---|---|---|---|---|---|---|"
  declare -A cg_ir
  for config in "${configs[@]}"; do
    config_setup "$config"
    ((${#launcher[@]})) && continue  # heaptrack: a launcher valgrind cannot see through
    # Collect only inside run_worker (and what it calls), on both threads:
    # start-up, the loader and exit are left out. The preload goes to
    # valgrind's environment, which passes it on to the program.
    env "${env_args[@]}" valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.$config" \
      '--toggle-collect=*run_worker*' "$workload" "${cg_args[@]}" >"$tmp/cg.out" 2>"$tmp/cg.err" ||
      { cat "$tmp/cg.err" >&2; die "$config: callgrind run failed"; }
    line="$(grep '^alloc_workload ' "$tmp/cg.out")"
    ops="$(field "$line" ops)"
    ir="$(sed -n 's/^summary: \([0-9]*\).*/\1/p' "$tmp/cg.$config")"
    cg_ir[$config]="$ir"
    added="-" added_own="-"
    [[ "$config" != none && -n "${cg_ir[none]:-}" ]] &&
      added="$(awk -v a="$ir" -v b="${cg_ir[none]}" -v n="$ops" 'BEGIN {printf "%+.1f", (a - b) / n}')"
    base="$(baseline_of "$config")"
    [[ "$base" != none && -n "${cg_ir[$base]:-}" ]] &&
      added_own="$(awk -v a="$ir" -v b="${cg_ir[$base]}" -v n="$ops" -v base="$base" \
        'BEGIN {printf "%+.1f (vs %s)", (a - b) / n, base}')"
    printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$config" "$(allocator_of "$config")" "$ir" \
      "$ops" "$(awk -v a="$ir" -v n="$ops" 'BEGIN {printf "%.1f", a / n}')" "$added" "$added_own"
  done
  for config in "${configs[@]}"; do
    [[ -f "$tmp/cg.$config" ]] || continue
    cp "$tmp/cg.$config" "$out_dir/callgrind.$config.$stamp.out"
    [[ "$config" != none* ]] || continue
    echo
    echo "## $config: most instructions, by function (self, all threads)"
    # awk reads to the end (no `head`): an early close would kill the
    # pipeline with SIGPIPE, and pipefail the script.
    callgrind_annotate --inclusive=no "$tmp/cg.$config" 2>/dev/null |
      awk '/^-+$/ {n++; next} n >= 5 && NF && shown++ < 15 {print}'
  done
  if [[ -f "$tmp/cg.cpprof" ]]; then
    # The interposer's own functions (valgrind names no object for some
    # preloaded libraries' code: [???]; in this run only cpprof's).
    echo
    echo "## cpprof: its hooks' own instructions"
    callgrind_annotate --inclusive=no --threshold=100 "$tmp/cg.cpprof" 2>/dev/null |
      awk '/libcpprof|\[\?\?\?\]/ && !/alloc_workload/ && shown++ < 20 {print}'
  fi
  echo
  echo "# callgrind files: $out_dir/callgrind.*.$stamp.out"
  exit 0
fi

csv="$out_dir/alloc_overhead-$stamp.csv"
md="$out_dir/alloc_overhead-$stamp.md"

echo "# alloc_overhead $(date -u '+%Y-%m-%d %H:%M UTC'): $(nproc) CPUs ($cpu_model)," \
  "kernel $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# workload: $workload ${workload_args[*]}; $reps reps of: ${configs[*]}"
echo "# cpprof interposes malloc: $cpprof_interposes"
[[ "$cpprof_interposes" == yes || " ${configs[*]} " != *" cpprof"* ]] ||
  echo "# WARNING: $cpprof_lib defines no malloc: the cpprof rows measure loading the library only"

# --- check once that the profilers profile ---------------------------------------
if [[ "${VERIFY:-1}" != 0 ]]; then
  short=(--threads 2 --iterations 200000)
  if [[ " ${configs[*]} " == *" jemalloc-prof "* ]]; then
    # A jemalloc built without --enable-prof warns about prof:true and runs
    # unprofiled; one that profiles writes a heap profile at exit when asked
    # (prof_accum: with the stacks of every sample, not only the live ones).
    LD_PRELOAD="$jemalloc_lib" MALLOC_CONF="prof:true,lg_prof_sample:19,prof_accum:true,prof_final:true,prof_prefix:$tmp/jeprof" \
      "$workload" "${short[@]}" >/dev/null 2>"$tmp/je.err" || die "jemalloc-prof: check run failed"
    grep -q "<jemalloc>" "$tmp/je.err" && die "jemalloc-prof: $(head -1 "$tmp/je.err")"
    heap="$(find "$tmp" -maxdepth 1 -name 'jeprof.*.heap' | head -1)"
    [[ -n "$heap" ]] || die "jemalloc-prof: no heap profile written (prof not compiled in?)"
    echo "# verify jemalloc-prof: profile at exit (cumulative) has $(grep -c "^@" "$heap") distinct sampled stacks"
    rm -f "$tmp"/jeprof.*
  fi
  if [[ " ${configs[*]} " == *" cpprof-served "* ]]; then
    run_one cpprof-served
    [[ "$r_note" != *cpprof-not-serving* ]] || die "cpprof-served: the server did not start"
    echo "# verify cpprof-served: serving; its threads used $(awk -v n="${r_own_ns:-0}" 'BEGIN {printf "%.1f", n / 1e6}') ms of CPU in a run"
  fi
fi

# --- the measurement --------------------------------------------------------
echo "rep,config,work_cpu_ns,tree_cpu_ns,process_cpu_ns,workers_cpu_ns,wall_ns,ops,ops_per_cpu_s,checksum,cpprof_threads_ns,note" >"$csv"
ref_ops="" ref_sum=""
for ((rep = 1; rep <= reps; rep++)); do
  mapfile -t order < <(shuf -e "${configs[@]}")
  for config in "${order[@]}"; do
    run_one "$config"
    ops="$(field "$r_line" ops)" sum="$(field "$r_line" checksum)"
    if [[ -z "$ref_ops" ]]; then
      ref_ops="$ops" ref_sum="$sum"
    elif [[ "$ops" != "$ref_ops" || "$sum" != "$ref_sum" ]]; then
      die "$config: ops=$ops checksum=$sum, but the first run had ops=$ref_ops checksum=$ref_sum"
    fi
    printf '%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s\n' "$rep" "$config" \
      "$(field "$r_line" work_cpu_ns)" "$r_tree_ns" "$(field "$r_line" process_cpu_ns)" \
      "$(field "$r_line" workers_cpu_ns)" "$(field "$r_line" wall_ns)" "$ops" \
      "$(field "$r_line" ops_per_cpu_s)" "$sum" "$r_own_ns" "${r_note% }" >>"$csv"
    printf '# rep %d/%d %-16s work cpu %7.3f s  tree cpu %7.3f s  wall %7.3f s  %5.1f M ops/CPU-s %s\n' \
      "$rep" "$reps" "$config" \
      "$(awk -v v="$(field "$r_line" work_cpu_ns)" 'BEGIN {print v / 1e9}')" \
      "$(awk -v v="$r_tree_ns" 'BEGIN {print v / 1e9}')" \
      "$(awk -v v="$(field "$r_line" wall_ns)" 'BEGIN {print v / 1e9}')" \
      "$(awk -v v="$(field "$r_line" ops_per_cpu_s)" 'BEGIN {print v / 1e6}')" "$r_note"
  done
done

# --- the summary --------------------------------------------------------------
col() {  # col CONFIG COLUMN: that column of every run of CONFIG
  awk -F, -v c="$1" -v k="$2" 'NR == 1 {for (i = 1; i <= NF; i++) if ($i == k) j = i; next}
    $2 == c && $j != "" {print $j}' "$csv"
}
paired() {  # paired CONFIG BASE COLUMN: "median [min–max]" of per-rep CONFIG/BASE
  local pr
  pr="$(awk -F, -v c="$1" -v b="$2" -v k="$3" '
    NR == 1 {for (i = 1; i <= NF; i++) if ($i == k) j = i; next}
    $2 == b {base[$1] = $j} $2 == c {v[$1] = $j}
    END {for (r in v) if (r in base && base[r] > 0) printf "%.6f\n", v[r] / base[r]}' "$csv" | sort -g)"
  [[ -n "$pr" ]] || { echo "-"; return; }
  echo "$(median <<<"$pr" | awk '{printf "%.3f", $1}') [$(head -1 <<<"$pr" | awk '{printf "%.3f", $1}')–$(tail -1 <<<"$pr" | awk '{printf "%.3f", $1}')]"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a == "" || b == "" || b == 0) print "-"; else printf "%.3f", a / b}'; }
none_work="$(col none work_cpu_ns | median)"
none_tree="$(col none tree_cpu_ns | median)"
# The least CPU time of each configuration: contention from other processes
# only ever adds CPU time (shared caches, SMT siblings), so on a busy
# machine the fastest run is the one least disturbed.
none_least="$(col none work_cpu_ns | sort -g | head -1)"
{
  echo "| config | allocator | median work CPU s | work ratio to none (of medians) | work, per-rep ratio to none: median [min–max] | least work CPU s | ratio of the least | vs own baseline: per-rep median [min–max] | median tree CPU s | tree ratio to none (of medians) | M ops per CPU-s | median wall s | cpprof threads ms |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
  for config in "${configs[@]}"; do
    work="$(col "$config" work_cpu_ns | median)"
    least="$(col "$config" work_cpu_ns | sort -g | head -1)"
    tree="$(col "$config" tree_cpu_ns | median)"
    wall="$(col "$config" wall_ns | median)"
    mops="$(col "$config" ops_per_cpu_s | median)"
    own="$(col "$config" cpprof_threads_ns | median)"
    vs_none="-" vs_own="-" own_ms="-"
    [[ "$config" != none ]] && vs_none="$(paired "$config" none work_cpu_ns)"
    base="$(baseline_of "$config")"
    [[ "$base" != none && " ${configs[*]} " == *" $base "* ]] &&
      vs_own="$(paired "$config" "$base" work_cpu_ns) (vs $base)"
    [[ -n "$own" ]] && own_ms="$(awk -v a="$own" 'BEGIN {printf "%.1f", a / 1e6}')"
    printf '| %s | %s | %.3f | %s | %s | %.3f | %s | %s | %.3f | %s | %.1f | %.3f | %s |\n' "$config" \
      "$(allocator_of "$config")" "$(awk -v v="$work" 'BEGIN {print v / 1e9}')" \
      "$(ratio "$work" "$none_work")" "$vs_none" "$(awk -v v="$least" 'BEGIN {print v / 1e9}')" \
      "$(ratio "$least" "$none_least")" "$vs_own" \
      "$(awk -v v="$tree" 'BEGIN {print v / 1e9}')" "$(ratio "$tree" "$none_tree")" \
      "$(awk -v v="$mops" 'BEGIN {print v / 1e6}')" "$(awk -v v="$wall" 'BEGIN {print v / 1e9}')" \
      "$own_ms"
  done
  none_spread="$( (col none work_cpu_ns; col none-aa work_cpu_ns) | sort -g |
    awk '{v[NR] = $1} END {if (NR) printf "%.1f", (v[NR] - v[1]) / v[1] * 100}')"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs ($cpu_model), kernel $(uname -r);" \
    "$reps reps, interleaved; $ref_ops allocation-family calls per run; cpprof interposes" \
    "malloc: $cpprof_interposes; load average at the end $(cut -d' ' -f1-3 /proc/loadavg);" \
    "spread of the unprofiled runs (max−min)/min: ${none_spread:-?} %."
  echo "Command: bench/run_alloc_overhead.sh -n $reps${iterations:+ -i $iterations} $build"
} >"$md"
echo
cat "$md"
echo
echo "# runs: $csv"
echo "# summary: $md"
