#!/usr/bin/env bash
# Fails if an object of src/capture/ references anything outside a short
# list of async-signal-safe functions: no malloc or free, no operator
# new/delete, no locks (mutexes, static-init guards, condition variables),
# no stdio, no exceptions. Code in src/capture/ runs inside signal handlers
# and allocation hooks (DESIGN.md); a new undefined symbol must be reviewed
# and added here with the reason it is safe.
#
#   check_capture_symbols.sh OBJECT...
set -euo pipefail

# Safe anywhere, handlers included.
allowed=(
  _GLOBAL_OFFSET_TABLE_
  __errno_location  # errno itself (ErrnoGuard)
  clock_gettime     # vDSO or a plain system call
  mmap munmap       # the sample ring's memory, reserved off the hot path
  nanosleep         # publish_unwind_index's wait (never in a handler)
  pthread_self      # reads the thread pointer
  pthread_sigmask sigaction sigaddset sigemptyset sigfillset
  syscall           # gettid
  __libc_current_sigrtmin __libc_current_sigrtmax  # SIGRTMIN/SIGRTMAX: read a constant
)
# Allowed in one file only, because of where that code runs.
declare -A allowed_in=(
  # The pthread_create interposer runs in the creating thread's ordinary
  # context, and the start trampoline in the new thread before its
  # routine: not in a handler, not in an allocation hook.
  # The __start_/__stop_ pair is no call: the linker's bounds of the
  # trampoline's own section. The unwinder's personality routine runs only
  # when pthread_exit() unwinds the thread through the trampoline's guard.
  [thread_hooks.cc.o]="dlsym pthread_getattr_np pthread_attr_getstack pthread_attr_destroy
    __start_cpprof_thread_start __stop_cpprof_thread_start _Unwind_Resume __gxx_personality_v0"
)

# CTest passes $<TARGET_OBJECTS:...> as one ;-separated argument.
objects=()
for arg in "$@"; do
  IFS=';' read -ra parts <<<"$arg"
  objects+=("${parts[@]}")
done

status=0
for object in "${objects[@]}"; do
  name=$(basename "$object")
  extra=" $(echo ${allowed_in[$name]:-}) "
  while read -r symbol; do
    [[ -z "$symbol" ]] && continue
    [[ "$symbol" == _ZN6cpprof7capture* ]] && continue  # our own layer
    ok=0
    for a in "${allowed[@]}"; do [[ "$symbol" == "$a" ]] && ok=1 && break; done
    [[ $ok == 0 && "$extra" == *" $symbol "* ]] && ok=1
    if [[ $ok == 0 ]]; then
      echo "$name references $symbol ($(echo "$symbol" | c++filt)), which capture code may not call" >&2
      status=1
    fi
  done < <(nm -u "$object" | awk '{print $NF}')
done
[[ $status == 0 ]] && echo "checked ${#objects[@]} objects: only async-signal-safe references"
exit $status
