#include "sources/cpu/unwind_tables.h"

#include <elf.h>
#include <link.h>

#include <algorithm>
#include <mutex>

namespace cpprof::sources {
namespace {

using Segments = std::vector<std::pair<uintptr_t, uintptr_t>>;

constexpr int kGraceMs = 1000;

struct ObjectKey {
  uintptr_t base;
  uintptr_t hdr;
  std::string name;
  bool operator<(const ObjectKey& other) const {
    if (base != other.base) return base < other.base;
    if (hdr != other.hdr) return hdr < other.hdr;
    return name < other.name;
  }
};

}  // namespace
struct UnwindTables::Published {
  std::map<ObjectKey, std::shared_ptr<const ObjectRows>> by_key;
  std::vector<capture::UnwindObject> objects;
  capture::UnwindIndex index;
};

UnwindTables::UnwindTables() = default;
UnwindTables::~UnwindTables() {
  unpublish();
  // A handler stuck inside a walk may still read these: never free them.
  for (std::unique_ptr<Published>& kept : leaked_) (void)kept.release();
  if (current_ != nullptr) (void)current_.release();
}

void UnwindTables::refresh(bool force) {
  struct Pass {
    UnwindTables* self;
    bool force;
    bool changed = false;
    bool first = true;
    bool failed = false;
    std::unique_ptr<Published> next;
  } pass{this, force};
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t size, void* data) -> int {
        auto* p = static_cast<Pass*>(data);
        // Nothing may unwind through glibc's dl_iterate_phdr (it holds the
        // loader's lock): a failure (out of memory) ends this pass instead.
        try {
          if (p->first) {
            p->first = false;
            // Counters of loads and unloads since start: unchanged means no work.
            if (size >= offsetof(dl_phdr_info, dlpi_subs) + sizeof(info->dlpi_subs) && !p->force &&
                p->self->current_ != nullptr && info->dlpi_adds == p->self->adds_ &&
                info->dlpi_subs == p->self->subs_) {
              return 1;
            }
            p->changed = true;
            p->self->adds_ = info->dlpi_adds;
            p->self->subs_ = info->dlpi_subs;
            p->next = std::make_unique<Published>();
          }
          uintptr_t hdr = 0;
          Segments segments;
          for (int i = 0; i < info->dlpi_phnum; ++i) {
            const ElfW(Phdr)& ph = info->dlpi_phdr[i];
            if (ph.p_type == PT_GNU_EH_FRAME) hdr = info->dlpi_addr + ph.p_vaddr;
            if (ph.p_type == PT_LOAD && (ph.p_flags & PF_R) != 0) {
              segments.emplace_back(info->dlpi_addr + ph.p_vaddr,
                                    info->dlpi_addr + ph.p_vaddr + ph.p_memsz);
            }
          }
          if (hdr == 0) return 0;
          ObjectKey key{info->dlpi_addr, hdr, info->dlpi_name != nullptr ? info->dlpi_name : ""};
          if (p->self->current_ != nullptr) {
            auto it = p->self->current_->by_key.find(key);
            if (it != p->self->current_->by_key.end()) {
              p->next->by_key.emplace(key, it->second);
              return 0;
            }
          }
          auto rows = std::make_shared<ObjectRows>();
          rows->name = key.name;
          rows->base = info->dlpi_addr;
          if (decode_eh_frame(info->dlpi_addr, hdr, segments, rows.get())) {
            p->next->by_key.emplace(key, std::move(rows));
          }
          return 0;
        } catch (...) {
          p->failed = true;
          return 1;
        }
      },
      &pass);
  if (pass.failed) {
    adds_ = subs_ = ~0ull;  // try again at the next refresh
    return;
  }
  if (!pass.changed) return;
  Published& next = *pass.next;
  for (const auto& [key, rows] : next.by_key) {
    capture::UnwindObject object;
    object.start = rows->start;
    object.limit = rows->limit;
    object.base = rows->base;
    object.rows = rows->rows.data();
    object.row_count = static_cast<uint32_t>(rows->rows.size());
    object.page_first = rows->page_first.data();
    object.page_count = static_cast<uint32_t>(rows->page_first.size() - 1);
    next.objects.push_back(object);
  }
  std::sort(next.objects.begin(), next.objects.end(),
            [](const capture::UnwindObject& a, const capture::UnwindObject& b) {
              return a.start < b.start;
            });
  // Overlapping objects cannot both be right: keep the first.
  std::vector<capture::UnwindObject> disjoint;
  for (const capture::UnwindObject& object : next.objects) {
    if (disjoint.empty() || object.start >= disjoint.back().limit) disjoint.push_back(object);
  }
  next.objects = std::move(disjoint);
  next.index.objects = next.objects.data();
  next.index.count = next.objects.size();
  ++refreshes_;
  std::unique_ptr<Published> old = std::move(current_);
  current_ = std::move(pass.next);
  bool free_old = capture::publish_unwind_index(&current_->index, kGraceMs);
  if (free_old) {
    old.reset();
  } else {
    leaked_.push_back(std::move(old));
  }
}

void UnwindTables::unpublish() {
  if (current_ == nullptr) return;
  if (capture::publish_unwind_index(nullptr, kGraceMs)) {
    current_.reset();
  } else {
    leaked_.push_back(std::move(current_));
  }
  adds_ = subs_ = ~0ull;
}

const capture::UnwindIndex* UnwindTables::index() const {
  return current_ != nullptr ? &current_->index : nullptr;
}

const ObjectRows* UnwindTables::object_for(uintptr_t pc) const {
  if (current_ == nullptr) return nullptr;
  for (const auto& [key, rows] : current_->by_key) {
    if (pc >= rows->start && pc < rows->limit) return rows.get();
  }
  return nullptr;
}

UnwindStats UnwindTables::stats() const {
  UnwindStats s;
  s.refreshes = refreshes_;
  s.leaked = leaked_.size();
  if (current_ == nullptr) return s;
  s.objects = current_->objects.size();
  for (const auto& [key, rows] : current_->by_key) {
    s.rows += rows->rows.size();
    s.bytes +=
        rows->rows.size() * sizeof(capture::UnwindRow) + rows->page_first.size() * sizeof(uint32_t);
  }
  return s;
}

std::mutex& process_unwind_tables_mutex() {
  static std::mutex* mu = new std::mutex;  // never destroyed, as the tables
  return *mu;
}

void refresh_process_unwind_tables() {
  static UnwindTables* tables = new UnwindTables;  // never destroyed: handlers may walk at exit
  std::lock_guard<std::mutex> lock(process_unwind_tables_mutex());
  tables->refresh();
}

}  // namespace cpprof::sources
