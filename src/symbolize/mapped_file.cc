#include "symbolize/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>

namespace cpprof::symbolize {
namespace {

void set_error(std::string* error, const std::string& path, const char* what) {
  if (error != nullptr) *error = path + ": " + what;
}

// `path` opened read-only if it is the regular file with this inode and
// size, else -1. Devices are not compared: overlayfs reports different ones
// for the same file depending on how it is reached.
int open_same_file(const char* path, uint64_t inode, size_t size) {
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  struct stat st;
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_ino) == inode &&
      static_cast<size_t>(st.st_size) == size) {
    return fd;
  }
  ::close(fd);
  return -1;
}

}  // namespace

std::unique_ptr<MappedFile> MappedFile::open(const std::string& path, std::string* error) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    set_error(error, path, std::strerror(errno));
    return nullptr;
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    set_error(error, path, std::strerror(errno));
    ::close(fd);
    return nullptr;
  }
  // FIFOs and devices could block or never end; an empty file cannot be mapped.
  if (!S_ISREG(st.st_mode) || st.st_size <= 0) {
    set_error(error, path, "not a non-empty regular file");
    ::close(fd);
    return nullptr;
  }
  size_t size = static_cast<size_t>(st.st_size);
  void* data = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  int mmap_errno = errno;
  ::close(fd);
  if (data == MAP_FAILED) {
    set_error(error, path, std::strerror(mmap_errno));
    return nullptr;
  }
  return std::unique_ptr<MappedFile>(new MappedFile(path, static_cast<const uint8_t*>(data), size,
                                                    static_cast<uint64_t>(st.st_ino),
                                                    static_cast<uint64_t>(st.st_dev)));
}

MappedFile::~MappedFile() { ::munmap(const_cast<uint8_t*>(data_), size_); }

int MappedFile::reopen() const {
  int fd = open_same_file(path_.c_str(), inode_, size_);
  if (fd >= 0) return fd;
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  const uint64_t start = reinterpret_cast<uintptr_t>(data_);
  const uint64_t limit = (start + size_ + page - 1) / page * page;
  char mapped[80];
  std::snprintf(mapped, sizeof(mapped), "/proc/self/map_files/%" PRIx64 "-%" PRIx64, start, limit);
  return open_same_file(mapped, inode_, size_);
}

}  // namespace cpprof::symbolize
