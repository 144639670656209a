#include "json_text.hpp"

#include <pg2kafka/sdk/json.hpp>

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
  return sdk::decode_json_string(value);
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
