#include "config/option_values.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>

#include "config/json_document.hpp"

namespace pg2kafka::config {
namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return {};
  size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

// "<number><unit>", the number possibly with a fraction, times the unit's factor.
std::optional<int64_t> scaled(const std::string& text,
                              std::initializer_list<std::pair<const char*, double>> units,
                              bool bare_allowed) {
  std::string t = trim(text);
  size_t i = 0;
  while (i < t.size() && (std::isdigit(static_cast<unsigned char>(t[i])) || t[i] == '.')) ++i;
  if (i == 0) return std::nullopt;
  std::string number = t.substr(0, i);
  if (std::count(number.begin(), number.end(), '.') > 1 || number.back() == '.')
    return std::nullopt;
  std::string unit = trim(t.substr(i));
  double factor = 0;
  if (unit.empty()) {
    if (!bare_allowed) return std::nullopt;
    factor = 1;
  } else {
    for (const auto& [name, f] : units)
      if (unit == name) factor = f;
    if (factor == 0) return std::nullopt;
  }
  double value = std::stod(number) * factor;
  if (value > static_cast<double>(std::numeric_limits<int64_t>::max())) return std::nullopt;
  double rounded = std::round(value);
  if (std::abs(rounded - value) > 1e-6) return std::nullopt;  // "1.5ms" is not whole ms
  return static_cast<int64_t>(rounded);
}

std::optional<int64_t> parse_int(const std::string& text) {
  std::string t = trim(text);
  int64_t v = 0;
  auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (t.empty() || ec != std::errc() || end != t.data() + t.size()) return std::nullopt;
  return v;
}

// Scalars as text (numbers for strings are rejected elsewhere; passthrough takes any scalar).
std::optional<std::string> scalar_text(const boost::json::value& v, const EnvLookup& env,
                                       std::string& error) {
  if (v.is_string()) {
    auto r = interpolate(std::string_view(v.as_string()), env);
    if (!r.ok()) {
      error = r.error;
      return std::nullopt;
    }
    return r.value;
  }
  if (v.is_int64()) return std::to_string(v.as_int64());
  if (v.is_uint64()) return std::to_string(v.as_uint64());
  if (v.is_bool()) return std::string(v.as_bool() ? "true" : "false");
  if (v.is_double()) {
    double d = v.as_double();
    if (d == std::floor(d) && std::abs(d) < 9e15) return std::to_string(static_cast<int64_t>(d));
    std::string s = std::to_string(d);
    return s;
  }
  error = "expected a single value (text, number or true/false), found " +
          std::string(v.is_object()  ? "an object"
                      : v.is_array() ? "a list"
                                     : "null");
  return std::nullopt;
}

std::string choices_text(const p2k_option& o) {
  std::string out;
  for (auto c = o.choices; c && *c; ++c) out += (out.empty() ? "" : ", ") + std::string(*c);
  return out;
}

bool range_ok(const p2k_option& o, int64_t v, std::string& error, const std::string& shown) {
  if (o.min_value < o.max_value && (v < o.min_value || v > o.max_value)) {
    error = shown + " is out of range: allowed " + std::to_string(o.min_value) + " to " +
            std::to_string(o.max_value) +
            (o.type == P2K_OPT_DURATION ? " milliseconds"
             : o.type == P2K_OPT_SIZE   ? " bytes"
                                        : "");
    return false;
  }
  return true;
}

}  // namespace

const ResolvedOption* ResolvedOptions::find(const std::string& key) const {
  for (const auto& v : values_)
    if (v.key == key) return &v;
  return nullptr;
}

std::string ResolvedOptions::get(const std::string& key, const std::string& fallback) const {
  auto v = find(key);
  return v ? v->value : fallback;
}

void ResolvedOptions::set_origin(std::string file, Path base, Location base_location) {
  file_ = std::move(file);
  base_ = std::move(base);
  base_location_ = base_location;
}

Diagnostic ResolvedOptions::diagnostic(const std::string& key, std::string message) const {
  Path path = base_;
  if (!key.empty()) {
    const ResolvedOption* o = find(key);
    if (o && !o->path.empty()) return Diagnostic{file_, o->path, o->location, std::move(message)};
    path.push_back(key);
  }
  return Diagnostic{file_, path, base_location_, std::move(message)};
}

std::vector<p2k_option_value> ResolvedOptions::c_values() const {
  std::vector<p2k_option_value> out;
  out.reserve(values_.size());
  for (const auto& v : values_) out.push_back(p2k_option_value{v.key.c_str(), v.value.c_str()});
  return out;
}

bool looks_secret_by_name(const std::string& key) {
  std::string k = lower(key);
  for (const char* word : {"password", "secret", "token", "key", "credential", "jaas"})
    if (k.find(word) != std::string::npos) return true;
  return false;
}

bool declared_secret(const p2k_option& o) {
  return (o.flags & P2K_OPT_IS_SECRET) || o.type == P2K_OPT_SECRET;
}

