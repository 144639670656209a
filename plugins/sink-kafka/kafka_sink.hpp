// The kafka sink: a librdkafka producer behind pg2kafka's sink contract (see plugin.h). This file
// and kafka_sink.cpp are the delivery side: opening the producer, writing records, serving
// delivery reports and reporting each record's outcome. Topics are checked and created by
// topic_admin, librdkafka's error codes are sorted by kafka_errors, the options are parsed by
// sink_config.
//
// Delivery semantics
//   - write() enqueues copies of the records (RD_KAFKA_MSG_F_COPY) and returns; each record is
//     reported exactly once, from its delivery report: OK when the broker has persisted it
//     (acks=all by default), RETRY for a transient failure, FATAL for one that no retry can fix
//     (record_status() in kafka_errors.hpp decides which).
//   - Outcomes are reported as they happen; the host keeps the per-key order after a RETRY (ABI
//     1.1: it writes later records of the key again behind the failed one, and consumers drop the
//     duplicates by the "pg2kafka.id" header).
//   - flush() is a barrier: it returns true only when every record written so far is reported.
//   - close() (and the destructor) purge what is still queued and report it RETRY.
//
// Metrics and health (ABI 1.3): metrics() writes librdkafka's statistics (kafka_stats.hpp) and the
// sink's delivery errors; health() says whether a broker is reachable (sink_health.hpp). Both run
// on the host's HTTP thread and read only data under locks of their own, never client_mutex_.
//
// Threading: the operations are called from the host's pipeline thread. librdkafka's callbacks
// (delivery reports, errors, statistics) are served by rd_kafka_poll: on that thread inside
// write, poll and flush, and while nothing is in flight (the host then calls no sink operation
// at all, so nobody else would serve the errors and statistics that health and metrics need) by
// the sink's service thread, which also sends a metadata request now and then while no broker is
// reachable. client_mutex_ is held around every use of the producer by either thread, so the
// bookkeeping (slots, topics, last errors) is only ever touched by one thread at a time; the
// service thread only tries the lock and never polls while a record is in flight, so delivery
// reports are served on the pipeline thread alone. The librdkafka log callback runs on
// librdkafka's own threads.
#pragma once

#include <pg2kafka/sdk/plugin.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "kafka_stats.hpp"
#include "rdkafka_client.hpp"
#include "sink_config.hpp"
#include "sink_health.hpp"
#include "topic_admin.hpp"

namespace pg2kafka::kafka {

class KafkaSink final : public sdk::Sink {
 public:
  // Parses and validates the options (sdk::ConfigError on a problem). No I/O.
  KafkaSink(sdk::Host host, const sdk::Options& options);
  KafkaSink(sdk::Host host, SinkConfig config);
  ~KafkaSink() override;
  KafkaSink(const KafkaSink&) = delete;
  KafkaSink& operator=(const KafkaSink&) = delete;

  // Creates the producer and checks that the cluster answers (sdk::RetryError when it does not
  // within request_timeout; sdk::ConfigError when authentication or TLS fails).
  void open() override;
  // Checks that `topic` exists, or creates it when create_topics is on (check_topic() in
  // topic_admin.hpp, which lists what it throws). The answer is cached.
  void prepare_topic(std::string_view topic) override;
  // Checks every record's topic first (as prepare_topic; a failure fails the whole call before
  // anything is enqueued), then enqueues the records in order. A full local queue is waited out
  // for request_timeout while delivery reports are served. When a record cannot be enqueued and
  // none before it was, the call throws (RetryError or FatalError) and nothing is reported;
  // otherwise the records before it stay on their way, and it and the rest are reported here.
  void write(std::span<const p2k_record> records) override;
  void poll(std::chrono::milliseconds timeout) override;
  bool flush(std::chrono::milliseconds timeout) override;
  void close() override;
  // From the host's HTTP thread (any thread), at any time: never blocks on the producer.
  void metrics(sdk::MetricWriter& out) override;
  sdk::Health health() override;

  const SinkConfig& config() const { return config_; }
  // Records written and not yet reported.
  size_t in_flight() const { return in_flight_; }

 private:
  struct Topic {
    std::string name;
    CheckedTopic checked;
    bool recheck = false;  // a delivery report said the topic is unknown: check it again
  };
  // One in-flight message; its index is the message's opaque.
  struct Slot {
    uint64_t position = 0;
    bool in_use = false;
  };
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  void open_locked();
  static void on_delivery(rd_kafka_t* rk, const rd_kafka_message_t* message, void* opaque);
  static void on_error(rd_kafka_t* rk, int err, const char* reason, void* opaque);
  static void on_log(const rd_kafka_t* rk, int level, const char* facility, const char* text);
  static int on_statistics(rd_kafka_t* rk, char* json, size_t json_len, void* opaque);
  void statistics_received(std::string_view json);

  // The service thread (see "Threading"): started by a successful open, stopped by shut_down.
  void start_service();
  void stop_service();
  void serve(rd_kafka_t* rk);

  // The checked topic `name`: from the cache, or checked now (and cached) when it was never
  // checked or a delivery report asked for a recheck.
  Topic& topic(std::string_view name);
  // The cached topic `name`, which topic() returned before: no check, no lookup failure.
  Topic& cached_topic(std::string_view name);
  void delivered(const rd_kafka_message_t& message);
  // Record `index` of `records` could not be enqueued (`status`, `message`): throws when it is
  // the first of the call, reports it and the records after it otherwise (see write()). With
  // `record_only` (the failure is the record's own, e.g. too large) it is always reported.
  void failed_before_send(std::span<const p2k_record> records, size_t index, p2k_status status,
                          const std::string& message, bool record_only = false);
  std::string too_large_message(const rd_kafka_message_t& message, std::string_view id,
                                const std::string& topic_name);
  std::string fatal_reason() const;
  uint32_t acquire_slot(uint64_t position);
  void release_slot(uint32_t index);
  // close() and the destructor; takes client_mutex_.
  void shut_down();
  void shut_down_locked();

  sdk::Host host_;
  SinkConfig config_;
  // Held around every use of producer_ and of the bookkeeping below (see "Threading").
  std::mutex client_mutex_;
  rdk::HandlePtr producer_;
  std::unordered_map<std::string, Topic, StringHash, std::equal_to<>> topics_;
  Topic* last_topic_ = nullptr;

  std::vector<Slot> slots_;
  std::vector<uint32_t> free_slots_;
  size_t in_flight_ = 0;

  std::optional<std::string> fatal_;  // set once librdkafka raised a fatal error
  rd_kafka_resp_err_t last_error_ = RD_KAFKA_RESP_ERR_NO_ERROR;
  std::string last_error_text_;
  bool statistics_warned_ = false;  // a statistics text could not be read (warned once)

  // For metrics() and health(): thread-safe, with locks of their own.
  SinkHealth health_;
  StatisticsMetrics statistics_;
  sdk::CounterFamily delivery_errors_{
      "delivery_errors_total",
      "Messages that librdkafka could not enqueue or that Kafka did not confirm, by librdkafka's "
      "error name; each one was reported for a retry (or, for a permanent error, stopped the "
      "pipeline).",
      {"error"}};

  std::thread service_;
  std::mutex service_mutex_;
  std::condition_variable service_wake_;
  bool service_stop_ = false;  // under service_mutex_
};

}  // namespace pg2kafka::kafka
