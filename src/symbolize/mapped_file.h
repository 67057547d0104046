// A whole file mapped read-only into memory, unmapped on destruction.
//
// Used for ELF objects we symbolize. The descriptor is closed right after
// mmap so that caching many objects costs address space, not descriptors.
// Caveat: if someone truncates the file while it is mapped, touching the
// lost pages raises SIGBUS; the running process that loaded the same file
// would fault as well, so we accept it rather than copy every file.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>

namespace cpprof::symbolize {

class MappedFile {
 public:
  // Maps the regular file at `path`; nullptr (and a reason in `error`, if
  // given) if it cannot be opened, is not a regular file, or is empty.
  static std::unique_ptr<MappedFile> open(const std::string& path, std::string* error = nullptr);

  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  // The file's bytes; valid as long as this object lives.
  std::span<const uint8_t> bytes() const { return {data_, size_}; }

  // Identity of the file that was opened, to check it against /proc/self/maps
  // (a path may have been replaced by a new file since it was mapped).
  uint64_t inode() const { return inode_; }
  uint64_t device() const { return device_; }

  // A new read-only descriptor (O_CLOEXEC) of this very file, for readers
  // that want one (libdw); the caller closes it. Through the path if it
  // still names the file, else through our own mapping of it in
  // /proc/self/map_files (the file may have been deleted or replaced since).
  // -1 if neither reaches it.
  int reopen() const;

 private:
  MappedFile(std::string path, const uint8_t* data, size_t size, uint64_t inode, uint64_t device)
      : path_(std::move(path)), data_(data), size_(size), inode_(inode), device_(device) {}

  std::string path_;
  const uint8_t* data_;
  size_t size_;
  uint64_t inode_;
  uint64_t device_;
};

}  // namespace cpprof::symbolize
