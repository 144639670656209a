#include "config/diagnostics.hpp"

#include <algorithm>

namespace pg2kafka::config {

std::string format_path(const Path& path) {
  std::string out;
  for (const auto& p : path) {
    if (!p.empty() && p[0] == '[') {
      out += p;
      continue;
    }
    if (!out.empty()) out += '.';
    out += p;
  }
  return out;
}

std::string Diagnostic::format() const {
  std::string out;
  if (!file.empty()) out += file + ":";
  if (location.line > 0)
    out += std::to_string(location.line) + ":" + std::to_string(location.column) + ":";
  if (!out.empty()) out += " ";
  if (!path.empty()) out += format_path(path) + ": ";
  return out + message;
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
  std::string best;
  size_t best_distance = std::string::npos;
  for (const auto& c : candidates) {
    size_t d = edit_distance(given, c);
    if (d < best_distance) {
      best_distance = d;
      best = c;
    }
  }
  // A typo changes a few characters; beyond a third of the word it is another word.
  size_t limit = std::max<size_t>(2, given.size() / 3);
  return best_distance <= limit ? best : std::string();
}

}  // namespace pg2kafka::config
