// Configuration errors: collected, never thrown one at a time, so the user sees all of them.
#pragma once

#include <pg2kafka/sdk/text.hpp>

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace pg2kafka::config {

// A position in a configuration file (1-based).
struct Location {
  int line = 0;
  int column = 0;
};

// "file:line:column" (or "line L, column C" without a file), for a message naming a second place.
std::string format_location(const std::string& file, Location location);

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
  // At most this many diagnostics are kept; past it, the last item says how many more there
  // were. A file of a million unknown keys gets a short answer, not a gigabyte of them.
  static constexpr size_t kMaxKept = 100;

  void add(Diagnostic d);
  bool empty() const { return total_ == 0; }
  // How many were added (more than items().size() once past kMaxKept).
  size_t size() const { return total_; }
  const std::vector<Diagnostic>& items() const { return items_; }
  std::string format() const;  // one diagnostic per line

 private:
  std::vector<Diagnostic> items_;
  size_t total_ = 0;
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

// How much of a user-supplied text a diagnostic shows, in bytes of output.
inline constexpr size_t kShownLimit = 80;

// User-supplied text (a key, a value, a variable name...) as a diagnostic shows it: control
// characters, bytes that are not UTF-8, and invisible Unicode that reorders text (bidi controls)
// are escaped (\n, \t, \x1b, \u{202e}), and the text is cut after about `limit` bytes of output
// with "…(N bytes)" appended, N being the length of the whole text. So a diagnostic stays one
// short line whatever the input holds. Every echo of user text in config/ goes through this.
std::string printable(std::string_view text, size_t limit = kShownLimit);
// The length of the well-formed UTF-8 sequence at text[i] (0: not UTF-8): the SDK's.
using sdk::utf8_length_at;
// printable() between quotes: 'text' (or "text" for JSON keys, with quote '"').
std::string quoted(std::string_view text, char quote = '\'', size_t limit = kShownLimit);

// Levenshtein distance, for "did you mean" suggestions.
size_t edit_distance(const std::string& a, const std::string& b);
// The candidate closest to `given`, if it is close enough to be a plausible typo. Texts longer
// than kNearestMaxLength get no suggestion (a typo is short; and the distance costs length²).
inline constexpr size_t kNearestMaxLength = 256;
std::string nearest(const std::string& given, const std::vector<std::string>& candidates);

}  // namespace pg2kafka::config
