// p2k-bench-run: runs a command and reports what it cost, for the benchmark scripts.
//
//   p2k-bench-run [--out FILE] [--pid-file FILE] [--term-after SECONDS] -- COMMAND [ARG...]
//
// Forks and execs COMMAND, forwards SIGTERM and SIGINT to it, optionally sends it SIGTERM after
// SECONDS, waits for it with wait4() and writes one JSON object to FILE (default stderr):
//   {"wall_s":..,"user_s":..,"sys_s":..,"max_rss_kb":..,"exit_code":..,"signal":..}
// max_rss_kb is the kernel's peak resident set size of the child (ru_maxrss), which is what
// /usr/bin/time -v reports, without its parsing. --pid-file receives the child's pid, so that a
// script can sample /proc/<pid> while it runs. Exits with the child's exit code (128+signal when
// it was killed by a signal).
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

volatile sig_atomic_t g_child = 0;

void forward_signal(int sig) {
  if (g_child > 0) kill(g_child, sig);
}

void alarm_handler(int) {
  if (g_child > 0) kill(g_child, SIGTERM);
}

double seconds(const timeval& tv) {
  return tv.tv_sec + tv.tv_usec / 1e6;
}

int usage() {
  std::fprintf(stderr,
               "usage: p2k-bench-run [--out FILE] [--pid-file FILE] [--term-after SECONDS] -- "
               "COMMAND [ARG...]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string out_file;
  std::string pid_file;
  unsigned term_after = 0;
  int i = 1;
  for (; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--") {
      ++i;
      break;
    }
    if (i + 1 >= argc) return usage();
    if (arg == "--out") {
      out_file = argv[++i];
    } else if (arg == "--pid-file") {
      pid_file = argv[++i];
    } else if (arg == "--term-after") {
      term_after = static_cast<unsigned>(std::strtoul(argv[++i], nullptr, 10));
    } else {
      return usage();
    }
  }
  if (i >= argc) return usage();
  std::vector<char*> child_argv(argv + i, argv + argc);
  child_argv.push_back(nullptr);

  struct sigaction sa {};
  sa.sa_handler = forward_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  sa.sa_handler = alarm_handler;
  sigaction(SIGALRM, &sa, nullptr);

  const auto start = std::chrono::steady_clock::now();
  pid_t pid = fork();
  if (pid < 0) {
    std::perror("fork");
    return 1;
  }
  if (pid == 0) {
    execvp(child_argv[0], child_argv.data());
    std::fprintf(stderr, "p2k-bench-run: cannot run %s: %s\n", child_argv[0], std::strerror(errno));
    _exit(127);
  }
  g_child = pid;
  if (!pid_file.empty()) {
    if (FILE* f = std::fopen(pid_file.c_str(), "w")) {
      std::fprintf(f, "%d\n", static_cast<int>(pid));
      std::fclose(f);
    }
  }
  if (term_after > 0) alarm(term_after);

  int status = 0;
  rusage usage_info{};
  while (wait4(pid, &status, 0, &usage_info) < 0) {
    if (errno != EINTR) {
      std::perror("wait4");
      return 1;
    }
  }
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  int exit_code = 0;
  int signal_number = 0;
  if (WIFEXITED(status)) {
    exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    signal_number = WTERMSIG(status);
    exit_code = 128 + signal_number;
  }

  FILE* out = out_file.empty() ? stderr : std::fopen(out_file.c_str(), "w");
  if (out == nullptr) {
    std::perror(out_file.c_str());
    return 1;
  }
  std::fprintf(out,
               "{\"wall_s\":%.3f,\"user_s\":%.3f,\"sys_s\":%.3f,\"max_rss_kb\":%ld,"
               "\"exit_code\":%d,\"signal\":%d}\n",
               wall, seconds(usage_info.ru_utime), seconds(usage_info.ru_stime),
               usage_info.ru_maxrss, exit_code, signal_number);
  if (out != stderr) std::fclose(out);
  return exit_code;
}
