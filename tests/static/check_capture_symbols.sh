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
  # The interposer also walks its caller's stack (the thread's creation
  # stack): getpid (a plain system call) and the loader's variable for the
  # main thread's stack top.
  [thread_hooks.cc.o]="dlsym pthread_getattr_np pthread_attr_getstack pthread_attr_destroy
    __start_cpprof_thread_start __stop_cpprof_thread_start _Unwind_Resume __gxx_personality_v0
    getpid __libc_stack_end"
  # A thread dump's requester (never a handler) queues the capture signal
  # with a sender's pid and uid, as sigqueue does: plain system calls.
  [thread_capture.cc.o]="getpid getuid"
  # Walks over another thread's stack copy (thread dumps, never a handler)
  # check a candidate return address's call instruction with
  # process_vm_readv on this process: getpid, a plain system call.
  [unwind.cc.o]="getpid"
  # The malloc family finds the allocator below it once (dlsym, dladdr),
  # in the first allocation or at load, while allocations meanwhile come
  # from a static arena; glibc's __libc_* entry points are the fallback.
  # sysconf(_SC_PAGESIZE) reads a value the loader set. __start_/__stop_:
  # the bounds of the hooks' own section.
  # It takes the addresses of malloc and free (to learn where a call from
  # this object lands), never calls them.
  [malloc_resolve.cc.o]="malloc free dlsym dladdr __libc_malloc __libc_free __libc_calloc
    __libc_realloc __libc_memalign __start_cpprof_alloc_hooks __stop_cpprof_alloc_hooks"
  [malloc_hooks.cc.o]="sysconf"
  # Registered once at load, from a constructor: the fork child's reset.
  [alloc_counters.cc.o]="pthread_atfork"
  # The sampler's distance is -log(uniform) * rate (pure arithmetic in
  # libm); the main thread's stack top is a variable the loader sets;
  # getpid is a plain system call.
  [heap_sampler.cc.o]="log ceil getpid __libc_stack_end"
  # Freed page runs of sampled objects go back to the kernel.
  # getrlimit: the address-space limit the reservation must respect.
  [sampled_region.cc.o]="madvise getrlimit"
  [sanitizer_alloc_hooks.cc.o]="__sanitizer_install_malloc_and_free_hooks
    __start_cpprof_alloc_hooks __stop_cpprof_alloc_hooks"
  # operator new keeps C++'s contract: the new-handler, and std::bad_alloc
  # thrown (the nothrow forms catch it). new is never called in a signal
  # handler, and nothing in src/capture/ calls it.
  # When the program defines malloc itself, new and delete call its malloc,
  # posix_memalign and free.
  [new_hooks.cc.o]="malloc posix_memalign free _ZSt15get_new_handlerv _ZNSt9bad_allocD1Ev _ZTISt9bad_alloc
    _ZTVSt9bad_alloc __cxa_allocate_exception __cxa_throw __cxa_begin_catch __cxa_end_catch
    _ZSt9terminatev _Unwind_Resume __gxx_personality_v0"
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
