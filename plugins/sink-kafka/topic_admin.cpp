#include "topic_admin.hpp"

#include <thread>

#include "kafka_errors.hpp"

namespace pg2kafka::kafka {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

void create_topic(rd_kafka_t* rk, rd_kafka_topic_t* handle, const SinkConfig& config,
                  const sdk::Host& host, const std::string& name) {
  std::string message;
  auto err = rdk::create_topic(rk, name, static_cast<int>(config.topic_partitions),
                               static_cast<int>(config.topic_replication_factor),
                               config.request_timeout(), message);
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    host.info("created Kafka topic '" + name + "'" + topic_settings_arguments(config));
  } else if (err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
    std::string what = "cannot create Kafka topic '" + name + "': " + message;
    switch (create_topic_status(err)) {
      case P2K_INVALID_CONFIG:
        throw sdk::ConfigError(what + ". Check topic_partitions and topic_replication_factor");
      case P2K_RETRY:
        throw sdk::RetryError(what);
      default:
        if (is_authorization_error(err))
          what +=
              ". Grant the producer's principal CREATE on the topic (or the cluster), or create "
              "the topic yourself";
        throw sdk::FatalError(what);
    }
  }
  // A new topic is usable once every partition has a leader.
  auto deadline = Clock::now() + config.request_timeout();
  while (true) {
    auto md = rdk::topic_metadata(rk, handle, config.request_timeout());
    if (!md.request_error && !md.topic_error && md.all_partitions_have_leader) return;
    if (Clock::now() >= deadline)
      throw sdk::RetryError("Kafka topic '" + name + "' was created but has no leader yet");
    std::this_thread::sleep_for(milliseconds(50));
  }
}

}  // namespace

std::optional<int64_t> CheckedTopic::max_message_bytes(milliseconds timeout) {
  if (config_answer_) {
    max_message_bytes_ = rdk::topic_max_message_bytes(config_answer_.get(), timeout);
    config_answer_.reset();
  }
  return max_message_bytes_;
}

CheckedTopic check_topic(rd_kafka_t* rk, const SinkConfig& config, const sdk::Host& host,
                         const std::string& name) {
  rdk::TopicPtr handle(rd_kafka_topic_new(rk, name.c_str(), nullptr));
  if (!handle)
    throw sdk::FatalError(
        "'" + name + "' is not a usable Kafka topic name: " + error_text(rd_kafka_last_error()));
  auto md = rdk::topic_metadata(rk, handle.get(), config.request_timeout());
  if (md.request_error)
    throw sdk::RetryError("cannot check Kafka topic '" + name +
                          "': " + error_text(md.request_error));
  switch (topic_state(md.topic_error)) {
    case TopicState::kExists:
      break;
    case TopicState::kMissing:
      if (!config.create_topics)
        throw sdk::FatalError("Kafka topic '" + name +
                              "' does not exist (and topic creation is off). Create it, e.g. " +
                              create_topic_command(config, name) +
                              ", or set the kafka sink's option create_topics to true");
      create_topic(rk, handle.get(), config, host, name);
      break;
    case TopicState::kUnauthorized:
      throw sdk::FatalError("not authorized to use Kafka topic '" + name +
                            "': grant the producer's principal DESCRIBE and WRITE on it");
    case TopicState::kInvalidName:
      throw sdk::FatalError("'" + name + "' is not a valid Kafka topic name");
    case TopicState::kUnanswered:
      throw sdk::RetryError("cannot check Kafka topic '" + name +
                            "': " + error_text(md.topic_error));
  }
  // Only for a precise message should a record ever be too large; a principal without
  // DESCRIBE_CONFIGS simply gets a less precise one. Nobody waits for the answer now.
  auto config_answer = rdk::request_topic_config(rk, name, config.request_timeout());
  return CheckedTopic(std::move(handle), std::move(config_answer));
}

std::string topic_settings_arguments(const SinkConfig& config) {
  std::string out;
  if (config.topic_partitions > 0)
    out += " --partitions " + std::to_string(config.topic_partitions);
  if (config.topic_replication_factor > 0)
    out += " --replication-factor " + std::to_string(config.topic_replication_factor);
  return out;
}

std::string create_topic_command(const SinkConfig& config, std::string_view name) {
  return "kafka-topics.sh --bootstrap-server " + config.bootstrap_servers.front() +
         " --create --topic " + shell_quote(name) + topic_settings_arguments(config);
}

std::string raise_max_message_bytes_command(const SinkConfig& config, std::string_view name) {
  return "kafka-configs.sh --bootstrap-server " + config.bootstrap_servers.front() +
         " --alter --entity-type topics --entity-name " + shell_quote(name) +
         " --add-config max.message.bytes=<bytes>";
}

std::string shell_quote(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

}  // namespace pg2kafka::kafka
