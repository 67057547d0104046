// The handler's stack walk with the rows decoded from .eh_frame: through
// glibc (no frame pointers), from a PC inside libc, up to main().
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "capture/frame_walk.h"
#include "capture/unwind.h"
#include "sources/cpu/unwind_tables.h"
#include "symbolize/symbolizer.h"

namespace cpprof::sources {
namespace {

struct Captured {
  const capture::UnwindIndex* index = nullptr;
  uintptr_t lo = 0;
  uintptr_t hi = 0;
  uint64_t dwarf[64];
  size_t dwarf_depth = 0;
  bool leaf_unwound = false;
  uint64_t fp[64];
  size_t fp_depth = 0;
};
Captured g_captured;

void capture_in_handler(int, siginfo_t*, void* ucontext) {
  capture::MachineState state = capture::machine_state_from_ucontext(ucontext);
  capture::WalkResult r = capture::walk_stack_with(g_captured.index, state, g_captured.lo,
                                                   g_captured.hi, g_captured.dwarf, 64);
  g_captured.dwarf_depth = r.depth;
  g_captured.leaf_unwound = r.leaf_unwound;
  g_captured.fp_depth =
      capture::walk_frame_pointers(state, g_captured.lo, g_captured.hi, g_captured.fp, 64);
}

void current_stack_bounds(uintptr_t* lo, uintptr_t* hi) {
  pthread_attr_t attr;
  ASSERT_EQ(pthread_getattr_np(pthread_self(), &attr), 0);
  void* addr = nullptr;
  size_t size = 0;
  pthread_attr_getstack(&attr, &addr, &size);
  pthread_attr_destroy(&attr);
  *lo = reinterpret_cast<uintptr_t>(addr);
  *hi = *lo + size;
}

int g_compares = 0;

// Raises the signal from inside qsort's comparator: the handler sees a PC
// inside libc's pthread_kill, under the comparator, under libc's sort.
extern "C" __attribute__((noinline)) int compare_and_capture(const void* a, const void* b) {
  if (++g_compares == 3) pthread_kill(pthread_self(), SIGUSR2);
  return *static_cast<const int*>(a) - *static_cast<const int*>(b);
}

extern "C" __attribute__((noinline)) void sort_with_qsort() {
  std::vector<int> values = {9, 3, 7, 1, 8, 2, 6, 4, 5, 0};
  g_compares = 0;
  qsort(values.data(), values.size(), sizeof(int), compare_and_capture);
  asm volatile("" ::: "memory");
}

std::vector<std::string> names(symbolize::Symbolizer& symbolizer, const uint64_t* frames,
                               size_t depth) {
  std::vector<std::string> out;
  for (size_t i = 0; i < depth; ++i) {
    auto found = symbolizer.symbolize(i == 0 ? frames[i] : frames[i] - 1);
    out.push_back(found.empty() ? "?" : found.back().function);
  }
  return out;
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& n : v) s += n + " <- ";
  return s;
}

ptrdiff_t position(const std::vector<std::string>& v, const std::string& name) {
  auto it = std::find(v.begin(), v.end(), name);
  return it == v.end() ? -1 : it - v.begin();
}

class UnwindTest : public ::testing::Test {
 protected:
  void SetUp() override {
    struct sigaction action {};
    action.sa_sigaction = capture_in_handler;
    action.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR2, &action, &previous_);
    current_stack_bounds(&g_captured.lo, &g_captured.hi);
  }
  void TearDown() override { sigaction(SIGUSR2, &previous_, nullptr); }
  struct sigaction previous_ {};
};

