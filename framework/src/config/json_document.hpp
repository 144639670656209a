// A JSON configuration file: parsed leniently (comments, trailing commas) and with the source
// position of every key and array element, so that errors can point at line and column.
#pragma once

#include <boost/json/value.hpp>

#include <map>
#include <string>
#include <string_view>

#include "config/diagnostics.hpp"

namespace pg2kafka::config {

class JsonDocument {
 public:
  // Parses `text`; `file` names it in error messages. Throws ConfigError on a syntax error, with
  // the line and column where parsing stopped.
  static JsonDocument parse(std::string_view text, std::string file);
  // Reads and parses a file. Throws ConfigError when it cannot be read.
  static JsonDocument load(const std::string& path);

  const boost::json::value& root() const { return root_; }
  const std::string& file() const { return file_; }
  // Where the value at `path` starts (the key for object members); line 0 when unknown.
  Location locate(const Path& path) const;
  // A diagnostic for `path`, located in this document.
  Diagnostic diagnostic(const Path& path, std::string message) const;

 private:
  boost::json::value root_;
  std::string file_;
  std::map<Path, Location> locations_;
};

}  // namespace pg2kafka::config
