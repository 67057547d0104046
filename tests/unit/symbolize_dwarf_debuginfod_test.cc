// Symbolizing never reaches the network, even with DEBUGINFOD_URLS set: a
// profiler must not make its host download debug files. Alone in its own
// executable because it sets the variable before libdw is first loaded.
#include <arpa/inet.h>
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "symbolize/proc_maps.h"
#include "symbolize/symbolizer.h"
#include "symbolize_dwarf_test_lib.h"

namespace cpprof::symbolize {
namespace {

bool is_mapped(const std::string& name) {
  std::string text;
  read_proc_maps(&text);
  for (const MapsEntry& e : parse_proc_maps(text)) {
    if (e.path.find(name) != std::string::npos) return true;
  }
  return false;
}

TEST(SymbolizerDwarf, NeverAsksDebuginfodEvenWhenTheEnvironmentNamesAServer) {
  ASSERT_FALSE(is_mapped("libdw.so")) << "this test must run before libdw is loaded";
  // A debuginfod "server" that records any connection attempt.
  const int server = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  ASSERT_GE(server, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(server, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(server, 16), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(getsockname(server, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const std::string url = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  const std::string cache =
      (std::filesystem::temp_directory_path() / ("cpprof_debuginfod_" + std::to_string(getpid())))
          .string();
  setenv("DEBUGINFOD_URLS", url.c_str(), 1);
  setenv("DEBUGINFOD_CACHE_PATH", cache.c_str(), 1);

  // Objects with DWARF in the file, in a debug file, and with none anywhere
  // (libstdc++: a debuginfod client would ask the server for that one).
  void* lib = dlopen(
      (std::string(CPPROF_TEST_BINARY_DIR) + "/lib/libsymbolize_dwarf_lib_debuglink.so").c_str(),
      RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(lib, nullptr) << dlerror();
  auto probe = reinterpret_cast<decltype(&symbolize_dwarf_lib_probe)>(
      dlsym(lib, "symbolize_dwarf_lib_probe"));
  ASSERT_NE(probe, nullptr);
  DwarfLibProbe p;
  probe(&p);
  void* libstdcxx = dlopen("libstdc++.so.6", RTLD_NOW | RTLD_NOLOAD);
  ASSERT_NE(libstdcxx, nullptr);
  void* in_libstdcxx = dlsym(libstdcxx, "_ZdlPv");
  ASSERT_NE(in_libstdcxx, nullptr);

  Symbolizer s;
  ASSERT_TRUE(Symbolizer::dwarf_available());
  EXPECT_EQ(s.symbolize(p.inlined_address).size(), 2u);  // DWARF was read
  EXPECT_FALSE(s.symbolize(reinterpret_cast<uint64_t>(in_libstdcxx) + 1).empty());
  EXPECT_FALSE(s.symbolize(reinterpret_cast<uint64_t>(&setenv) + 1).empty());

  pollfd pending{server, POLLIN, 0};
  EXPECT_EQ(poll(&pending, 1, 200), 0) << "something connected to " << url;
  EXPECT_FALSE(is_mapped("libdebuginfod"));
  EXPECT_FALSE(std::filesystem::exists(cache));
  close(server);
  unsetenv("DEBUGINFOD_URLS");
  unsetenv("DEBUGINFOD_CACHE_PATH");
}

}  // namespace
}  // namespace cpprof::symbolize
