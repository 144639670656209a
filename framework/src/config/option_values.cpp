#include "config/option_values.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>

#include "config/json_document.hpp"

#include <pg2kafka/sdk/text.hpp>

namespace pg2kafka::config {
namespace {

using sdk::lower;

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return {};
  size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

enum class NumberError { kNone, kSyntax, kNegative, kNotWhole, kOverflow };

struct Unit {
  const char* name;
  int64_t factor;
};

const Unit kDurationUnits[] = {{"ms", 1},       {"s", 1000},      {"m", 60'000},
                               {"min", 60'000}, {"h", 3'600'000}, {"d", 86'400'000}};
const Unit kSizeUnits[] = {{"B", 1},
                           {"kB", 1000},
                           {"KB", 1000},
                           {"MB", 1'000'000},
                           {"GB", 1'000'000'000},
                           {"KiB", int64_t{1} << 10},
                           {"MiB", int64_t{1} << 20},
                           {"GiB", int64_t{1} << 30}};

// "<number><unit>", the number possibly with a fraction ("1.5s"), times the unit's factor; a
// bare number has factor 1. Exact integer arithmetic: a value that does not fit in int64 is
// kOverflow, never wrapped nor rounded.
int64_t scaled(const std::string& text, std::span<const Unit> units, NumberError& error) {
  error = NumberError::kSyntax;
  std::string t = trim(text);
  bool negative = !t.empty() && t[0] == '-';
  size_t i = negative ? 1 : 0;
  size_t int_begin = i;
  while (i < t.size() && std::isdigit(static_cast<unsigned char>(t[i]))) ++i;
  std::string_view int_digits(t.data() + int_begin, i - int_begin);
  std::string_view frac_digits;
  if (i < t.size() && t[i] == '.') {
    size_t frac_begin = ++i;
    while (i < t.size() && std::isdigit(static_cast<unsigned char>(t[i]))) ++i;
    frac_digits = std::string_view(t.data() + frac_begin, i - frac_begin);
    if (frac_digits.empty()) return 0;  // "5." is not a number
  }
  if (int_digits.empty() && frac_digits.empty()) return 0;
  std::string unit = trim(t.substr(i));
  int64_t factor = unit.empty() ? 1 : 0;
  for (const auto& u : units)
    if (unit == u.name) factor = u.factor;
  if (factor == 0) return 0;
  if (negative) {
    error = NumberError::kNegative;
    return 0;
  }
  while (!int_digits.empty() && int_digits.front() == '0') int_digits.remove_prefix(1);
  while (!frac_digits.empty() && frac_digits.back() == '0') frac_digits.remove_suffix(1);
  // 9 decimals are plenty ("0.000000001s" is 1 ns); more, and the value is not whole anyway
  // for any unit but a very contrived one.
  if (frac_digits.size() > 9) {
    error = NumberError::kNotWhole;
    return 0;
  }
  if (int_digits.size() > 19) {
    error = NumberError::kOverflow;
    return 0;
  }
  uint64_t whole = 0;
  for (char c : int_digits) whole = whole * 10 + static_cast<uint64_t>(c - '0');  // < 10^19
  uint64_t fraction = 0, scale = 1;
  for (char c : frac_digits) {
    fraction = fraction * 10 + static_cast<uint64_t>(c - '0');
    scale *= 10;
  }
  // fraction < 10^9 and factor < 2^31: the product fits.
  uint64_t fraction_scaled = fraction * static_cast<uint64_t>(factor);
  if (fraction_scaled % scale != 0) {
    error = NumberError::kNotWhole;  // "1.5ms" is not whole milliseconds
    return 0;
  }
  uint64_t total = 0;
  if (__builtin_mul_overflow(whole, static_cast<uint64_t>(factor), &total) ||
      __builtin_add_overflow(total, fraction_scaled / scale, &total) ||
      total > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    error = NumberError::kOverflow;
    return 0;
  }
  error = NumberError::kNone;
  return static_cast<int64_t>(total);
}

std::optional<int64_t> parse_int(const std::string& text, NumberError& error) {
  std::string t = trim(text);
  int64_t v = 0;
  auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  error = NumberError::kSyntax;
  if (t.empty() || end != t.data() + t.size()) return std::nullopt;
  if (ec == std::errc::result_out_of_range) error = NumberError::kOverflow;
  if (ec != std::errc()) return std::nullopt;
  error = NumberError::kNone;
  return v;
}

// The value in the largest unit that holds it exactly, as a user would write it: "1h", "3650d",
// "1500ms"; "1024GiB", "1MB", "512B".
std::string with_unit(int64_t value, std::span<const Unit> units) {
  const Unit* best = nullptr;
  for (const auto& u : units) {
    // The largest factor wins; among equal ones ("m"/"min", "kB"/"KB"), the first listed.
    if (value % u.factor != 0 || (best && u.factor <= best->factor)) continue;
    best = &u;
  }
  if (!best || value == 0) return std::to_string(value) + units[0].name;
  return std::to_string(value / best->factor) + best->name;
}

std::string bound_text(const p2k_option& o, int64_t v) {
  if (o.type == P2K_OPT_DURATION) return with_unit(v, kDurationUnits);
  if (o.type == P2K_OPT_SIZE) return with_unit(v, kSizeUnits);
  return std::to_string(v);
}

bool has_range(const p2k_option& o) {
  return o.min_value < o.max_value;
}

std::string range_text(const p2k_option& o) {
  return "allowed " + bound_text(o, o.min_value) + " to " + bound_text(o, o.max_value);
}

// The message for a value too large for int64 (what the host and plugins hold numbers in).
std::string overflow_text(const p2k_option& o, const std::string& shown) {
  if (has_range(o)) return shown + " is out of range: " + range_text(o);
  switch (o.type) {
    case P2K_OPT_DURATION:
      return shown +
             " is too large: a duration is at most 9223372036854775807ms (about 292 "
             "million years)";
    case P2K_OPT_SIZE:
      return shown + " is too large: a size is at most 9223372036854775807B (8EiB)";
    default:
      return shown +
             " is too large: a whole number is at most 9223372036854775807 (and at least "
             "-9223372036854775808)";
  }
}

// A JSON number too large to be held exactly (the parser makes those doubles).
bool huge_number(const boost::json::value& v) {
  return v.is_double() && !(std::abs(v.as_double()) < 0x1p63);
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
    if (!std::isfinite(d)) {  // the parser makes 1e400 infinite
      error = "the number is too large";
      return std::nullopt;
    }
    if (d == std::floor(d) && std::abs(d) < 0x1p63) return std::to_string(static_cast<int64_t>(d));
    char buffer[64];
    auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, d);  // shortest exact form
    return ec == std::errc() ? std::string(buffer, end) : std::to_string(d);
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
  if (has_range(o) && (v < o.min_value || v > o.max_value)) {
    error = shown + " is out of range: " + range_text(o);
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
  NumberError error;
  int64_t ms = scaled(text, kDurationUnits, error);
  if (error != NumberError::kNone) return std::nullopt;
  return ms;
}

std::optional<int64_t> parse_size_bytes(const std::string& text) {
  NumberError error;
  int64_t bytes = scaled(text, kSizeUnits, error);
  if (error != NumberError::kNone) return std::nullopt;
  return bytes;
}

namespace {

std::optional<std::string> normalize(const p2k_option& o, const boost::json::value& v,
                                     const EnvLookup& env, std::string& error) {
  const bool secret = declared_secret(o);
  auto text = scalar_text(v, env, error);
  if (!text && !(o.type == P2K_OPT_LIST && v.is_array())) return std::nullopt;
  auto shown = [&](const std::string& t) { return secret ? std::string("the value") : quoted(t); };
  switch (o.type) {
    case P2K_OPT_STRING:
    case P2K_OPT_SECRET:
      if (!v.is_string()) {
        error = "expected text in quotes";
        return std::nullopt;
      }
      return text;
    case P2K_OPT_INT: {
      NumberError problem;
      auto n = parse_int(*text, problem);
      if (problem == NumberError::kOverflow || huge_number(v)) {
        error = overflow_text(o, shown(*text));
        return std::nullopt;
      }
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
    case P2K_OPT_DURATION:
    case P2K_OPT_SIZE: {
      const bool duration = o.type == P2K_OPT_DURATION;
      NumberError problem;
      int64_t n = scaled(
          *text,
          duration ? std::span<const Unit>(kDurationUnits) : std::span<const Unit>(kSizeUnits),
          problem);
      if (huge_number(v)) problem = NumberError::kOverflow;
      switch (problem) {
        case NumberError::kNone:
          break;
        case NumberError::kSyntax:
          error = duration ? "expected a duration such as \"250ms\", \"5s\", \"2m\", \"1h\" or "
                             "\"7d\", found " +
                                 shown(*text)
                           : "expected a size such as \"512\", \"64KiB\", \"1MiB\" or \"1GB\", "
                             "found " +
                                 shown(*text);
          return std::nullopt;
        case NumberError::kNegative:
          error = shown(*text) + " is negative: a " + (duration ? "duration" : "size") +
                  " is 0 or more";
          return std::nullopt;
        case NumberError::kNotWhole:
          error =
              shown(*text) + " is not a whole number of " + (duration ? "milliseconds" : "bytes");
          return std::nullopt;
        case NumberError::kOverflow:
          error = overflow_text(o, shown(*text));
          return std::nullopt;
      }
      if (!range_ok(o, n, error, shown(*text))) return std::nullopt;
      return std::to_string(n);
    }
    case P2K_OPT_ENUM: {
      for (auto c = o.choices; c && *c; ++c)
        if (*text == *c) return text;
      std::vector<std::string> all;
      for (auto c = o.choices; c && *c; ++c) all.push_back(*c);
      std::string near = nearest(*text, all);
      error = shown(*text) + " is not one of: " + choices_text(o) +
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
            error = (secret ? std::string("a list element") : "list element " + quoted(*item)) +
                    " contains a comma, which this list cannot hold";
            return std::nullopt;
          }
          items.push_back(trim(*item));
        }
      } else {
        for (const std::string& part : sdk::split(*text, ',')) items.push_back(trim(part));
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

}  // namespace

std::optional<std::string> normalize_value(const p2k_option& o, const boost::json::value& v,
                                           const EnvLookup& env, std::string& error) {
  auto value = normalize(o, v, env, error);
  // Plugins receive C strings: a NUL ("\u0000" in JSON) would silently cut the value short.
  if (value && value->find('\0') != std::string::npos) {
    error = "the value holds a NUL character (\\u0000), which a plugin cannot receive";
    return std::nullopt;
  }
  return value;
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

  // A key given twice, once nested and once dotted ({"retry": {"max": 1}, "retry.max": 2}): the
  // JSON has no duplicate, the options do. Every occurrence after the first is an error.
  std::map<std::string, const FlatEntry*> first_entry;
  auto relative = [&](const Path& p) {
    // How the user wrote the key inside the options object: "retry": {"max": ...}
    std::string out, close;
    for (size_t i = std::min(base.size(), p.size()); i < p.size(); ++i) {
      if (!out.empty()) {
        out += ": {";
        close += "}";
      }
      out += quoted(p[i], '"');
    }
    return out + ": ..." + close;
  };

  std::vector<bool> seen(table.size(), false);
  for (const auto& e : entries) {
    if (e.key.find('\0') != std::string::npos) {
      report(e.path,
             "the option name holds a NUL character (\\u0000), which a plugin cannot "
             "receive");
      continue;
    }
    auto [first, inserted] = first_entry.try_emplace(e.key, &e);
    if (!inserted) {
      Location other = doc ? doc->locate(first->second->path) : Location{};
      std::string at = other.line > 0 ? " at " + format_location(doc->file(), other) : "";
      report(e.path, "duplicate option " + quoted(e.key) + ": it is also set" + at + " as " +
                         relative(first->second->path) + "; remove one");
      continue;
    }
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
      report(e.path, "unknown option " + quoted(e.key) +
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
      report(p, "the plugin's default " + quoted(o.default_value) + " is invalid: " + error);
      continue;
    }
    out.add(ResolvedOption{o.name, *value, declared_secret(o), true, {}, {}});
  }
  return out;
}

}  // namespace pg2kafka::config
