// A bounds-checked view of the headers of a 64-bit little-endian ELF object.
//
// The bytes may come from a truncated or hostile file, so every offset and
// size read from them is checked before use; a bad header makes parse()
// fail, a bad section or note is ignored. The view does not own the bytes.
// Not for signal handlers: it allocates.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace cpprof::symbolize {

// A PT_LOAD program header: file bytes [file_offset, +file_size) appear at
// ELF virtual address vaddr once loaded.
struct LoadSegment {
  uint64_t file_offset = 0;
  uint64_t file_size = 0;
  uint64_t vaddr = 0;
  uint64_t mem_size = 0;
  bool executable = false;  // PF_X
};

// A section header, with its name resolved.
struct ElfSection {
  std::string_view name;  // points into the image; empty if unnamed
  uint32_t type = 0;      // SHT_*
  uint64_t addr = 0;      // virtual address once loaded; 0 if not loaded
  uint64_t offset = 0;
  uint64_t size = 0;
  uint32_t link = 0;  // e.g. the string table of a symbol table
  uint64_t entsize = 0;
};

class ElfImage {
 public:
  // Checks the ELF header and reads program and section headers. nullopt
  // (and a reason in `error`, if given) unless `bytes` start with a sane
  // ELF64 little-endian header whose header tables lie inside `bytes`.
  static std::optional<ElfImage> parse(std::span<const uint8_t> bytes,
                                       std::string* error = nullptr);

  // The whole image.
  std::span<const uint8_t> bytes() const { return bytes_; }

  // PT_LOAD segments in program-header order.
  const std::vector<LoadSegment>& load_segments() const { return load_segments_; }

  // Every section header, indexed as in the file (so st_shndx indexes it).
  const std::vector<ElfSection>& sections() const { return sections_; }

  // The first section called `name` (and of `type`, unless 0); nullptr if none.
  const ElfSection* find_section(std::string_view name, uint32_t type = 0) const;

  // The file bytes of `section`; empty for SHT_NOBITS or if out of bounds.
  std::span<const uint8_t> section_data(const ElfSection& section) const;

  // GNU build-id (NT_GNU_BUILD_ID) as lowercase hex, from PT_NOTE segments or
  // else SHT_NOTE sections; empty if none.
  const std::string& build_id() const { return build_id_; }

  // The .gnu_debuglink section: file name of the separate debug file and the
  // CRC-32 of its contents. False if absent or malformed.
  bool debuglink(std::string* name, uint32_t* crc) const;

 private:
  explicit ElfImage(std::span<const uint8_t> bytes) : bytes_(bytes) {}
  bool read_program_headers(std::string* error);
  bool read_section_headers(std::string* error);
  void find_build_id();

  std::span<const uint8_t> bytes_;
  std::vector<LoadSegment> load_segments_;
  struct NoteArea {
    uint64_t offset, size, align;
  };
  std::vector<NoteArea> note_segments_;
  std::vector<ElfSection> sections_;
  std::string build_id_;
};

// True if [offset, offset + size) lies inside a buffer of `total` bytes,
// without overflowing.
inline bool in_bounds(uint64_t offset, uint64_t size, uint64_t total) {
  return offset <= total && size <= total - offset;
}

}  // namespace cpprof::symbolize
