// Metrics and health for plugins (ABI 1.3; plugin.h, "Metrics, health and status").
//
// A plugin keeps its figures in Counter, Gauge and Histogram objects (lock-free, updated from any
// thread), or in families of them keyed by label values, and writes them when the host asks:
//
//   class MySink : public pg2kafka::sdk::Sink {
//     sdk::CounterFamily sent_{"messages_sent_total", "Messages the destination accepted.",
//                              {"topic"}};
//     sdk::Gauge queue_{"queue_depth", "Messages waiting in the client's queue."};
//     void write(...) override { ...; sent_.get({topic}).add(); }
//     void metrics(sdk::MetricWriter& out) override { sent_.write(out); queue_.write(out); }
//     sdk::Health health() override { return {connected_, connected_ ? "" : "broker down"}; }
//   };
//
// Figures known only when asked (read from a client library's statistics, say) are written
// directly: out.gauge("broker_rtt_seconds", "...", rtt, {{"broker", name}}).
//
// `metrics` and `health` run on the host's HTTP thread, concurrently with the plugin's other
// operations: read only what is safe to read from another thread (these classes, atomics, data
// under a lock of your own), and do not block.
#ifndef PG2KAFKA_SDK_METRICS_HPP
#define PG2KAFKA_SDK_METRICS_HPP

#include <pg2kafka/plugin.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace pg2kafka::sdk {

// What a plugin's health() answers: ready or not, and one line saying what it is doing or what is
// wrong (shown in the body of /readyz).
struct Health {
  bool ready = true;
  std::string message;
};

using Label = std::pair<std::string, std::string>;

// Hands samples to the host during a `metrics` call.
class MetricWriter {
 public:
  MetricWriter(p2k_metric_fn fn, void* ctx) : fn_(fn), ctx_(ctx) {}

  void counter(const char* name, const char* help, double value,
               std::span<const Label> labels = {}) {
    emit(name, help, P2K_METRIC_COUNTER, value, labels);
  }
  void counter(const char* name, const char* help, double value,
               std::initializer_list<Label> labels) {
    counter(name, help, value, std::span<const Label>(labels.begin(), labels.size()));
  }
  void gauge(const char* name, const char* help, double value, std::span<const Label> labels = {}) {
    emit(name, help, P2K_METRIC_GAUGE, value, labels);
  }
  void gauge(const char* name, const char* help, double value,
             std::initializer_list<Label> labels) {
    gauge(name, help, value, std::span<const Label>(labels.begin(), labels.size()));
  }
  // `counts` cumulative, one per bound (see p2k_metric).
  void histogram(const char* name, const char* help, std::span<const double> bounds,
                 std::span<const uint64_t> counts, uint64_t count, double sum,
                 std::span<const Label> labels = {}) {
    std::vector<p2k_label> raw = raw_labels(labels);
    p2k_metric m{sizeof(p2k_metric),
                 name,
                 help,
                 P2K_METRIC_HISTOGRAM,
                 raw.empty() ? nullptr : raw.data(),
                 raw.size(),
                 sum,
                 bounds.data(),
                 counts.data(),
                 std::min(bounds.size(), counts.size()),
                 count};
    fn_(ctx_, &m);
  }

 private:
  static std::vector<p2k_label> raw_labels(std::span<const Label> labels) {
    std::vector<p2k_label> raw;
    raw.reserve(labels.size());
    for (const auto& [k, v] : labels) raw.push_back(p2k_label{k.c_str(), v.c_str()});
    return raw;
  }
  void emit(const char* name, const char* help, p2k_metric_type type, double value,
            std::span<const Label> labels) {
    std::vector<p2k_label> raw = raw_labels(labels);
    p2k_metric m{sizeof(p2k_metric),
                 name,
                 help,
                 type,
                 raw.empty() ? nullptr : raw.data(),
                 raw.size(),
                 value,
                 nullptr,
                 nullptr,
                 0,
                 0};
    fn_(ctx_, &m);
  }

  p2k_metric_fn fn_;
  void* ctx_;
};

