#!/usr/bin/env bash
# CPU-profiling overhead: cpprof against gperftools' libprofiler, in one run.
#
#   bench/run_cpu_overhead.sh [-n REPS] [-i ITERATIONS] [-o OUT_DIR] [BUILD_DIR]
#
# BUILD_DIR (default build/release) must already hold bin/cpu_workload and
# lib/libcpprof.so (`scripts/setup.sh release` builds them); this script
# builds nothing. It runs bench/cpu_workload (2 threads, a fixed amount of
# work) REPS times (default 5) in each of six configurations, interleaved
# (rep 1: all six, rep 2: all six, ...; each rep runs them in a new random
# order, so no configuration always runs at the same place or right after
# the same other one):
#
#   none      the plain program
#   none-aa   the plain program again: an A/A control, whose "ratio" shows
#             how large a difference the machine's noise alone produces
#   cpprof    100 Hz, 1000 Hz: LD_PRELOAD=libcpprof.so CPPROF_HTTP=127.0.0.1:0
#             CPPROF_CPU_HZ=hz, with a CPU profile request held open for the
#             whole run (the work starts only once the request's window is open)
#   gperf     100 Hz, 1000 Hz: LD_PRELOAD=libprofiler.so.0 CPUPROFILE=file
#             CPUPROFILE_FREQUENCY=hz (profiles from load to exit)
#   perf      100 Hz, 1000 Hz: `perf record -F hz -g` (kernel sampling with
#             frame-pointer call graphs, written to a file; from exec to exit)
#
# The number compared is the CPU time (user+sys, getrusage RUSAGE_SELF, all
# threads including the profiler's own) the process spends from the start
# to the end of the work, as the workload itself reports. The ratio to
# `none` is reported two ways: ratio of the medians, and the median (and
# range) of the per-rep ratios (each run against the `none` run of the same
# rep, which cancels slow drifts in machine load).
#
# Before measuring, one cpprof run per rate checks that a profile taken this
# way is real: a 2-second window inside the run, read back with
# `go tool pprof -symbolize=none` (skipped if `go` is missing).
#
# Samples per run are recorded for information: cpprof's "CPU samples taken"
# from its index page (read while the workload lingers after its work), and
# gperftools' "PROFILE: interrupts/..." line at exit. cpprof's own threads'
# CPU time (from /proc/PID/task/*/schedstat) is recorded as well.
#
# Environment: GPERF_LIB (default /usr/lib/x86_64-linux-gnu/libprofiler.so.0),
# RUN_TIMEOUT seconds per run (default 180), CONFIGS (space-separated subset
# of: none none-aa cpprof-100 cpprof-1000 gperf-100 gperf-1000 perf-100
# perf-1000; `none` is
# the baseline of every ratio), VERIFY=0 to skip the profile check.
#
# Output: a table on stdout; OUT_DIR (default BUILD_DIR/bench-results) gets
# cpu_overhead-<timestamp>.csv (every run) and .md (the summary table).
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
reps=5
iterations=""
out_dir=""
while getopts "n:i:o:h" opt; do
  case "$opt" in
    n) reps="$OPTARG" ;;
    i) iterations="$OPTARG" ;;
    o) out_dir="$OPTARG" ;;
    h) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: $0 [-n REPS] [-i ITERATIONS] [-o OUT_DIR] [BUILD_DIR]" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
build="${1:-$repo/build/release}"
[[ "$reps" =~ ^[1-9][0-9]*$ ]] || { echo "run_cpu_overhead: -n wants a positive number" >&2; exit 2; }

workload="$build/bin/cpu_workload"
cpprof_lib="$build/lib/libcpprof.so"
gperf_lib="${GPERF_LIB:-/usr/lib/x86_64-linux-gnu/libprofiler.so.0}"
run_timeout="${RUN_TIMEOUT:-180}"
configs=(${CONFIGS:-none none-aa cpprof-100 cpprof-1000 gperf-100 gperf-1000 perf-100 perf-1000})
out_dir="${out_dir:-$build/bench-results}"
linger_ms=1500  # the workload sleeps this long after printing its result (we read counters)

