#include "api/thread_entries.h"

#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "sources/heap/heap_delta.h"
#include "sources/threads/thread_dump.h"
#include "sources/threads/thread_profiles.h"

namespace cpprof::api {
namespace {

// One request's dump, taken when it opens.
class ThreadCollection final : public http::Collection {
 public:
  ThreadCollection(sources::ThreadDump dump, symbolize::Symbolizer& symbolizer, bool creation)
      : dump_(std::move(dump)), symbolizer_(symbolizer), creation_(creation) {}

  profile::Profile finish() override {
    return creation_ ? sources::threadcreate_profile(dump_, symbolizer_)
                     : sources::goroutine_profile(dump_, symbolizer_);
  }
  std::string text(int debug) const {
    return creation_ ? sources::threadcreate_text(dump_, symbolizer_)
                     : sources::goroutine_text(dump_, symbolizer_, debug);
  }

 private:
  sources::ThreadDump dump_;
  symbolize::Symbolizer& symbolizer_;
  bool creation_;
};

http::ProfileEntry thread_entry(std::string name, std::string description,
                                symbolize::Symbolizer& symbolizer, bool creation) {
  http::ProfileEntry entry;
  entry.name = std::move(name);
  entry.description = std::move(description);
  entry.count = [] {
    const int64_t count = sources::host_thread_count();
    return count < 0 ? std::nullopt : std::optional<int64_t>(count);
  };
  entry.text_debug_levels = creation ? std::vector<int>{1} : std::vector<int>{1, 2};
  // seconds=N: Go's serveDeltaProfile (later minus earlier per stack, zeros
  // dropped), which delta_heap implements for any profile of this process.
  entry.delta = sources::delta_heap;
  entry.open = [&symbolizer, creation](http::Refusal*) -> std::unique_ptr<http::Collection> {
    sources::DumpOptions options;
    options.stacks = !creation;  // where threads were made needs no walk of where they are
    return std::make_unique<ThreadCollection>(sources::dump_threads(options), symbolizer, creation);
  };
  entry.write_collection_text = [](http::Collection& collection, int debug) {
    // Only this entry's open() makes the collections it is given.
    return static_cast<const ThreadCollection&>(collection).text(debug);
  };
  return entry;
}

}  // namespace

void add_thread_entries(http::Registry& registry, symbolize::Symbolizer& symbolizer) {
  registry.add(thread_entry("goroutine",
                            "Stack traces of all current threads (the host's; cpprof's own are "
                            "counted on this page). Use debug=2 as a query parameter to export "
                            "in the same format as an unrecovered panic.",
                            symbolizer, /*creation=*/false));
  registry.add(thread_entry("threadcreate",
                            "Stack traces that led to the creation of new OS threads", symbolizer,
                            /*creation=*/true));
}

}  // namespace cpprof::api
