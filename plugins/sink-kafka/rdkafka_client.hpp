// A thin C++ layer over librdkafka's C API for the kafka sink: owning handles, and the few
// cluster requests the sink makes besides producing (metadata, topic creation, topic configs).
// Nothing here knows about pg2kafka's records or statuses.
#pragma once

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace pg2kafka::kafka::rdk {

struct ConfDeleter {
  void operator()(rd_kafka_conf_t* p) const { rd_kafka_conf_destroy(p); }
};
struct HandleDeleter {
  void operator()(rd_kafka_t* p) const { rd_kafka_destroy(p); }
};
struct TopicDeleter {
  void operator()(rd_kafka_topic_t* p) const { rd_kafka_topic_destroy(p); }
};
struct QueueDeleter {
  void operator()(rd_kafka_queue_t* p) const { rd_kafka_queue_destroy(p); }
};
struct HeadersDeleter {
  void operator()(rd_kafka_headers_t* p) const { rd_kafka_headers_destroy(p); }
};

using ConfPtr = std::unique_ptr<rd_kafka_conf_t, ConfDeleter>;
using HandlePtr = std::unique_ptr<rd_kafka_t, HandleDeleter>;
using TopicPtr = std::unique_ptr<rd_kafka_topic_t, TopicDeleter>;
using HeadersPtr = std::unique_ptr<rd_kafka_headers_t, HeadersDeleter>;
using QueuePtr = std::unique_ptr<rd_kafka_queue_t, QueueDeleter>;

// `t` as the int milliseconds librdkafka's timeouts take, clamped to 0..INT32_MAX (librdkafka
// reads a negative timeout as "wait forever").
int to_ms(std::chrono::milliseconds t);

// Creates a producer from `conf`. librdkafka takes the configuration only on success; this
// function consumes it in both cases. Throws std::runtime_error with librdkafka's reason.
HandlePtr new_producer(ConfPtr conf);

// What a metadata request says about one topic.
struct TopicMetadata {
  rd_kafka_resp_err_t request_error = RD_KAFKA_RESP_ERR_NO_ERROR;  // the request itself failed
  rd_kafka_resp_err_t topic_error = RD_KAFKA_RESP_ERR_NO_ERROR;    // e.g. UNKNOWN_TOPIC_OR_PART
  int partition_count = 0;
  bool all_partitions_have_leader = false;
};

// Asks the cluster about `topic` (one request, waiting at most `timeout`).
TopicMetadata topic_metadata(rd_kafka_t* rk, rd_kafka_topic_t* topic,
                             std::chrono::milliseconds timeout);

// Asks for the broker list only: proves that the cluster answers. Returns the request's error
// and, on success, the number of brokers.
rd_kafka_resp_err_t cluster_metadata(rd_kafka_t* rk, std::chrono::milliseconds timeout,
                                     int& broker_count);

// Creates a topic through the admin API (partitions and replication factor -1 mean the
// broker's defaults). Returns the topic's error (TOPIC_ALREADY_EXISTS included) and a message.
rd_kafka_resp_err_t create_topic(rd_kafka_t* rk, const std::string& name, int partitions,
                                 int replication_factor, std::chrono::milliseconds timeout,
                                 std::string& message);

// Asks for the topic's configuration without waiting: the answer arrives on the returned queue.
QueuePtr request_topic_config(rd_kafka_t* rk, const std::string& name,
                              std::chrono::milliseconds timeout);

// The topic's effective max.message.bytes (the largest record batch the broker accepts for it)
// from the answer to request_topic_config, waiting at most `timeout` for it; nothing when it
// cannot be read (no answer, no DESCRIBE_CONFIGS permission, a cluster without the API).
std::optional<int64_t> topic_max_message_bytes(rd_kafka_queue_t* answer,
                                               std::chrono::milliseconds timeout);

}  // namespace pg2kafka::kafka::rdk
