#include "runtime/log.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <mutex>

#include <pg2kafka/sdk/json.hpp>
#include <pg2kafka/sdk/text.hpp>

namespace pg2kafka::log {
namespace {
std::atomic<int> g_level{P2K_LOG_INFO};
std::atomic<int> g_format{static_cast<int>(Format::kText)};
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

namespace {
// Invalid UTF-8 (a plugin's message may carry any bytes) would make the whole JSON line
// unparsable for a strict reader: each byte of a broken sequence becomes U+FFFD.
std::string valid_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    size_t n = sdk::utf8_length_at(s, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(s.data() + i, n);
      i += n;
    }
  }
  return out;
}
}  // namespace

void set_format(Format f) {
  g_format = static_cast<int>(f);
}

std::optional<Format> parse_format(std::string_view name) {
  if (name == "text") return Format::kText;
  if (name == "json") return Format::kJson;
  return std::nullopt;
}

std::pair<std::string, std::string> field(std::string name, std::string_view text) {
  std::string json;
  sdk::append_json_string(json, valid_utf8(text));
  return {std::move(name), std::move(json)};
}

std::pair<std::string, std::string> field(std::string name, uint64_t number) {
  return {std::move(name), std::to_string(number)};
}

void write(p2k_log_level l, std::string_view origin, std::string_view message,
           const Fields& fields) {
  if (static_cast<int>(l) > g_level.load()) return;
  auto now = std::chrono::system_clock::now();
  auto secs = std::chrono::system_clock::to_time_t(now);
  auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
  if (g_format.load() == static_cast<int>(Format::kJson)) {
    char time[48];
    std::snprintf(time, sizeof time, "%s.%03dZ", stamp, static_cast<int>(ms));
    std::string line = "{\"time\":\"";
    line += time;
    line += "\",\"level\":\"";
    for (const char* c = level_name(l); *c; ++c) line += static_cast<char>(*c + ('a' - 'A'));
    line += "\",\"component\":";
    sdk::append_json_string(line, valid_utf8(origin));
    line += ",\"message\":";
    sdk::append_json_string(line, valid_utf8(message));
    if (!fields.empty()) {
      line += ",\"fields\":{";
      for (size_t i = 0; i < fields.size(); ++i) {
        if (i) line += ',';
        sdk::append_json_string(line, fields[i].first);
        line += ':' + fields[i].second;
      }
      line += '}';
    }
    line += "}\n";
    std::lock_guard lock(g_mutex);
    std::fwrite(line.data(), 1, line.size(), stderr);
    std::fflush(stderr);
    return;
  }
  std::string extra;
  for (const auto& [name, value] : fields) extra += " " + name + "=" + value;
  std::lock_guard lock(g_mutex);
  std::fprintf(stderr, "%s.%03dZ %-5s [%.*s] %.*s%s\n", stamp, static_cast<int>(ms), level_name(l),
               static_cast<int>(origin.size()), origin.data(), static_cast<int>(message.size()),
               message.data(), extra.c_str());
  std::fflush(stderr);
}

}  // namespace pg2kafka::log
