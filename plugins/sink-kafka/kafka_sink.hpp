// The kafka sink: a librdkafka producer behind pg2kafka's sink contract (see plugin.h).
//
// Delivery semantics
//   - write() enqueues copies of the records (RD_KAFKA_MSG_F_COPY) and returns; each record is
//     reported exactly once, from its delivery report: OK when the broker has persisted it
//     (acks=all by default), RETRY for a transient failure, FATAL for one that no retry can fix.
//   - Outcomes are reported as they happen; the host keeps the per-key order after a RETRY (ABI
//     1.1: it writes later records of the key again behind the failed one, and consumers drop the
//     duplicates by the "pg2kafka.id" header).
//   - flush() is a barrier: it returns true only when every record written so far is reported.
//   - close() (and the destructor) purge what is still queued and report it RETRY.
//
// Threading: every method is called from the host's pipeline thread. Delivery reports are
// served by rd_kafka_poll on that same thread (inside write, poll and flush), so the sink's
// bookkeeping needs no lock; only the librdkafka log callback runs on librdkafka's threads.
#pragma once

#include <pg2kafka/sdk/plugin.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "rdkafka_client.hpp"
#include "sink_config.hpp"

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
  // Checks that `topic` exists, or creates it when create_topics is on; sdk::FatalError with the
  // command to create it otherwise. The answer is cached.
  void prepare_topic(std::string_view topic) override;
  void write(std::span<const p2k_record> records) override;
  void poll(std::chrono::milliseconds timeout) override;
  bool flush(std::chrono::milliseconds timeout) override;
  void close() override;

  const SinkConfig& config() const { return config_; }
  // Records written and not yet reported.
  size_t in_flight() const { return in_flight_; }

 private:
  struct Topic {
    std::string name;
    rdk::TopicPtr handle;
    // The topic's max.message.bytes, asked for when the topic is checked and read only when a
    // record is refused as too large (the answer waits in config_answer until then).
    rdk::QueuePtr config_answer;
    std::optional<int64_t> max_message_bytes;
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

  static void on_delivery(rd_kafka_t* rk, const rd_kafka_message_t* message, void* opaque);
  static void on_error(rd_kafka_t* rk, int err, const char* reason, void* opaque);
  static void on_log(const rd_kafka_t* rk, int level, const char* facility, const char* text);

  Topic& topic(std::string_view name);
  Topic& check_topic(const std::string& name);
  Topic& cached_topic(std::string_view name);
  void delivered(const rd_kafka_message_t& message);
  void failed_before_send(std::span<const p2k_record> records, size_t index, p2k_status status,
                          const std::string& message);
  std::string too_large_message(const rd_kafka_message_t& message, std::string_view id,
                                const std::string& topic_name);
  std::string fatal_reason() const;
  uint32_t acquire_slot(uint64_t position);
  void release_slot(uint32_t index);
  void shut_down();

  sdk::Host host_;
  SinkConfig config_;
  rdk::HandlePtr producer_;
  std::unordered_map<std::string, Topic, StringHash, std::equal_to<>> topics_;
  Topic* last_topic_ = nullptr;

  std::vector<Slot> slots_;
  std::vector<uint32_t> free_slots_;
  size_t in_flight_ = 0;

  std::optional<std::string> fatal_;  // set once librdkafka raised a fatal error
  rd_kafka_resp_err_t last_error_ = RD_KAFKA_RESP_ERR_NO_ERROR;
  std::string last_error_text_;
};

}  // namespace pg2kafka::kafka
