// A JSON configuration file: parsed leniently (comments, trailing commas) and with the source
// position of every key and array element, so that errors can point at line and column.
//
// Stricter than JSON parsers usually are, because a pipeline file decides where data goes:
//   - a key set twice in one object is an error (parsers silently keep one of them);
//   - the file must be UTF-8 text without NUL bytes; a UTF-8 byte order mark is skipped;
//   - objects and lists nest at most kMaxDepth deep; load() reads at most kMaxFileSize bytes.
// Columns count characters (code points), not bytes, as editors do; the BOM is not counted.
#pragma once

#include <boost/json/value.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/diagnostics.hpp"

namespace pg2kafka::config {

class JsonDocument {
 public:
  // The largest file load() accepts: a pipeline file is a few kilobytes; this refuses a wrong
  // path (a log, a disk image, /dev/zero) before it fills memory.
  static constexpr size_t kMaxFileSize = size_t{16} << 20;
  // How deep objects and lists may nest.
  static constexpr size_t kMaxDepth = 32;

  // Parses `text`; `file` names it in error messages. Throws ConfigError on a syntax error, with
  // the line and column where parsing stopped, or with every key set twice in one object.
  static JsonDocument parse(std::string_view text, std::string file);
  // Reads and parses a file. Throws ConfigError when it cannot be read, is a directory, is
  // larger than kMaxFileSize, or does not parse. Files other than regular ones (a pipe,
  // /dev/stdin, a process substitution <(...)) are read too, up to kMaxFileSize.
  static JsonDocument load(const std::string& path);

  const boost::json::value& root() const { return root_; }
  const std::string& file() const { return file_; }
  // Where the value at `path` starts (the key for object members); line 0 when unknown.
  Location locate(const Path& path) const;
  // A diagnostic for `path`, located in this document.
  Diagnostic diagnostic(const Path& path, std::string message) const;

  // The positions of all keys and array elements, as a tree (node 0 is the root value).
  struct Locations {
    static constexpr uint32_t kNone = UINT32_MAX;
    struct Node {
      Location location;
      uint32_t elements = kNone;  // an array: its index in element_lists
    };
    std::vector<Node> nodes;
    std::vector<std::vector<uint32_t>> element_lists;              // array elements' nodes
    std::map<std::pair<uint32_t, std::string>, uint32_t> members;  // (object node, key) → node
  };

 private:
  boost::json::value root_;
  std::string file_;
  Locations locations_;
};

}  // namespace pg2kafka::config
