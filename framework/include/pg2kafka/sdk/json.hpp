// Slices and JSON text: reading p2k_slice, writing JSON strings, embedding JSON values as they are.
#pragma once

#include <pg2kafka/plugin.h>

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <pg2kafka/sdk/text.hpp>

namespace pg2kafka::sdk {

// A p2k_slice as a string_view; an absent slice (data == NULL) is an empty view.
constexpr std::string_view view(p2k_slice s) noexcept {
  return s.data ? std::string_view(s.data, s.size) : std::string_view();
}
// A p2k_slice as an optional string_view: nullopt when absent (a null key).
constexpr std::optional<std::string_view> optional_view(p2k_slice s) noexcept {
  if (!s.data) return std::nullopt;
  return std::string_view(s.data, s.size);
}
// A slice over `text`, which must outlive it.
constexpr p2k_slice slice(std::string_view text) noexcept {
  return p2k_slice{text.data(), text.size()};
}

// Appends `text` as a JSON string (quoted; quotes, backslashes and control characters escaped;
// other bytes, UTF-8 included, copied as they are). For plugins that build JSON messages.
inline void append_json_string(std::string& out, std::string_view text) {
  static const char kHex[] = "0123456789abcdef";
  out += '"';
  // Runs of bytes that need no escape are copied at once (most text is one such run).
  size_t run = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(text.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        out += "\\u00";
        out += kHex[c >> 4];
        out += kHex[c & 0xf];
    }
  }
  out.append(text.data() + run, text.size() - run);
  out += '"';
}

namespace detail {

// Checks one JSON text (RFC 8259: one value, UTF-8) and copies it to `out` byte for byte (numbers,
// escapes and the whitespace between tokens are not rewritten), except that a line break between
// tokens becomes a space, so that the copy is one line. (Inside strings JSON has no raw line
// breaks.)
class JsonOneLine {
 public:
  JsonOneLine(std::string_view in, std::string& out) : in_(in), out_(out) {}

  bool run() {
    size_t start = out_.size();
    skip_space();
    bool ok = value(0);
    skip_space();
    if (!ok || pos_ != in_.size()) {
      out_.resize(start);
      return false;
    }
    return true;
  }

 private:
  // Deeper nesting is refused (embedded as a string by append_json_or_string) rather than
  // recursed into without bound.
  static constexpr int kMaxDepth = 512;

  bool at_end() const { return pos_ >= in_.size(); }
  char peek() const { return in_[pos_]; }
  void skip_space() {
    for (; !at_end(); ++pos_) {
      char c = peek();
      if (c == ' ' || c == '\t')
        out_ += c;
      else if (c == '\n' || c == '\r')
        out_ += ' ';
      else
        return;
    }
  }
  bool literal(std::string_view word) {
    if (in_.substr(pos_, word.size()) != word) return false;
    out_ += word;
    pos_ += word.size();
    return true;
  }
  static bool digit(char c) { return c >= '0' && c <= '9'; }

  bool value(int depth) {
    if (at_end() || depth > kMaxDepth) return false;
    switch (peek()) {
      case '{':
        return object(depth);
      case '[':
        return array(depth);
      case '"':
        return string();
      case 't':
        return literal("true");
      case 'f':
        return literal("false");
      case 'n':
        return literal("null");
      default:
        return number();
    }
  }

  bool object(int depth) {
    out_ += '{';
    ++pos_;
    skip_space();
    if (!at_end() && peek() == '}') {
      out_ += '}';
      ++pos_;
      return true;
    }
    while (true) {
      skip_space();
      if (at_end() || peek() != '"' || !string()) return false;
      skip_space();
      if (at_end() || peek() != ':') return false;
      out_ += ':';
      ++pos_;
      skip_space();
      if (!value(depth + 1)) return false;
      skip_space();
      if (at_end()) return false;
      char c = in_[pos_++];
      out_ += c;
      if (c == '}') return true;
      if (c != ',') return false;
    }
  }

  bool array(int depth) {
    out_ += '[';
    ++pos_;
    skip_space();
    if (!at_end() && peek() == ']') {
      out_ += ']';
      ++pos_;
      return true;
    }
    while (true) {
      skip_space();
      if (!value(depth + 1)) return false;
      skip_space();
      if (at_end()) return false;
      char c = in_[pos_++];
      out_ += c;
      if (c == ']') return true;
      if (c != ',') return false;
    }
  }

