// librdkafka's statistics (statistics.interval.ms, STATISTICS.md) read into the few figures the
// kafka sink exports on the host's /metrics: per broker its state, round-trip time, requests in
// flight and error counters; for the client the producer queue and what was transmitted.
//
// librdkafka hands the statistics as a JSON text to the stats callback, on the thread that calls
// rd_kafka_poll. parse_statistics() reads it (Boost.JSON) into Statistics; StatisticsMetrics keeps
// the latest one, under a lock of its own, for the host's HTTP thread to write out.
//
// Counters never go down: librdkafka's are totals since its client was created, and the sink
// creates a new client when it opens again. StatisticsMetrics adds each counter's last value of
// the previous client to what the new client counts (new_client()), and treats a value lower than
// the last one of the same client the same way.
//
// What is left out: per topic and per partition figures (a series per partition is too many for
// what they tell; the host already counts records per topic), the consumer and transaction
// sections, and the bootstrap and internal pseudo-brokers (see StatisticsMetrics::write).
#pragma once

#include <pg2kafka/sdk/metrics.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pg2kafka::kafka {

// One broker of the statistics' "brokers" object.
struct BrokerStatistics {
  std::string name;     // librdkafka's "host:port/id" ("host:port/bootstrap" for a bootstrap one)
  int64_t nodeid = -1;  // -1 for bootstrap and internal brokers
  std::string source;   // "learned", "configured" (bootstrap), "internal" or "logical"
  std::string state;    // "UP", "DOWN", "CONNECT", "INIT", ...
  int64_t outbuf_cnt = 0;    // requests waiting to be sent
  int64_t waitresp_cnt = 0;  // requests sent, waiting for their response
  uint64_t tx = 0;           // requests sent
  uint64_t txerrs = 0;
  uint64_t txretries = 0;
  uint64_t req_timeouts = 0;
  uint64_t connects = 0;
  uint64_t disconnects = 0;
  // Round-trip time over the last statistics interval, in microseconds; rtt_cnt == 0 when the
  // broker answered no request during the interval (avg and p99 are then 0).
  int64_t rtt_cnt = 0;
  int64_t rtt_avg_us = 0;
  int64_t rtt_p99_us = 0;

  bool up() const { return state == "UP"; }
  // A broker of the cluster, learned from metadata (not a bootstrap, internal or logical one).
  bool learned() const { return nodeid >= 0 && source != "internal" && source != "logical"; }
  // A connection to a real broker: a learned or a bootstrap one.
  bool real() const { return source != "internal" && source != "logical"; }
};

// The statistics of one emission.
struct Statistics {
  int64_t ts_us = 0;  // librdkafka's monotonic clock
  int64_t msg_cnt = 0;
  int64_t msg_size = 0;
  int64_t msg_max = 0;
  int64_t msg_size_max = 0;
  uint64_t txmsgs = 0;
  uint64_t txmsg_bytes = 0;
  std::vector<BrokerStatistics> brokers;

  // Brokers in state UP among the learned ones, and how many were learned.
  int learned_up() const;
  int learned_total() const;
  // Whether any real broker (learned or bootstrap) is UP.
  bool any_up() const;
};

// Reads one statistics text of librdkafka. Throws std::invalid_argument naming the problem when
// it is not JSON, not an object, or lacks what every emission has ("ts", "brokers"), or when a
// field has the wrong type. A field that is missing otherwise reads as 0 (or empty).
Statistics parse_statistics(std::string_view json);

// The latest statistics as metrics. Thread-safe: update() and new_client() from the thread that
// polls librdkafka, write() from the host's HTTP thread.
class StatisticsMetrics {
 public:
  using Clock = std::chrono::steady_clock;

  // The sink is about to create a new librdkafka client: its counters start again at 0.
  void new_client();
  // The statistics just received (at `now`).
  void update(const Statistics& statistics, Clock::time_point now);
  // Writes every figure of the latest statistics (nothing before the first one). `now` gives
  // statistics_age_seconds.
  void write(sdk::MetricWriter& out, Clock::time_point now) const;
  bool empty() const;

 private:
  struct Broker {
    std::string name;
    bool up = false;
    double requests_in_flight = 0;
    std::optional<double> rtt_avg_s, rtt_p99_s;  // of the last interval with a request
    double requests = 0, transmit_errors = 0, transmit_retries = 0, request_timeouts = 0,
           connects = 0, disconnects = 0;  // totals, counted on across clients
  };
  struct Snapshot {
    Clock::time_point received;
    double queue_messages = 0, queue_bytes = 0, queue_max_messages = 0, queue_max_bytes = 0;
    double transmitted_messages = 0, transmitted_bytes = 0;  // totals
    std::vector<Broker> brokers;
  };
  // The total of a counter of librdkafka, `key` naming it (and its broker), that is `value` now.
  double total(const std::string& key, uint64_t value);

  mutable std::mutex mutex_;
  std::optional<Snapshot> snapshot_;
  // Per counter key: what earlier clients counted, and the last value of the current one.
  std::map<std::string, uint64_t> base_;
  std::map<std::string, uint64_t> last_;
  // Per broker name: the round-trip times of its last interval with a request.
  std::map<std::string, std::pair<double, double>> last_rtt_;
};

}  // namespace pg2kafka::kafka
