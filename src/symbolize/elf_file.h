// One ELF object on disk (or in memory, like the vDSO): its build-id, how its
// file offsets map to ELF virtual addresses, and its function symbols.
//
// Opening reads only headers and notes; symbol tables are read and sorted on
// the first lookup, and a separate debug file is searched for then, only if
// the object itself has no .symtab. Hostile or truncated files are rejected
// or yield fewer symbols, never a crash.
//
// It also says which file holds the object's DWARF (itself or its debug
// file) for DwarfReader, without reading the DWARF.
//
// Not thread-safe (lookups fill caches): the Symbolizer serializes access.
// Not for signal handlers.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "symbolize/elf_image.h"
#include "symbolize/mapped_file.h"
#include "symbolize/symbol_table.h"

namespace cpprof::symbolize {

class ElfFile {
 public:
  struct Options {
    bool use_debug_file = true;                 // look for a separate debug file if stripped
    std::string debug_root = "/usr/lib/debug";  // where distributions install them
  };

  // Maps the file at `path`; nullptr (and a reason in `error`) if it is not a
  // readable ELF64 object.
  static std::unique_ptr<ElfFile> open(const std::string& path, const Options& options,
                                       std::string* error = nullptr);
  static std::unique_ptr<ElfFile> open(const std::string& path) { return open(path, Options{}); }

  // An ELF image already in memory, e.g. the vDSO, named `name`. The bytes
  // are not copied and must outlive the ElfFile. No debug file is searched.
  static std::unique_ptr<ElfFile> from_memory(std::span<const uint8_t> bytes, std::string name,
                                              std::string* error = nullptr);

  ~ElfFile();
  ElfFile(const ElfFile&) = delete;
  ElfFile& operator=(const ElfFile&) = delete;

  // The path or name it was opened with.
  const std::string& path() const { return path_; }

  // GNU build-id as lowercase hex; empty if the object has none.
  const std::string& build_id() const { return image_.build_id(); }

  // Identity of the opened file (0 for memory images), to compare with
  // /proc/self/maps.
  uint64_t inode() const { return file_ ? file_->inode() : 0; }

  // PT_LOAD segments, for translating addresses.
  const std::vector<LoadSegment>& load_segments() const { return image_.load_segments(); }

  // The ELF virtual address at which the byte at `file_offset` is loaded:
  // from the PT_LOAD segment holding that offset (an executable one if
  // several do). nullopt if no segment holds it. A runtime address `addr` in
  // a mapping {start, file_offset} thus lies at
  // vaddr_of_file_offset(addr - start + file_offset).
  std::optional<uint64_t> vaddr_of_file_offset(uint64_t file_offset) const;

  // The function symbol containing ELF virtual address `vaddr`, or nullptr.
  // The pointer stays valid as long as this ElfFile.
  const ElfSymbol* find_symbol(uint64_t vaddr);

  // Every function symbol, ordered by address.
  const std::vector<ElfSymbol>& symbols();

  // Where the symbols came from: path(), or the separate debug file; empty
  // if there are none. Loads the symbols.
  const std::string& symbols_path();

  // The file holding this object's DWARF (a .debug_info section): the
  // object itself, or else its separate debug file, searched for as for
  // symbols. nullptr if neither has any, and for memory images. The file
  // stays mapped as long as this ElfFile. Searched once.
  const MappedFile* dwarf_file();

 private:
  ElfFile(std::unique_ptr<MappedFile> file, ElfImage image, std::string path, Options options);
  void load_symbols();
  bool load_debug_file_symbols();
  // The first candidate debug file that belongs to this object and that
  // `wanted` accepts (it may keep what it reads: the file is returned
  // mapped); nullptr if none. Its path goes to `found_path`.
  std::unique_ptr<MappedFile> find_debug_file(const std::function<bool(const ElfImage&)>& wanted,
                                              std::string* found_path);

  std::unique_ptr<MappedFile> file_;  // null for memory images
  ElfImage image_;
  std::string path_;
  Options options_;

  bool symbols_loaded_ = false;
  SymbolTable symbols_;
  std::string symbols_path_;
  // The separate debug file, kept mapped because symbol names point into it.
  std::unique_ptr<MappedFile> debug_file_;

  bool dwarf_searched_ = false;
  const MappedFile* dwarf_file_ = nullptr;  // file_, debug_file_ or dwarf_debug_file_
  std::unique_ptr<MappedFile> dwarf_debug_file_;
};

}  // namespace cpprof::symbolize