// A total that only grows. add() is one relaxed atomic addition: cheap enough per record.
class Counter {
 public:
  void add(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

class Gauge {
 public:
  void set(double v) { value_.store(v, std::memory_order_relaxed); }
  void add(double d) {
    double v = value_.load(std::memory_order_relaxed);
    while (!value_.compare_exchange_weak(v, v + d, std::memory_order_relaxed)) {
    }
  }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Observations in fixed buckets. observe() is a few relaxed atomic operations; a reader may see
// the count and the buckets of slightly different moments, which Prometheus tolerates (the host
// makes the buckets it shows cumulative and not decreasing).
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds)
      : bounds_(std::move(bounds)), buckets_(new std::atomic<uint64_t>[bounds_.size()]) {
    for (size_t i = 0; i < bounds_.size(); ++i) buckets_[i] = 0;
  }
  void observe(double v) {
    for (size_t i = 0; i < bounds_.size(); ++i)
      if (v <= bounds_[i]) {
        buckets_[i].fetch_add(1, std::memory_order_relaxed);
        break;
      }
    count_.fetch_add(1, std::memory_order_relaxed);
    double s = sum_.load(std::memory_order_relaxed);
    while (!sum_.compare_exchange_weak(s, s + v, std::memory_order_relaxed)) {
    }
  }
  // The observations now, as Prometheus counts them: per bound, how many were <= it.
  struct Snapshot {
    std::vector<uint64_t> cumulative;
    uint64_t count;
    double sum;
  };
  Snapshot snapshot() const {
    Snapshot snap{std::vector<uint64_t>(bounds_.size()), 0, sum_.load(std::memory_order_relaxed)};
    uint64_t running = 0;
    for (size_t i = 0; i < bounds_.size(); ++i)
      snap.cumulative[i] = running += buckets_[i].load(std::memory_order_relaxed);
    // Read while observations go on: keep the +Inf bucket at least the last one.
    snap.count = std::max(running, count_.load(std::memory_order_relaxed));
    return snap;
  }
  void write(MetricWriter& out, const char* name, const char* help,
             std::span<const Label> labels = {}) const {
    Snapshot snap = snapshot();
    out.histogram(name, help, bounds_, snap.cumulative, snap.count, snap.sum, labels);
  }
  const std::vector<double>& bounds() const { return bounds_; }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // per bucket, not cumulative
  std::atomic<uint64_t> count_{0};
  std::atomic<double> sum_{0};
};

// Buckets for durations from a millisecond to an hour, in seconds.
inline std::vector<double> latency_buckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,  1,
          2.5,   5,      10,    30,   60,    120,  300, 600,  1800, 3600};
}

// Named metrics of one type, one per combination of label values. get() returns a reference that
// stays valid for the family's life; keep it when the label values are known in advance, since
// get() takes a lock and looks the values up.
template <class Metric>
class Family {
 public:
  Family(std::string name, std::string help, std::vector<std::string> label_names,
         std::vector<double> bounds = {})
      : name_(std::move(name)),
        help_(std::move(help)),
        label_names_(std::move(label_names)),
        bounds_(std::move(bounds)) {}

  Metric& get(const std::vector<std::string>& label_values) {
    std::lock_guard lock(mutex_);
    auto it = members_.find(label_values);
    if (it == members_.end()) it = members_.emplace(label_values, make()).first;
    return *it->second;
  }

  void write(MetricWriter& out) const {
    std::lock_guard lock(mutex_);
    for (const auto& [values, metric] : members_) {
      std::vector<Label> labels;
      for (size_t i = 0; i < label_names_.size() && i < values.size(); ++i)
        labels.emplace_back(label_names_[i], values[i]);
      write_one(out, *metric, labels);
    }
  }

 private:
  std::unique_ptr<Metric> make() const {
    if constexpr (std::is_same_v<Metric, Histogram>)
      return std::make_unique<Histogram>(bounds_);
    else
      return std::make_unique<Metric>();
  }
  void write_one(MetricWriter& out, const Metric& m, std::span<const Label> labels) const {
    if constexpr (std::is_same_v<Metric, Counter>)
      out.counter(name_.c_str(), help_.c_str(), static_cast<double>(m.value()), labels);
    else if constexpr (std::is_same_v<Metric, Gauge>)
      out.gauge(name_.c_str(), help_.c_str(), m.value(), labels);
    else
      m.write(out, name_.c_str(), help_.c_str(), labels);
  }

  std::string name_, help_;
  std::vector<std::string> label_names_;
  std::vector<double> bounds_;
  mutable std::mutex mutex_;
  std::map<std::vector<std::string>, std::unique_ptr<Metric>> members_;
};

using CounterFamily = Family<Counter>;
using GaugeFamily = Family<Gauge>;
using HistogramFamily = Family<Histogram>;

}  // namespace pg2kafka::sdk

#endif  // PG2KAFKA_SDK_METRICS_HPP
