// The registry of profiles the HTTP layer serves under /debug/pprof/<name>.
//
// Like Go's net/http/pprof: one generic handler over entries of
// {name, description, count, collect}. Adding a profile type means adding a
// source and one entry here; the routes and encoders stay untouched.
// Thread-safe: entries are added before the server starts and then only read.
//
// Which server thread calls what (see server.h): count() and, for windowed
// entries, open() run on the io thread and must return quickly; finish(),
// delta(), write_text() and write_collection_text() run on the worker
// thread, as do open() for snapshots and deltas. A Collection is destroyed
// on one of the two server threads (or, after stop(), on the thread that
// called stop()), never while finish() runs.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "profile/profile.h"

namespace cpprof::http {

// A collection in progress: opened when a request arrives, finished when
// its window (seconds=N) has passed. Destroyed without finish() when the
// client goes away.
class Collection {
 public:
  virtual ~Collection() = default;
  // The profile of the window since the collection was opened.
  virtual profile::Profile finish() = 0;
};

// Why a collection could not be opened: HTTP status and one line of text.
struct Refusal {
  int status = 503;
  std::string message;
};

// Thrown by Collection::finish() when the profile cannot be given after
// all (CPU sampling had to stop during the window): the request gets the
// refusal's status and message instead of a 500.
class CollectionRefused : public std::runtime_error {
 public:
  explicit CollectionRefused(Refusal refusal)
      : std::runtime_error(refusal.message), refusal_(std::move(refusal)) {}
  // The status and message to answer with.
  const Refusal& refusal() const { return refusal_; }

 private:
  Refusal refusal_;
};

struct ProfileEntry {
  std::string name;         // path component: /debug/pprof/<name>
  std::string description;  // one line for the index page
  // Current count shown on the index page; nullopt shows nothing.
  std::function<std::optional<int64_t>()> count;
  // Window when the request has no seconds=N: 0 means "a snapshot now"
  // (heap, goroutine), the CPU profile's is 30.
  int default_seconds = 0;
  // debug=N values this entry understands beyond 0 (e.g. {1, 2} for goroutine).
  std::vector<int> text_debug_levels;
  // Opens a collection, or says why not (e.g. 503 when too many run).
  std::function<std::unique_ptr<Collection>(Refusal* refusal)> open;
  // For seconds=N on a snapshot profile: the difference later - earlier
  // (Go's delta profiles). Unset: deltas are not offered.
  std::function<profile::Profile(const profile::Profile& earlier, const profile::Profile& later)>
      delta;
  // Go's plain-text form of a finished profile for debug=N (N in
  // text_debug_levels). Unset: text forms are not offered, whatever
  // text_debug_levels says.
  std::function<std::string(const profile::Profile& profile, int debug)> write_text;
  // Instead of write_text, for entries whose text needs more than a
  // finished profile holds (the heap profile's text prints raw sample
  // counts; its Profile holds them unbiased): the text for debug=N of a
  // collection (a snapshot's just opened, a window's once its time is up),
  // which is then dropped without finish(). Text forms are offered when
  // either is set; this one wins.
  std::function<std::string(Collection& collection, int debug)> write_collection_text;
};

// Whether `entry` has a text form for the debug levels it lists.
inline bool writes_text(const ProfileEntry& entry) {
  return entry.write_text || entry.write_collection_text;
}

class Registry {
 public:
  // Adds `entry`; an entry of the same name is replaced (the later wins).
  void add(ProfileEntry entry);
  // The entry called `name`, or nullptr. The pointer stays valid until the next add().
  const ProfileEntry* find(const std::string& name) const;
  // Every entry, in the order added.
  const std::vector<ProfileEntry>& entries() const { return entries_; }

 private:
  std::vector<ProfileEntry> entries_;
};

}  // namespace cpprof::http
