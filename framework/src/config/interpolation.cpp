#include "config/interpolation.hpp"

#include <cctype>
#include <cstdlib>
#include <vector>

#include "config/diagnostics.hpp"

namespace pg2kafka::config {
namespace {

// ${A:-${B:-...}} may nest this deep; deeper is refused (each level is a recursive call).
constexpr size_t kMaxDefaultNesting = 16;
// A value after substitution is at most this long (a pipeline file is at most 16 MiB; a value
// repeating a large variable could otherwise grow without bound).
constexpr size_t kMaxExpandedLength = 16u << 20;

bool name_char(char c, bool first) {
  return c == '_' || std::isalpha(static_cast<unsigned char>(c)) ||
         (!first && std::isdigit(static_cast<unsigned char>(c)));
}

// Expands text[pos...] until `stop` (or the end when stop == 0); advances pos past the stop.
// With `evaluate` false the text is only parsed (an unused default may name unset variables).
// `outer` names the variables whose defaults are being expanded (all unset), for the message.
bool expand(std::string_view text, size_t& pos, char stop, const EnvLookup& env, std::string& out,
            std::string& error, bool evaluate, std::vector<std::string>& outer) {
  while (pos < text.size()) {
    char c = text[pos];
    if (stop && c == stop) {
      ++pos;
      return true;
    }
    if (out.size() > kMaxExpandedLength) {
      error = "the value is longer than 16 MiB once variables are substituted";
      return false;
    }
    if (c != '$') {
      out += c;
      ++pos;
      continue;
    }
    if (pos + 1 < text.size() && text[pos + 1] == '$') {
      out += '$';
      pos += 2;
      continue;
    }
    if (pos + 1 >= text.size() || text[pos + 1] != '{') {
      out += c;  // a lone '$' stays as written
      ++pos;
      continue;
    }
    size_t name_start = pos + 2;
    size_t p = name_start;
    while (p < text.size() && name_char(text[p], p == name_start)) ++p;
    std::string name(text.substr(name_start, p - name_start));
    if (name.empty()) {
      error = "invalid variable reference at " + quoted(text.substr(pos, 12)) +
              ": expected ${NAME} or ${NAME:-default} (write $$ for a literal $)";
      return false;
    }
    auto value = env(name);
    if (p < text.size() && text[p] == '}') {
      if (!value && evaluate) {
        if (outer.empty()) {
          std::string shown = printable(name);
          error = "environment variable " + shown +
                  " is not set: export it, or give a default with ${" + shown + ":-default}";
        } else {
          std::string names;
          for (const auto& o : outer) names += printable(o) + ", ";
          error = "none of the environment variables " + names + printable(name) +
                  " is set: export one of them";
        }
        return false;
      }
      if (value) out += *value;
      pos = p + 1;
      continue;
    }
    if (text.substr(p, 2) == ":-") {
      if (outer.size() >= kMaxDefaultNesting) {
        error = "variable defaults nest more than " + std::to_string(kMaxDefaultNesting) +
                " deep (${A:-${B:-...}})";
        return false;
      }
      pos = p + 2;
      bool use_value = value && !value->empty();
      std::string fallback;
      outer.push_back(name);
      bool ok = expand(text, pos, '}', env, fallback, error, evaluate && !use_value, outer);
      outer.pop_back();
      if (!ok) {
        if (error.empty())
          error = "unterminated ${" + printable(name) + ":-...: add the closing '}'";
        return false;
      }
      out += use_value ? *value : fallback;
      continue;
    }
    error = "invalid variable reference ${" + printable(name) +
            "...: expected '}' or ':-' after the name";
    return false;
  }
  if (stop) return false;  // caller reports the missing '}'
  return true;
}

}  // namespace

EnvLookup process_environment() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (!v) return std::nullopt;
    return std::string(v);
  };
}

InterpolationResult interpolate(std::string_view text, const EnvLookup& env) {
  InterpolationResult r;
  size_t pos = 0;
  std::string error;
  std::vector<std::string> outer;
  if (!expand(text, pos, 0, env, r.value, error, true, outer)) {
    r.error = error;
  } else if (r.value.size() > kMaxExpandedLength) {
    r.error = "the value is longer than 16 MiB once variables are substituted";
  }
  if (!r.ok()) r.value.clear();
  return r;
}

}  // namespace pg2kafka::config
