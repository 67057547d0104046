#include "capture/signal_safe.h"

#include <sys/syscall.h>
#include <unistd.h>

namespace cpprof::capture {

int current_tid() { return static_cast<int>(syscall(SYS_gettid)); }

}  // namespace cpprof::capture
