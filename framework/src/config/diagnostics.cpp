#include "config/diagnostics.hpp"

#include <algorithm>

namespace pg2kafka::config {
namespace {

// A message is built from quoted() pieces, so it is short; this bounds what plugins (or a missed
// echo) may add, so that one diagnostic is never more than a few lines.
constexpr size_t kMessageLimit = 4096;
// A file name is shown whole up to this length (it is what the user typed, or a found path).
constexpr size_t kFileLimit = 1024;

}  // namespace

std::string printable(std::string_view text, size_t limit) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    if (out.size() >= limit) {
      out += "…(" + std::to_string(text.size()) + " bytes)";
      return out;
    }
    char32_t c = 0;
    size_t n = utf8_length_at(text, i, &c);
    if (n == 0) {
      unsigned char b = static_cast<unsigned char>(text[i]);
      out += "\\x";
      out += kHex[b >> 4];
      out += kHex[b & 0xF];
      ++i;
      continue;
    }
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c == 0x7F) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    } else if ((c >= 0x80 && c <= 0x9F) || (c >= 0x200B && c <= 0x200F) ||
               (c >= 0x2028 && c <= 0x202E) || (c >= 0x2066 && c <= 0x2069) || c == 0xFEFF) {
      // C1 controls, zero-width characters, line separators and bidi controls: invisible, or
      // they rearrange the rest of the line on a terminal.
      std::string hex;
      for (char32_t v = c; v; v >>= 4) hex.insert(hex.begin(), kHex[v & 0xF]);
      out += "\\u{" + hex + "}";
    } else {
      out.append(text.substr(i, n));
    }
    i += n;
  }
  return out;
}

std::string quoted(std::string_view text, char quote, size_t limit) {
  return quote + printable(text, limit) + quote;
}

std::string format_location(const std::string& file, Location location) {
  if (file.empty())
    return "line " + std::to_string(location.line) + ", column " + std::to_string(location.column);
  return printable(file, kFileLimit) + ":" + std::to_string(location.line) + ":" +
         std::to_string(location.column);
}

std::string format_path(const Path& path) {
  std::string out;
  for (const auto& p : path) {
    if (!p.empty() && p[0] == '[') {
      out += printable(p);
      continue;
    }
    if (!out.empty()) out += '.';
    out += printable(p);
  }
  return out;
}

std::string Diagnostic::format() const {
  std::string out;
  if (!file.empty()) out += printable(file, kFileLimit) + ":";
  if (location.line > 0)
    out += std::to_string(location.line) + ":" + std::to_string(location.column) + ":";
  if (!out.empty()) out += " ";
  if (!path.empty()) out += format_path(path) + ": ";
  return out + printable(message, kMessageLimit);
}

void Diagnostics::add(Diagnostic d) {
  ++total_;
  if (items_.size() < kMaxKept) {
    items_.push_back(std::move(d));
    return;
  }
  if (items_.size() == kMaxKept) items_.push_back(Diagnostic{d.file, {}, {}, {}});
  size_t more = total_ - kMaxKept;
  items_.back().message = "... and " + std::to_string(more) + " more error" +
                          (more == 1 ? "" : "s") + " (only the first " + std::to_string(kMaxKept) +
                          " are shown)";
}

std::string Diagnostics::format() const {
  std::string out;
  for (const auto& d : items_) {
    if (!out.empty()) out += '\n';
    out += d.format();
  }
  return out;
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string nearest(const std::string& given, const std::vector<std::string>& candidates) {
  if (given.size() > kNearestMaxLength) return {};
  // A typo changes a few characters; beyond a third of the word it is another word.
  size_t limit = std::max<size_t>(2, given.size() / 3);
  std::string best;
  size_t best_distance = std::string::npos;
  for (const auto& c : candidates) {
    // The distance is at least the difference in length: skip what cannot be close enough.
    size_t gap = given.size() > c.size() ? given.size() - c.size() : c.size() - given.size();
    if (gap > limit) continue;
    size_t d = edit_distance(given, c);
    if (d < best_distance) {
      best_distance = d;
      best = c;
    }
  }
  return best_distance <= limit ? best : std::string();
}

}  // namespace pg2kafka::config