die() { echo "run_cpu_overhead: $*" >&2; exit 1; }
[[ -x "$workload" ]] || die "no $workload (build first: scripts/setup.sh release)"
[[ -f "$cpprof_lib" ]] || die "no $cpprof_lib"
[[ -f "$gperf_lib" ]] || die "no $gperf_lib (apt-get install libgoogle-perftools4)"
command -v curl >/dev/null || die "curl is needed"
if [[ " ${configs[*]} " == *" perf-"* ]]; then
  command -v perf >/dev/null || die "no perf (apt-get install linux-perf), or leave perf-* out of CONFIGS"
fi
have_go=1
command -v go >/dev/null || have_go=0

workload_args=(--threads 2 --linger-ms "$linger_ms")
[[ -n "$iterations" ]] && workload_args+=(--iterations "$iterations")

# --- temporary files and stragglers ---------------------------------------
tmp="$(mktemp -d "${TMPDIR:-/tmp}/cpu_overhead.XXXXXX")"
bg_pids=()   # everything we start in the background, killed on exit
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

# Waits (up to 10 s) for cpprof's log line and prints the port.
cpprof_port() {
  local log="$1" i port
  for ((i = 0; i < 200; i++)); do
    port="$(sed -n 's|.*serving http://127\.0\.0\.1:\([0-9]*\)/debug/pprof/.*|\1|p' "$log" 2>/dev/null | tail -1)"
    if [[ -n "$port" ]]; then echo "$port"; return 0; fi
    grep -q "not serving" "$log" 2>/dev/null && break
    sleep 0.05
  done
  return 1
}

# A value from cpprof's index page ("<td>KEY:</td><td>VALUE</td>").
index_value() {
  local page="$1" key="$2"
  sed -n "s|.*<td>$key:</td><td>\([^<]*\)</td>.*|\1|p" <<<"$page" | head -1
}

# Waits (up to 10 s) until cpprof reports an open CPU profile window.
wait_window_open() {
  local port="$1" i page
  for ((i = 0; i < 200; i++)); do
    page="$(curl -s --max-time 2 "http://127.0.0.1:$port/debug/pprof/" || true)"
    [[ "$(index_value "$page" "CPU profiles in progress")" =~ ^[1-9] ]] && return 0
    sleep 0.05
  done
  return 1
}

