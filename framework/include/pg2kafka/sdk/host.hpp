// Host: a plugin instance's handle on the host (logging, delivery reports, option errors).
#pragma once

#include <pg2kafka/plugin.h>

#include <cstdint>
#include <string>

namespace pg2kafka::sdk {

class Host {
 public:
  Host() = default;
  explicit Host(const p2k_host* host) : host_(host) {}

  void log(p2k_log_level level, const std::string& message) const {
    if (host_ && host_->log) host_->log(host_->ctx, level, message.c_str());
  }
  void error(const std::string& m) const { log(P2K_LOG_ERROR, m); }
  void warn(const std::string& m) const { log(P2K_LOG_WARN, m); }
  void info(const std::string& m) const { log(P2K_LOG_INFO, m); }
  void debug(const std::string& m) const { log(P2K_LOG_DEBUG, m); }

  // Sinks: the outcome of one written record, exactly once per write. Thread-safe.
  void report(uint64_t position, p2k_status status, const std::string& message = {}) const {
    if (host_ && host_->report)
      host_->report(host_->ctx, position, status, message.empty() ? nullptr : message.c_str());
  }

  // Whether the host takes configuration problems option by option (ABI 1.1). The SDK uses it
  // for ConfigError; plugins rarely need it.
  bool has_option_error() const {
    return P2K_HAS_FIELD(host_, p2k_host, option_error) && host_->option_error;
  }
  void option_error(const std::string& option, const std::string& message) const {
    if (has_option_error())
      host_->option_error(host_->ctx, option.empty() ? nullptr : option.c_str(), message.c_str());
  }

  // The host's ABI minor version (0 without a host).
  uint32_t abi_minor() const { return host_ ? host_->abi_minor : 0; }
  const p2k_host* raw() const { return host_; }

 private:
  const p2k_host* host_ = nullptr;
};

}  // namespace pg2kafka::sdk
