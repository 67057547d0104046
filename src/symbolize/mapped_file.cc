#include "symbolize/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace cpprof::symbolize {
namespace {

void set_error(std::string* error, const std::string& path, const char* what) {
  if (error != nullptr) *error = path + ": " + what;
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
  return std::unique_ptr<MappedFile>(new MappedFile(static_cast<const uint8_t*>(data), size,
                                                    static_cast<uint64_t>(st.st_ino),
                                                    static_cast<uint64_t>(st.st_dev)));
}

MappedFile::~MappedFile() { ::munmap(const_cast<uint8_t*>(data_), size_); }

}  // namespace cpprof::symbolize
