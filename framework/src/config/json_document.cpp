#include "config/json_document.hpp"

#include <pg2kafka/sdk/json.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json/error.hpp>
#include <boost/json/parser.hpp>

#include <cerrno>
#include <cstring>

namespace pg2kafka::config {
namespace {

// Counts lines and columns up to increasing offsets of one text. Columns count code points (the
// text is known to be UTF-8 when positions are asked for): what editors show.
class LineCounter {
 public:
  explicit LineCounter(std::string_view text) : text_(text) {}
  Location at(size_t offset) {
    if (offset < pos_) {  // never during a scan; restart when asked to go back
      pos_ = 0;
      loc_ = Location{1, 1};
    }
    for (; pos_ < offset && pos_ < text_.size(); ++pos_) {
      unsigned char c = static_cast<unsigned char>(text_[pos_]);
      if (c == '\n') {
        ++loc_.line;
        loc_.column = 1;
      } else if ((c & 0xC0) != 0x80) {
        ++loc_.column;
      }
    }
    return loc_;
  }

 private:
  std::string_view text_;
  size_t pos_ = 0;
  Location loc_{1, 1};
};

Location location_at(std::string_view text, size_t offset) {
  return LineCounter(text).at(offset);
}

// Records the position of every key and array element of a document that already parsed, and
// finds keys set twice in one object (the parser keeps only one of them, silently). Because the
// text is known to be valid, the scanner only needs to follow strings, comments and nesting;
// keys are decoded exactly as the parser decodes them (escapes included), so "a" and "\u0061"
// are the same key.
class Locator {
 public:
  Locator(std::string_view text, const std::string& file)
      : text_(text), lines_(text), file_(file) {}

