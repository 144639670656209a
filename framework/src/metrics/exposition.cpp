#include "metrics/exposition.hpp"

#include <pg2kafka/sdk/text.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace pg2kafka::metrics {
namespace {

constexpr size_t kMaxNameLength = 100;
constexpr size_t kMaxLabels = 8;
constexpr size_t kMaxLabelValueBytes = 256;
constexpr size_t kMaxSamplesPerScrape = 10'000;

const char* type_name(p2k_metric_type type) {
  switch (type) {
    case P2K_METRIC_COUNTER:
      return "counter";
    case P2K_METRIC_GAUGE:
      return "gauge";
    case P2K_METRIC_HISTOGRAM:
      return "histogram";
  }
  return "untyped";
}

std::string escape_help(std::string_view help) {
  std::string out;
  for (char c : help) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string label_text(const Labels& labels, const char* extra_name = nullptr,
                       const std::string& extra_value = {}) {
  if (labels.empty() && !extra_name) return {};
  std::string out = "{";
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) out += ',';
    first = false;
    out += k + "=\"" + escape_label_value(v) + '"';
  }
  if (extra_name) out += std::string(first ? "" : ",") + extra_name + "=\"" + extra_value + '"';
  return out + '}';
}

// Valid UTF-8: label values reach scrapers as they are.
bool valid_utf8(std::string_view s) {
  for (size_t i = 0, n = 0; i < s.size(); i += n)
    if ((n = sdk::utf8_length_at(s, i)) == 0) return false;
  return true;
}

}  // namespace

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  if (v == std::floor(v) && std::fabs(v) < 1e15)
    std::snprintf(buf, sizeof buf, "%.0f", v);
  else
    // The shortest form that reads back as the same double: 0.005, not 0.0050000000000000001.
    for (int precision = 15; precision <= 17; ++precision) {
      std::snprintf(buf, sizeof buf, "%.*g", precision, v);
      if (std::strtod(buf, nullptr) == v) break;
    }
  return buf;
}

std::string escape_label_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

bool valid_metric_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameLength || name[0] < 'a' || name[0] > 'z') return false;
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  return true;
}

Exposition::Family* Exposition::family(const std::string& name, const std::string& help,
                                       p2k_metric_type type) {
  auto [it, inserted] = families_.try_emplace(name, Family{help, type, {}});
  if (!inserted && it->second.type != type) return nullptr;
  return &it->second;
}

bool Exposition::add(const std::string& name, const std::string& help, p2k_metric_type type,
                     const Labels& labels, double value) {
  Family* f = family(name, help, type);
  if (!f) return false;
  f->lines.push_back(name + label_text(labels) + ' ' + format_value(value));
  return true;
}

bool Exposition::add_histogram(const std::string& name, const std::string& help,
                               const Labels& labels, std::span<const double> bounds,
                               std::span<const uint64_t> cumulative, uint64_t count, double sum) {
  Family* f = family(name, help, P2K_METRIC_HISTOGRAM);
  if (!f) return false;
  for (size_t i = 0; i < bounds.size() && i < cumulative.size(); ++i)
    f->lines.push_back(name + "_bucket" + label_text(labels, "le", format_value(bounds[i])) + ' ' +
                       std::to_string(cumulative[i]));
  f->lines.push_back(name + "_bucket" + label_text(labels, "le", "+Inf") + ' ' +
                     std::to_string(count));
  f->lines.push_back(name + "_sum" + label_text(labels) + ' ' + format_value(sum));
  f->lines.push_back(name + "_count" + label_text(labels) + ' ' + std::to_string(count));
  return true;
}

