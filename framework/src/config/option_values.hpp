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
  Path path;          // where the user set it (empty for a default)
  Location location;  // line 0 when unknown
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

  // Where these options came from: the file, the path of the options object and its location.
  void set_origin(std::string file, Path base, Location base_location);
  // A diagnostic about option `key` (empty: about the options as a whole), located where the user
  // set it, or at the options object when the value is a default or absent.
  Diagnostic diagnostic(const std::string& key, std::string message) const;

 private:
  std::vector<ResolvedOption> values_;
  std::string file_;
  Path base_;
  Location base_location_;
};

// Whether a passthrough key (e.g. "rdkafka.sasl.password") names a secret by the word rule of
// ABI 1.0 (password, secret, token, key, credential, jaas). Applied only to plugins that answer
// ABI 1.0: from 1.1 on, secrets are declared (P2K_OPT_IS_SECRET).
bool looks_secret_by_name(const std::string& key);

// Whether the value of `key`, accepted by `option`, is a secret for a table of ABI `abi_minor`.
bool is_secret(const p2k_option& option, const std::string& key, uint32_t abi_minor);

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

// Validates `given` (a JSON object, or null for "no options") against `table`, a table of plugin
// ABI `abi_minor` (the host's own tables are of the host's ABI). Nested objects are flattened with
// '.' ({"retry": {"max": 1}} is "retry.max"). A key matches an option of that exact name first,
// else a PREFIX option. Every problem goes to `diagnostics` with its path under `base` (located
// in `doc` when given); defaults are applied.
ResolvedOptions resolve_options(std::span<const p2k_option> table, const boost::json::value* given,
                                const Path& base, const JsonDocument* doc, const EnvLookup& env,
                                Diagnostics& diagnostics, uint32_t abi_minor = P2K_ABI_MINOR);

// The type's name as shown to users ("duration", "size", ...; "string" for SECRET).
const char* type_name(p2k_option_type type);
// Whether the option is declared secret (P2K_OPT_IS_SECRET, or the 1.0 type P2K_OPT_SECRET).
bool declared_secret(const p2k_option& option);

}  // namespace pg2kafka::config
