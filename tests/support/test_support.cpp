#include "test_support.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace p2k_test {

std::string ctest_env(const char* name) {
  if (const char* v = std::getenv(name); v && *v) return v;
  static const std::map<std::string, std::string> defaults = {
      {"P2K_TEST_STATE_DIR", DEFAULT_P2K_TEST_STATE_DIR},
      {"P2K_TEST_PLUGIN_DIR", DEFAULT_P2K_TEST_PLUGIN_DIR},
      {"P2K_PLUGIN_DIR", DEFAULT_P2K_PLUGIN_DIR},
      {"P2K_BINARY", DEFAULT_P2K_BINARY},
      {"P2K_SOURCE_DIR", DEFAULT_P2K_SOURCE_DIR},
      {"P2K_BINARY_DIR", DEFAULT_P2K_BINARY_DIR},
  };
  auto it = defaults.find(name);
  if (it == defaults.end())
    throw std::runtime_error(std::string("environment variable ") + name + " is not set");
  return it->second;
}

std::string state_value(const std::string& file, const std::string& key) {
  std::string path = ctest_env("P2K_TEST_STATE_DIR") + "/" + file;
  std::ifstream in(path);
  if (!in)
    throw std::runtime_error("fixture state file " + path + " is missing: is the fixture up?");
  std::string line;
  while (std::getline(in, line)) {
    auto eq = line.find('=');
    if (eq != std::string::npos && line.substr(0, eq) == key) return line.substr(eq + 1);
  }
  throw std::runtime_error("fixture state file " + path + " has no " + key);
}

std::string test_plugin(const std::string& kind, const std::string& name) {
  return ctest_env("P2K_TEST_PLUGIN_DIR") + "/pg2kafka-" + kind + "-" + name + ".so";
}

namespace {
// In a forked child: applies `env` (a name starting with '-' is removed) and execs argv.
[[noreturn]] void exec_child(const std::vector<std::string>& argv,
                             const std::map<std::string, std::string>& env) {
  for (const auto& [k, v] : env) {
    if (!k.empty() && k[0] == '-')
      unsetenv(k.c_str() + 1);
    else
      setenv(k.c_str(), v.c_str(), 1);
  }
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  execvp(args[0], args.data());
  dprintf(2, "exec %s failed: %s\n", args[0], strerror(errno));
  _exit(127);
}
}  // namespace

