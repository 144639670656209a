// The SDK's exceptions: what a plugin throws becomes the status the host sees (see plugin.hpp).
#pragma once

#include <pg2kafka/plugin.h>

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace pg2kafka::sdk {

// Base of the SDK's exceptions: carries the status the trampoline returns to the host.
class Error : public std::runtime_error {
 public:
  Error(p2k_status status, const std::string& message)
      : std::runtime_error(message), status_(status) {}
  p2k_status status() const noexcept { return status_; }

 private:
  p2k_status status_;
};

// Transient: the host retries the operation (or the record) after a backoff.
class RetryError : public Error {
 public:
  explicit RetryError(const std::string& message) : Error(P2K_RETRY, message) {}
};

// Permanent: the pipeline stops with exit code 4.
class FatalError : public Error {
 public:
  explicit FatalError(const std::string& message) : Error(P2K_FATAL, message) {}
};

// Bad configuration (from a constructor or open()): the pipeline stops with exit code 2. Name the
// option when the problem is about one: the host then shows the problem at the place where the
// user set that option (file:line:column), e.g.
//
//   throw sdk::ConfigError("batch_size", "must be a multiple of 8");
//
// Several problems at once (so the user fixes them all in one go):
//
//   sdk::ConfigError::Problems problems;
//   if (...) problems.push_back({"acks", "must be 'all' when enable_idempotence is true"});
//   if (!problems.empty()) throw sdk::ConfigError(std::move(problems));
//
// A message should not repeat the option's name (the host adds it) nor contain a secret value.
class ConfigError : public Error {
 public:
  struct Problem {
    std::string option;  // empty: about no single option
    std::string message;
  };
  using Problems = std::vector<Problem>;

  // A problem of no single option.
  explicit ConfigError(const std::string& message)
      : Error(P2K_INVALID_CONFIG, message), problems_{{{}, message}} {}
  // A problem with one option.
  ConfigError(std::string option, const std::string& message)
      : Error(P2K_INVALID_CONFIG, describe({{option, message}})),
        problems_{{std::move(option), message}} {}
  // Several problems (at least one).
  explicit ConfigError(Problems problems)
      : Error(P2K_INVALID_CONFIG, describe(problems)), problems_(std::move(problems)) {}

  const Problems& problems() const noexcept { return problems_; }

  // The text of what(): "option 'x': message", several joined with "; ". It is what a host
  // without p2k_host.option_error (ABI 1.0) shows, and what logs show.
  static std::string describe(const Problems& problems) {
    std::string out;
    if (problems.size() > 1) out = std::to_string(problems.size()) + " problems: ";
    for (size_t i = 0; i < problems.size(); ++i) {
      if (i) out += "; ";
      if (!problems[i].option.empty()) out += "option '" + problems[i].option + "': ";
      out += problems[i].message;
    }
    return out;
  }

 private:
  Problems problems_;
};

}  // namespace pg2kafka::sdk
