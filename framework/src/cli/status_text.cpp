#include "cli/status_text.hpp"

#include "config/diagnostics.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

namespace pg2kafka::cli {
namespace {

namespace json = boost::json;

// Control characters would let a value (a table name, an application_name) rewrite the terminal.
std::string printable(std::string_view s) {
  return config::printable(s, std::string::npos);
}

std::string scalar(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null:
      return "-";
    case json::kind::bool_:
      return v.get_bool() ? "yes" : "no";
    case json::kind::string:
      return printable(v.get_string());
    case json::kind::double_: {
      double d = v.get_double();
      char buf[64];
      if (std::fabs(d) >= 100 || d == std::floor(d))
        std::snprintf(buf, sizeof buf, "%.0f", d);
      else
        std::snprintf(buf, sizeof buf, "%.1f", d);
      return buf;
    }
    case json::kind::int64:
    case json::kind::uint64:
      return json::serialize(v);
    default:
      return printable(json::serialize(v));
  }
}

bool is_table(const json::array& a) {
  return !a.empty() &&
         std::all_of(a.begin(), a.end(), [](const json::value& e) { return e.is_object(); });
}

void render(const json::object& o, int indent, std::string& out);

void render_array(const json::array& a, int indent, std::string& out) {
  std::string pad(indent, ' ');
  if (a.empty()) {
    out += pad + "(none)\n";
    return;
  }
  if (!is_table(a)) {
    for (const auto& e : a) out += pad + "- " + scalar(e) + "\n";
    return;
  }
  std::vector<std::string> columns;
  for (const auto& row : a)
    for (const auto& [k, _] : row.get_object())
      if (std::find(columns.begin(), columns.end(), k) == columns.end()) columns.emplace_back(k);
  std::vector<std::vector<std::string>> cells;
  std::vector<size_t> width;
  for (const auto& c : columns) width.push_back(c.size());
  for (const auto& row : a) {
    std::vector<std::string> line;
    for (size_t i = 0; i < columns.size(); ++i) {
      const json::value* v = row.get_object().if_contains(columns[i]);
      line.push_back(v ? scalar(*v) : "");
      width[i] = std::max(width[i], line.back().size());
    }
    cells.push_back(std::move(line));
  }
  auto emit = [&](const std::vector<std::string>& line) {
    std::string text = pad;
    for (size_t i = 0; i < line.size(); ++i) {
      text += line[i];
      if (i + 1 < line.size()) text += std::string(width[i] - line[i].size() + 2, ' ');
    }
    text.erase(text.find_last_not_of(' ') + 1);
    out += text + "\n";
  };
  emit(columns);
  for (const auto& line : cells) emit(line);
}

void render(const json::object& o, int indent, std::string& out) {
  std::string pad(indent, ' ');
  for (const auto& [k, v] : o) {
    std::string key = printable(k);
    if (v.is_object()) {
      out += pad + key + ":\n";
      render(v.get_object(), indent + 2, out);
    } else if (v.is_array()) {
      out += pad + key + ":\n";
      render_array(v.get_array(), indent + 2, out);
    } else {
      out += pad + key + ": " + scalar(v) + "\n";
    }
  }
}

}  // namespace

std::string status_text(const boost::json::object& status) {
  std::string out;
  render(status, 0, out);
  return out;
}

}  // namespace pg2kafka::cli
