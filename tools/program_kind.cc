#include "program_kind.h"

#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace cpprof::cli {
namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "reads little-endian ELF files only");

bool is_executable_file(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(path.c_str(), X_OK) == 0;
}

// $PATH, or what execvp uses when it is unset.
std::string search_path() {
  if (const char* path = std::getenv("PATH")) return path;
  char buffer[256];
  size_t n = confstr(_CS_PATH, buffer, sizeof(buffer));
  return n > 0 && n <= sizeof(buffer) ? std::string(buffer) : "/bin:/usr/bin";
}

bool read_at(int fd, void* into, size_t bytes, off_t offset) {
  return pread(fd, into, bytes, offset) == static_cast<ssize_t>(bytes);
}

bool is_readable_elf_executable(const Elf64_Ehdr& header) {
  return header.e_ident[EI_MAG0] == ELFMAG0 && header.e_ident[EI_MAG1] == ELFMAG1 &&
         header.e_ident[EI_MAG2] == ELFMAG2 && header.e_ident[EI_MAG3] == ELFMAG3 &&
         header.e_ident[EI_CLASS] == ELFCLASS64 && header.e_ident[EI_DATA] == ELFDATA2LSB &&
         (header.e_type == ET_EXEC || header.e_type == ET_DYN) &&
         header.e_phentsize == sizeof(Elf64_Phdr) && header.e_phnum != PN_XNUM;
}

ProgramKind kind_of(int fd) {
  Elf64_Ehdr header{};
  if (!read_at(fd, &header, sizeof(header), 0) || !is_readable_elf_executable(header)) {
    return ProgramKind::kUnknown;
  }
  for (uint16_t i = 0; i < header.e_phnum; ++i) {
    Elf64_Phdr phdr{};
    const auto at = static_cast<off_t>(header.e_phoff + uint64_t{i} * sizeof(Elf64_Phdr));
    if (!read_at(fd, &phdr, sizeof(phdr), at)) return ProgramKind::kUnknown;
    if (phdr.p_type == PT_INTERP) return ProgramKind::kDynamic;
  }
  return ProgramKind::kStatic;
}

}  // namespace

std::string resolve_program(const std::string& name) {
  if (name.empty()) return "";
  if (name.find('/') != std::string::npos) return name;
  const std::string path = search_path();
  size_t start = 0;
  for (;;) {
    const size_t end = path.find(':', start);
    std::string dir = path.substr(start, end == std::string::npos ? end : end - start);
    std::string candidate = (dir.empty() ? std::string(".") : dir) + "/" + name;
    if (is_executable_file(candidate)) return candidate;
    if (end == std::string::npos) return "";
    start = end + 1;
  }
}

ProgramKind program_kind(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ProgramKind::kUnknown;
  const ProgramKind kind = kind_of(fd);
  close(fd);
  return kind;
}

bool warn_if_statically_linked(const char* name) {
  const std::string path = resolve_program(name);
  if (path.empty() || program_kind(path) != ProgramKind::kStatic) return false;
  std::fprintf(stderr,
               "cpprof: %s is statically linked: libcpprof.so cannot be preloaded into it, so "
               "nothing will be profiled or served (link it with cpprof instead)\n",
               name);
  return true;
}

}  // namespace cpprof::cli
