// The pipeline file: which source and sink to run, with their options, and the host's settings.
//
//   {
//     "source":   { "plugin": "pg-outbox", "options": { ... } },
//     "sink":     { "plugin": "kafka",     "options": { ... } },
//     "pipeline": { "batch_size": 1000, "dry_run": "${DRY_RUN:-false}" }
//   }
//
// JSON with comments and trailing commas; ${VAR} / ${VAR:-default} in any string value. A
// "plugin" is a plugin name (looked up in the plugin path) or a path to a plugin file.
#pragma once

#include <chrono>
#include <memory>
#include <span>
#include <string>

#include "config/diagnostics.hpp"
#include "config/interpolation.hpp"
#include "config/json_document.hpp"
#include "config/option_values.hpp"

namespace pg2kafka::config {

// The host's own option table (the "pipeline" section); documented by `pg2kafka --help`.
std::span<const p2k_option> host_options();

// The "pipeline" section, typed. Every value comes from the option table (host_options()), which
// holds the defaults: a setting is zero here only while its value was invalid (and the
// configuration is refused).
struct HostSettings {
  size_t batch_size = 0;
  size_t max_in_flight = 0;
  size_t max_in_flight_bytes = 0;
  std::chrono::milliseconds poll_timeout{0};
  std::chrono::milliseconds retry_initial_backoff{0};
  std::chrono::milliseconds retry_max_backoff{0};
  std::chrono::milliseconds shutdown_timeout{0};
  std::chrono::milliseconds open_timeout{0};
  bool dry_run = false;
  std::string log_level;
  std::string log_format;   // text or json
  std::string http_listen;  // host:port, empty: no HTTP endpoint
  std::chrono::milliseconds liveness_timeout{0};
  // on_permanent_failure: true for park, false for stop.
  bool park_failures = false;
  std::string dead_letter_topic;  // empty: none
};

struct PluginSection {
  std::string plugin;  // name or path, interpolated; empty when the section is absent
  Path path;           // {"source"} or {"sink"}
  const boost::json::value* options = nullptr;  // into the document; null when absent
};

class PipelineConfig {
 public:
  // Parses the file and checks its structure and the "pipeline" section. Problems are added to
  // `diagnostics` (a syntax error throws ConfigError, since nothing else can be checked).
  // `force_dry_run` is the command line's --dry-run; it makes the sink section optional and
  // unused.
  static PipelineConfig load(const std::string& file, const EnvLookup& env, bool force_dry_run,
                             Diagnostics& diagnostics);
  static PipelineConfig parse(std::string_view text, const std::string& file, const EnvLookup& env,
                              bool force_dry_run, Diagnostics& diagnostics);

  const JsonDocument& document() const { return *document_; }
  const PluginSection& source() const { return source_; }
  const PluginSection& sink() const { return sink_; }
  const HostSettings& host() const { return host_; }
  const ResolvedOptions& host_values() const { return host_values_; }

 private:
  void read(const EnvLookup& env, bool force_dry_run, Diagnostics& diagnostics);

  std::shared_ptr<JsonDocument> document_;
  PluginSection source_;
  PluginSection sink_;
  HostSettings host_;
  ResolvedOptions host_values_;
};

}  // namespace pg2kafka::config
