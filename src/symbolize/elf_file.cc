#include "symbolize/elf_file.h"

#include <elf.h>

#include "symbolize/debug_file.h"

namespace cpprof::symbolize {
namespace {

// The .symtab of `image` if it names any function, else an empty table.
SymbolTable full_symbol_table(const ElfImage& image) {
  const ElfSection* symtab = image.find_section(".symtab", SHT_SYMTAB);
  return symtab != nullptr ? SymbolTable::build(image, *symtab) : SymbolTable();
}

// Whether `image` carries DWARF (possibly compressed, SHF_COMPRESSED or the
// older .zdebug form); a stripped file keeps the header of a removed section
// as SHT_NOBITS.
bool has_dwarf(const ElfImage& image) {
  for (std::string_view name : {".debug_info", ".zdebug_info"}) {
    const ElfSection* section = image.find_section(name);
    if (section != nullptr && section->type != SHT_NOBITS && section->size > 0) return true;
  }
  return false;
}

}  // namespace

ElfFile::ElfFile(std::unique_ptr<MappedFile> file, ElfImage image, std::string path,
                 Options options)
    : file_(std::move(file)),
      image_(std::move(image)),
      path_(std::move(path)),
      options_(std::move(options)) {}

ElfFile::~ElfFile() = default;

std::unique_ptr<ElfFile> ElfFile::open(const std::string& path, const Options& options,
                                       std::string* error) {
  std::unique_ptr<MappedFile> file = MappedFile::open(path, error);
  if (!file) return nullptr;
  std::optional<ElfImage> image = ElfImage::parse(file->bytes(), error);
  if (!image) {
    if (error != nullptr) *error = path + ": " + *error;
    return nullptr;
  }
  return std::unique_ptr<ElfFile>(new ElfFile(std::move(file), std::move(*image), path, options));
}

std::unique_ptr<ElfFile> ElfFile::from_memory(std::span<const uint8_t> bytes, std::string name,
                                              std::string* error) {
  std::optional<ElfImage> image = ElfImage::parse(bytes, error);
  if (!image) return nullptr;
  Options options;
  options.use_debug_file = false;
  return std::unique_ptr<ElfFile>(
      new ElfFile(nullptr, std::move(*image), std::move(name), options));
}

std::optional<uint64_t> ElfFile::vaddr_of_file_offset(uint64_t file_offset) const {
  std::optional<uint64_t> found;
  for (const LoadSegment& seg : image_.load_segments()) {
    if (file_offset < seg.file_offset || file_offset - seg.file_offset >= seg.file_size) continue;
    // Pages at segment edges can belong to two segments; code wins, as we
    // only ever translate addresses from executable mappings.
    found = seg.vaddr + (file_offset - seg.file_offset);
    if (seg.executable) break;
  }
  return found;
}

const ElfSymbol* ElfFile::find_symbol(uint64_t vaddr) {
  load_symbols();
  return symbols_.lookup(vaddr);
}

const std::vector<ElfSymbol>& ElfFile::symbols() {
  load_symbols();
  return symbols_.symbols();
}

const std::string& ElfFile::symbols_path() {
  load_symbols();
  return symbols_path_;
}

void ElfFile::load_symbols() {
  if (symbols_loaded_) return;
  symbols_loaded_ = true;
  symbols_ = full_symbol_table(image_);
  if (!symbols_.empty()) {
    symbols_path_ = path_;
    return;
  }
  if (options_.use_debug_file && load_debug_file_symbols()) return;
  // Stripped and no debug file: the dynamic symbols still name every
  // exported function.
  if (const ElfSection* dynsym = image_.find_section(".dynsym", SHT_DYNSYM)) {
    symbols_ = SymbolTable::build(image_, *dynsym);
  }
  if (!symbols_.empty()) symbols_path_ = path_;
}

bool ElfFile::load_debug_file_symbols() {
  SymbolTable table;
  std::string found_path;
  std::unique_ptr<MappedFile> file = find_debug_file(
      [&](const ElfImage& image) {
        table = full_symbol_table(image);
        return !table.empty();
      },
      &found_path);
  if (!file) return false;
  symbols_ = std::move(table);
  symbols_path_ = std::move(found_path);
  debug_file_ = std::move(file);
  return true;
}

std::unique_ptr<MappedFile> ElfFile::find_debug_file(
    const std::function<bool(const ElfImage&)>& wanted, std::string* found_path) {
  std::string link;
  uint32_t link_crc = 0;
  bool has_link = image_.debuglink(&link, &link_crc);
  for (const DebugFileCandidate& candidate :
       debug_file_candidates(path_, build_id(), has_link ? link : "", options_.debug_root)) {
    std::unique_ptr<MappedFile> file = MappedFile::open(candidate.path);
    if (!file) continue;
    std::optional<ElfImage> image = ElfImage::parse(file->bytes());
    if (!image) continue;
    // A stale debug file gives confidently wrong names: insist on a match.
    bool matches;
    if (candidate.by_build_id || (!build_id().empty() && !image->build_id().empty())) {
      matches = image->build_id() == build_id();
    } else {
      matches = debuglink_crc32(file->bytes()) == link_crc;
    }
    if (!matches || !wanted(*image)) continue;
    *found_path = candidate.path;
    return file;
  }
  return nullptr;
}

const MappedFile* ElfFile::dwarf_file() {
  if (dwarf_searched_) return dwarf_file_;
  dwarf_searched_ = true;
  if (!file_) return nullptr;  // a memory image (the vDSO): no file to hand to libdw
  if (has_dwarf(image_)) return dwarf_file_ = file_.get();
  if (!options_.use_debug_file) return nullptr;
  // Stripped: the debug file the symbols came from usually has the DWARF too.
  load_symbols();
  if (debug_file_) {
    std::optional<ElfImage> image = ElfImage::parse(debug_file_->bytes());
    if (image && has_dwarf(*image)) return dwarf_file_ = debug_file_.get();
  }
  std::string found_path;
  dwarf_debug_file_ = find_debug_file(has_dwarf, &found_path);
  dwarf_file_ = dwarf_debug_file_.get();
  return dwarf_file_;
}

}  // namespace cpprof::symbolize
