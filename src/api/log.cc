#include "api/log.h"

#include <fcntl.h>
#include <unistd.h>

#include <string>

namespace cpprof::api {

void log_line(std::string_view destination, std::string_view line) {
  if (destination == "off") return;
  std::string text = "cpprof: " + std::string(line) + "\n";
  if (destination.empty() || destination == "stderr") {
    (void)!write(STDERR_FILENO, text.data(), text.size());
    return;
  }
  int fd = open(std::string(destination).c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return;
  (void)!write(fd, text.data(), text.size());
  close(fd);
}

}  // namespace cpprof::api
