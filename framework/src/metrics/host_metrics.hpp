// The host's own figures: what the pipeline thread counts as records flow (per topic), the state
// of its retries and backoffs, its phase and readiness, and the process's memory and CPU. The
// pipeline thread writes them (the SDK's lock-free Counter and Histogram, as plugins use); the
// HTTP thread reads them on a scrape.
#pragma once

#include <pg2kafka/plugin.h>

#include <pg2kafka/sdk/metrics.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "metrics/exposition.hpp"

namespace pg2kafka::metrics {

struct TopicCounters {
  sdk::Counter polled, written, delivered, delivered_bytes, retried, failed;
  // on_permanent_failure=park: records of this topic set aside in the source, and their dead
  // letters confirmed by the sink (by the original topic).
  sdk::Counter parked, dead_lettered;
};

// Where the pipeline is in its life (pg2kafka_phase, /readyz).
enum class Phase : int {
  kStarting = 0,     // before the source's open
  kOpeningSource,    // the source's open is being tried (and retried)
  kOpeningSink,      // the sink's open is being tried
  kPreparingTopics,  // the sink checks the source's topics
  kRunning,
  kStopping,
  kStopped
};
const char* phase_name(Phase p);

class HostMetrics {
 public:
  HostMetrics();

  // Pipeline thread only. The counters of a topic, created on first use (the HTTP thread then
  // sees it on its next scrape). Callers keep the reference for runs of records of one topic.
  TopicCounters& topic(std::string_view name);

  // Pipeline thread writes, any thread reads.
  sdk::Counter acknowledged;  // records acknowledged to the source
  sdk::Counter polls, empty_polls;
  sdk::Counter source_retries;  // poll, ack or open of the source failed transiently
  sdk::Counter sink_retries;    // write or open of the sink failed transiently, or a prepare
  // Dead letters written without their value (the sink refused them with it), and parks of a
  // record that the source could not do yet (retried).
  sdk::Counter dead_letters_without_value, park_retries;
  std::atomic<uint64_t> parking{
      0};  // records failed permanently, not parked (or dead-lettered) yet
  std::atomic<uint64_t> in_flight_records{0}, in_flight_bytes{0}, awaiting_retry{0};
  sdk::Histogram delivery_latency;  // event time to delivery confirmation, seconds
  // When the current backoff of an operation ends (steady clock, ns; 0: not backing off).
  std::atomic<int64_t> sink_backoff_until_ns{0}, source_backoff_until_ns{0},
      ack_backoff_until_ns{0};
  std::atomic<int> phase{static_cast<int>(Phase::kStarting)};
  // Whether the latest attempt of the source's poll and of a write or delivery failed
  // transiently (cleared by a success), and why; for /readyz.
  void set_source_trouble(std::string why);
  void set_sink_trouble(std::string why);
  void clear_source_trouble() { source_trouble_.store(false, std::memory_order_relaxed); }
  void clear_sink_trouble() { sink_trouble_.store(false, std::memory_order_relaxed); }
  std::optional<std::string> source_trouble() const;
  std::optional<std::string> sink_trouble() const;

  // Adds every host figure, and the process's, to `out`.
  void write(Exposition& out) const;

 private:
  mutable std::mutex mutex_;  // topics_'s structure (inserts) against readers; trouble texts
  std::map<std::string, std::unique_ptr<TopicCounters>, std::less<>> topics_;
  std::atomic<bool> source_trouble_{false}, sink_trouble_{false};
  std::string source_trouble_text_, sink_trouble_text_;
  std::chrono::system_clock::time_point started_ = std::chrono::system_clock::now();
};

// The process's own figures under their standard Prometheus names (process_*), as every client
// library exports them, so dashboards and alerts written for them work unchanged.
void write_process_metrics(Exposition& out, std::chrono::system_clock::time_point started);

}  // namespace pg2kafka::metrics
