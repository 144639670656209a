// Process-wide logging to stderr: one line per message, UTC timestamp, level, origin. As text
// (the default) or as one JSON object per line (log.format json, --log-format json):
//   {"time":"2026-12-01T17:34:15.123Z","level":"info","component":"host","message":"...",
//    "fields":{"delivered":1000}}
// "component" is "host" or the plugin's name; "fields" (only when there are any) holds the
// message's figures and identifiers as separate values, for log pipelines to filter on.
#pragma once

#include <pg2kafka/plugin.h>

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pg2kafka::log {

// Messages above this level are dropped. Default: info.
void set_level(p2k_log_level level);
p2k_log_level level();
std::optional<p2k_log_level> parse_level(std::string_view name);

enum class Format { kText, kJson };
void set_format(Format format);
std::optional<Format> parse_format(std::string_view name);

// A message's structured values: (name, JSON text of the value), e.g. {"delivered", "1000"} or
// {"event", "\"5f0e...\""}; see field() for building them.
using Fields = std::vector<std::pair<std::string, std::string>>;
std::pair<std::string, std::string> field(std::string name, std::string_view text);
std::pair<std::string, std::string> field(std::string name, uint64_t number);

// Thread-safe. `origin` is "host" or a plugin's name. Text lines show the fields after the
// message as name=value; JSON lines as the "fields" object.
void write(p2k_log_level level, std::string_view origin, std::string_view message,
           const Fields& fields = {});

inline void error(std::string_view m, const Fields& fields = {}) {
  write(P2K_LOG_ERROR, "host", m, fields);
}
inline void warn(std::string_view m, const Fields& fields = {}) {
  write(P2K_LOG_WARN, "host", m, fields);
}
inline void info(std::string_view m, const Fields& fields = {}) {
  write(P2K_LOG_INFO, "host", m, fields);
}
inline void debug(std::string_view m) {
  write(P2K_LOG_DEBUG, "host", m);
}

}  // namespace pg2kafka::log
