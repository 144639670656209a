// Shared by the kafka sink's tests: building sinks with options, records, and a loop that plays
// the host's part (write, wait for reports, write RETRY records again in order).
#pragma once

#include <pg2kafka/sdk/plugin.hpp>

#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "config/option_values.hpp"
#include "kafka_sink.hpp"
#include "kafka_test_util.hpp"

namespace p2k_test::kafka {

// Options as the host passes them: validated against the sink's option table by the host's own
// code, defaults applied. A value the host refuses throws sdk::ConfigError with its diagnostics.
inline pg2kafka::config::ResolvedOptions resolved(
    const std::map<std::string, std::string>& values) {
  boost::json::object given;
  for (const auto& [k, v] : values) given[k] = v;
  boost::json::value json(std::move(given));
  pg2kafka::config::Diagnostics diagnostics;
  auto resolved = pg2kafka::config::resolve_options(
      pg2kafka::kafka::sink_options(), &json, {"options"}, nullptr,
      [](const std::string&) { return std::optional<std::string>(); }, diagnostics);
  if (!diagnostics.empty()) throw pg2kafka::sdk::ConfigError(diagnostics.format());
  return resolved;
}

inline pg2kafka::sdk::Options options(const std::map<std::string, std::string>& values) {
  auto r = resolved(values);
  auto raw = r.c_values();
  return pg2kafka::sdk::Options(raw.data(), raw.size());
}

inline std::unique_ptr<pg2kafka::kafka::KafkaSink> make_sink(
    FakeHost& host, const std::string& brokers, std::map<std::string, std::string> values = {}) {
  values.emplace("bootstrap_servers", brokers);
  values.emplace("request_timeout", "10000");
  return std::make_unique<pg2kafka::kafka::KafkaSink>(pg2kafka::sdk::Host(host.raw()),
                                                      options(values));
}

// One test record, owned.
struct TestRecord {
  uint64_t position;
  std::string topic;
  std::optional<std::string> key;
  std::string value;
  int64_t timestamp_ms = 0;
  std::string id;
  std::vector<std::pair<std::string, std::string>> headers;
};

// Keeps records alive and hands them to a sink in C form.
class Records {
 public:
  void add(TestRecord r) { owned_.push_back(std::move(r)); }
  // The C records for owned_[from, to).
  std::vector<p2k_record> view(size_t from, size_t to) {
    headers_.resize(owned_.size());
    std::vector<p2k_record> out;
    for (size_t i = from; i < to; ++i) out.push_back(c_record(i));
    return out;
  }
  std::vector<p2k_record> view_positions(const std::vector<uint64_t>& positions) {
    headers_.resize(owned_.size());
    std::vector<p2k_record> out;
    for (auto p : positions) {
      for (size_t i = 0; i < owned_.size(); ++i)
        if (owned_[i].position == p) out.push_back(c_record(i));
    }
    return out;
  }
  const std::deque<TestRecord>& all() const { return owned_; }
  size_t size() const { return owned_.size(); }

 private:
  static p2k_slice slice(const std::string& s) { return p2k_slice{s.data(), s.size()}; }
  p2k_record c_record(size_t i) {
    const TestRecord& o = owned_[i];
    auto& h = headers_[i];
    h.clear();
    for (const auto& [n, v] : o.headers) h.push_back(p2k_header{slice(n), slice(v)});
    p2k_record r{};
    r.struct_size = sizeof r;
    r.position = o.position;
    r.topic = slice(o.topic);
    r.key = o.key ? slice(*o.key) : p2k_slice{nullptr, 0};
    r.value = slice(o.value);
    r.timestamp_ms = o.timestamp_ms;
    r.id = slice(o.id);
    r.headers = h.empty() ? nullptr : h.data();
    r.header_count = h.size();
    return r;
  }
  std::deque<TestRecord> owned_;
  std::vector<std::vector<p2k_header>> headers_;
};

// Polls the sink until at least `count` reports arrived in total or `timeout` passes.
inline bool wait_for_reports(pg2kafka::kafka::KafkaSink& sink, FakeHost& host, size_t count,
                             std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (host.reports().size() < count) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    sink.poll(std::chrono::milliseconds(50));
  }
  return true;
}

}  // namespace p2k_test::kafka
