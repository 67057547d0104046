// std::new_handler: operator new calls it on failure and retries, lets its
// exception out, and nothrow new returns null when it throws bad_alloc.

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>

#include <gtest/gtest.h>

#include "alloc_test_support.h"

namespace cpprof::alloc_test {
namespace {

struct NewHandlerScope {
  explicit NewHandlerScope(std::new_handler h) : previous(std::set_new_handler(h)) {}
  ~NewHandlerScope() { std::set_new_handler(previous); }
  std::new_handler previous;
};

int g_handler_calls = 0;
void* g_reserve = nullptr;
struct HandlerGaveUp {};

// The virtual memory size of the process, in bytes, read without allocating.
size_t VirtualMemorySize() {
  char buf[128] = {};
  const int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  const ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0) return 0;
  return std::strtoull(buf, nullptr, 10) * PageSize();
}

TEST(NewHandler, ThatFreesAReserveLetsTheRetrySucceed) {
  SKIP_WHERE_ASAN_ABORTS("a failed operator new");
  SKIP_WHERE_EVERY_ALLOCATION_IS_SAMPLED(
      "the request fits in the region cpprof reserved before the address-space limit");
  // An address-space limit makes the request fail while the reserve is held
  // and fit once the handler has freed it.
  constexpr size_t kReserve = 256 * kMiB;
  constexpr size_t kRequest = 200 * kMiB;
  g_reserve = malloc(Opaque(kReserve));
  ASSERT_NE(g_reserve, nullptr);
  g_handler_calls = 0;
  const size_t vm = VirtualMemorySize();
  ASSERT_GT(vm, 0u);
  rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_AS, &saved), 0);
  rlimit limited = saved;
  limited.rlim_cur = vm + 128 * kMiB;
  if (saved.rlim_cur != RLIM_INFINITY && saved.rlim_cur < limited.rlim_cur) {
    GTEST_SKIP() << "RLIMIT_AS is already lower than this test needs";
  }
  NewHandlerScope scope([] {
    ++g_handler_calls;
    if (g_reserve == nullptr) throw HandlerGaveUp{};
    free(g_reserve);
    g_reserve = nullptr;
  });
  void* p = nullptr;
  bool gave_up = false;
  bool bad_alloc = false;
  ASSERT_EQ(setrlimit(RLIMIT_AS, &limited), 0);
  const Counts d = Delta([&] {
    try {
      p = ::operator new(Opaque(kRequest));
    } catch (const HandlerGaveUp&) {
      gave_up = true;
    } catch (const std::bad_alloc&) {
      bad_alloc = true;
    }
  });
  ASSERT_EQ(setrlimit(RLIMIT_AS, &saved), 0);
  EXPECT_FALSE(gave_up) << "the allocator did not reuse the freed reserve";
  EXPECT_FALSE(bad_alloc);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(g_handler_calls, 1);
  EXPECT_EQ(g_reserve, nullptr);
  // The failed attempt is not counted; the handler's free and the retry are.
  EXPECT_COUNTS(d, 1, 1, kRequest);
  std::memset(p, 1, PageSize());
  ::operator delete(p, kRequest);
  if (g_reserve != nullptr) free(g_reserve);
}

TEST(NewHandler, ThatThrowsPropagatesItsExceptionOutOfEveryThrowingForm) {
  SKIP_WHERE_ASAN_ABORTS("a failed operator new");
  NewHandlerScope scope([] {
    ++g_handler_calls;
    throw HandlerGaveUp{};
  });
  const auto al = std::align_val_t{64};
  using Form = void* (*)(size_t, std::align_val_t);
  const Form forms[] = {
      [](size_t n, std::align_val_t) { return ::operator new(n); },
      [](size_t n, std::align_val_t) { return ::operator new[](n); },
      [](size_t n, std::align_val_t a) { return ::operator new(n, a); },
      [](size_t n, std::align_val_t a) { return ::operator new[](n, a); },
  };
  for (int i = 0; i < 4; ++i) {
    SCOPED_TRACE(i);
    g_handler_calls = 0;
    bool caught = false;
    try {
      void* p = forms[i](Opaque(kHuge), al);
      Escape(p);
    } catch (const HandlerGaveUp&) {
      caught = true;
    }
    EXPECT_TRUE(caught);
    EXPECT_EQ(g_handler_calls, 1);
  }
}

TEST(NewHandler, IsCalledUntilItUninstallsItselfThenNewThrowsBadAlloc) {
  SKIP_WHERE_ASAN_ABORTS("a failed operator new");
  g_handler_calls = 0;
  NewHandlerScope scope([] {
    if (++g_handler_calls == 3) std::set_new_handler(nullptr);
  });
  bool caught = false;
  try {
    void* p = ::operator new(Opaque(kHuge));
    Escape(p);
  } catch (const std::bad_alloc&) {
    caught = true;
  }
  EXPECT_TRUE(caught);
  EXPECT_EQ(g_handler_calls, 3);
}

TEST(NewHandler, IsCalledByNothrowNewWhichReturnsNullWhenItThrowsBadAlloc) {
  SKIP_WHERE_ASAN_ABORTS("a failed operator new");
  NewHandlerScope scope([] {
    ++g_handler_calls;
    throw std::bad_alloc();
  });
  const auto al = std::align_val_t{64};
  g_handler_calls = 0;
  EXPECT_EQ(::operator new(Opaque(kHuge), std::nothrow), nullptr);
  EXPECT_EQ(g_handler_calls, 1);
  g_handler_calls = 0;
  EXPECT_EQ(::operator new[](Opaque(kHuge), std::nothrow), nullptr);
  EXPECT_EQ(g_handler_calls, 1);
  g_handler_calls = 0;
  EXPECT_EQ(::operator new(Opaque(kHuge), al, std::nothrow), nullptr);
  EXPECT_EQ(g_handler_calls, 1);
}

}  // namespace
}  // namespace cpprof::alloc_test
