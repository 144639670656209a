// Shared by the kafka sink's tests: building sinks with options, records, and a loop that plays
// the host's part (write, wait for reports, write RETRY records again in order).
#pragma once

#include <pg2kafka/sdk/plugin.hpp>

#include <chrono>
#include <cmath>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>

#include "config/option_values.hpp"
#include "kafka_sink.hpp"
#include "kafka_test_util.hpp"
#include "metrics/exposition.hpp"

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

// ---- metrics and health (ABI 1.3) ----

// One sample a sink reported, copied.
struct Sample {
  std::string name;
  p2k_metric_type type;
  std::map<std::string, std::string> labels;
  double value;
};

// What one call of a sink's metrics() reported: the samples, the host's verdict on them (its own
// checker, framework/src/metrics/exposition.cpp: the rules of plugin.h) and the exposition text
// the host would serve.
struct Scrape {
  std::vector<Sample> samples;
  std::vector<std::string> warnings;
  std::string text;

  const Sample* find(const std::string& name,
                     const std::map<std::string, std::string>& labels = {}) const {
    for (const auto& s : samples)
      if (s.name == name && s.labels == labels) return &s;
    return nullptr;
  }
  bool has(const std::string& name) const {
    for (const auto& s : samples)
      if (s.name == name) return true;
    return false;
  }
  // Every sample whose name starts with `prefix`.
  std::vector<Sample> with_prefix(const std::string& prefix) const {
    std::vector<Sample> out;
    for (const auto& s : samples)
      if (s.name.rfind(prefix, 0) == 0) out.push_back(s);
    return out;
  }
  // Problems with the samples beyond what the host refuses: Prometheus naming conventions.
  std::vector<std::string> convention_problems() const {
    std::vector<std::string> out;
    auto ends_with = [](const std::string& s, const std::string& end) {
      return s.size() >= end.size() && s.compare(s.size() - end.size(), end.size(), end) == 0;
    };
    for (const auto& s : samples) {
      if (s.type == P2K_METRIC_GAUGE && ends_with(s.name, "_total"))
        out.push_back(s.name + ": a gauge named like a counter");
      if (!std::isfinite(s.value)) out.push_back(s.name + ": not finite");
      if (ends_with(s.name, "_ms") || ends_with(s.name, "_us") || ends_with(s.name, "_kb"))
        out.push_back(s.name + ": not in a base unit");
    }
    return out;
  }
};

// Runs `write` with a MetricWriter on another thread (as the host's HTTP thread) and collects
// what it reported.
inline Scrape collect(const std::function<void(pg2kafka::sdk::MetricWriter&)>& write) {
  Scrape out;
  pg2kafka::metrics::Exposition exposition;
  pg2kafka::metrics::PluginSamples checker(
      "kafka", [&](const std::string& warning) { out.warnings.push_back(warning); });
  checker.begin(exposition);
  struct Context {
    Scrape* out;
    pg2kafka::metrics::PluginSamples* checker;
  } context{&out, &checker};
  std::thread http([&] {
    pg2kafka::sdk::MetricWriter writer(
        [](void* ctx, const p2k_metric* m) {
          auto* c = static_cast<Context*>(ctx);
          Sample s{m->name, m->type, {}, m->value};
          for (size_t i = 0; i < m->label_count; ++i)
            s.labels[m->labels[i].name] = m->labels[i].value;
          c->out->samples.push_back(std::move(s));
          pg2kafka::metrics::PluginSamples::callback(c->checker, m);
        },
        &context);
    write(writer);
  });
  http.join();
  out.text = exposition.text();
  return out;
}

// Calls the sink's metrics() as the host does.
inline Scrape scrape(pg2kafka::kafka::KafkaSink& sink) {
  return collect([&](pg2kafka::sdk::MetricWriter& w) { sink.metrics(w); });
}

// Calls health() (from another thread, as the host does) until `pred` holds for its answer or
// `timeout` passes; returns the last answer. The sink's own operations are not called meanwhile:
// as when the pipeline is idle.
inline pg2kafka::sdk::Health wait_for_health(
    pg2kafka::kafka::KafkaSink& sink, const std::function<bool(const pg2kafka::sdk::Health&)>& pred,
    std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  pg2kafka::sdk::Health h;
  while (true) {
    std::thread http([&] { h = sink.health(); });
    http.join();
    if (pred(h) || std::chrono::steady_clock::now() > deadline) return h;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

inline bool is_ready(const pg2kafka::sdk::Health& h) {
  return h.ready;
}
inline bool is_not_ready(const pg2kafka::sdk::Health& h) {
  return !h.ready;
}

// Scrapes until `pred` holds or `timeout` passes; returns the last scrape.
inline Scrape wait_for_scrape(pg2kafka::kafka::KafkaSink& sink,
                              const std::function<bool(const Scrape&)>& pred,
                              std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    Scrape s = scrape(sink);
    if (pred(s) || std::chrono::steady_clock::now() > deadline) return s;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

}  // namespace p2k_test::kafka
