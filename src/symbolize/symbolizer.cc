#include "symbolize/symbolizer.h"

#include <sys/auxv.h>

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <map>
#include <tuple>
#include <unordered_map>

#include "symbolize/demangle.h"
#include "symbolize/elf_file.h"
#include "symbolize/mapping_set.h"
#include "symbolize/proc_maps.h"
#include "symbolize/simplify_name.h"

namespace cpprof::symbolize {
namespace {

constexpr std::string_view kVdso = "[vdso]";

// An object behind one or more mappings; `elf` is null if it could not be read.
struct LoadedObject {
  std::unique_ptr<ElfFile> elf;
  // Demangling is the costliest step of a repeated lookup; names by symbol address.
  std::unordered_map<uint64_t, std::string> demangled;
};

// Files are identified by path and inode so that a library replaced on disk
// (same path, new inode) is a different object. The vDSO has no inode; its
// start address stands in.
using ObjectKey = std::tuple<std::string, uint64_t, uint64_t>;

// The vDSO's ELF image in our own memory, if `entry` is the vDSO mapping.
std::unique_ptr<ElfFile> open_vdso(const MapsEntry& entry) {
  uint64_t image = getauxval(AT_SYSINFO_EHDR);
  // Only read memory the kernel told us holds the image.
  if (image == 0 || image != entry.start) return nullptr;
  std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(image),
                                 static_cast<size_t>(entry.limit - entry.start));
  return ElfFile::from_memory(bytes, std::string(kVdso));
}

// The file behind `entry`, which must be the file that was mapped: the path
// may since name another file (upgraded) or nothing (deleted), in which case
// /proc/self/map_files still reaches the mapped one while it is mapped.
std::unique_ptr<ElfFile> open_file(const MapsEntry& entry) {
  if (!entry.deleted) {
    std::unique_ptr<ElfFile> elf = ElfFile::open(entry.path);
    // Only the inode is compared: on overlayfs the device numbers in
    // /proc/self/maps and stat() differ for the same file.
    if (elf && (entry.inode == 0 || elf->inode() == entry.inode)) return elf;
  }
  char path[80];
  std::snprintf(path, sizeof(path), "/proc/self/map_files/%" PRIx64 "-%" PRIx64, entry.start,
                entry.limit);
  std::unique_ptr<ElfFile> elf = ElfFile::open(path);
  if (elf && entry.inode != 0 && elf->inode() != entry.inode) return nullptr;
  return elf;
}

}  // namespace

struct Symbolizer::Impl {
  MappingSet mappings;
  std::vector<LoadedObject> objects;
  std::map<ObjectKey, size_t> object_index;
  std::string maps_text;  // kept to reuse its buffer

  void refresh_from(std::string_view text) {
    for (const MapsEntry& entry : parse_proc_maps(text)) {
      if (!entry.executable()) continue;
      size_t index = mappings.add(entry);
      KnownMapping& known = mappings.at(index);
      if (known.object == SIZE_MAX) known.object = object_for(entry);
    }
  }

  void refresh() {
    if (read_proc_maps(&maps_text)) refresh_from(maps_text);
  }

  std::chrono::steady_clock::time_point last_miss_refresh{};

  // Opens (once) the object behind `entry`; SIZE_MAX for anonymous code and
  // pseudo mappings other than the vDSO.
  size_t object_for(const MapsEntry& entry) {
    bool vdso = entry.path == kVdso;
    if (!vdso && (entry.path.empty() || entry.path.front() != '/')) return SIZE_MAX;
    ObjectKey key{entry.path, vdso ? 0 : entry.inode, vdso ? entry.start : 0};
    auto [it, inserted] = object_index.try_emplace(key, objects.size());
    if (inserted) objects.push_back({vdso ? open_vdso(entry) : open_file(entry), {}});
    return it->second;
  }

  // Index of the mapping holding `address`, refreshing if unknown. Garbage
  // addresses (a broken frame chain) miss every time, so misses refresh at
  // most every 50 ms: a profile full of them costs one read, not thousands.
  size_t find(uint64_t address) {
    size_t index = mappings.find(address);
    auto now = std::chrono::steady_clock::now();
    if (index == SIZE_MAX && now - last_miss_refresh >= std::chrono::milliseconds(50)) {
      last_miss_refresh = now;
      refresh();
      index = mappings.find(address);
    }
    return index;
  }

  Mapping to_mapping(const KnownMapping& known) const {
    Mapping out{.start = known.entry.start,
                .limit = known.entry.limit,
                .file_offset = known.entry.offset,
                .path = known.entry.path,
                .build_id = {}};
    if (known.object != SIZE_MAX && objects[known.object].elf) {
      out.build_id = objects[known.object].elf->build_id();
    }
    return out;
  }

  std::vector<Frame> symbolize(uint64_t address) {
    size_t index = find(address);
    if (index == SIZE_MAX) return {};
    const KnownMapping& known = mappings.all()[index];
    if (known.object == SIZE_MAX || !objects[known.object].elf) return {};
    LoadedObject& object = objects[known.object];
    std::optional<uint64_t> vaddr =
        object.elf->vaddr_of_file_offset(address - known.entry.start + known.entry.offset);
    if (!vaddr) return {};
    const ElfSymbol* symbol = object.elf->find_symbol(*vaddr);
    if (symbol == nullptr) return {};
    auto [name, inserted] = object.demangled.try_emplace(symbol->address);
    if (inserted) name->second = simplify_function_name(demangle(symbol->name));
    Frame frame;
    frame.function = name->second;
    frame.raw_name = std::string(symbol->name);
    // The symbol lies in the same segment as the address, so the same
    // runtime-minus-ELF offset applies to it.
    frame.function_start = address - (*vaddr - symbol->address);
    return {std::move(frame)};
  }
};

Symbolizer::Symbolizer() : impl_(std::make_unique<Impl>()) {}

Symbolizer::~Symbolizer() = default;

void Symbolizer::refresh() {
  std::lock_guard<std::mutex> lock(mu_);
  impl_->refresh();
}

void Symbolizer::refresh_from(std::string_view maps_text) {
  std::lock_guard<std::mutex> lock(mu_);
  impl_->refresh_from(maps_text);
}

bool Symbolizer::find_mapping(uint64_t address, Mapping* out) {
  std::lock_guard<std::mutex> lock(mu_);
  size_t index = impl_->find(address);
  if (index == SIZE_MAX) return false;
  *out = impl_->to_mapping(impl_->mappings.all()[index]);
  return true;
}

std::vector<Mapping> Symbolizer::mappings() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Mapping> out;
  out.reserve(impl_->mappings.all().size());
  for (const KnownMapping& known : impl_->mappings.all()) out.push_back(impl_->to_mapping(known));
  return out;
}

std::vector<Frame> Symbolizer::symbolize(uint64_t address) {
  std::lock_guard<std::mutex> lock(mu_);
  return impl_->symbolize(address);
}

}  // namespace cpprof::symbolize
