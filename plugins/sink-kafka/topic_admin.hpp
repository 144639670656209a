// Checking and creating the kafka sink's topics: whether a topic exists (a metadata request,
// which never auto-creates it: the producer sets allow.auto.create.topics=false), creating a
// missing one through the admin API when create_topics is on, reading a topic's
// max.message.bytes, and the kafka-topics.sh / kafka-configs.sh commands that the sink's
// messages suggest for doing these by hand.
#pragma once

#include <pg2kafka/sdk/plugin.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "rdkafka_client.hpp"
#include "sink_config.hpp"

namespace pg2kafka::kafka {

// A topic that check_topic found (or created) on the cluster: ready to produce to.
class CheckedTopic {
 public:
  CheckedTopic() = default;
  CheckedTopic(rdk::TopicPtr handle, rdk::QueuePtr config_answer)
      : handle_(std::move(handle)), config_answer_(std::move(config_answer)) {}

  // The producer's handle on the topic (null for a default-constructed one).
  rd_kafka_topic_t* handle() const { return handle_.get(); }

  // The topic's effective max.message.bytes (the largest record batch the broker accepts for
  // it), or nothing when it cannot be read (no DESCRIBE_CONFIGS permission, no answer in time).
  // It was asked for when the topic was checked and is only needed to explain a refusal, so the
  // first call waits at most `timeout` for the answer; later calls return the same at once.
  std::optional<int64_t> max_message_bytes(std::chrono::milliseconds timeout);

 private:
  rdk::TopicPtr handle_;
  rdk::QueuePtr config_answer_;  // until max_message_bytes() read it
  std::optional<int64_t> max_message_bytes_;
};

// Makes sure topic `name` exists on the cluster `producer` talks to. A missing topic is created
// with config.topic_partitions and config.topic_replication_factor when config.create_topics is
// on (logged through `host`), and waited for until every partition has a leader. Each request
// waits at most config.request_timeout(). Also asks, without waiting, for the topic's config
// (see CheckedTopic::max_message_bytes).
//
// Throws
//   sdk::FatalError   the name is not a valid topic name; the topic is missing and create_topics
//                     is off (the message holds create_topic_command()); the principal may not
//                     describe or create the topic; the creation failed for a lasting reason;
//   sdk::ConfigError  the broker refused the partition count or replication factor (or a
//                     creation policy refused the topic);
//   sdk::RetryError   no answer in time, a transient cluster error, a created topic that has no
//                     leader yet.
CheckedTopic check_topic(rd_kafka_t* producer, const SinkConfig& config, const sdk::Host& host,
                         const std::string& name);

// " --partitions N --replication-factor M" as kafka-topics.sh takes them, each only when
// configured (not -1, the broker's default): empty for the defaults.
std::string topic_settings_arguments(const SinkConfig& config);

// The shell command that creates topic `name` as create_topics would, against the first bootstrap
// server: kafka-topics.sh --bootstrap-server B --create --topic 'name' [settings].
std::string create_topic_command(const SinkConfig& config, std::string_view name);

// The shell command that raises topic `name`'s max.message.bytes, with a "<bytes>" placeholder:
// kafka-configs.sh --bootstrap-server B --alter --entity-type topics --entity-name 'name'
// --add-config max.message.bytes=<bytes>.
std::string raise_max_message_bytes_command(const SinkConfig& config, std::string_view name);

// `s` quoted for a POSIX shell: in single quotes, a single quote written as '\''.
std::string shell_quote(std::string_view s);

}  // namespace pg2kafka::kafka
