// Options: declaring a plugin's option table (sdk::option) and reading the validated values
// passed to create (sdk::Options).
#pragma once

#include <pg2kafka/plugin.h>

#include <charconv>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <pg2kafka/sdk/errors.hpp>
#include <pg2kafka/sdk/text.hpp>

namespace pg2kafka::sdk {

// Builds one entry of a plugin's option table. `default_value` is in the user-facing text form
// ("5s", "1000", "true") or nullptr; see plugin.h for the types and flags (P2K_OPT_REQUIRED,
// P2K_OPT_IS_SECRET). The table is the one place where options and their defaults live: read
// every option that has a default without a fallback of your own (Options::integer and the
// others throw when an option is absent), and leave range checks to min_value/max_value.
constexpr p2k_option option(const char* name, p2k_option_type type, const char* default_value,
                            const char* description, uint32_t flags = 0,
                            const char* const* choices = nullptr, int64_t min_value = 0,
                            int64_t max_value = 0) {
  return p2k_option{sizeof(p2k_option), name,    type,      flags,    default_value,
                    description,        choices, min_value, max_value};
}

class Options {
 public:
  Options() = default;
  Options(const p2k_option_value* values, size_t count) {
    for (size_t i = 0; i < count; ++i) values_[values[i].key] = values[i].value;
  }

  bool has(std::string_view key) const { return values_.find(key) != values_.end(); }

  std::optional<std::string> find(std::string_view key) const {
    auto it = values_.find(key);
    if (it == values_.end()) return std::nullopt;
    return it->second;
  }

  // The value of `key`; throws ConfigError when it is absent (an optional option without
  // default).
  const std::string& string(std::string_view key) const {
    auto it = values_.find(key);
    if (it == values_.end()) throw ConfigError(std::string(key), "is not set");
    return it->second;
  }

  int64_t integer(std::string_view key) const { return parse_int(key, string(key)); }
  bool boolean(std::string_view key) const { return string(key) == "true"; }
  std::chrono::milliseconds duration(std::string_view key) const {
    return std::chrono::milliseconds(parse_int(key, string(key)));
  }
  uint64_t size(std::string_view key) const {
    return static_cast<uint64_t>(parse_int(key, string(key)));
  }

  // A LIST option's elements (empty when absent).
  std::vector<std::string> list(std::string_view key) const {
    auto value = find(key);
    if (!value || value->empty()) return {};
    return split(*value, ',');
  }

  // Every passthrough key that starts with `prefix` (e.g. "rdkafka."), with the prefix removed.
  std::map<std::string, std::string> with_prefix(std::string_view prefix) const {
    std::map<std::string, std::string> out;
    for (const auto& [k, v] : values_) {
      if (k.size() > prefix.size() && std::string_view(k).substr(0, prefix.size()) == prefix)
        out[k.substr(prefix.size())] = v;
    }
    return out;
  }

  const std::map<std::string, std::string, std::less<>>& all() const { return values_; }

 private:
  static int64_t parse_int(std::string_view key, const std::string& text) {
    int64_t v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || end != text.data() + text.size())
      throw ConfigError(std::string(key), "is not a whole number: '" + text + "'");
    return v;
  }

  std::map<std::string, std::string, std::less<>> values_;
};

}  // namespace pg2kafka::sdk
