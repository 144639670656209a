#include "plugin/plugin_describe.hpp"

#include <boost/json.hpp>

#include <sstream>

#include "config/option_values.hpp"
#include "plugin/plugin_loader.hpp"

namespace pg2kafka::plugin {
namespace {

std::string choices(const p2k_option& o) {
  std::string out;
  for (auto c = o.choices; c && *c; ++c) out += (out.empty() ? "" : "|") + std::string(*c);
  return out;
}

std::string type_label(const p2k_option& o) {
  std::string label =
      o.type == P2K_OPT_ENUM ? "enum(" + choices(o) + ")" : config::type_name(o.type);
  return config::declared_secret(o) ? label + ", secret" : label;
}

std::string default_label(const p2k_option& o) {
  if (o.flags & P2K_OPT_REQUIRED) return "required";
  if (o.type == P2K_OPT_PREFIX) return "passthrough";
  if (!o.default_value) return "unset";
  if (config::declared_secret(o)) return "***";
  return std::string("\"") + o.default_value + "\"";
}

std::string range_label(const p2k_option& o) {
  if (o.min_value >= o.max_value) return {};
  const char* unit = o.type == P2K_OPT_DURATION ? " ms" : o.type == P2K_OPT_SIZE ? " bytes" : "";
  return std::to_string(o.min_value) + " to " + std::to_string(o.max_value) + unit;
}

boost::json::array options_json(std::span<const p2k_option> options) {
  boost::json::array arr;
  for (const auto& o : options) {
    boost::json::object j;
    j["name"] = o.name;
    j["type"] = config::type_name(o.type);
    j["required"] = (o.flags & P2K_OPT_REQUIRED) != 0;
    j["secret"] = config::declared_secret(o);
    if (o.default_value)
      j["default"] = config::declared_secret(o) ? "***" : o.default_value;
    else
      j["default"] = nullptr;
    if (o.type == P2K_OPT_ENUM) {
      boost::json::array c;
      for (auto p = o.choices; p && *p; ++p) c.emplace_back(*p);
      j["choices"] = std::move(c);
    }
    if (o.min_value < o.max_value) {
      j["min"] = o.min_value;
      j["max"] = o.max_value;
    }
    j["description"] = o.description;
    arr.push_back(std::move(j));
  }
  return arr;
}

std::string escape_md(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '|')
      out += "\\|";
    else if (c == '\n')
      out += ' ';
    else
      out += c;
  }
  return out;
}

}  // namespace

std::optional<DescribeFormat> parse_describe_format(const std::string& name) {
  if (name == "text") return DescribeFormat::kText;
  if (name == "json") return DescribeFormat::kJson;
  if (name == "markdown") return DescribeFormat::kMarkdown;
  return std::nullopt;
}

std::string describe_options(std::span<const p2k_option> options, DescribeFormat format) {
  std::ostringstream out;
  switch (format) {
    case DescribeFormat::kJson:
      out << boost::json::serialize(options_json(options)) << "\n";
      break;
    case DescribeFormat::kMarkdown:
      out << "| Option | Type | Default | Description |\n|---|---|---|---|\n";
      for (const auto& o : options) {
        std::string range = range_label(o);
        out << "| `" << o.name << (o.type == P2K_OPT_PREFIX ? "*" : "") << "` | "
            << escape_md(type_label(o)) << " | " << escape_md(default_label(o)) << " | "
            << escape_md(o.description) << (range.empty() ? "" : " Range: " + range + ".")
            << " |\n";
      }
      break;
    case DescribeFormat::kText:
      for (const auto& o : options) {
        std::string range = range_label(o);
        out << "  " << o.name << (o.type == P2K_OPT_PREFIX ? "*" : "") << "  (" << type_label(o)
            << ", " << default_label(o) << (range.empty() ? "" : ", " + range) << ")\n";
        // Wrap the description at about 90 columns, indented.
        std::istringstream words(o.description);
        std::string word, line = "      ";
        while (words >> word) {
          if (line.size() + word.size() + 1 > 94 && line.size() > 6) {
            out << line << "\n";
            line = "      ";
          }
          line += (line.size() > 6 ? " " : "") + word;
        }
        if (line.size() > 6) out << line << "\n";
      }
      break;
  }
  return out.str();
}

std::string describe_plugin(const p2k_plugin& d, const std::string& path, DescribeFormat format) {
  std::span<const p2k_option> options(d.options, d.option_count);
  std::ostringstream out;
  switch (format) {
    case DescribeFormat::kJson: {
      boost::json::object j;
      j["name"] = d.name;
      j["kind"] = kind_name(d.kind);
      j["version"] = d.version;
      j["summary"] = d.summary;
      j["abi"] = std::to_string(d.abi_major) + "." + std::to_string(d.abi_minor);
      j["path"] = path;
      j["options"] = options_json(options);
      out << boost::json::serialize(j) << "\n";
      break;
    }
    case DescribeFormat::kMarkdown:
      out << "# " << d.name << " (" << kind_name(d.kind) << " plugin, version " << d.version
          << ")\n\n"
          << d.summary << "\n\n## Options\n\n"
          << describe_options(options, format);
      break;
    case DescribeFormat::kText:
      out << d.name << " " << d.version << " (" << kind_name(d.kind) << ", ABI " << d.abi_major
          << "." << d.abi_minor << ")\n  " << d.summary << "\n  file: " << path << "\n\nOptions:\n"
          << describe_options(options, format);
      break;
  }
  return out.str();
}

}  // namespace pg2kafka::plugin
