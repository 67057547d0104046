// Every replaceable operator new and delete, and new expressions (array
// cookies, over-aligned types): alignment, counts, and failing requests.

#include <cstddef>
#include <new>
#include <vector>

#include <gtest/gtest.h>

#include "alloc_test_support.h"

namespace cpprof::alloc_test {
namespace {

// The exception object a throw of std::bad_alloc allocates (libstdc++ takes
// it from malloc): what a failing throwing operator new legitimately adds.
Counts ThrowBadAllocDelta() {
  return Delta([] {
    try {
      throw std::bad_alloc();
    } catch (const std::bad_alloc&) {
    }
  });
}

// One replaceable form of operator new with the deallocation form used for
// it; `alignment` 0 for the unaligned forms.
struct NewDeletePair {
  const char* name;
  void* (*allocate)(size_t n, std::align_val_t al);
  void (*deallocate)(void* p, size_t n, std::align_val_t al);
  bool aligned;
};

// clang-format off
const NewDeletePair kNewDeletePairs[] = {
  {"new / delete",
   [](size_t n, std::align_val_t) { return ::operator new(n); },
   [](void* p, size_t, std::align_val_t) { ::operator delete(p); }, false},
  {"new / sized delete",
   [](size_t n, std::align_val_t) { return ::operator new(n); },
   [](void* p, size_t n, std::align_val_t) { ::operator delete(p, n); }, false},
  {"new / nothrow delete",
   [](size_t n, std::align_val_t) { return ::operator new(n); },
   [](void* p, size_t, std::align_val_t) { ::operator delete(p, std::nothrow); }, false},
  {"new[] / delete[]",
   [](size_t n, std::align_val_t) { return ::operator new[](n); },
   [](void* p, size_t, std::align_val_t) { ::operator delete[](p); }, false},
  {"new[] / sized delete[]",
   [](size_t n, std::align_val_t) { return ::operator new[](n); },
   [](void* p, size_t n, std::align_val_t) { ::operator delete[](p, n); }, false},
  {"new[] / nothrow delete[]",
   [](size_t n, std::align_val_t) { return ::operator new[](n); },
   [](void* p, size_t, std::align_val_t) { ::operator delete[](p, std::nothrow); }, false},
  {"nothrow new / delete",
   [](size_t n, std::align_val_t) { return ::operator new(n, std::nothrow); },
   [](void* p, size_t, std::align_val_t) { ::operator delete(p); }, false},
  {"nothrow new[] / delete[]",
   [](size_t n, std::align_val_t) { return ::operator new[](n, std::nothrow); },
   [](void* p, size_t, std::align_val_t) { ::operator delete[](p); }, false},
  {"aligned new / aligned delete",
   [](size_t n, std::align_val_t al) { return ::operator new(n, al); },
   [](void* p, size_t, std::align_val_t al) { ::operator delete(p, al); }, true},
  {"aligned new / sized aligned delete",
   [](size_t n, std::align_val_t al) { return ::operator new(n, al); },
   [](void* p, size_t n, std::align_val_t al) { ::operator delete(p, n, al); }, true},
  {"aligned new / nothrow aligned delete",
   [](size_t n, std::align_val_t al) { return ::operator new(n, al); },
   [](void* p, size_t, std::align_val_t al) { ::operator delete(p, al, std::nothrow); }, true},
  {"aligned new[] / aligned delete[]",
   [](size_t n, std::align_val_t al) { return ::operator new[](n, al); },
   [](void* p, size_t, std::align_val_t al) { ::operator delete[](p, al); }, true},
  {"aligned new[] / sized aligned delete[]",
   [](size_t n, std::align_val_t al) { return ::operator new[](n, al); },
   [](void* p, size_t n, std::align_val_t al) { ::operator delete[](p, n, al); }, true},
  {"aligned new[] / nothrow aligned delete[]",
   [](size_t n, std::align_val_t al) { return ::operator new[](n, al); },
   [](void* p, size_t, std::align_val_t al) { ::operator delete[](p, al, std::nothrow); }, true},
  {"nothrow aligned new / aligned delete",
   [](size_t n, std::align_val_t al) { return ::operator new(n, al, std::nothrow); },
   [](void* p, size_t, std::align_val_t al) { ::operator delete(p, al); }, true},
  {"nothrow aligned new[] / aligned delete[]",
   [](size_t n, std::align_val_t al) { return ::operator new[](n, al, std::nothrow); },
   [](void* p, size_t, std::align_val_t al) { ::operator delete[](p, al); }, true},
};
// clang-format on

TEST(OperatorNew, EveryFormCountsOneAllocAndItsDeleteOneFree) {
  for (const NewDeletePair& form : kNewDeletePairs) {
    const std::vector<size_t> alignments =
        form.aligned ? std::vector<size_t>{32, 64, 256, 4096, 65536} : std::vector<size_t>{16};
    for (size_t alignment : alignments) {
      for (size_t n : {size_t{1}, size_t{48}, size_t{5000}, kMiB}) {
        SCOPED_TRACE(::testing::Message()
                     << form.name << ", alignment " << alignment << ", size " << n);
        const auto al = static_cast<std::align_val_t>(alignment);
        void* p = nullptr;
        const Counts d = Delta([&] { p = form.allocate(Opaque(n), al); });
        ASSERT_NE(p, nullptr);
        EXPECT_COUNTS(d, 1, 0, n);
        EXPECT_TRUE(IsAligned(p, form.aligned ? alignment : MallocAlignment(n))) << p;
        Fill(p, n, 15);
        EXPECT_TRUE(HasFill(p, n, 15));
        const Counts f = Delta([&] { form.deallocate(Opaque(p), n, al); });
        EXPECT_COUNTS(f, 0, 1, 0);
      }
    }
  }
}

TEST(OperatorDelete, OfNullIsNotCountedInAnyForm) {
  const auto al = std::align_val_t{64};
  const Counts d = Delta([&] {
    // A fresh opaque null for each call: the compiler may not assume that
    // one deletion leaves the pointer unusable for the next.
    auto null = [] { return Opaque<void*>(nullptr); };
    ::operator delete(null());
    ::operator delete[](null());
    ::operator delete (null(), size_t{8});
    ::operator delete[](null(), size_t{8});
    ::operator delete(null(), std::nothrow);
    ::operator delete[](null(), std::nothrow);
    ::operator delete(null(), al);
    ::operator delete[](null(), al);
    ::operator delete (null(), size_t{64}, al);
    ::operator delete[](null(), size_t{64}, al);
    ::operator delete(null(), al, std::nothrow);
    ::operator delete[](null(), al, std::nothrow);
  });
  EXPECT_COUNTS(d, 0, 0, 0);
}

struct WidgetWithDestructor {
  ~WidgetWithDestructor() { Escape(this); }
  int values[13];
};
struct alignas(256) OverAligned {
  char bytes[300];
};
struct alignas(256) OverAlignedWithDestructor {
  ~OverAlignedWithDestructor() { Escape(this); }
  char bytes[300];
};

TEST(NewExpression, ObjectAndArrayCountTheBytesPassedToOperatorNew) {
  Widget* w = nullptr;
  Counts d = Delta([&] { w = new Widget{}; });
  EXPECT_COUNTS(d, 1, 0, sizeof(Widget));
  Escape(w);
  d = Delta([&] { delete Opaque(w); });
  EXPECT_COUNTS(d, 0, 1, 0);

  Widget* a = nullptr;
  const size_t count = Opaque(size_t{7});
  d = Delta([&] { a = new Widget[count]; });
  EXPECT_COUNTS(d, 1, 0, 7 * sizeof(Widget));
  Escape(a);
  d = Delta([&] { delete[] Opaque(a); });
  EXPECT_COUNTS(d, 0, 1, 0);

  // A non-trivial destructor makes the array carry its length in a cookie
  // (Itanium C++ ABI: one size_t before the elements), requested from
  // operator new[] along with them.
  WidgetWithDestructor* c = nullptr;
  d = Delta([&] { c = new WidgetWithDestructor[count]; });
  EXPECT_COUNTS(d, 1, 0, 7 * sizeof(WidgetWithDestructor) + sizeof(size_t));
  d = Delta([&] { delete[] Opaque(c); });
  EXPECT_COUNTS(d, 0, 1, 0);
}

TEST(NewExpression, OverAlignedTypesGetTheirAlignmentAndAreCounted) {
  static_assert(sizeof(OverAligned) == 512);
  OverAligned* o = nullptr;
  Counts d = Delta([&] { o = new OverAligned{}; });
  ASSERT_NE(o, nullptr);
  EXPECT_TRUE(IsAligned(o, 256)) << o;
  EXPECT_COUNTS(d, 1, 0, sizeof(OverAligned));
  Fill(o->bytes, sizeof(o->bytes), 16);
  d = Delta([&] { delete Opaque(o); });
  EXPECT_COUNTS(d, 0, 1, 0);

  const size_t count = Opaque(size_t{3});
  OverAligned* a = nullptr;
  d = Delta([&] { a = new OverAligned[count]; });
  ASSERT_NE(a, nullptr);
  for (size_t i = 0; i < 3; ++i) EXPECT_TRUE(IsAligned(&a[i], 256)) << i;
  EXPECT_COUNTS(d, 1, 0, 3 * sizeof(OverAligned));
  d = Delta([&] { delete[] Opaque(a); });
  EXPECT_COUNTS(d, 0, 1, 0);

  // The cookie of an over-aligned type is padded to its alignment.
  OverAlignedWithDestructor* c = nullptr;
  d = Delta([&] { c = new OverAlignedWithDestructor[count]; });
  ASSERT_NE(c, nullptr);
  EXPECT_TRUE(IsAligned(&c[0], 256));
  EXPECT_COUNTS(d, 1, 0, 3 * sizeof(OverAlignedWithDestructor) + 256);
  d = Delta([&] { delete[] Opaque(c); });
  EXPECT_COUNTS(d, 0, 1, 0);
}

TEST(OperatorNew, NothrowFormsReturnNullOnHugeRequestsWithoutCountingThem) {
  SKIP_WHERE_ASAN_ABORTS("allocation-size-too-big");
  // libstdc++'s nothrow new calls the throwing one and catches: the
  // bad_alloc it throws is a real (counted) allocation, the request is not.
  const Counts thrown = ThrowBadAllocDelta();
  const auto al = std::align_val_t{128};
  void* results[4] = {&results, &results, &results, &results};
  const Counts deltas[4] = {
      Delta([&] { results[0] = ::operator new(Opaque(kHuge), std::nothrow); }),
      Delta([&] { results[1] = ::operator new[](Opaque(kHuge), std::nothrow); }),
      Delta([&] { results[2] = ::operator new(Opaque(kHuge), al, std::nothrow); }),
      Delta([&] { results[3] = ::operator new[](Opaque(kHuge), al, std::nothrow); }),
  };
  for (int i = 0; i < 4; ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(results[i], nullptr);
    if (CountsChecked()) {
      EXPECT_TRUE(deltas[i] == Counts{} || deltas[i] == thrown)
          << ::testing::PrintToString(deltas[i]) << " vs a throw's "
          << ::testing::PrintToString(thrown);
    }
  }
}

TEST(OperatorNew, ThrowingFormsThrowBadAllocOnHugeRequestsWithoutCountingThem) {
  SKIP_WHERE_ASAN_ABORTS("allocation-size-too-big");
  const Counts thrown = ThrowBadAllocDelta();
  const auto al = std::align_val_t{128};
  using Form = void* (*)(size_t, std::align_val_t);
  const Form forms[] = {
      [](size_t n, std::align_val_t) { return ::operator new(n); },
      [](size_t n, std::align_val_t) { return ::operator new[](n); },
      [](size_t n, std::align_val_t a) { return ::operator new(n, a); },
      [](size_t n, std::align_val_t a) { return ::operator new[](n, a); },
  };
  for (int i = 0; i < 4; ++i) {
    SCOPED_TRACE(i);
    bool caught = false;
    void* p = nullptr;
    const Counts d = Delta([&] {
      try {
        p = forms[i](Opaque(kHuge), al);
      } catch (const std::bad_alloc&) {
        caught = true;
      }
    });
    EXPECT_TRUE(caught);
    EXPECT_EQ(p, nullptr);
    EXPECT_COUNTS(d, thrown.allocs, thrown.frees, thrown.bytes);
  }
}

}  // namespace
}  // namespace cpprof::alloc_test