# CPU nanoseconds of pid $1's threads whose name starts with "cpprof",
# printed as "<all cpprof threads> <cpprof-cpu only>".
cpprof_threads_cpu() {
  # Bash builtins only: no process is started while the workload lingers.
  local pid="$1" task name ns rest all=0 drain=0
  for task in /proc/"$pid"/task/*; do
    name="" ns=0
    { read -r name <"$task/comm"; } 2>/dev/null || continue
    [[ "$name" == cpprof* ]] || continue
    { read -r ns rest <"$task/schedstat"; } 2>/dev/null || continue
    all=$((all + ns))
    if [[ "$name" == cpprof-cpu ]]; then drain=$((drain + ns)); fi
  done
  echo "$all $drain"
}

# --- one run ----------------------------------------------------------------
# run_one CONFIG [PROFILE_SECONDS PROFILE_OUT]
# Sets: r_line (the workload's result line), r_samples, r_own_ns, r_drain_ns,
# r_note. With PROFILE_SECONDS (cpprof only) the profile request has that
# window and its answer is kept in PROFILE_OUT.
run_one() {
  local config="$1" profile_seconds="${2:-}" profile_out="${3:-}"
  local kind="${config%%-*}" hz="${config#*-}"
  local start_fifo="$tmp/start.fifo" out_fifo="$tmp/out.fifo"
  local log="$tmp/cpprof.log" err="$tmp/stderr" prof="$tmp/gperf.prof"
  rm -f "$start_fifo" "$out_fifo" "$log" "$prof" "$tmp/profile.pb.gz"
  mkfifo "$start_fifo" "$out_fifo"
  : >"$log"
  r_line="" r_samples="" r_own_ns="" r_drain_ns="" r_note=""

  local env_args=() launcher=()
  case "$kind" in
    none) ;;
    perf) launcher=(perf record -q -F "$hz" -g -o "$tmp/perf.data") ;;
    cpprof) env_args=(LD_PRELOAD="$cpprof_lib" CPPROF_HTTP=127.0.0.1:0 CPPROF_LOG="$log"
                      CPPROF_CPU_HZ="$hz") ;;
    gperf) env_args=(LD_PRELOAD="$gperf_lib" CPUPROFILE="$prof" CPUPROFILE_FREQUENCY="$hz") ;;
    *) die "unknown configuration $config" ;;
  esac

  # Our end of the result FIFO is opened read-write, so opening it never
  # blocks whatever happens to the workload. `env` sets the preload for the
  # workload only (not for `timeout`).
  local out_fd
  exec {out_fd}<>"$out_fifo"
  timeout -k 5 "$run_timeout" "${launcher[@]}" env "${env_args[@]}" "$workload" \
    "${workload_args[@]}" --start-fifo "$start_fifo" >"$out_fifo" 2>"$err" {out_fd}<&- &
  local run_pid=$!
  bg_pids+=("$run_pid")

  local port="" pid="" curl_pid=""
  if [[ "$kind" == cpprof ]]; then
    port="$(cpprof_port "$log")" || { cat "$log" "$err" >&2; die "$config: cpprof did not serve"; }
    pid="$(sed -n 's/.*(pid \([0-9]*\)).*/\1/p' "$log" | tail -1)"
    local seconds="${profile_seconds:-$run_timeout}"
    curl -s -o "$tmp/profile.pb.gz" --max-time $((run_timeout + 10)) \
      "http://127.0.0.1:$port/debug/pprof/profile?seconds=$seconds" &
    curl_pid=$!
    bg_pids+=("$curl_pid")
    wait_window_open "$port" || die "$config: the CPU profile window did not open"
  fi

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

  # Wait for the result line without polling in a tight loop: `read -t 1`
  # wakes once a second to check that the workload is still alive.
  local line=""
  while :; do
    if IFS= read -r -t 1 -u "$out_fd" line; then break; fi
    line=""
    kill -0 "$run_pid" 2>/dev/null || break
  done
  [[ -z "$line" ]] && IFS= read -r -t 0.5 -u "$out_fd" line || true

  # While the workload lingers: cpprof's counters and its threads' CPU.
  if [[ "$kind" == cpprof && -n "$line" ]]; then
    read -r r_own_ns r_drain_ns <<<"$(cpprof_threads_cpu "$pid")"
    local page dropped
    page="$(curl -s --max-time 2 "http://127.0.0.1:$port/debug/pprof/" || true)"
    r_samples="$(index_value "$page" "CPU samples taken")"
    dropped="$(index_value "$page" "CPU samples dropped")"
    [[ -n "$dropped" && "$dropped" != 0 ]] && r_note+="dropped=$dropped "
    [[ -n "$r_samples" ]] || r_note+="no-index-page "
  fi

  local rc=0
  wait_or_kill "$run_pid" $((run_timeout + 10)) || rc=$?
  exec {out_fd}<&-
  if [[ -n "$curl_pid" ]]; then
    # The workload's exit closes the held request (curl fails: empty reply);
    # a curl that succeeded means the window ended before the work did.
    local curl_rc=0
    wait_or_kill "$curl_pid" 5 || curl_rc=$?
    if [[ -z "$profile_seconds" && "$curl_rc" == 0 ]]; then
      r_note+="window-ended-before-run "
    fi
    if [[ -n "$profile_out" ]]; then
      [[ "$curl_rc" == 0 ]] || die "$config: the ${profile_seconds}s profile request failed (curl $curl_rc)"
      cp "$tmp/profile.pb.gz" "$profile_out"
    fi
  fi
  if [[ "$kind" == perf ]]; then
    # One line per sample (tid only: no call-chain lines).
    r_samples="$(perf script -i "$tmp/perf.data" -F tid 2>/dev/null | wc -l)"
    rm -f "$tmp/perf.data"
  fi
  if [[ "$kind" == gperf ]]; then
    r_samples="$(sed -n 's|^PROFILE: interrupts/evictions/bytes = \([0-9]*\)/.*|\1|p' "$err" | tail -1)"
    [[ -s "$prof" ]] || r_note+="no-gperf-profile "
  fi
  if [[ "$rc" != 0 || -z "$line" ]]; then
    cat "$err" >&2 || true
    die "$config: workload failed (exit $rc)"
  fi
  r_line="$line"
}

