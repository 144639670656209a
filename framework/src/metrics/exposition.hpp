// The Prometheus text exposition format (version 0.0.4): families of samples, each family written
// once with its HELP and TYPE lines, label values escaped. Plugins' samples (p2k_metric) are
// checked against plugin.h's rules before they are added.
#pragma once

#include <pg2kafka/plugin.h>

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pg2kafka::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Exposition {
 public:
  // Adds one sample of a counter or gauge. The family is created by its first sample, which
  // fixes its type and help; a later sample of another type is refused (returns false).
  bool add(const std::string& name, const std::string& help, p2k_metric_type type,
           const Labels& labels, double value);
  // Adds one histogram: bounds finite and increasing, `cumulative` one per bound.
  bool add_histogram(const std::string& name, const std::string& help, const Labels& labels,
                     std::span<const double> bounds, std::span<const uint64_t> cumulative,
                     uint64_t count, double sum);
  std::string text() const;
  size_t families() const { return families_.size(); }

 private:
  struct Family {
    std::string help;
    p2k_metric_type type;
    std::vector<std::string> lines;  // the samples, written in full
  };
  Family* family(const std::string& name, const std::string& help, p2k_metric_type type);
  std::map<std::string, Family> families_;  // by name: a stable, sorted output
};

// "1.5", "+Inf", "NaN", integers without a fraction.
std::string format_value(double v);
// A label value escaped for the exposition format (backslash, double quote, newline).
std::string escape_label_value(std::string_view v);

// Checks a plugin's samples and adds the valid ones under "pg2kafka_<plugin>_" to an exposition.
// A sample that breaks a rule of plugin.h is dropped; `warn` is called once per metric name
// (per PluginSamples object: keep one per plugin instance for the life of the process).
class PluginSamples {
 public:
  PluginSamples(std::string plugin_name, std::function<void(const std::string&)> warn);
  // For one scrape: route samples to `out`. Returns the p2k_metric_fn context and function.
  void begin(Exposition& out);
  static void callback(void* ctx, const p2k_metric* metric);
  void add(const p2k_metric& metric);
  const std::string& prefix() const { return prefix_; }

 private:
  void refuse(const std::string& name, const std::string& why);
  std::string plugin_name_;
  std::string prefix_;
  std::function<void(const std::string&)> warn_;
  std::set<std::string> warned_;
  Exposition* out_ = nullptr;
  size_t samples_ = 0;
};

// Whether `name` is a valid plugin metric or label name: [a-z][a-z0-9_]*, at most 100 chars.
bool valid_metric_name(std::string_view name);

}  // namespace pg2kafka::metrics