  JsonDocument::Locations run(Diagnostics& duplicates) {
    using Locations = JsonDocument::Locations;
    Locations out;
    out.nodes.push_back({});  // the root; its position stays unknown
    struct Frame {
      bool is_array;
      uint32_t node;
      uint32_t index = 0;
      bool expect_key = false;
      bool has_key = false;                // object: path holds this frame's current key
      bool recorded = false;               // array: the current element's position is recorded
      uint32_t member = Locations::kNone;  // object: the node of the current key's value
    };
    std::vector<Frame> stack;
    Path path;
    auto new_node = [&](Location loc) {
      out.nodes.push_back({loc, Locations::kNone});
      return static_cast<uint32_t>(out.nodes.size() - 1);
    };
    // The node of the value starting at pos_.
    auto value_starts = [&]() -> uint32_t {
      if (stack.empty()) return 0;
      Frame& f = stack.back();
      if (!f.is_array) return f.member;
      if (!f.recorded) {
        uint32_t n = new_node(lines_.at(pos_));
        out.element_lists[out.nodes[f.node].elements].push_back(n);
        f.recorded = true;
      }
      return out.element_lists[out.nodes[f.node].elements].back();
    };
    for (pos_ = 0; pos_ < text_.size();) {
      char c = text_[pos_];
      if (c == '/' && pos_ + 1 < text_.size() &&
          (text_[pos_ + 1] == '/' || text_[pos_ + 1] == '*')) {
        skip_comment();
        continue;
      }
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ':') {
        ++pos_;
        continue;
      }
      if (c == '"' && !stack.empty() && !stack.back().is_array && stack.back().expect_key) {
        size_t start = pos_;
        std::string key = read_string();
        Frame& f = stack.back();
        Location loc = lines_.at(start);
        if (f.has_key) path.pop_back();  // path is now the object's
        auto [it, inserted] = out.members.try_emplace({f.node, key}, 0);
        if (inserted) {
          it->second = new_node(loc);
          f.member = it->second;
        } else {
          // The second value gets a node of its own, so that its members are compared among
          // themselves, not with the first value's.
          f.member = new_node(loc);
          duplicates.add(Diagnostic{file_, path, loc,
                                    "duplicate key " + quoted(key, '"') + ": it is also set at " +
                                        format_location(file_, out.nodes[it->second].location) +
                                        "; remove one"});
        }
        path.push_back(std::move(key));
        f.has_key = true;
        f.expect_key = false;
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
        case '{': {
          uint32_t node = value_starts();
          stack.push_back(Frame{false, node});
          stack.back().expect_key = true;
          ++pos_;
          break;
        }
        case '[': {
          uint32_t node = value_starts();
          out.nodes[node].elements = static_cast<uint32_t>(out.element_lists.size());
          out.element_lists.emplace_back();
          stack.push_back(Frame{true, node});
          path.push_back("[0]");
          ++pos_;
          break;
        }
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
  void skip_comment() {
    if (text_[pos_ + 1] == '/') {
      while (pos_ < text_.size() && text_[pos_] != '\n') ++pos_;
    } else {
      size_t end = text_.find("*/", pos_ + 2);
      pos_ = end == std::string_view::npos ? text_.size() : end + 2;
    }
  }

  // Decodes the string at pos_ (valid JSON: the parser accepted it) and moves past it.
  std::string read_string() {
    size_t end = pos_ + 1;
    while (end < text_.size() && text_[end] != '"') end += text_[end] == '\\' ? 2 : 1;
    std::string_view token = text_.substr(pos_, std::min(end, text_.size() - 1) - pos_ + 1);
    pos_ = end + 1;
    return sdk::decode_json_string(token);
  }

  std::string_view text_;
  LineCounter lines_;
  const std::string& file_;
  size_t pos_ = 0;
};

[[noreturn]] void fail(const std::string& file, Location loc, std::string message) {
  Diagnostics d;
  d.add(Diagnostic{file, {}, loc, std::move(message)});
  throw ConfigError(std::move(d));
}

bool only_space(std::string_view text) {
  return text.find_first_not_of(" \t\r\n") == std::string_view::npos;
}

// Whether the text holds nothing but whitespace and comments.
bool only_comments(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    if (text[i] == ' ' || text[i] == '\t' || text[i] == '\r' || text[i] == '\n') {
      ++i;
    } else if (text.substr(i, 2) == "//") {
      i = text.find('\n', i);
      if (i == std::string_view::npos) return true;
    } else if (text.substr(i, 2) == "/*") {
      i = text.find("*/", i + 2);
      if (i == std::string_view::npos) return true;
      i += 2;
    } else {
      return false;
    }
  }
  return true;
}

// The parser's complaint, in the words of a pipeline file's author.
std::string syntax_message(const boost::system::error_code& ec, bool at_end) {
  using boost::json::error;
  if (ec == error::too_deep)
    return "invalid JSON: objects and lists nest more than " +
           std::to_string(JsonDocument::kMaxDepth) + " levels deep";
  if (ec == error::exponent_overflow) return "invalid JSON: a number is too large";
  if (ec == error::extra_data)
    return "invalid JSON: text after the end of the pipeline object (a pipeline file holds one "
           "JSON object)";
  if (at_end) return "invalid JSON: unexpected end of file (" + ec.message() + ")";
  return "invalid JSON: " + ec.message();
}

std::string mib(uint64_t bytes) {
  uint64_t tenths = (bytes >> 20) * 10 + (((bytes & 0xFFFFF) * 10) >> 20);
  return std::to_string(tenths / 10) + "." + std::to_string(tenths % 10) + " MiB";
}

}  // namespace

JsonDocument JsonDocument::parse(std::string_view text, std::string file) {
  // Encodings: UTF-8 only. Its byte order mark (which some Windows editors write) is skipped;
  // positions are counted from after it, as editors show them.
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  if (text.substr(0, 2) == "\xFF\xFE" || text.substr(0, 2) == "\xFE\xFF")
    fail(file, {},
         "the pipeline file is UTF-16 text (it starts with a UTF-16 byte order mark): save it as "
         "UTF-8");
  if (only_space(text)) fail(file, {}, "the pipeline file is empty");
  if (size_t nul = text.find('\0'); nul != std::string_view::npos)
    fail(file, location_at(text, nul),
         "the pipeline file holds a NUL byte: it is not a text file (or not UTF-8 text; save "
         "it as UTF-8)");
  for (size_t i = 0; i < text.size();) {
    size_t n = utf8_length_at(text, i);
    if (n == 0) {
      static const char kHex[] = "0123456789abcdef";
      unsigned char b = static_cast<unsigned char>(text[i]);
      fail(file, location_at(text, i),
           std::string("the pipeline file is not UTF-8 text (byte 0x") + kHex[b >> 4] +
               kHex[b & 0xF] + " here is not UTF-8): save it as UTF-8");
    }
    i += n;
  }

  boost::json::parse_options options;
  options.allow_comments = true;
  options.allow_trailing_commas = true;
  options.max_depth = kMaxDepth;
  boost::json::parser parser(boost::json::storage_ptr(), options);
  boost::system::error_code ec;
  size_t used = parser.write(text.data(), text.size(), ec);
  if (ec) {
    if (only_comments(text))
      fail(file, {}, "the pipeline file holds only comments: it needs a JSON object");
    fail(file, location_at(text, used), syntax_message(ec, used >= text.size()));
  }
  JsonDocument doc;
  doc.root_ = parser.release();
  doc.file_ = std::move(file);
  Diagnostics duplicates;
  doc.locations_ = Locator(text, doc.file_).run(duplicates);
  if (!duplicates.empty()) throw ConfigError(std::move(duplicates));
  return doc;
}

JsonDocument JsonDocument::load(const std::string& path) {
  auto cannot_read = [&](int error) {
    fail(path, {}, "cannot read the pipeline file: " + std::string(std::strerror(error)));
  };
  // Not a regular file: a pipe, /dev/stdin, <(...) are read like a file (up to kMaxFileSize);
  // O_NOCTTY keeps a terminal given by mistake from becoming ours.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) cannot_read(errno);
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) cannot_read(errno);
  if (S_ISDIR(st.st_mode)) fail(path, {}, "is a directory, not a pipeline file");
  auto too_large = [&](const std::string& size) {
    fail(path, {},
         "the pipeline file is " + size + ": a pipeline file is at most " + mib(kMaxFileSize) +
             " (is this the right file?)");
  };
  if (S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) > kMaxFileSize)
    too_large(mib(static_cast<uint64_t>(st.st_size)));
  std::string text;
  text.resize(S_ISREG(st.st_mode) ? static_cast<size_t>(st.st_size) + 1 : 64 * 1024);
  size_t got = 0;
  while (true) {
    if (got == text.size()) {
      if (text.size() > kMaxFileSize) too_large("larger than " + mib(kMaxFileSize));
      text.resize(std::min(text.size() * 2, kMaxFileSize + 1));
    }
    ssize_t n = ::read(fd, text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) cannot_read(errno);
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  if (got > kMaxFileSize) too_large("larger than " + mib(kMaxFileSize));
  text.resize(got);
  return parse(text, path);
}

Location JsonDocument::locate(const Path& path) const {
  const auto& l = locations_;
  if (l.nodes.empty()) return {};
  uint32_t node = 0;
  for (const auto& part : path) {
    const auto& n = l.nodes[node];
    if (n.elements != Locations::kNone && part.size() > 2 && part.front() == '[' &&
        part.back() == ']') {
      const auto& elements = l.element_lists[n.elements];
      size_t index = 0;
      for (size_t k = 1; k + 1 < part.size(); ++k) {
        if (part[k] < '0' || part[k] > '9' || index > elements.size()) return {};
        index = index * 10 + static_cast<size_t>(part[k] - '0');
      }
      if (index >= elements.size()) return {};
      node = elements[index];
      continue;
    }
    auto it = l.members.find({node, part});
    if (it == l.members.end()) return {};
    node = it->second;
  }
  return l.nodes[node].location;
}

Diagnostic JsonDocument::diagnostic(const Path& path, std::string message) const {
  return Diagnostic{file_, path, locate(path), std::move(message)};
}

}  // namespace pg2kafka::config