TEST_F(UnwindTest, DecodesRowsForTheProgramAndLibc) {
  UnwindTables tables;
  tables.refresh();
  UnwindStats stats = tables.stats();
  EXPECT_GE(stats.objects, 3u);  // this program, libc, libstdc++ at least
  const ObjectRows* libc = tables.object_for(reinterpret_cast<uintptr_t>(&qsort));
  ASSERT_NE(libc, nullptr);
  EXPECT_GT(libc->fdes, 500u);
  EXPECT_GT(libc->rows.size(), libc->fdes);
  ASSERT_NE(tables.object_for(reinterpret_cast<uintptr_t>(&sort_with_qsort)), nullptr);
  // Sorted, and the page index agrees with a plain search.
  for (size_t i = 1; i < libc->rows.size(); ++i) {
    ASSERT_LT(libc->rows[i - 1].pc_offset, libc->rows[i].pc_offset);
  }
  for (uintptr_t pc = libc->start; pc < libc->limit; pc += 97) {
    const capture::UnwindRow* row = capture::find_unwind_row(*tables.index(), pc);
    ASSERT_NE(row, nullptr);
    auto offset = static_cast<uint32_t>(pc - libc->base);
    auto it =
        std::upper_bound(libc->rows.begin(), libc->rows.end(), offset,
                         [](uint32_t o, const capture::UnwindRow& r) { return o < r.pc_offset; });
    ASSERT_EQ(row, &*(it - 1)) << "pc offset " << offset;
  }
}

TEST_F(UnwindTest, AFunctionWithAFrameHasTheStandardRowInItsBody) {
  UnwindTables tables;
  tables.refresh();
  // Past the prologue (push rbp; mov rbp,rsp): CFA = rbp + 16, rbp saved at CFA - 16.
  auto start = reinterpret_cast<uintptr_t>(&sort_with_qsort);
  const capture::UnwindRow* entry = capture::find_unwind_row(*tables.index(), start);
  ASSERT_NE(entry, nullptr);
  EXPECT_EQ(entry->cfa_rule, capture::CfaRule::kSp);
  EXPECT_EQ(entry->cfa_offset, 8);
  const capture::UnwindRow* body = capture::find_unwind_row(*tables.index(), start + 24);
  ASSERT_NE(body, nullptr);
  EXPECT_EQ(body->cfa_rule, capture::CfaRule::kFp);
  EXPECT_EQ(body->cfa_offset, 16);
  EXPECT_EQ(body->fp_rule, capture::FpRule::kSaved);
  EXPECT_EQ(body->fp_offset, -16);
}

TEST_F(UnwindTest, WalksFromInsideLibcThroughQsortToMain) {
  UnwindTables tables;
  tables.refresh();
  g_captured.index = tables.index();
  sort_with_qsort();
  ASSERT_GT(g_captured.dwarf_depth, 0u);
  symbolize::Symbolizer symbolizer;
  auto dwarf = names(symbolizer, g_captured.dwarf, g_captured.dwarf_depth);
  auto fp = names(symbolizer, g_captured.fp, g_captured.fp_depth);
  EXPECT_TRUE(g_captured.leaf_unwound) << joined(dwarf);
  ptrdiff_t comparator = position(dwarf, "compare_and_capture");
  ptrdiff_t sorter = position(dwarf, "sort_with_qsort");
  ptrdiff_t main_at = position(dwarf, "main");
  ASSERT_GT(comparator, 0) << joined(dwarf);
  ASSERT_GT(sorter, comparator + 1) << joined(dwarf);  // libc's sort lies between
  EXPECT_GT(main_at, sorter) << joined(dwarf);
  for (ptrdiff_t i = comparator + 1; i < sorter; ++i) {
    Dl_info info{};
    ASSERT_NE(dladdr(reinterpret_cast<void*>(g_captured.dwarf[i] - 1), &info), 0);
    EXPECT_EQ(info.dli_fbase, [] {
      Dl_info libc{};
      dladdr(reinterpret_cast<void*>(&qsort), &libc);
      return libc.dli_fbase;
    }()) << dwarf[i];
  }
  // The frame-pointer walk alone does not see libc's frames between them.
  ptrdiff_t fp_comparator = position(fp, "compare_and_capture");
  ptrdiff_t fp_sorter = position(fp, "sort_with_qsort");
  if (fp_comparator >= 0 && fp_sorter >= 0) {
    EXPECT_LT(fp_sorter - fp_comparator, sorter - comparator) << joined(fp);
  }
}