std::string Exposition::text() const {
  std::string out;
  for (const auto& [name, f] : families_) {
    if (!f.help.empty()) out += "# HELP " + name + ' ' + escape_help(f.help) + '\n';
    out += "# TYPE " + name + ' ' + type_name(f.type) + '\n';
    for (const auto& line : f.lines) out += line + '\n';
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

PluginSamples::PluginSamples(std::string plugin_name, std::function<void(const std::string&)> warn)
    : plugin_name_(std::move(plugin_name)), warn_(std::move(warn)) {
  prefix_ = "pg2kafka_";
  for (char c : plugin_name_) prefix_ += c == '-' ? '_' : c;
  prefix_ += '_';
}

void PluginSamples::begin(Exposition& out) {
  out_ = &out;
  samples_ = 0;
}

void PluginSamples::callback(void* ctx, const p2k_metric* metric) {
  auto* self = static_cast<PluginSamples*>(ctx);
  try {
    if (metric) self->add(*metric);
  } catch (...) {
    // Out of memory: the sample is lost, the scrape goes on. Nothing may escape into the plugin.
  }
}

void PluginSamples::refuse(const std::string& name, const std::string& why) {
  if (!warned_.insert(name).second) return;
  warn_("plugin '" + plugin_name_ + "' reported metric '" + name + "', which is dropped: " + why +
        " (plugin.h, \"Metrics, health and status\"; warned once per metric)");
}

void PluginSamples::add(const p2k_metric& m) {
  if (!out_) return;
  if (m.struct_size < P2K_METRIC_SIZE_1_3) return refuse("?", "its struct_size is too small");
  std::string name = m.name ? std::string(m.name).substr(0, kMaxNameLength + 1) : std::string();
  if (!valid_metric_name(name))
    return refuse(name.empty() ? "(null)" : name,
                  "a name must match [a-z][a-z0-9_]* and have at most 100 characters");
  if (++samples_ > kMaxSamplesPerScrape)
    return refuse("(more than 10000 samples)", "a plugin reports at most 10,000 per scrape");
  if (m.type != P2K_METRIC_COUNTER && m.type != P2K_METRIC_GAUGE && m.type != P2K_METRIC_HISTOGRAM)
    return refuse(name, "unknown type " + std::to_string(static_cast<int>(m.type)));
  bool is_total = name.size() > 6 && name.compare(name.size() - 6, 6, "_total") == 0;
  if (m.type == P2K_METRIC_COUNTER && !is_total)
    return refuse(name, "a counter's name ends in _total");
  if (m.type != P2K_METRIC_COUNTER && is_total)
    return refuse(name, "only counters' names end in _total");
  if (m.label_count > kMaxLabels) return refuse(name, "it has more than 8 labels");
  if (m.label_count > 0 && !m.labels) return refuse(name, "its labels pointer is NULL");
  Labels labels;
  std::set<std::string> seen;
  for (size_t i = 0; i < m.label_count; ++i) {
    const p2k_label& l = m.labels[i];
    std::string key = l.name ? std::string(l.name).substr(0, kMaxNameLength + 1) : std::string();
    if (!valid_metric_name(key) || key == "le")
      return refuse(name, "label name '" + key + "' is not [a-z][a-z0-9_]* or is 'le'");
    if (!seen.insert(key).second) return refuse(name, "label '" + key + "' appears twice");
    if (!l.value) return refuse(name, "label '" + key + "' has no value");
    std::string_view value(l.value);
    if (value.size() > kMaxLabelValueBytes || !valid_utf8(value))
      return refuse(name, "label '" + key + "' has a value over 256 bytes or not UTF-8");
    labels.emplace_back(std::move(key), std::string(value));
  }
  std::string full = prefix_ + name;
  std::string help = m.help ? std::string(m.help).substr(0, 1000) : std::string();
  if (help.empty() || !valid_utf8(help)) help = "Reported by the " + plugin_name_ + " plugin.";
  bool ok;
  if (m.type == P2K_METRIC_HISTOGRAM) {
    if ((m.bucket_count > 0 && (!m.bucket_bounds || !m.bucket_counts)) || m.bucket_count > 100)
      return refuse(name, "its buckets are missing or more than 100");
    std::span<const double> bounds(m.bucket_bounds, m.bucket_count);
    std::span<const uint64_t> counts(m.bucket_counts, m.bucket_count);
    for (size_t i = 0; i < bounds.size(); ++i) {
      if (!std::isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1]))
        return refuse(name, "its bucket bounds are not finite and strictly increasing");
      if ((i > 0 && counts[i] < counts[i - 1]) || counts[i] > m.count)
        return refuse(name, "its bucket counts are not cumulative (or exceed its count)");
    }
    ok = out_->add_histogram(full, help, labels, bounds, counts, m.count, m.value);
  } else {
    if (m.type == P2K_METRIC_COUNTER && !(std::isfinite(m.value) && m.value >= 0))
      return refuse(name, "a counter's value is finite and not negative");
    ok = out_->add(full, help, m.type, labels, m.value);
  }
  if (!ok) refuse(name, "an earlier sample of this name has another type");
}

}  // namespace pg2kafka::metrics