  bool number() {
    size_t start = pos_;
    if (!at_end() && peek() == '-') ++pos_;
    if (at_end()) return false;
    if (peek() == '0') {
      ++pos_;
    } else if (digit(peek())) {
      while (!at_end() && digit(peek())) ++pos_;
    } else {
      return false;
    }
    if (!at_end() && peek() == '.') {
      ++pos_;
      if (at_end() || !digit(peek())) return false;
      while (!at_end() && digit(peek())) ++pos_;
    }
    if (!at_end() && (peek() == 'e' || peek() == 'E')) {
      ++pos_;
      if (!at_end() && (peek() == '+' || peek() == '-')) ++pos_;
      if (at_end() || !digit(peek())) return false;
      while (!at_end() && digit(peek())) ++pos_;
    }
    out_.append(in_.data() + start, pos_ - start);
    return true;
  }

  static bool hex(char c) { return digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

  // One UTF-8 sequence starting at pos_ (not ASCII): well-formed, shortest form, no surrogates.
  bool utf8() {
    size_t n = utf8_length_at(in_, pos_);
    if (n == 0) return false;
    pos_ += n;
    return true;
  }

  bool string() {
    size_t start = pos_++;
    while (true) {
      if (at_end()) return false;
      auto c = static_cast<unsigned char>(peek());
      if (c == '"') {
        ++pos_;
        break;
      }
      if (c < 0x20) return false;
      if (c == '\\') {
        ++pos_;
        if (at_end()) return false;
        char e = in_[pos_++];
        if (e == 'u') {
          for (int i = 0; i < 4; ++i, ++pos_)
            if (at_end() || !hex(peek())) return false;
        } else if (e != '"' && e != '\\' && e != '/' && e != 'b' && e != 'f' && e != 'n' &&
                   e != 'r' && e != 't') {
          return false;
        }
      } else if (c < 0x80) {
        ++pos_;
      } else if (!utf8()) {
        return false;
      }
    }
    out_.append(in_.data() + start, pos_ - start);
    return true;
  }

  std::string_view in_;
  std::string& out_;
  size_t pos_ = 0;
};

}  // namespace detail

// Whether `text` is one valid JSON value (RFC 8259, UTF-8; surrounding whitespace allowed).
inline bool is_json(std::string_view text) {
  std::string scratch;
  return detail::JsonOneLine(text, scratch).run();
}

// Appends `text` as JSON if it is JSON, byte for byte except that line breaks between tokens
// become spaces (so that it stays on one line), and returns true; else appends nothing and returns
// false. A compact value (what pg-outbox sends) is copied exactly.
inline bool append_json(std::string& out, std::string_view text) {
  return detail::JsonOneLine(text, out).run();
}

// "Embed as JSON if it is JSON": appends `text` as JSON when it is valid JSON (see append_json),
// else as a JSON string, so that the result is valid JSON whatever the payload. For sinks that
// wrap record values in a JSON envelope.
inline void append_json_or_string(std::string& out, std::string_view text) {
  if (!append_json(out, text)) append_json_string(out, text);
}

// Appends code point `cp` as UTF-8.
inline void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Decodes a JSON string token, quotes included, into UTF-8: escapes resolved, a surrogate pair
// joined into one code point. For text already known to be JSON (accepted by a parser, printed
// by PostgreSQL); lenient otherwise: a broken escape keeps the character after the backslash.
inline std::string decode_json_string(std::string_view token) {
  auto hex4 = [&](size_t at) -> std::optional<uint32_t> {
    uint32_t v = 0;
    if (at + 4 > token.size()) return std::nullopt;
    auto [end, ec] = std::from_chars(token.data() + at, token.data() + at + 4, v, 16);
    if (ec != std::errc() || end != token.data() + at + 4) return std::nullopt;
    return v;
  };
  std::string out;
  if (token.size() < 2) return out;
  out.reserve(token.size() - 2);
  for (size_t i = 1; i + 1 < token.size(); ++i) {
    char c = token[i];
    if (c != '\\' || i + 2 >= token.size()) {
      out += c;
      continue;
    }
    char e = token[++i];
    switch (e) {
      case 'b':
        out += '\b';
        break;
      case 'f':
        out += '\f';
        break;
      case 'n':
        out += '\n';
        break;
      case 'r':
        out += '\r';
        break;
      case 't':
        out += '\t';
        break;
      case 'u': {
        auto cp = hex4(i + 1);
        if (!cp) {
          out += e;
          break;
        }
        i += 4;
        uint32_t code = *cp;
        if (code >= 0xD800 && code < 0xDC00 && i + 6 < token.size() && token[i + 1] == '\\' &&
            token[i + 2] == 'u') {
          auto low = hex4(i + 3);
          if (low && *low >= 0xDC00 && *low < 0xE000) {
            code = 0x10000 + ((code - 0xD800) << 10) + (*low - 0xDC00);
            i += 6;
          }
        }
        append_utf8(out, code);
        break;
      }
      default:
        out += e;  // \" \\ \/
    }
  }
  return out;
}

}  // namespace pg2kafka::sdk
