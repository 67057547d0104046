// A small service-like program with profiling on: worker threads handle
// made-up requests whose cost is spread over a few clearly named functions,
// so a CPU profile of it has an obvious shape.
//
//   cpprof_demo [--http HOST:PORT] [--seconds N]
//   go tool pprof http://127.0.0.1:6060/debug/pprof/profile?seconds=10
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "cpprof/server.h"

namespace {

std::atomic<bool> g_stop{false};

// Splits a request line into words: string-heavy work.
[[gnu::noinline]] std::vector<std::string> parse_request(const std::string& line) {
  std::vector<std::string> words;
  std::string word;
  for (char c : line) {
    if (c == ' ') {
      words.push_back(word);
      word.clear();
    } else {
      word += c;
    }
  }
  words.push_back(word);
  return words;
}

// A checksum over the payload: pure arithmetic, the hottest function.
[[gnu::noinline]] uint64_t compute_checksum(const std::vector<std::string>& words, int rounds) {
  uint64_t h = 1469598103934665603ull;
  for (int r = 0; r < rounds; ++r) {
    for (const std::string& w : words) {
      for (char c : w) h = (h ^ static_cast<uint8_t>(c)) * 1099511628211ull;
    }
  }
  return h;
}

// Builds the response text.
[[gnu::noinline]] std::string render_response(uint64_t checksum, size_t words) {
  std::string out = "{\"checksum\":" + std::to_string(checksum) + ",\"words\":[";
  for (size_t i = 0; i < words; ++i) out += std::to_string(i * checksum % 977) + ",";
  out += "]}";
  return out;
}

[[gnu::noinline]] void handle_request(int id, uint64_t* sink) {
  std::string line = "GET /items/" + std::to_string(id) + " user agent demo lorem ipsum dolor";
  std::vector<std::string> words = parse_request(line);
  uint64_t sum = compute_checksum(words, 200);
  *sink += render_response(sum, 64).size();
}

void worker(int index) {
  uint64_t sink = 0;
  for (int id = index; !g_stop.load(std::memory_order_relaxed); id += 2) {
    handle_request(id, &sink);
    if (id % 64 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::printf("worker %d done (%llu)\n", index, static_cast<unsigned long long>(sink));
}

}  // namespace

int main(int argc, char** argv) {
  std::string http = "127.0.0.1:6060";
  int seconds = 0;  // 0: until interrupted
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--http") == 0 && i + 1 < argc) {
      http = argv[++i];
    } else if (std::strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
      seconds = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: %s [--http HOST:PORT] [--seconds N]\n", argv[0]);
      return 2;
    }
  }
  signal(SIGINT, [](int) { g_stop = true; });
  signal(SIGTERM, [](int) { g_stop = true; });

  cpprof::Server server({.address = http});
  if (!server.ok()) {
    std::fprintf(stderr, "demo: cannot serve: %s\n", server.error().c_str());
    return 1;
  }
  std::printf("demo service running; profiles at %s\n", server.url().c_str());
  std::printf("try: go tool pprof %sprofile?seconds=10\n", server.url().c_str());
  std::fflush(stdout);

  std::vector<std::thread> workers;
  for (int i = 0; i < 2; ++i) workers.emplace_back(worker, i);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (!g_stop && (seconds == 0 || std::chrono::steady_clock::now() < deadline)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  g_stop = true;
  for (std::thread& t : workers) t.join();
  return 0;
}
