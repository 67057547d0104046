#include "symbolize/symbolizer.h"

#include <sys/auxv.h>
#include <unistd.h>

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <map>
#include <tuple>
#include <unordered_map>

#include "symbolize/demangle.h"
#include "symbolize/dw_library.h"
#include "symbolize/dwarf_reader.h"
#include "symbolize/elf_file.h"
#include "symbolize/mapping_set.h"
#include "symbolize/proc_maps.h"
#include "symbolize/simplify_name.h"

namespace cpprof::symbolize {
namespace {

constexpr std::string_view kVdso = "[vdso]";

// Answers from DWARF kept per object. A profile asks about each address
// once, and successive profiles about mostly the same ones; beyond this
// many the cache starts over rather than grow with a long-running host.
constexpr size_t kMaxCachedAddresses = 1 << 15;

// An object behind one or more mappings; `elf` is null if it could not be read.
struct LoadedObject {
  std::unique_ptr<ElfFile> elf;
  // Demangling is the costliest step of a repeated lookup; names by symbol address.
  std::unordered_map<uint64_t, std::string> demangled;

  // DWARF, opened at the first address that needs it.
  bool dwarf_opened = false;
  std::unique_ptr<DwarfReader> dwarf;
  // Frames by ELF address, function_start not set; empty: DWARF knows nothing there.
  std::unordered_map<uint64_t, std::vector<Frame>> dwarf_frames;
  // Shortened names by raw (linkage) name.
  std::unordered_map<std::string, std::string> short_names;
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
  explicit Impl(SymbolizerOptions opts) : options(opts) {}

  SymbolizerOptions options;
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

  // Where the function holding `address` starts, by ELF symbols; 0 if unknown.
  uint64_t function_start(uint64_t address) {
    size_t index = find(address);
    if (index == SIZE_MAX) return 0;
    const KnownMapping& known = mappings.all()[index];
    if (known.object == SIZE_MAX || !objects[known.object].elf) return 0;
    LoadedObject& object = objects[known.object];
    std::optional<uint64_t> vaddr =
        object.elf->vaddr_of_file_offset(address - known.entry.start + known.entry.offset);
    if (!vaddr) return 0;
    const ElfSymbol* symbol = object.elf->find_symbol(*vaddr);
    return symbol != nullptr ? address - (*vaddr - symbol->address) : 0;
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
    // The symbol lies in the same segment as the address, so the same
    // runtime-minus-ELF offset applies to it.
    const uint64_t start = symbol != nullptr ? address - (*vaddr - symbol->address) : 0;
    if (const std::vector<Frame>* frames = dwarf_frames(object, *vaddr, symbol)) {
      std::vector<Frame> out = *frames;
      out.back().function_start = start;
      return out;
    }
    if (symbol == nullptr) return {};
    // A symbol version ("clock_gettime@@GLIBC_2.17" in libc's .symtab) is
    // no part of the function's name.
    std::string_view raw = std::string_view(symbol->name).substr(0, symbol->name.find('@'));
    auto [name, inserted] = object.demangled.try_emplace(symbol->address);
    if (inserted) name->second = simplify_function_name(demangle(raw));
    Frame frame;
    frame.function = name->second;
    frame.raw_name = std::string(raw);
    frame.function_start = start;
    return {std::move(frame)};
  }

  // The frames DWARF gives for ELF address `vaddr` of `object` (cached);
  // nullptr if it gives none, and the ELF symbol is all there is.
  const std::vector<Frame>* dwarf_frames(LoadedObject& object, uint64_t vaddr,
                                         const ElfSymbol* symbol) {
    if (!options.read_dwarf) return nullptr;
    auto cached = object.dwarf_frames.find(vaddr);
    if (cached == object.dwarf_frames.end()) {
      DwarfReader* reader = dwarf_reader(object);
      if (reader == nullptr) return nullptr;
      if (object.dwarf_frames.size() >= kMaxCachedAddresses) object.dwarf_frames.clear();
      cached =
          object.dwarf_frames.emplace(vaddr, frames_from(object, *reader, vaddr, symbol)).first;
    }
    return cached->second.empty() ? nullptr : &cached->second;
  }

  // Opens the object's DWARF the first time it is needed; libdw itself is
  // loaded only once an object turns out to have DWARF.
  DwarfReader* dwarf_reader(LoadedObject& object) {
    if (object.dwarf_opened) return object.dwarf.get();
    object.dwarf_opened = true;
    const MappedFile* file = object.elf->dwarf_file();
    if (file == nullptr) return nullptr;
    const DwLibrary* lib = dw_library();
    if (lib == nullptr) return nullptr;
    // libdw wants a descriptor; reopen() reaches the file we mapped even
    // if it was deleted or replaced since (dlclose, package upgrades).
    int fd = file->reopen();
    if (fd < 0) return nullptr;
    object.dwarf = DwarfReader::open(*lib, fd);
    close(fd);
    return object.dwarf.get();
  }

  std::vector<Frame> frames_from(LoadedObject& object, DwarfReader& reader, uint64_t vaddr,
                                 const ElfSymbol* symbol) {
    std::vector<DwarfFrame> found;
    if (!reader.frames_at(vaddr, &found)) return {};
    std::vector<Frame> frames;
    frames.reserve(found.size());
    for (size_t i = 0; i < found.size(); ++i) {
      DwarfFrame& d = found[i];
      Frame frame;
      // Only a C++ linkage name is worth having: in C code it is an
      // assembler alias at best (glibc's "__GI_qsort" for qsort).
      if (d.linkage_name.starts_with("_Z")) {
        frame.raw_name = std::move(d.linkage_name);
      } else if (i + 1 == found.size() && symbol != nullptr) {
        // The out-of-line function of C code, or of assembly, which has no
        // function entry at all: the symbol's name, as the ELF-only answer
        // gives it.
        frame.raw_name = std::string(symbol->name);
      } else {
        frame.raw_name = std::move(d.name);
      }
      if (!frame.raw_name.empty()) frame.function = short_name(object, frame.raw_name);
      frame.file = std::move(d.file);
      frame.line = d.line;
      frame.start_line = d.decl_line;
      frames.push_back(std::move(frame));
    }
    return frames;
  }

  const std::string& short_name(LoadedObject& object, const std::string& raw_name) {
    auto [name, inserted] = object.short_names.try_emplace(raw_name);
    if (inserted) name->second = simplify_function_name(demangle(raw_name));
    return name->second;
  }
};

Symbolizer::Symbolizer() : Symbolizer(SymbolizerOptions{}) {}

Symbolizer::Symbolizer(SymbolizerOptions options) : impl_(std::make_unique<Impl>(options)) {}

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

uint64_t Symbolizer::function_start(uint64_t address) {
  std::lock_guard<std::mutex> lock(mu_);
  return impl_->function_start(address);
}

bool Symbolizer::dwarf_available() { return dw_library() != nullptr; }

}  // namespace cpprof::symbolize
