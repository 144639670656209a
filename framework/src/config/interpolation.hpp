// Environment interpolation in configuration strings:
//   ${NAME}            the variable's value; an error when NAME is unset (never an empty string)
//   ${NAME:-default}   the value, or `default` when NAME is unset or empty; `default` may itself
//                      contain ${...}, e.g. ${KAFKA_BROKER:-${KAFKA_PRODUCER_URL}}
//   $$                 a literal '$'
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace pg2kafka::config {

using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;

// Reads the process environment.
EnvLookup process_environment();

struct InterpolationResult {
  std::string value;
  std::string error;  // empty on success; names the variable and the fix otherwise
  bool ok() const { return error.empty(); }
};

InterpolationResult interpolate(std::string_view text, const EnvLookup& env);

}  // namespace pg2kafka::config