median() { sort -g | awk '{v[NR]=$1} END {if (NR==0) {print ""; exit}
  if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }

config_hz="$( (zcat /proc/config.gz 2>/dev/null || cat "/boot/config-$(uname -r)" 2>/dev/null) |
  sed -n 's/^CONFIG_HZ=//p' | head -1)"
cpu_model="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out_dir"
csv="$out_dir/cpu_overhead-$stamp.csv"
md="$out_dir/cpu_overhead-$stamp.md"

echo "# cpu_overhead $(date -u '+%Y-%m-%d %H:%M UTC'): $(nproc) CPUs ($cpu_model)," \
  "kernel $(uname -r), CONFIG_HZ=${config_hz:-unknown}, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# workload: $workload ${workload_args[*]}; $reps reps of: ${configs[*]}"

# --- check once that a profile taken this way is real ----------------------
if [[ "${VERIFY:-1}" != 0 ]]; then
  if ((have_go)); then
    for hz in 100 1000; do
      run_one "cpprof-$hz" 2 "$tmp/verify-$hz.pb.gz"
      raw="$(go tool pprof -symbolize=none -raw "$tmp/verify-$hz.pb.gz" 2>/dev/null)"
      top="$(go tool pprof -symbolize=none -top "$tmp/verify-$hz.pb.gz" 2>/dev/null)"
      stats="$(awk '/^samples\/count/ {on=1; next} /^Locations/ {on=0}
        on && NF >= 3 && $2 ~ /^[0-9]+:$/ {n += $1; ns += $2; d = NF - 2; if (d > max) max = d}
        END {printf "%d %d %d", n, ns, max}' <<<"$raw")"
      read -r v_samples v_ns v_depth <<<"$stats"
      ((v_samples > 0)) || die "cpprof-$hz: the 2 s profile has no samples"
      grep -q mix_arithmetic <<<"$top" || die "cpprof-$hz: the 2 s profile lacks the workload's functions"
      echo "# verify cpprof-$hz: 2 s window: $v_samples samples," \
        "$(awk -v ns="$v_ns" 'BEGIN {printf "%.2f", ns / 1e9}') CPU-s in the profile," \
        "deepest stack $v_depth frames;" \
        "mix_arithmetic $(awk '/mix_arithmetic/ {print $2; exit}' <<<"$top") flat"
    done
  else
    echo "# verify: skipped (no go)"
  fi
fi

# --- the measurement --------------------------------------------------------
echo "rep,config,work_cpu_ns,process_cpu_ns,workers_cpu_ns,wall_ns,samples,cpprof_threads_ns,cpprof_cpu_thread_ns,note" >"$csv"
for ((rep = 1; rep <= reps; rep++)); do
  mapfile -t order < <(shuf -e "${configs[@]}")
  for config in "${order[@]}"; do
    run_one "$config"
    printf '%s,%s,%s,%s,%s,%s,%s,%s,%s,%s\n' "$rep" "$config" \
      "$(field "$r_line" work_cpu_ns)" "$(field "$r_line" process_cpu_ns)" \
      "$(field "$r_line" workers_cpu_ns)" "$(field "$r_line" wall_ns)" \
      "$r_samples" "$r_own_ns" "$r_drain_ns" "${r_note% }" >>"$csv"
    printf '# rep %d/%d %-12s cpu %6.3f s  wall %6.3f s  samples %s %s\n' "$rep" "$reps" "$config" \
      "$(awk -v v="$(field "$r_line" work_cpu_ns)" 'BEGIN {print v / 1e9}')" \
      "$(awk -v v="$(field "$r_line" wall_ns)" 'BEGIN {print v / 1e9}')" "${r_samples:--}" "$r_note"
  done
