#include "burner_target.h"

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <thread>
#include <utility>

namespace cpprof::test {
namespace {

using namespace std::chrono_literals;

// Waits for cpprof's "serving http://HOST:PORT/debug/pprof/ (pid N)" line.
bool port_from_log(const std::string& path, Target* target, std::string* error) {
  static const std::regex kServing(R"(serving http://[^:]+:(\d+)/debug/pprof/ \(pid (\d+)\))");
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream in(path);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::smatch m;
    if (std::regex_search(text, m, kServing)) {
      target->port = static_cast<uint16_t>(std::stoi(m[1]));
      target->served_pid = std::stoi(m[2]);
      return true;
    }
    if (text.find("not serving") != std::string::npos) {
      *error = "cpprof did not serve: " + text;
      return false;
    }
    std::this_thread::sleep_for(20ms);
  }
  *error = "no 'serving' line in " + path;
  return false;
}

}  // namespace

const char* launch_name(Launch how) {
  switch (how) {
    case Launch::kLinked:
      return "linked";
    case Launch::kPreload:
      return "LD_PRELOAD";
    case Launch::kCpprofRun:
      return "cpprof run";
  }
  return "?";
}

Target start_program(Launch how, const std::string& program, std::vector<std::string> args,
                     std::string* error, std::map<std::string, std::string> env) {
  Target target;
  char log_template[] = "/tmp/cpprof-test-log-XXXXXX";
  int fd = mkstemp(log_template);
  if (fd >= 0) close(fd);
  target.log_path = log_template;
  env["CPPROF_LOG"] = target.log_path;
  std::vector<std::string> command;
  switch (how) {
    case Launch::kLinked:
      command = {built_binary(program + "_linked")};
      break;
    case Launch::kPreload:
      env["LD_PRELOAD"] = built_library();
      env["CPPROF_HTTP"] = "127.0.0.1:0";
      command = {built_binary(program)};
      break;
    case Launch::kCpprofRun:
      command = {built_binary("cpprof"), "run", "--http",
                 "127.0.0.1:0",          "--",  built_binary(program)};
      break;
  }
  command.insert(command.end(), args.begin(), args.end());
  target.process = std::make_unique<ChildProcess>(command, env);
  if (!target.process->started()) {
    *error = "could not start " + program;
    return target;
  }
  if (how == Launch::kLinked) {
    std::optional<std::string> port = target.process->wait_for_line("port ", 30s);
    if (!port) {
      *error = "the linked " + program + " printed no port";
      return target;
    }
    target.port = static_cast<uint16_t>(std::stoi(*port));
  } else if (!port_from_log(target.log_path, &target, error)) {
    target.port = 0;
    return target;
  }
  if (!target.process->wait_for_line("ready", 30s)) {
    *error = program + " never said ready";
    target.port = 0;
  }
  return target;
}

Target start_burner(Launch how, int threads, int hz, std::string* error,
                    std::vector<std::string> extra_args,
                    std::map<std::string, std::string> extra_env) {
  std::string hz_arg = std::to_string(hz);
  std::vector<std::string> args;
  if (how == Launch::kLinked) args = {"--hz", hz_arg};
  args.push_back("--threads");
  args.push_back(std::to_string(threads));
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  extra_env["CPPROF_CPU_HZ"] = hz_arg;
  return start_program(how, "cpu_burner", args, error, std::move(extra_env));
}

}  // namespace cpprof::test