bool is_secret(const p2k_option& o, const std::string& key, uint32_t abi_minor) {
  if (declared_secret(o)) return true;
  return o.type == P2K_OPT_PREFIX && abi_minor == 0 && looks_secret_by_name(key);
}

const char* type_name(p2k_option_type type) {
  switch (type) {
    case P2K_OPT_STRING:
      return "string";
    case P2K_OPT_INT:
      return "int";
    case P2K_OPT_BOOL:
      return "bool";
    case P2K_OPT_DURATION:
      return "duration";
    case P2K_OPT_SIZE:
      return "size";
    case P2K_OPT_ENUM:
      return "enum";
    case P2K_OPT_LIST:
      return "list";
    case P2K_OPT_SECRET:
      return "string";
    case P2K_OPT_PREFIX:
      return "prefix";
  }
  return "unknown";
}

std::optional<int64_t> parse_duration_ms(const std::string& text) {
  return scaled(
      text,
      {{"ms", 1}, {"s", 1000}, {"m", 60'000}, {"min", 60'000}, {"h", 3'600'000}, {"d", 86'400'000}},
      true);
}

std::optional<int64_t> parse_size_bytes(const std::string& text) {
  return scaled(text,
                {{"B", 1},
                 {"kB", 1e3},
                 {"KB", 1e3},
                 {"MB", 1e6},
                 {"GB", 1e9},
                 {"KiB", 1024.0},
                 {"MiB", 1024.0 * 1024},
                 {"GiB", 1024.0 * 1024 * 1024}},
                true);
}

std::optional<std::string> normalize_value(const p2k_option& o, const boost::json::value& v,
                                           const EnvLookup& env, std::string& error) {
  const bool secret = declared_secret(o);
  auto text = scalar_text(v, env, error);
  if (!text && !(o.type == P2K_OPT_LIST && v.is_array())) return std::nullopt;
  auto shown = [&](const std::string& t) {
    return secret ? std::string("the value") : "'" + t + "'";
  };
  switch (o.type) {
    case P2K_OPT_STRING:
    case P2K_OPT_SECRET:
      if (!v.is_string()) {
        error = "expected text in quotes";
        return std::nullopt;
      }
      return text;
    case P2K_OPT_INT: {
      auto n = parse_int(*text);
      if (!n) {
        error = "expected a whole number, found " + shown(*text);
        return std::nullopt;
      }
      if (!range_ok(o, *n, error, shown(*text))) return std::nullopt;
      return std::to_string(*n);
    }
    case P2K_OPT_BOOL: {
      std::string t = lower(trim(*text));
      if (t == "true" || t == "1" || t == "yes" || t == "on") return std::string("true");
      if (t == "false" || t == "0" || t == "no" || t == "off") return std::string("false");
      error = "expected true or false, found " + shown(*text);
      return std::nullopt;
    }
    case P2K_OPT_DURATION: {
      auto ms = parse_duration_ms(*text);
      if (!ms) {
        error = "expected a duration such as \"250ms\", \"5s\", \"2m\", \"1h\" or \"7d\", found " +
                shown(*text);
        return std::nullopt;
      }
      if (!range_ok(o, *ms, error, shown(*text))) return std::nullopt;
      return std::to_string(*ms);
    }
    case P2K_OPT_SIZE: {
      auto bytes = parse_size_bytes(*text);
      if (!bytes) {
        error = "expected a size such as \"512\", \"64KiB\", \"1MiB\" or \"1GB\", found " +
                shown(*text);
        return std::nullopt;
      }
      if (!range_ok(o, *bytes, error, shown(*text))) return std::nullopt;
      return std::to_string(*bytes);
    }
    case P2K_OPT_ENUM: {
      for (auto c = o.choices; c && *c; ++c)
        if (*text == *c) return text;
      std::vector<std::string> all;
      for (auto c = o.choices; c && *c; ++c) all.push_back(*c);
      std::string near = nearest(*text, all);
      error = "'" + *text + "' is not one of: " + choices_text(o) +
              (near.empty() ? "" : " (did you mean '" + near + "'?)");
      return std::nullopt;
    }
    case P2K_OPT_LIST: {
      std::vector<std::string> items;
      if (v.is_array()) {
        for (const auto& e : v.as_array()) {
          if (e.is_array() || e.is_object() || e.is_null()) {
            error = "expected a list of text values";
            return std::nullopt;
          }
          auto item = scalar_text(e, env, error);
          if (!item) return std::nullopt;
          if (item->find(',') != std::string::npos) {
            error = (secret ? std::string("a list element") : "list element '" + *item + "'") +
                    " contains a comma, which this list cannot hold";
            return std::nullopt;
          }
          items.push_back(trim(*item));
        }
      } else {
        size_t start = 0;
        while (true) {
          size_t comma = text->find(',', start);
          items.push_back(trim(text->substr(start, comma - start)));
          if (comma == std::string::npos) break;
          start = comma + 1;
        }
      }
      std::string joined;
      for (const auto& i : items) {
        if (i.empty()) continue;
        joined += (joined.empty() ? "" : ",") + i;
      }
      return joined;
    }
    case P2K_OPT_PREFIX:
      return text;
  }
  error = "option has an unknown type";
  return std::nullopt;
}