TEST_F(UnwindTest, WithoutRowsTheWalkIsTheFramePointerWalk) {
  g_captured.index = nullptr;
  sort_with_qsort();
  ASSERT_EQ(g_captured.dwarf_depth, g_captured.fp_depth);
  for (size_t i = 0; i < g_captured.fp_depth; ++i) {
    EXPECT_EQ(g_captured.dwarf[i], g_captured.fp[i]);
  }
  EXPECT_FALSE(g_captured.leaf_unwound);
}

// Memory with an inaccessible page on each side: a read outside faults.
class GuardedRegion {
 public:
  explicit GuardedRegion(size_t bytes) : size_((bytes + 4095) / 4096 * 4096) {
    void* p = mmap(nullptr, size_ + 2 * 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return;
    base_ = static_cast<uint8_t*>(p);
    mprotect(base_ + 4096, size_, PROT_READ | PROT_WRITE);
  }
  ~GuardedRegion() {
    if (base_ != nullptr) munmap(base_, size_ + 2 * 4096);
  }
  uint8_t* data() { return base_ + 4096; }
  size_t size() const { return size_; }
  bool ok() const { return base_ != nullptr; }

 private:
  size_t size_;
  uint8_t* base_ = nullptr;
};

TEST_F(UnwindTest, NeverReadsOutsideTheGivenStackBounds) {
  UnwindTables tables;
  tables.refresh();
  // A fake stack between guard pages, whose words point back into it or
  // just outside: every step must stay inside [sp, hi) and the walk end.
  GuardedRegion stack(4096);
  ASSERT_TRUE(stack.ok());
  auto* words = reinterpret_cast<uintptr_t*>(stack.data());
  const size_t n = stack.size() / sizeof(uintptr_t);
  auto lo = reinterpret_cast<uintptr_t>(words);
  auto hi = lo + stack.size();
  auto code = reinterpret_cast<uintptr_t>(&sort_with_qsort);
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    uint64_t x = seed;
    for (size_t i = 0; i < n; ++i) {
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      switch (x >> 62) {
        case 0:
          words[i] = lo + ((x >> 20) % (n + 8)) * 8 - 32;
          break;  // in or just out
        case 1:
          words[i] = code + ((x >> 20) % 4096);
          break;  // code of ours
        case 2:
          words[i] = reinterpret_cast<uintptr_t>(&qsort) + ((x >> 20) % 4096);
          break;
        default:
          words[i] = x;
          break;
      }
    }
    uint64_t frames[64];
    capture::MachineState state{code + (seed % 64), lo + (seed * 8) % 2048, words[seed % n]};
    capture::WalkResult r = capture::walk_stack_with(tables.index(), state, lo, hi, frames, 64);
    ASSERT_GE(r.depth, 1u);
    ASSERT_LE(r.depth, 64u);
  }
  capture::MachineState top{code + 24, hi, lo};  // SP at the top: nothing to read
  uint64_t frames[64];
  EXPECT_EQ(capture::walk_stack_with(tables.index(), top, lo, hi, frames, 64).depth, 1u);
}

