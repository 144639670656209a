#include "runtime/log.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace pg2kafka::log {
namespace {
std::atomic<int> g_level{P2K_LOG_INFO};
std::mutex g_mutex;

const char* level_name(p2k_log_level l) {
  switch (l) {
    case P2K_LOG_ERROR:
      return "ERROR";
    case P2K_LOG_WARN:
      return "WARN";
    case P2K_LOG_INFO:
      return "INFO";
    case P2K_LOG_DEBUG:
      return "DEBUG";
  }
  return "?";
}
}  // namespace

void set_level(p2k_log_level l) {
  g_level = l;
}
p2k_log_level level() {
  return static_cast<p2k_log_level>(g_level.load());
}

std::optional<p2k_log_level> parse_level(std::string_view name) {
  if (name == "error") return P2K_LOG_ERROR;
  if (name == "warn") return P2K_LOG_WARN;
  if (name == "info") return P2K_LOG_INFO;
  if (name == "debug") return P2K_LOG_DEBUG;
  return std::nullopt;
}

void write(p2k_log_level l, std::string_view origin, std::string_view message) {
  if (static_cast<int>(l) > g_level.load()) return;
  auto now = std::chrono::system_clock::now();
  auto secs = std::chrono::system_clock::to_time_t(now);
  auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
  std::lock_guard lock(g_mutex);
  std::fprintf(stderr, "%s.%03dZ %-5s [%.*s] %.*s\n", stamp, static_cast<int>(ms), level_name(l),
               static_cast<int>(origin.size()), origin.data(), static_cast<int>(message.size()),
               message.data());
  std::fflush(stderr);
}

}  // namespace pg2kafka::log