namespace {

struct FlatEntry {
  std::string key;
  Path path;
  const boost::json::value* value;
};

// Nested objects become dotted keys: {"retry": {"max": 1}} is "retry.max".
void flatten(const boost::json::object& obj, const std::string& prefix, const Path& path,
             std::vector<FlatEntry>& out) {
  for (const auto& [k, v] : obj) {
    std::string key = prefix.empty() ? std::string(k) : prefix + "." + std::string(k);
    Path p = path;
    p.emplace_back(k);
    if (v.is_object())
      flatten(v.as_object(), key, p, out);
    else
      out.push_back(FlatEntry{key, p, &v});
  }
}

}  // namespace

ResolvedOptions resolve_options(std::span<const p2k_option> table, const boost::json::value* given,
                                const Path& base, const JsonDocument* doc, const EnvLookup& env,
                                Diagnostics& diagnostics, uint32_t abi_minor) {
  auto report = [&](const Path& path, std::string message) {
    if (doc)
      diagnostics.add(doc->diagnostic(path, std::move(message)));
    else
      diagnostics.add(Diagnostic{{}, path, {}, std::move(message)});
  };
  ResolvedOptions out;
  if (doc) {
    // Absent options point at their section, or the nearest enclosing thing the user wrote.
    Path where = base;
    Location at = doc->locate(where);
    while (at.line == 0 && !where.empty()) {
      where.pop_back();
      at = doc->locate(where);
    }
    out.set_origin(doc->file(), base, at);
  } else
    out.set_origin({}, base, {});
  std::vector<FlatEntry> entries;
  if (given && !given->is_null()) {
    if (!given->is_object()) {
      report(base, "expected an object of options, e.g. {\"name\": \"value\"}");
      return out;
    }
    flatten(given->as_object(), "", base, entries);
  }

  std::vector<std::string> names;
  for (const auto& o : table)
    names.push_back(o.type == P2K_OPT_PREFIX ? std::string(o.name) + "*" : o.name);

  std::vector<bool> seen(table.size(), false);
  for (const auto& e : entries) {
    // An option of that exact name first (it may sit under a prefix: "rdkafka.sasl.password"
    // declared secret), else the longest matching prefix.
    const p2k_option* match = nullptr;
    size_t index = 0;
    for (size_t i = 0; i < table.size(); ++i) {
      const auto& o = table[i];
      if (o.type != P2K_OPT_PREFIX && e.key == o.name) {
        match = &o;
        index = i;
        break;
      }
    }
    for (size_t i = 0; i < table.size() && !(match && match->type != P2K_OPT_PREFIX); ++i) {
      const auto& o = table[i];
      size_t len = std::strlen(o.name);
      if (o.type == P2K_OPT_PREFIX && e.key.size() > len && e.key.compare(0, len, o.name) == 0 &&
          (!match || len > std::strlen(match->name))) {
        match = &o;
        index = i;
      }
    }
    if (!match) {
      std::vector<std::string> plain;
      for (const auto& o : table)
        if (o.type != P2K_OPT_PREFIX) plain.push_back(o.name);
      std::string near = nearest(e.key, plain);
      std::string known;
      for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
      report(e.path, "unknown option '" + e.key + "'" +
                         (near.empty() ? "" : ": did you mean '" + near + "'?") +
                         " (valid options: " + known + ")");
      continue;
    }
    seen[index] = true;
    std::string error;
    auto value = normalize_value(*match, *e.value, env, error);
    if (!value) {
      report(e.path, error + " (" + type_name(match->type) + " option)");
      continue;
    }
    Location where = doc ? doc->locate(e.path) : Location{};
    out.add(
        ResolvedOption{e.key, *value, is_secret(*match, e.key, abi_minor), false, e.path, where});
  }

  for (size_t i = 0; i < table.size(); ++i) {
    const auto& o = table[i];
    if (seen[i] || o.type == P2K_OPT_PREFIX) continue;
    if (o.flags & P2K_OPT_REQUIRED) {
      report(base, "required option '" + std::string(o.name) + "' is missing" +
                       (o.description ? std::string(": ") + o.description : std::string()));
      continue;
    }
    if (!o.default_value) continue;
    std::string error;
    auto value = normalize_value(o, boost::json::value(o.default_value), env, error);
    if (!value) {
      Path p = base;
      p.push_back(o.name);
      report(p, "the plugin's default '" + std::string(o.default_value) + "' is invalid: " + error);
      continue;
    }
    out.add(ResolvedOption{o.name, *value, declared_secret(o), true, {}, {}});
  }
  return out;
}

}  // namespace pg2kafka::config
