#include "record_format.hpp"

#include <time.h>

#include <cstdio>

#include <pg2kafka/sdk/json.hpp>

namespace pg2kafka::pg_outbox {
namespace {

std::string sanitize_topic_part(std::string_view name) {
  std::string out(name);
  for (char& c : out) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-';
    if (!ok) c = '_';
  }
  return out;
}

}  // namespace

std::string topic_name(std::string_view topic_namespace, std::string_view database,
                       std::string_view schema, std::string_view table) {
  std::string t = "pg2kafka.";
  if (!topic_namespace.empty()) {
    t += topic_namespace;
    t += '.';
  }
  t += sanitize_topic_part(database);
  t += '.';
  if (schema != "public") {
    t += sanitize_topic_part(schema);
    t += '.';
  }
  t += sanitize_topic_part(table);
  return t;
}

std::string rfc3339_utc(int64_t epoch_us) {
  int64_t secs = epoch_us / 1'000'000;
  int64_t micros = epoch_us % 1'000'000;
  if (micros < 0) {
    micros += 1'000'000;
    secs -= 1;
  }
  time_t tt = static_cast<time_t>(secs);
  struct tm tm {};
  gmtime_r(&tt, &tm);
  char buf[64];
  int n = std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
                        tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  std::string out(buf, static_cast<size_t>(n));
  if (micros != 0) {
    std::snprintf(buf, sizeof buf, ".%06lld", static_cast<long long>(micros));
    std::string frac(buf);
    while (frac.back() == '0') frac.pop_back();
    out += frac;
  }
  out += 'Z';
  return out;
}

std::string envelope_json(std::string_view uuid, const std::optional<std::string>& external_id,
                          std::string_view statement, std::optional<std::string_view> data_json,
                          std::string_view created_at,
                          std::optional<std::string_view> before_json) {
  std::string out;
  out.reserve(96 + uuid.size() + (external_id ? external_id->size() : 4) +
              (data_json ? data_json->size() : 4) + (before_json ? before_json->size() + 10 : 0));
  out += "{\"uuid\":";
  sdk::append_json_string(out, uuid);
  out += ",\"external_id\":";
  if (external_id)
    sdk::append_json_string(out, *external_id);
  else
    out += "null";
  out += ",\"statement\":";
  sdk::append_json_string(out, statement);
  out += ",\"data\":";
  if (data_json)
    out += *data_json;
  else
    out += "null";
  if (before_json) {
    out += ",\"before\":";
    out += *before_json;
  }
  out += ",\"created_at\":";
  sdk::append_json_string(out, created_at);
  out += '}';
  return out;
}

}  // namespace pg2kafka::pg_outbox
