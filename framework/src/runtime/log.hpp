// Process-wide logging to stderr: one line per message, UTC timestamp, level, origin.
#pragma once

#include <pg2kafka/plugin.h>

#include <optional>
#include <string>
#include <string_view>

namespace pg2kafka::log {

// Messages above this level are dropped. Default: info.
void set_level(p2k_log_level level);
p2k_log_level level();
std::optional<p2k_log_level> parse_level(std::string_view name);

// Thread-safe. `origin` is "host" or a plugin's name.
void write(p2k_log_level level, std::string_view origin, std::string_view message);

inline void error(std::string_view m) {
  write(P2K_LOG_ERROR, "host", m);
}
inline void warn(std::string_view m) {
  write(P2K_LOG_WARN, "host", m);
}
inline void info(std::string_view m) {
  write(P2K_LOG_INFO, "host", m);
}
inline void debug(std::string_view m) {
  write(P2K_LOG_DEBUG, "host", m);
}

}  // namespace pg2kafka::log
