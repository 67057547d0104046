// libFuzzer target: an ELF image from untrusted bytes (a truncated or hostile
// file) must be rejected or read within bounds, never crash.
//
// Not built by default (see README.md). Build and run, for example:
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -Isrc \
//     tests/fuzz/elf_file_fuzz.cc src/symbolize/*.cc -o /tmp/elf_file_fuzz
//   /tmp/elf_file_fuzz -max_total_time=60 tests/fuzz/corpus/elf_file_fuzz
#include <cstddef>
#include <cstdint>
#include <string>

#include "symbolize/demangle.h"
#include "symbolize/elf_file.h"
#include "symbolize/elf_image.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cpprof::symbolize;
  std::span<const uint8_t> bytes(data, size);
  if (auto image = ElfImage::parse(bytes)) {
    std::string link;
    uint32_t crc = 0;
    image->debuglink(&link, &crc);
    for (const ElfSection& section : image->sections()) image->section_data(section);
  }
  std::unique_ptr<ElfFile> elf = ElfFile::from_memory(bytes, "fuzz");
  if (!elf) return 0;
  if (elf->build_id().size() % 2 != 0) __builtin_trap();
  const std::vector<ElfSymbol>& symbols = elf->symbols();
  for (size_t i = 0; i < symbols.size(); ++i) {
    const ElfSymbol& s = symbols[i];
    if (s.size == 0 || (i > 0 && symbols[i - 1].address >= s.address)) __builtin_trap();
    const ElfSymbol* hit = elf->find_symbol(s.address);
    if (hit == nullptr || hit->address > s.address) __builtin_trap();
    if (i < 64) demangle(s.name);  // the demangler sees hostile names too
  }
  for (const LoadSegment& seg : elf->load_segments()) {
    if (auto vaddr = elf->vaddr_of_file_offset(seg.file_offset)) elf->find_symbol(*vaddr);
  }
  return 0;
}
