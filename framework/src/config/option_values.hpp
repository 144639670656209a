// Validation of user options against an option table (a plugin's, or the host's own), producing
// the normalised text values that plugins receive (see p2k_option_type in plugin.h).
#pragma once

#include <pg2kafka/plugin.h>

#include <boost/json/value.hpp>

#include <optional>
#include <span>
#include <string>
#include <vector>

#include "config/diagnostics.hpp"
#include "config/interpolation.hpp"

namespace pg2kafka::config {

class JsonDocument;

struct ResolvedOption {
  std::string key;
  std::string value;  // normalised text form
  bool secret = false;
  bool from_default = false;
};

class ResolvedOptions {
 public:
  void add(ResolvedOption o) { values_.push_back(std::move(o)); }
  const std::vector<ResolvedOption>& values() const { return values_; }
  const ResolvedOption* find(const std::string& key) const;
  // The value, or `fallback` when absent.
  std::string get(const std::string& key, const std::string& fallback = {}) const;
  // C view for p2k_*_ops.create; valid while this object lives and is not modified.
  std::vector<p2k_option_value> c_values() const;

 private:
  std::vector<ResolvedOption> values_;
};

// Whether a passthrough key (e.g. "rdkafka.sasl.password") names a secret.
bool looks_secret(const std::string& key);

// Parses one value of the given option type into its normalised text form. JSON strings are
// interpolated first. On failure returns nullopt and sets `error` (without the value when the
// option is a secret).
std::optional<std::string> normalize_value(const p2k_option& option, const boost::json::value& v,
                                           const EnvLookup& env, std::string& error);

// Parses a duration ("250ms", "5s", "1.5m", "2h", "1d"; a bare number is milliseconds) into
// milliseconds, or nullopt.
std::optional<int64_t> parse_duration_ms(const std::string& text);
// Parses a size ("512", "64KiB", "1MiB", "1GiB", "1kB", "1MB", "1GB") into bytes, or nullopt.
std::optional<int64_t> parse_size_bytes(const std::string& text);

// Validates `given` (a JSON object, or null for "no options") against `table`. Nested objects are
// flattened with '.' ({"retry": {"max": 1}} is "retry.max"). Every problem goes to `diagnostics`
// with its path under `base` (located in `doc` when given); defaults are applied.
ResolvedOptions resolve_options(std::span<const p2k_option> table, const boost::json::value* given,
                                const Path& base, const JsonDocument* doc, const EnvLookup& env,
                                Diagnostics& diagnostics);

// The type's name as shown to users ("duration", "size", ...).
const char* type_name(p2k_option_type type);

}  // namespace pg2kafka::config
