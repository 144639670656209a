#include "json_text.hpp"

#include <charconv>
#include <cstdint>

namespace pg2kafka::pg_outbox {

namespace {

bool is_space(char c) {
  return c == ' ' || c == '\n' || c == '\t' || c == '\r';
}

void skip_space(std::string_view text, size_t& i) {
  while (i < text.size() && is_space(text[i])) ++i;
}

// At an opening quote: moves past the closing one.
void skip_string(std::string_view text, size_t& i) {
  for (++i; i < text.size() && text[i] != '"'; ++i)
    if (text[i] == '\\') ++i;
  ++i;
}

// At the start of a value: moves to the ',' or closing bracket that ends it (or the end), and
// returns the value without trailing spaces.
std::string_view scan_value(std::string_view text, size_t& i) {
  size_t start = i;
  int depth = 0;
  for (; i < text.size(); ++i) {
    char c = text[i];
    if (c == '"') {
      skip_string(text, i);
      --i;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      if (depth == 0) break;
      --depth;
    } else if (c == ',' && depth == 0) {
      break;
    }
  }
  size_t end = std::min(i, text.size());
  while (end > start && is_space(text[end - 1])) --end;
  return text.substr(start, end - start);
}

void append_utf8(std::string& out, uint32_t cp) {
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

std::optional<uint32_t> hex4(std::string_view s, size_t at) {
  if (at + 4 > s.size()) return std::nullopt;
  uint32_t v = 0;
  auto [end, ec] = std::from_chars(s.data() + at, s.data() + at + 4, v, 16);
  if (ec != std::errc() || end != s.data() + at + 4) return std::nullopt;
  return v;
}

}  // namespace

bool split_members(std::string_view text,
                   std::vector<std::pair<std::string_view, std::string_view>>& out) {
  size_t i = 0;
  skip_space(text, i);
  if (i >= text.size() || text[i] != '{') return false;
  ++i;
  skip_space(text, i);
  if (i < text.size() && text[i] == '}') return true;
  while (i < text.size()) {
    skip_space(text, i);
    if (i >= text.size() || text[i] != '"') return false;
    size_t key_start = i;
    skip_string(text, i);
    if (i > text.size()) return false;
    std::string_view key = text.substr(key_start, i - key_start);
    skip_space(text, i);
    if (i >= text.size() || text[i] != ':') return false;
    ++i;
    skip_space(text, i);
    std::string_view value = scan_value(text, i);
    if (i >= text.size()) return false;
    out.emplace_back(key, value);
    if (text[i] == '}') return true;
    ++i;  // the comma
  }
  return false;
}

bool split_array(std::string_view text, std::vector<std::string_view>& out) {
  size_t i = 0;
  skip_space(text, i);
  if (i >= text.size() || text[i] != '[') return false;
  ++i;
  skip_space(text, i);
  if (i < text.size() && text[i] == ']') return true;
  while (i < text.size()) {
    skip_space(text, i);
    std::string_view value = scan_value(text, i);
    if (i >= text.size() || value.empty()) return false;
    out.push_back(value);
    if (text[i] == ']') return true;
    ++i;  // the comma
  }
  return false;
}

std::optional<std::string> json_scalar_text(std::string_view value) {
  if (value == "null") return std::nullopt;
  if (value.size() < 2 || value.front() != '"' || value.back() != '"') return std::string(value);
  std::string out;
  out.reserve(value.size() - 2);
  for (size_t i = 1; i + 1 < value.size(); ++i) {
    char c = value[i];
    if (c != '\\' || i + 2 >= value.size()) {
      out += c;
      continue;
    }
    char e = value[++i];
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
        auto cp = hex4(value, i + 1);
        if (!cp) {
          out += e;
          break;
        }
        i += 4;
        uint32_t code = *cp;
        // A high surrogate followed by an escaped low one is one code point.
        if (code >= 0xD800 && code < 0xDC00 && i + 6 < value.size() && value[i + 1] == '\\' &&
            value[i + 2] == 'u') {
          auto low = hex4(value, i + 3);
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

std::string changed_columns(std::string_view new_row, std::string_view old_row) {
  std::vector<std::pair<std::string_view, std::string_view>> now, before;
  if (!split_members(new_row, now) || !split_members(old_row, before)) return std::string(new_row);
  std::string out = "{";
  for (size_t n = 0; n < now.size(); ++n) {
    const auto& [key, value] = now[n];
    // Both rows list the table's columns in the same order: look at the same place first.
    bool same = false;
    if (n < before.size() && before[n].first == key) {
      same = before[n].second == value;
    } else {
      for (const auto& [old_key, old_value] : before) {
        if (old_key == key) {
          same = old_value == value;
          break;
        }
      }
    }
    if (same) continue;
    if (out.size() > 1) out += ", ";
    out.append(key).append(": ").append(value);
  }
  out += '}';
  return out;
}

}  // namespace pg2kafka::pg_outbox
