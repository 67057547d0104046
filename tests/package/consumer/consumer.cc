// Serves on a free port and checks that it did: proves the headers, the
// library and its link dependencies all arrive through the package.
#include <cstdio>

#include "cpprof/server.h"

int main() {
  cpprof::Server server({.address = "127.0.0.1:0", .log = "off"});
  if (!server.ok() || server.port() == 0) {
    std::fprintf(stderr, "consumer: %s\n", server.error().c_str());
    return 1;
  }
  std::printf("consumer served on %u\n", server.port());
  return 0;
}
