// Helpers shared by the test binaries: environment set by CTest, state written by the service
// fixtures (PostgreSQL, Kafka), running the pg2kafka binary, temporary directories.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace p2k_test {

// A location the tests need (P2K_BINARY, P2K_PLUGIN_DIR, P2K_TEST_PLUGIN_DIR,
// P2K_TEST_STATE_DIR, P2K_SOURCE_DIR, P2K_BINARY_DIR): the environment variable of that name,
// else the value CMake compiled in.
std::string ctest_env(const char* name);

// KEY=VALUE lines from a file that a fixture wrote into P2K_TEST_STATE_DIR, e.g.
// state_value("pg.env", "P2K_TEST_PG_URL"). Throws when the file or key is missing.
std::string state_value(const std::string& file, const std::string& key);

// Path of a test-only plugin, e.g. test_plugin("sink", "test-faulty").
std::string test_plugin(const std::string& kind, const std::string& name);

struct CommandResult {
  int exit_code = -1;  // the exit status, or 128 + signal number when killed by a signal
  std::string out;
  std::string err;
};

// Runs argv[0] with arguments (no shell), feeding `input` on stdin, with `env` added to (or, for
// an empty value of a name starting with '-', removed from) the current environment. Kills the
// process and fails the call when it runs longer than `timeout`.
CommandResult run(const std::vector<std::string>& argv,
                  const std::map<std::string, std::string>& env = {},
                  std::chrono::seconds timeout = std::chrono::seconds(60),
                  const std::string& input = {});

// Runs the pg2kafka binary under test.
CommandResult run_pg2kafka(const std::vector<std::string>& args,
                           const std::map<std::string, std::string>& env = {},
                           std::chrono::seconds timeout = std::chrono::seconds(60));

// A fresh directory, removed with everything in it when the object goes away.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  // Writes `content` to a file in the directory and returns its path.
  std::string write(const std::string& name, const std::string& content) const;

 private:
  std::filesystem::path path_;
};

std::string read_file(const std::string& path);
std::vector<std::string> lines(const std::string& text);

// A process running in the background (no shell), its stdout and stderr in files of its own
// directory; killed (SIGKILL) when the object goes away unless it was waited for.
class Background {
 public:
  Background(const std::vector<std::string>& argv,
             const std::map<std::string, std::string>& env = {});
  ~Background();
  Background(const Background&) = delete;
  Background& operator=(const Background&) = delete;
  int pid() const { return pid_; }
  void signal(int sig) const;
  // Waits for the exit; returns the status as CommandResult does (128 + signal when killed), or
  // nullopt when `timeout` ran out first.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  bool running();
  std::string out() const;
  std::string err() const;
  // Waits until stderr holds `text`; returns the stderr line that holds it, or nullopt after
  // `timeout` (or when the process ended first).
  std::optional<std::string> wait_for_err(const std::string& text,
                                          std::chrono::milliseconds timeout);

 private:
  TempDir dir_;
  int pid_ = -1;
  std::optional<int> status_;
};

// The port from pg2kafka's "serving /metrics, ... (port N)" log line (http.listen with port 0).
int served_port(Background& pg2kafka, std::chrono::milliseconds timeout);

// The value of one sample of a Prometheus exposition, its series written exactly as exposed
// ("name{label=\"value\"}"), or -1 when absent.
double metric_sample(const std::string& body, const std::string& series);

struct HttpAnswer {
  int status = 0;  // 0: no answer (connection refused, closed, timed out)
  std::string headers;
  std::string body;
};
// One HTTP/1.1 request to 127.0.0.1:port (GET by default), read to the end of the connection.
HttpAnswer http_get(int port, const std::string& path, const std::string& method = "GET");
// Sends `raw` as is (a malformed request) and reads the answer.
HttpAnswer http_raw(int port, const std::string& raw,
                    std::chrono::milliseconds timeout = std::chrono::seconds(10));

}  // namespace p2k_test