// Malformed call-frame information must never make the decoder read
// outside the object or loop: libc's own tables, copied between guard
// pages and corrupted byte by byte, decode without a fault (or a hang).
TEST_F(UnwindTest, CorruptedEhFrameNeverReadsOutsideTheObject) {
  struct Found {
    uintptr_t base = 0, hdr = 0, seg_lo = 0, seg_hi = 0;
  } found;
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* data) -> int {
        auto* f = static_cast<Found*>(data);
        uintptr_t hdr = 0;
        for (int i = 0; i < info->dlpi_phnum; ++i) {
          if (info->dlpi_phdr[i].p_type == PT_GNU_EH_FRAME)
            hdr = info->dlpi_addr + info->dlpi_phdr[i].p_vaddr;
        }
        if (hdr == 0 || info->dlpi_name == nullptr ||
            std::string(info->dlpi_name).find("libc.so") == std::string::npos)
          return 0;
        for (int i = 0; i < info->dlpi_phnum; ++i) {
          const auto& ph = info->dlpi_phdr[i];
          uintptr_t lo = info->dlpi_addr + ph.p_vaddr;
          if (ph.p_type == PT_LOAD && hdr >= lo && hdr < lo + ph.p_memsz) {
            *f = {info->dlpi_addr, hdr, lo, lo + ph.p_memsz};
            return 1;
          }
        }
        return 0;
      },
      &found);
  ASSERT_NE(found.hdr, 0u) << "libc has no PT_GNU_EH_FRAME in a loaded segment";
  const size_t size = found.seg_hi - found.seg_lo;
  GuardedRegion copy(size);
  ASSERT_TRUE(copy.ok());
  // The same layout relative to a moved base: pc-relative pointers keep working.
  auto copy_lo = reinterpret_cast<uintptr_t>(copy.data());
  uintptr_t base = copy_lo - (found.seg_lo - found.base);
  uintptr_t hdr = copy_lo + (found.hdr - found.seg_lo);
  std::vector<std::pair<uintptr_t, uintptr_t>> segments = {{copy_lo, copy_lo + size}};
  std::memcpy(copy.data(), reinterpret_cast<const void*>(found.seg_lo), size);
  ObjectRows intact;
  ASSERT_TRUE(decode_eh_frame(base, hdr, segments, &intact));
  EXPECT_GT(intact.fdes, 500u);
  // Corrupt the header and the tables it points into.
  const size_t hdr_at = found.hdr - found.seg_lo;
  uint64_t x = 12345;
  for (int round = 0; round < 300; ++round) {
    std::memcpy(copy.data(), reinterpret_cast<const void*>(found.seg_lo), size);
    for (int k = 0; k < 16; ++k) {
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      // The header, or the tables after it (.eh_frame follows .eh_frame_hdr).
      size_t at = round % 3 == 0 ? hdr_at + (x >> 33) % 64 : hdr_at + (x >> 20) % (size - hdr_at);
      copy.data()[at] = static_cast<uint8_t>(x >> 56);
    }
    ObjectRows rows;
    decode_eh_frame(base, hdr, segments, &rows);  // any answer, but no fault
    if (!rows.rows.empty() && !rows.page_first.empty()) {
      ASSERT_EQ(rows.page_first.size() - 1,
                ((rows.limit - rows.start) >> capture::kUnwindPageShift) + 1);
      for (size_t i = 1; i < rows.rows.size(); ++i) {
        ASSERT_LT(rows.rows[i - 1].pc_offset, rows.rows[i].pc_offset);
      }
    }
  }
}

TEST_F(UnwindTest, PublishingWaitsForNoWalkAndSwapsTheIndex) {
  UnwindTables tables;
  tables.refresh();
  size_t before = tables.stats().refreshes;
  tables.refresh();  // nothing loaded since: no new index
  EXPECT_EQ(tables.stats().refreshes, before);
  // A library of the test tree, loaded by nothing else.
  void* handle =
      dlopen(CPPROF_TEST_BINARY_DIR "/lib/libcpprof_test_churn.so", RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(handle, nullptr) << dlerror();
  tables.refresh();
  EXPECT_EQ(tables.stats().refreshes, before + 1);
  EXPECT_EQ(tables.stats().leaked, 0u);
  void* function = dlsym(handle, "churn_hot_loop");
  ASSERT_NE(function, nullptr);
  EXPECT_NE(tables.object_for(reinterpret_cast<uintptr_t>(function)), nullptr);
  // Unloaded: the next index no longer covers it, and the old one was freed
  // (no walk was running).
  dlclose(handle);
  tables.refresh();
  EXPECT_EQ(tables.stats().refreshes, before + 2);
  EXPECT_EQ(tables.stats().leaked, 0u);
  EXPECT_EQ(tables.object_for(reinterpret_cast<uintptr_t>(function)), nullptr);
}

}  // namespace
}  // namespace cpprof::sources
