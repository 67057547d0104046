// Reports what the process looks like after the library has loaded: how
// many threads it has and how many POSIX timers exist. Without CPPROF_HTTP
// both must be what the program itself made (1 thread, 0 timers).
#include <dirent.h>

#include <cstdio>
#include <fstream>
#include <string>

int count_threads() {
  int n = 0;
  DIR* dir = opendir("/proc/self/task");
  while (dirent* e = dir ? readdir(dir) : nullptr) n += e->d_name[0] != '.';
  if (dir) closedir(dir);
  return n;
}

// /proc/self/timers lists each POSIX timer with an "ID:" line (needs
// CONFIG_CHECKPOINT_RESTORE); -1 if the file is missing.
int count_timers() {
  std::ifstream in("/proc/self/timers");
  if (!in) return -1;
  int n = 0;
  for (std::string line; std::getline(in, line);) n += line.rfind("ID:", 0) == 0;
  return n;
}

int main() {
  std::printf("threads %d timers %d\n", count_threads(), count_timers());
  return 0;
}