done

# --- the summary --------------------------------------------------------------
col() {  # col CONFIG COLUMN: that column of every run of CONFIG
  awk -F, -v c="$1" -v k="$2" 'NR == 1 {for (i = 1; i <= NF; i++) if ($i == k) j = i; next}
    $2 == c && $j != "" {print $j}' "$csv"
}
paired_ratios() {  # each run's work_cpu_ns over the `none` run of its rep
  awk -F, -v c="$1" 'NR > 1 && $2 == "none" {base[$1] = $3} NR > 1 && $2 == c {v[$1] = $3}
    END {for (r in v) if (r in base) printf "%.6f\n", v[r] / base[r]}' "$csv"
}
none_median="$(col none work_cpu_ns | median)"
{
  echo "| config | median CPU s | ratio to none (of medians) | per-rep ratio: median [min–max] | median wall s | samples/run (median) | samples per CPU-s | cpprof threads CPU ms (cpprof-cpu) |"
  echo "|---|---|---|---|---|---|---|---|"
  for config in "${configs[@]}"; do
    cpu="$(col "$config" work_cpu_ns | median)"
    wall="$(col "$config" wall_ns | median)"
    samples="$(col "$config" samples | median)"
    own="$(col "$config" cpprof_threads_ns | median)"
    drain="$(col "$config" cpprof_cpu_thread_ns | median)"
    ratio="-" paired="-" per_s="-" own_ms="-"
    [[ -n "$none_median" ]] && ratio="$(awk -v a="$cpu" -v b="$none_median" 'BEGIN {printf "%.3f", a / b}')"
    if [[ "$config" != none && -n "$none_median" ]]; then
      pr="$(paired_ratios "$config" | sort -g)"
      paired="$(median <<<"$pr" | awk '{printf "%.3f", $1}') [$(head -1 <<<"$pr" | awk '{printf "%.3f", $1}')–$(tail -1 <<<"$pr" | awk '{printf "%.3f", $1}')]"
    fi
    [[ -n "$samples" ]] && per_s="$(awk -v s="$samples" -v c="$cpu" 'BEGIN {printf "%.0f", s / (c / 1e9)}')"
    [[ -n "$own" ]] && own_ms="$(awk -v a="$own" -v d="$drain" 'BEGIN {printf "%.1f (%.1f)", a / 1e6, d / 1e6}')"
    printf '| %s | %.3f | %s | %s | %.3f | %s | %s | %s |\n' "$config" \
      "$(awk -v v="$cpu" 'BEGIN {print v / 1e9}')" "$ratio" "$paired" \
      "$(awk -v v="$wall" 'BEGIN {print v / 1e9}')" "${samples:--}" "$per_s" "$own_ms"
  done
  none_spread="$( (col none work_cpu_ns; col none-aa work_cpu_ns) | sort -g | awk '{v[NR] = $1} END {if (NR) printf "%.1f", (v[NR] - v[1]) / v[1] * 100}')"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs ($cpu_model), kernel $(uname -r)," \
    "CONFIG_HZ=${config_hz:-unknown}; $reps reps, interleaved; load average at the end" \
    "$(cut -d' ' -f1-3 /proc/loadavg); spread of the unprofiled runs (max−min)/min: ${none_spread:-?} %."
  echo "Command: bench/run_cpu_overhead.sh -n $reps${iterations:+ -i $iterations} $build"
} >"$md"
echo
cat "$md"
echo
echo "# runs: $csv"
echo "# summary: $md"
