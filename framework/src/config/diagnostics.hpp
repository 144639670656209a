// Configuration errors: collected, never thrown one at a time, so the user sees all of them.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace pg2kafka::config {

// A position in a configuration file (1-based).
struct Location {
  int line = 0;
  int column = 0;
};

// A path into the configuration document, e.g. {"sink", "options", "rdkafka.linger.ms"}.
using Path = std::vector<std::string>;
std::string format_path(const Path& path);

struct Diagnostic {
  std::string file;  // may be empty (values that came from the command line)
  Path path;
  Location location;  // line 0 when unknown
  std::string message;
  std::string format() const;  // "file:line:col: path: message"
};

class Diagnostics {
 public:
  void add(Diagnostic d) { items_.push_back(std::move(d)); }
  bool empty() const { return items_.empty(); }
  size_t size() const { return items_.size(); }
  const std::vector<Diagnostic>& items() const { return items_; }
  std::string format() const;  // one diagnostic per line

 private:
  std::vector<Diagnostic> items_;
};

// Thrown once all diagnostics of a stage are collected.
class ConfigError : public std::runtime_error {
 public:
  explicit ConfigError(Diagnostics d)
      : std::runtime_error(d.format()), diagnostics_(std::move(d)) {}
  const Diagnostics& diagnostics() const { return diagnostics_; }

 private:
  Diagnostics diagnostics_;
};

// Levenshtein distance, for "did you mean" suggestions.
size_t edit_distance(const std::string& a, const std::string& b);
// The candidate closest to `given`, if it is close enough to be a plausible typo.
std::string nearest(const std::string& given, const std::vector<std::string>& candidates);

}  // namespace pg2kafka::config
