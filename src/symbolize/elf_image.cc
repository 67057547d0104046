#include "symbolize/elf_image.h"

#include <elf.h>

#include <cstring>

namespace cpprof::symbolize {
namespace {

// Copies a T out of `bytes` at `offset`; memcpy because a hostile file can put
// a header at any alignment.
template <typename T>
bool read_at(std::span<const uint8_t> bytes, uint64_t offset, T* out) {
  if (!in_bounds(offset, sizeof(T), bytes.size())) return false;
  std::memcpy(out, bytes.data() + offset, sizeof(T));
  return true;
}

void set_error(std::string* error, const char* what) {
  if (error != nullptr) *error = what;
}

uint64_t align_up(uint64_t value, uint64_t align) { return (value + align - 1) & ~(align - 1); }

// Walks the notes in [offset, offset + size) and returns the GNU build-id as
// hex, or "" if there is none. Stops at the first malformed note.
std::string build_id_in_notes(std::span<const uint8_t> bytes, uint64_t offset, uint64_t size,
                              uint64_t align) {
  // Notes are 4-byte aligned except those in 8-aligned areas (GNU property notes).
  align = align == 8 ? 8 : 4;
  if (!in_bounds(offset, size, bytes.size())) return "";
  uint64_t pos = offset;
  const uint64_t end = offset + size;
  while (end - pos >= sizeof(Elf64_Nhdr)) {
    Elf64_Nhdr note;
    read_at(bytes, pos, &note);
    const uint64_t name_pos = pos + sizeof(Elf64_Nhdr);
    if (note.n_namesz > end - name_pos) return "";
    const uint64_t desc_pos = align_up(name_pos + note.n_namesz, align);
    if (desc_pos > end || note.n_descsz > end - desc_pos) return "";
    static constexpr char kGnu[] = "GNU";  // with its NUL, as stored
    if (note.n_type == NT_GNU_BUILD_ID && note.n_namesz == sizeof(kGnu) &&
        std::memcmp(bytes.data() + name_pos, kGnu, sizeof(kGnu)) == 0 && note.n_descsz > 0 &&
        note.n_descsz <= 64) {
      static constexpr char kHex[] = "0123456789abcdef";
      std::string hex;
      hex.reserve(note.n_descsz * 2);
      for (uint64_t i = 0; i < note.n_descsz; ++i) {
        uint8_t b = bytes[desc_pos + i];
        hex.push_back(kHex[b >> 4]);
        hex.push_back(kHex[b & 15]);
      }
      return hex;
    }
    pos = align_up(desc_pos + note.n_descsz, align);
    if (pos > end) return "";
  }
  return "";
}

}  // namespace

std::optional<ElfImage> ElfImage::parse(std::span<const uint8_t> bytes, std::string* error) {
  Elf64_Ehdr ehdr;
  if (!read_at(bytes, 0, &ehdr) || std::memcmp(ehdr.e_ident, ELFMAG, SELFMAG) != 0) {
    set_error(error, "not an ELF file");
    return std::nullopt;
  }
  if (ehdr.e_ident[EI_CLASS] != ELFCLASS64 || ehdr.e_ident[EI_DATA] != ELFDATA2LSB ||
      ehdr.e_ident[EI_VERSION] != EV_CURRENT) {
    set_error(error, "not a 64-bit little-endian ELF file");
    return std::nullopt;
  }
  ElfImage image(bytes);
  if (!image.read_program_headers(error) || !image.read_section_headers(error)) {
    return std::nullopt;
  }
  image.find_build_id();
  return image;
}

bool ElfImage::read_program_headers(std::string* error) {
  Elf64_Ehdr ehdr;
  read_at(bytes_, 0, &ehdr);
  if (ehdr.e_phnum == 0) return true;
  if (ehdr.e_phentsize < sizeof(Elf64_Phdr) ||
      !in_bounds(ehdr.e_phoff, uint64_t{ehdr.e_phnum} * ehdr.e_phentsize, bytes_.size())) {
    set_error(error, "program headers out of bounds");
    return false;
  }
  for (uint64_t i = 0; i < ehdr.e_phnum; ++i) {
    Elf64_Phdr phdr;
    read_at(bytes_, ehdr.e_phoff + i * ehdr.e_phentsize, &phdr);
    if (phdr.p_type == PT_LOAD) {
      load_segments_.push_back({.file_offset = phdr.p_offset,
                                .file_size = phdr.p_filesz,
                                .vaddr = phdr.p_vaddr,
                                .mem_size = phdr.p_memsz,
                                .executable = (phdr.p_flags & PF_X) != 0});
    } else if (phdr.p_type == PT_NOTE) {
      note_segments_.push_back({phdr.p_offset, phdr.p_filesz, phdr.p_align});
    }
  }
  return true;
}

bool ElfImage::read_section_headers(std::string* error) {
  Elf64_Ehdr ehdr;
  read_at(bytes_, 0, &ehdr);
  if (ehdr.e_shoff == 0) return true;  // stripped of section headers: still usable
  if (ehdr.e_shentsize < sizeof(Elf64_Shdr)) {
    set_error(error, "bad section header size");
    return false;
  }
  // With 0xff00 or more sections the real count and string-table index
  // live in section header 0.
  Elf64_Shdr first;
  if (!read_at(bytes_, ehdr.e_shoff, &first)) {
    set_error(error, "section headers out of bounds");
    return false;
  }
  uint64_t count = ehdr.e_shnum != 0 ? ehdr.e_shnum : first.sh_size;
  uint64_t names_index = ehdr.e_shstrndx != SHN_XINDEX ? ehdr.e_shstrndx : first.sh_link;
  if (count > bytes_.size() / ehdr.e_shentsize ||
      !in_bounds(ehdr.e_shoff, count * ehdr.e_shentsize, bytes_.size())) {
    set_error(error, "section headers out of bounds");
    return false;
  }
  sections_.reserve(count);
  std::vector<uint32_t> name_offsets;
  name_offsets.reserve(count);
  for (uint64_t i = 0; i < count; ++i) {
    Elf64_Shdr shdr;
    read_at(bytes_, ehdr.e_shoff + i * ehdr.e_shentsize, &shdr);
    sections_.push_back({.name = {},
                         .type = shdr.sh_type,
                         .addr = shdr.sh_addr,
                         .offset = shdr.sh_offset,
                         .size = shdr.sh_size,
                         .link = shdr.sh_link,
                         .entsize = shdr.sh_entsize});
    name_offsets.push_back(shdr.sh_name);
  }
  // Names are optional: a bad string table leaves them empty.
  if (names_index == SHN_UNDEF || names_index >= count) return true;
  std::span<const uint8_t> names = section_data(sections_[names_index]);
  for (uint64_t i = 0; i < count; ++i) {
    if (name_offsets[i] >= names.size()) continue;
    const char* start = reinterpret_cast<const char*>(names.data()) + name_offsets[i];
    const void* nul = std::memchr(start, 0, names.size() - name_offsets[i]);
    if (nul != nullptr) sections_[i].name = std::string_view(start, static_cast<const char*>(nul));
  }
  return true;
}

void ElfImage::find_build_id() {
  for (const NoteArea& area : note_segments_) {
    build_id_ = build_id_in_notes(bytes_, area.offset, area.size, area.align);
    if (!build_id_.empty()) return;
  }
  // Objects without program headers (separate debug files keep them, but
  // be lenient) may still carry the note as a section.
  for (const ElfSection& section : sections_) {
    if (section.type != SHT_NOTE) continue;
    build_id_ = build_id_in_notes(bytes_, section.offset, section.size, 4);
    if (!build_id_.empty()) return;
  }
}

const ElfSection* ElfImage::find_section(std::string_view name, uint32_t type) const {
  for (const ElfSection& section : sections_) {
    if (section.name == name && (type == 0 || section.type == type)) return &section;
  }
  return nullptr;
}

std::span<const uint8_t> ElfImage::section_data(const ElfSection& section) const {
  if (section.type == SHT_NOBITS || !in_bounds(section.offset, section.size, bytes_.size())) {
    return {};
  }
  return bytes_.subspan(section.offset, section.size);
}

bool ElfImage::debuglink(std::string* name, uint32_t* crc) const {
  const ElfSection* section = find_section(".gnu_debuglink", SHT_PROGBITS);
  if (section == nullptr) return false;
  std::span<const uint8_t> data = section_data(*section);
  if (data.empty()) return false;
  // A NUL-terminated name, padded to 4 bytes, then the CRC.
  const void* nul = std::memchr(data.data(), 0, data.size());
  if (nul == nullptr) return false;
  uint64_t name_size = static_cast<const uint8_t*>(nul) - data.data();
  uint64_t crc_offset = align_up(name_size + 1, 4);
  if (name_size == 0 || !read_at(data, crc_offset, crc)) return false;
  name->assign(reinterpret_cast<const char*>(data.data()), name_size);
  return true;
}

}  // namespace cpprof::symbolize
