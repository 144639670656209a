// Whether the kafka sink can deliver now, for the host's /readyz (plugin.h, p2k_sink_ops.health):
// a small state machine fed with what the sink learns about its brokers, read by the host's HTTP
// thread. Thread-safe: every member may be called from any thread; none blocks.
//
// What it is told, and by whom (kafka_sink.cpp):
//   - opening, opened, open_failed, closed: the sink's life (open and close);
//   - broker_error: librdkafka's error callback (a broker unreachable, every broker down, an
//     authentication or TLS failure);
//   - fatal: the producer failed fatally (the pipeline stops);
//   - brokers_seen: the broker states of each statistics emission (when statistics are on);
//   - reachable: a broker answered (a delivery confirmed, a metadata probe answered).
//
// The rules:
//   - not ready before the first successful open ("not connected yet"), after a failed open (its
//     reason, also while open is tried again), after close, and for good once the producer
//     failed fatally;
//   - not ready at once when authentication or TLS failed, until a broker answers again;
//   - not ready when no broker has been reachable for kDownGrace: "down" starts with a failed
//     connection (_TRANSPORT, _RESOLVE), librdkafka's "all brokers down" error or a statistics
//     emission in which no broker is UP, and ends with a statistics emission in which one is, a
//     confirmed delivery or an answered probe. The grace keeps a reconnection (a broker closing
//     an idle connection, a rolling restart of one broker of several) from flapping the
//     readiness.
// While down is suspected, probe_wanted() asks the sink to send a metadata request (about once a
// second): when another broker is up it answers well within the grace; without statistics
// (statistics_interval 0) and without deliveries (the pipeline is idle) it is the only way to
// learn that the cluster is back.
#pragma once

#include <pg2kafka/sdk/metrics.hpp>

#include <librdkafka/rdkafka.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <string>

namespace pg2kafka::kafka {

class SinkHealth {
 public:
  using Clock = std::chrono::steady_clock;
  // How long no broker may be reachable before the sink says it is not ready.
  static constexpr std::chrono::seconds kDownGrace{3};

  // `bootstrap` names the brokers in messages (SinkConfig::bootstrap_list()).
  explicit SinkHealth(std::string bootstrap) : bootstrap_(std::move(bootstrap)) {}

  void opening();
  void opened();
  // Open failed; `message` says why (the error open throws). `unreachable`: no broker answered
  // (the message then gets the fix appended).
  void open_failed(const std::string& message, bool unreachable);
  void closed();
  // An error from librdkafka's error callback (not _FATAL: see fatal()).
  void broker_error(rd_kafka_resp_err_t err, const std::string& reason, Clock::time_point now);
  void fatal(std::string message);
  // From a statistics emission: whether any broker is UP, and how many of the brokers learned
  // from the cluster's metadata are (up of total).
  void brokers_seen(bool any_up, int up, int total, Clock::time_point now);
  // A broker answered: a delivery was confirmed, a probe answered. Cheap when nothing is wrong
  // (one atomic load): called for every confirmed delivery.
  void reachable() {
    if (suspect_.load(std::memory_order_relaxed)) mark_reachable();
  }

  // Whether the sink should ask the cluster for metadata to learn whether it is back.
  bool probe_wanted() const { return suspect_.load(std::memory_order_relaxed); }

  sdk::Health health(Clock::time_point now) const;

 private:
  enum class Phase { kNotOpened, kOpening, kOpenFailed, kOpen, kClosed };
  void mark_reachable();
  void update_suspect();

  const std::string bootstrap_;
  mutable std::mutex mutex_;
  Phase phase_ = Phase::kNotOpened;
  std::string open_error_;
  std::optional<std::string> fatal_;
  std::optional<std::string> auth_error_;
  std::optional<Clock::time_point> down_since_;
  std::string last_reason_;  // the last connection error librdkafka reported (names the broker)
  // From the last statistics emission: learned brokers up and known (total < 0: none yet).
  int brokers_up_ = 0, brokers_total_ = -1;
  // down_since_ or auth_error_ set while open: read without the lock by reachable().
  std::atomic<bool> suspect_{false};
};

}  // namespace pg2kafka::kafka
