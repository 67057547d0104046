#include "http/registry.h"

#include <utility>

namespace cpprof::http {

void Registry::add(ProfileEntry entry) {
  for (ProfileEntry& existing : entries_) {
    if (existing.name == entry.name) {
      existing = std::move(entry);
      return;
    }
  }
  entries_.push_back(std::move(entry));
}

const ProfileEntry* Registry::find(const std::string& name) const {
  for (const ProfileEntry& entry : entries_) {
    if (entry.name == name) return &entry;
  }
  return nullptr;
}

}  // namespace cpprof::http
