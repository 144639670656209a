// The host's loop: poll the source, write to the sink, collect delivery outcomes, acknowledge
// the source in order, retry transient failures, and shut down cleanly.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <set>
#include <span>
#include <string>

#include <pg2kafka/sdk/backoff.hpp>
#include "config/pipeline_config.hpp"
#include "metrics/host_metrics.hpp"
#include "plugin/plugin_instance.hpp"
#include "runtime/delivery_window.hpp"
#include "runtime/stop_control.hpp"

namespace pg2kafka::runtime {

struct RunMode {
  bool once = false;     // stop when the source has nothing left and everything is confirmed
  bool dry_run = false;  // never acknowledge
};

struct PipelineStats {
  uint64_t polled = 0;
  uint64_t delivered = 0;
  uint64_t retried = 0;
  uint64_t parked = 0;
  std::optional<uint64_t> acked_through;
};

class Pipeline {
 public:
  // `stop` says when to stop (a signal) and bounds the shutdown: once it is forced, the pipeline
  // waits for nothing, acknowledges nothing more and exits 4.
  Pipeline(plugin::SourceInstance& source, plugin::SinkInstance& sink,
           const config::HostSettings& settings, RunMode mode, StopControl& stop);
  ~Pipeline();

  // Runs until done; returns the process exit code: 0, or 4 on a runtime failure or a forced
  // stop (2 when a plugin rejects its configuration on open).
  int run();
  const PipelineStats& stats() const { return stats_; }
  // The figures the HTTP endpoint serves; valid for the pipeline's life, readable from any thread.
  const metrics::HostMetrics& metrics() const { return metrics_; }

  // Why a record is parked: the sink refused it for good, the source could not make it
  // deliverable, or it is held behind an earlier record of its key that was.
  enum class ParkReason { kFailed, kUnusable, kHeld };
  // "failed", "unusable", "held": the dead letter's pg2kafka.reason header and the log's.
  static const char* reason_name(ParkReason r);

 private:
  struct Batch;
  using Clock = std::chrono::steady_clock;

  bool open_with_retry();
  bool prepare_topics(const p2k_record* records, size_t count);
  void poll_source();
  void write(std::span<const p2k_record> records);
  void handle_outcomes();
  void on_outcome(const plugin::Outcome& outcome);
  void retry_later(const std::string& what, const std::string& why);
  void write_due_retries();
  bool retry_due() const;
  void acknowledge();
  // A record that can never be delivered: stop (on_permanent_failure=stop), or set it aside to
  // be parked (kFailed or kUnusable), with the later records of its key (kHeld).
  void permanent_failure(const p2k_record& record, const std::string& error, ParkReason reason);

  // Parks the records set aside, in order (called from the loop); writes their dead letters.
  void park_set_aside();
  struct SetAside;
  void write_dead_letter(const SetAside& set_aside, bool with_value);
  void fail(std::string message);
  bool stopping() const { return stop_.level() > StopControl::kRunning; }
  bool forced() const { return stop_.level() >= StopControl::kForced; }
  void warn_if_sink_silent();
  // Sleeps until `until`, or until the stop reaches `level` (kStopping: a stop request ends the
  // sleep; kForced: only a forced stop does, so a shutdown still waits for a retry or an ack).
  void sleep_until(Clock::time_point until, int level);
  int finish(bool clean);
  // The per-topic counters of a record (the last topic's are kept: records come in runs).
  metrics::TopicCounters& counters(const p2k_record& r);
  void update_gauges();

  plugin::SourceInstance& source_;
  plugin::SinkInstance& sink_;
  config::HostSettings settings_;
  RunMode mode_;
  StopControl& stop_;

  DeliveryWindow window_;  // written and not yet acknowledged, in source order
  Clock::time_point retry_due_{};
  bool retry_scheduled_ = false;  // retry_due_ is set for the records awaiting a retry
  sdk::Backoff sink_backoff_;
  sdk::Backoff source_backoff_;
  sdk::Backoff ack_backoff_;
  Clock::time_point next_poll_{};
  bool last_poll_empty_ = false;
  bool drained_ = false;  // --once: an empty poll with nothing in flight
  std::optional<uint64_t> ack_wanted_;
  Clock::time_point ack_due_{};
  std::set<std::string, std::less<>> prepared_topics_;
  bool failed_ = false;
  int exit_code_ = 0;
  std::string failure_;
  PipelineStats stats_;
  metrics::HostMetrics metrics_;
  std::string last_topic_;
  metrics::TopicCounters* last_counters_ = nullptr;
  size_t confirmed_unacked_ = 0;  // records confirmed since the last successful ack
  int64_t outcome_now_ms_ = 0;    // the wall clock when the outcomes being handled were taken
  // Parking (on_permanent_failure=park, never in a dry run): the records set aside, in the
  // order they failed, with their error and reason, and the backoff of a park the source could
  // not do yet.
  struct SetAside {
    uint64_t position;
    std::string error;
    ParkReason reason;
  };
  bool park_ = false;
  bool dead_letters_ = false;  // park_ with a dead-letter topic
  std::deque<SetAside> set_aside_;
  sdk::Backoff park_backoff_;
  Clock::time_point park_due_{};
  // When the sink last reported an outcome (or the window was last empty), and when the host
  // may next warn that it has not reported for long.
  Clock::time_point last_outcome_at_ = Clock::now();
  Clock::time_point next_silence_warning_{};
};

}  // namespace pg2kafka::runtime
