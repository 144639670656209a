#include "config/json_document.hpp"

#include <boost/json/parser.hpp>

#include <cctype>
#include <cstring>
#include <fstream>
#include <sstream>

namespace pg2kafka::config {
namespace {

Location location_at(std::string_view text, size_t offset) {
  Location loc{1, 1};
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++loc.line;
      loc.column = 1;
    } else {
      ++loc.column;
    }
  }
  return loc;
}

// Records the position of every key and array element of a document that already parsed.
// Because the text is known to be valid, the scanner only needs to follow strings, comments and
// nesting; keys are decoded just enough to compare them (escapes other than \" and \\ are rare in
// configuration keys and kept as written).
class Locator {
 public:
  explicit Locator(std::string_view text) : text_(text) {}

  std::map<Path, Location> run() {
    std::map<Path, Location> out;
    struct Frame {
      bool is_array;
      size_t index = 0;
      bool expect_key = false;
      bool has_key = false;   // object: path holds this frame's current key
      bool recorded = false;  // array: the current element's position is recorded
    };
    std::vector<Frame> stack;
    Path path;
    auto value_starts = [&] {
      if (!stack.empty() && stack.back().is_array && !stack.back().recorded) {
        out[path] = location_at(pos_);
        stack.back().recorded = true;
      }
    };
    for (pos_ = 0; pos_ < text_.size();) {
      char c = text_[pos_];
      if (c == '/' && pos_ + 1 < text_.size() &&
          (text_[pos_ + 1] == '/' || text_[pos_ + 1] == '*')) {
        skip_comment();
        continue;
      }
      if (std::isspace(static_cast<unsigned char>(c)) || c == ':') {
        ++pos_;
        continue;
      }
      if (c == '"' && !stack.empty() && !stack.back().is_array && stack.back().expect_key) {
        size_t start = pos_;
        std::string key = read_string();
        Frame& f = stack.back();
        if (f.has_key) path.pop_back();
        path.push_back(key);
        f.has_key = true;
        f.expect_key = false;
        out[path] = location_at(start);
        continue;
      }
      switch (c) {
        case ',':
          if (!stack.empty()) {
            Frame& f = stack.back();
            if (f.is_array) {
              path.back() = "[" + std::to_string(++f.index) + "]";
              f.recorded = false;
            } else {
              f.expect_key = true;
            }
          }
          ++pos_;
          break;
        case '}':
          if (!stack.empty()) {
            if (stack.back().has_key) path.pop_back();
            stack.pop_back();
          }
          ++pos_;
          break;
        case ']':
          if (!stack.empty()) {
            path.pop_back();
            stack.pop_back();
          }
          ++pos_;
          break;
        case '{':
          value_starts();
          stack.push_back(Frame{false});
          stack.back().expect_key = true;
          ++pos_;
          break;
        case '[':
          value_starts();
          stack.push_back(Frame{true});
          path.push_back("[0]");
          ++pos_;
          break;
        case '"':
          value_starts();
          read_string();
          break;
        default:
          value_starts();
          while (pos_ < text_.size() && !std::strchr(",}] \t\r\n/", text_[pos_])) ++pos_;
      }
    }
    return out;
  }

 private:
  Location location_at(size_t offset) {
    // Incremental: offsets only grow during the scan.
    for (; line_pos_ < offset; ++line_pos_) {
      if (text_[line_pos_] == '\n') {
        ++line_.line;
        line_.column = 1;
      } else {
        ++line_.column;
      }
    }
    return line_;
  }

  void skip_comment() {
    if (text_[pos_ + 1] == '/') {
      while (pos_ < text_.size() && text_[pos_] != '\n') ++pos_;
    } else {
      size_t end = text_.find("*/", pos_ + 2);
      pos_ = end == std::string_view::npos ? text_.size() : end + 2;
    }
  }

  std::string read_string() {
    std::string out;
    ++pos_;  // opening quote
    while (pos_ < text_.size() && text_[pos_] != '"') {
      if (text_[pos_] == '\\' && pos_ + 1 < text_.size()) {
        char e = text_[pos_ + 1];
        out += (e == '"' || e == '\\' || e == '/') ? std::string(1, e)
                                                   : std::string(text_.substr(pos_, 2));
        pos_ += 2;
        continue;
      }
      out += text_[pos_++];
    }
    ++pos_;  // closing quote
    return out;
  }

  std::string_view text_;
  size_t pos_ = 0;
  size_t line_pos_ = 0;
  Location line_{1, 1};
};

}  // namespace

JsonDocument JsonDocument::parse(std::string_view text, std::string file) {
  boost::json::parse_options options;
  options.allow_comments = true;
  options.allow_trailing_commas = true;
  boost::json::parser parser(boost::json::storage_ptr(), options);
  boost::system::error_code ec;
  size_t used = parser.write(text.data(), text.size(), ec);
  if (ec) {
    Diagnostics d;
    std::string what = ec.message();
    if (used >= text.size()) what = "unexpected end of file (" + what + ")";
    d.add(Diagnostic{file, {}, location_at(text, used), "invalid JSON: " + what});
    throw ConfigError(std::move(d));
  }
  JsonDocument doc;
  doc.root_ = parser.release();
  doc.file_ = std::move(file);
  doc.locations_ = Locator(text).run();
  return doc;
}

JsonDocument JsonDocument::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    Diagnostics d;
    d.add(Diagnostic{
        path, {}, {}, "cannot read the pipeline file: " + std::string(std::strerror(errno))});
    throw ConfigError(std::move(d));
  }
  std::ostringstream s;
  s << in.rdbuf();
  return parse(s.str(), path);
}

Location JsonDocument::locate(const Path& path) const {
  auto it = locations_.find(path);
  return it == locations_.end() ? Location{} : it->second;
}

Diagnostic JsonDocument::diagnostic(const Path& path, std::string message) const {
  return Diagnostic{file_, path, locate(path), std::move(message)};
}

}  // namespace pg2kafka::config