CommandResult run(const std::vector<std::string>& argv,
                  const std::map<std::string, std::string>& env, std::chrono::seconds timeout,
                  const std::string& input) {
  int in_pipe[2], out_pipe[2], err_pipe[2];
  if (pipe(in_pipe) || pipe(out_pipe) || pipe(err_pipe)) throw std::runtime_error("pipe failed");
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    dup2(in_pipe[0], 0);
    dup2(out_pipe[1], 1);
    dup2(err_pipe[1], 2);
    for (int fd : {in_pipe[0], in_pipe[1], out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]})
      close(fd);
    exec_child(argv, env);
  }
  close(in_pipe[0]);
  close(out_pipe[1]);
  close(err_pipe[1]);
  // Feed stdin from the parent loop so a large input cannot deadlock against full output pipes.
  size_t written = 0;
  int in_fd = in_pipe[1];
  if (input.empty()) {
    close(in_fd);
    in_fd = -1;
  } else {
    fcntl(in_fd, F_SETFL, O_NONBLOCK);
  }
  signal(SIGPIPE, SIG_IGN);
  CommandResult result;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  bool open_out = true, open_err = true, timed_out = false;
  char buf[65536];
  while (open_out || open_err) {
    pollfd fds[3];
    int n = 0;
    if (open_out) fds[n++] = {out_pipe[0], POLLIN, 0};
    if (open_err) fds[n++] = {err_pipe[0], POLLIN, 0};
    if (in_fd >= 0) fds[n++] = {in_fd, POLLOUT, 0};
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      kill(pid, SIGKILL);
      break;
    }
    if (poll(fds, n, static_cast<int>(left.count())) < 0 && errno != EINTR) break;
    for (int i = 0; i < n; ++i) {
      if (!fds[i].revents) continue;
      if (fds[i].fd == in_fd) {
        ssize_t w = write(in_fd, input.data() + written, input.size() - written);
        if (w > 0) written += static_cast<size_t>(w);
        if (w < 0 || written == input.size()) {
          close(in_fd);
          in_fd = -1;
        }
        continue;
      }
      ssize_t r = read(fds[i].fd, buf, sizeof buf);
      if (r <= 0) {
        if (fds[i].fd == out_pipe[0])
          open_out = false;
        else
          open_err = false;
        continue;
      }
      (fds[i].fd == out_pipe[0] ? result.out : result.err).append(buf, static_cast<size_t>(r));
    }
  }
  if (in_fd >= 0) close(in_fd);
  close(out_pipe[0]);
  close(err_pipe[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (timed_out)
    throw std::runtime_error("command timed out: " + argv[0] + "\nstdout:\n" + result.out +
                             "\nstderr:\n" + result.err);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

CommandResult run_pg2kafka(const std::vector<std::string>& args,
                           const std::map<std::string, std::string>& env,
                           std::chrono::seconds timeout) {
  std::vector<std::string> argv{ctest_env("P2K_BINARY")};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, env, timeout);
}

TempDir::TempDir() {
  std::random_device rd;
  auto base = std::filesystem::temp_directory_path();
  for (int i = 0; i < 100; ++i) {
    auto candidate = base / ("p2k-test-" + std::to_string(rd()));
    if (std::filesystem::create_directory(candidate)) {
      path_ = candidate;
      return;
    }
  }
  throw std::runtime_error("cannot create a temporary directory");
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::write(const std::string& name, const std::string& content) const {
  auto p = path_ / name;
  std::ofstream out(p, std::ios::binary);
  out << content;
  return p.string();
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) out.push_back(line);
  return out;
}

Background::Background(const std::vector<std::string>& argv,
                       const std::map<std::string, std::string>& env) {
  std::string out = (dir_.path() / "stdout").string(), err = (dir_.path() / "stderr").string();
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    int null_fd = open("/dev/null", O_RDONLY);
    int out_fd = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int err_fd = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(null_fd, 0);
    dup2(out_fd, 1);
    dup2(err_fd, 2);
    exec_child(argv, env);
  }
}

Background::~Background() {
  if (status_ || pid_ <= 0) return;
  kill(pid_, SIGKILL);
  int st;
  waitpid(pid_, &st, 0);
}

void Background::signal(int sig) const {
  if (pid_ > 0) kill(pid_, sig);
}

std::optional<int> Background::wait(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!status_) {
    int st = 0;
    pid_t r = waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      break;
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return status_;
}

bool Background::running() {
  return !wait(std::chrono::milliseconds(0));
}

std::string Background::out() const {
  return read_file((dir_.path() / "stdout").string());
}

std::string Background::err() const {
  return read_file((dir_.path() / "stderr").string());
}

std::optional<std::string> Background::wait_for_err(const std::string& text,
                                                    std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    for (const auto& line : lines(err()))
      if (line.find(text) != std::string::npos) return line;
    if (!running() || std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

int served_port(Background& pg2kafka, std::chrono::milliseconds timeout) {
  auto line = pg2kafka.wait_for_err("serving /metrics", timeout);
  if (!line)
    throw std::runtime_error("pg2kafka did not start its HTTP endpoint:\n" + pg2kafka.err());
  auto at = line->find("(port ");
  if (at == std::string::npos) throw std::runtime_error("no port in: " + *line);
  return std::stoi(line->substr(at + 6));
}

double metric_sample(const std::string& body, const std::string& series) {
  for (const auto& line : lines(body))
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  return -1;
}

HttpAnswer http_raw(int port, const std::string& raw, std::chrono::milliseconds timeout) {
  HttpAnswer answer;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return answer;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return answer;
  }
  signal(SIGPIPE, SIG_IGN);
  (void)!write(fd, raw.data(), raw.size());
  std::string text;
  char buf[65536];
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  auto end = text.find("\r\n\r\n");
  if (text.rfind("HTTP/1.1 ", 0) != 0 || end == std::string::npos) return answer;
  answer.status = std::stoi(text.substr(9, 3));
  answer.headers = text.substr(0, end);
  answer.body = text.substr(end + 4);
  return answer;
}

HttpAnswer http_get(int port, const std::string& path, const std::string& method) {
  return http_raw(port, method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
}

}  // namespace p2k_test
