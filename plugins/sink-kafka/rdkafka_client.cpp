#include "rdkafka_client.hpp"

#include <algorithm>
#include <stdexcept>

namespace pg2kafka::kafka::rdk {
namespace {

struct MetadataDeleter {
  void operator()(const rd_kafka_metadata_t* p) const { rd_kafka_metadata_destroy(p); }
};
struct EventDeleter {
  void operator()(rd_kafka_event_t* p) const { rd_kafka_event_destroy(p); }
};
struct AdminOptionsDeleter {
  void operator()(rd_kafka_AdminOptions_t* p) const { rd_kafka_AdminOptions_destroy(p); }
};
using MetadataPtr = std::unique_ptr<const rd_kafka_metadata_t, MetadataDeleter>;
using EventPtr = std::unique_ptr<rd_kafka_event_t, EventDeleter>;
using AdminOptionsPtr = std::unique_ptr<rd_kafka_AdminOptions_t, AdminOptionsDeleter>;

// Runs one admin request on its own queue and waits for its result event.
EventPtr wait_result(rd_kafka_queue_t* queue, std::chrono::milliseconds timeout) {
  // The admin request times out on its own (request_timeout option); the margin covers the
  // event's way back through the queue.
  return EventPtr(rd_kafka_queue_poll(queue, to_ms(timeout) + 1000));
}

AdminOptionsPtr admin_options(rd_kafka_t* rk, rd_kafka_admin_op_t op,
                              std::chrono::milliseconds timeout) {
  AdminOptionsPtr options(rd_kafka_AdminOptions_new(rk, op));
  char errstr[256];
  rd_kafka_AdminOptions_set_request_timeout(options.get(), to_ms(timeout), errstr, sizeof errstr);
  if (op == RD_KAFKA_ADMIN_OP_CREATETOPICS)
    rd_kafka_AdminOptions_set_operation_timeout(options.get(), to_ms(timeout), errstr,
                                                sizeof errstr);
  return options;
}

}  // namespace

int to_ms(std::chrono::milliseconds t) {
  return static_cast<int>(std::clamp<int64_t>(t.count(), 0, INT32_MAX));
}

HandlePtr new_producer(ConfPtr conf) {
  char errstr[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf.get(), errstr, sizeof errstr);
  if (!rk) throw std::runtime_error(errstr);
  conf.release();  // owned by the handle now
  return HandlePtr(rk);
}

TopicMetadata topic_metadata(rd_kafka_t* rk, rd_kafka_topic_t* topic,
                             std::chrono::milliseconds timeout) {
  TopicMetadata out;
  const rd_kafka_metadata_t* raw = nullptr;
  out.request_error = rd_kafka_metadata(rk, 0, topic, &raw, to_ms(timeout));
  MetadataPtr md(raw);
  if (out.request_error) return out;
  if (md->topic_cnt < 1) {
    out.topic_error = RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
    return out;
  }
  const auto& t = md->topics[0];
  out.topic_error = t.err;
  out.partition_count = t.partition_cnt;
  out.all_partitions_have_leader = t.partition_cnt > 0;
  for (int i = 0; i < t.partition_cnt; ++i) {
    if (t.partitions[i].leader < 0) out.all_partitions_have_leader = false;
  }
  return out;
}

rd_kafka_resp_err_t cluster_metadata(rd_kafka_t* rk, std::chrono::milliseconds timeout,
                                     int& broker_count) {
  const rd_kafka_metadata_t* raw = nullptr;
  auto err = rd_kafka_metadata(rk, 0, nullptr, &raw, to_ms(timeout));
  MetadataPtr md(raw);
  broker_count = md ? md->broker_cnt : 0;
  return err;
}

rd_kafka_resp_err_t create_topic(rd_kafka_t* rk, const std::string& name, int partitions,
                                 int replication_factor, std::chrono::milliseconds timeout,
                                 std::string& message) {
  char errstr[512];
  rd_kafka_NewTopic_t* topic =
      rd_kafka_NewTopic_new(name.c_str(), partitions, replication_factor, errstr, sizeof errstr);
  if (!topic) {
    message = errstr;
    return RD_KAFKA_RESP_ERR__INVALID_ARG;
  }
  QueuePtr queue(rd_kafka_queue_new(rk));
  auto options = admin_options(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS, timeout);
  rd_kafka_CreateTopics(rk, &topic, 1, options.get(), queue.get());
  rd_kafka_NewTopic_destroy(topic);
  EventPtr event = wait_result(queue.get(), timeout);
  if (!event) {
    message = "no answer to the CreateTopics request in time";
    return RD_KAFKA_RESP_ERR__TIMED_OUT;
  }
  if (auto err = rd_kafka_event_error(event.get())) {
    message = rd_kafka_event_error_string(event.get());
    return err;
  }
  size_t count = 0;
  const rd_kafka_topic_result_t** results =
      rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(event.get()), &count);
  if (count < 1) {
    message = "the CreateTopics answer has no result";
    return RD_KAFKA_RESP_ERR__FAIL;
  }
  auto err = rd_kafka_topic_result_error(results[0]);
  const char* text = rd_kafka_topic_result_error_string(results[0]);
  message = text ? text : rd_kafka_err2str(err);
  return err;
}

QueuePtr request_topic_config(rd_kafka_t* rk, const std::string& name,
                              std::chrono::milliseconds timeout) {
  rd_kafka_ConfigResource_t* resource =
      rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, name.c_str());
  QueuePtr queue(rd_kafka_queue_new(rk));
  auto options = admin_options(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS, timeout);
  rd_kafka_DescribeConfigs(rk, &resource, 1, options.get(), queue.get());
  rd_kafka_ConfigResource_destroy(resource);
  return queue;
}

std::optional<int64_t> topic_max_message_bytes(rd_kafka_queue_t* answer,
                                               std::chrono::milliseconds timeout) {
  EventPtr event(rd_kafka_queue_poll(answer, to_ms(timeout)));
  if (!event || rd_kafka_event_error(event.get())) return std::nullopt;
  size_t count = 0;
  const rd_kafka_ConfigResource_t** resources = rd_kafka_DescribeConfigs_result_resources(
      rd_kafka_event_DescribeConfigs_result(event.get()), &count);
  if (count < 1 || rd_kafka_ConfigResource_error(resources[0])) return std::nullopt;
  size_t entries = 0;
  const rd_kafka_ConfigEntry_t** configs = rd_kafka_ConfigResource_configs(resources[0], &entries);
  for (size_t i = 0; i < entries; ++i) {
    if (std::string_view(rd_kafka_ConfigEntry_name(configs[i])) != "max.message.bytes") continue;
    const char* value = rd_kafka_ConfigEntry_value(configs[i]);
    if (!value) return std::nullopt;
    try {
      return std::stoll(value);
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }
  return std::nullopt;
}

}  // namespace pg2kafka::kafka::rdk
