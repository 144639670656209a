// Checking topics and the commands the kafka sink suggests (topic_admin.hpp): the commands are
// pure functions; check_topic runs against librdkafka's in-process mock cluster. No broker.
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <cstdio>
#include <string>

#include "sink_test_util.hpp"
#include "topic_admin.hpp"

namespace {

using namespace pg2kafka::kafka;
using p2k_test::kafka::FakeHost;
using p2k_test::kafka::options;
using std::chrono::milliseconds;

SinkConfig config(const std::string& partitions, const std::string& replication_factor) {
  return parse_config(options({{"bootstrap_servers", "broker-1:9092,broker-2:9092"},
                               {"topic_partitions", partitions},
                               {"topic_replication_factor", replication_factor}}));
}

// What a POSIX shell makes of `word`.
std::string through_the_shell(const std::string& word) {
  FILE* out = popen(("printf %s " + word).c_str(), "r");
  if (!out) return "<popen failed>";
  std::string text;
  char buffer[256];
  for (size_t n; (n = fread(buffer, 1, sizeof buffer, out)) > 0;) text.append(buffer, n);
  pclose(out);
  return text;
}

TEST(KafkaTopicAdmin, CreateTopicCommand_NamesTheFirstBrokerAndOnlyTheSettingsGiven) {
  EXPECT_EQ(create_topic_command(config("-1", "-1"), "pg2kafka.shop.products"),
            "kafka-topics.sh --bootstrap-server broker-1:9092 --create --topic "
            "'pg2kafka.shop.products'");
  EXPECT_EQ(create_topic_command(config("6", "3"), "t"),
            "kafka-topics.sh --bootstrap-server broker-1:9092 --create --topic 't' --partitions 6 "
            "--replication-factor 3");
  EXPECT_EQ(topic_settings_arguments(config("-1", "3")), " --replication-factor 3");
  EXPECT_EQ(topic_settings_arguments(config("4", "-1")), " --partitions 4");
  EXPECT_EQ(topic_settings_arguments(config("-1", "-1")), "");
}

TEST(KafkaTopicAdmin, RaiseMaxMessageBytesCommand_NamesTheTopicWithAPlaceholder) {
  EXPECT_EQ(raise_max_message_bytes_command(config("-1", "-1"), "big.events"),
            "kafka-configs.sh --bootstrap-server broker-1:9092 --alter --entity-type topics "
            "--entity-name 'big.events' --add-config max.message.bytes=<bytes>");
}

TEST(KafkaTopicAdmin, ShellQuote_ReachesTheCommandUnchanged) {
  EXPECT_EQ(shell_quote("it's"), "'it'\\''s'");
  for (std::string word :
       {"plain.topic", "", "it's", "''", "a b", "$(echo injected) `id` $HOME \\ \" *"})
    EXPECT_EQ(through_the_shell(shell_quote(word)), word) << shell_quote(word);
}

TEST(KafkaTopicAdmin, UncheckedTopic_HasNoHandleAndNoLimit) {
  CheckedTopic topic;
  EXPECT_EQ(topic.handle(), nullptr);
  EXPECT_FALSE(topic.max_message_bytes(milliseconds(0)));
}

// A producer for `values` whose cluster is librdkafka's mock cluster (test.mock.num.brokers).
class MockProducer {
 public:
  explicit MockProducer(std::map<std::string, std::string> values = {}) {
    values.emplace("bootstrap_servers", "127.0.0.1:9");  // replaced by the mock cluster's
    values.emplace("request_timeout", "5000");
    values.emplace("rdkafka.test.mock.num.brokers", "1");
    config_ = parse_config(options(values));
    producer_ = rdk::new_producer(producer_conf(config_, [](const std::string& name, const char*) {
      throw std::runtime_error("librdkafka refused " + name);
    }));
  }
  rd_kafka_t* get() const { return producer_.get(); }
  rd_kafka_mock_cluster_t* cluster() const { return rd_kafka_handle_mock_cluster(get()); }
  const SinkConfig& config() const { return config_; }

 private:
  SinkConfig config_;
  rdk::HandlePtr producer_;
};

TEST(KafkaTopicAdmin, CheckTopic_ExistingTopic_IsReadyToProduceTo) {
  MockProducer producer;
  ASSERT_EQ(rd_kafka_mock_topic_create(producer.cluster(), "p2k-admin-exists", 2, 1),
            RD_KAFKA_RESP_ERR_NO_ERROR);
  FakeHost host;
  auto topic = check_topic(producer.get(), producer.config(), pg2kafka::sdk::Host(host.raw()),
                           "p2k-admin-exists");
  ASSERT_NE(topic.handle(), nullptr);
  EXPECT_STREQ(rd_kafka_topic_name(topic.handle()), "p2k-admin-exists");
}

TEST(KafkaTopicAdmin, CheckTopic_MissingTopicWithCreationOff_IsFatalWithTheCommand) {
  MockProducer producer;
  // The mock cluster creates any topic a metadata request names (a real broker does not, see
  // sink_broker_test): make it answer as a broker does for a missing one.
  rd_kafka_mock_topic_set_error(producer.cluster(), "p2k-admin-missing",
                                RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART);
  FakeHost host;
  try {
    check_topic(producer.get(), producer.config(), pg2kafka::sdk::Host(host.raw()),
                "p2k-admin-missing");
    FAIL() << "a missing topic was accepted";
  } catch (const pg2kafka::sdk::FatalError& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("'p2k-admin-missing' does not exist"), std::string::npos) << what;
    EXPECT_NE(what.find(create_topic_command(producer.config(), "p2k-admin-missing")),
              std::string::npos)
        << what;
    EXPECT_NE(what.find("create_topics"), std::string::npos) << what;
  }
}

TEST(KafkaTopicAdmin, CheckTopic_ErrorInTheMetadataAnswer_IsFatalOrRetryByKind) {
  MockProducer producer;
  FakeHost host;
  pg2kafka::sdk::Host h(host.raw());
  rd_kafka_mock_topic_set_error(producer.cluster(), "p2k-admin-denied",
                                RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
  EXPECT_THROW(check_topic(producer.get(), producer.config(), h, "p2k-admin-denied"),
               pg2kafka::sdk::FatalError);
  rd_kafka_mock_topic_set_error(producer.cluster(), "p2k-admin-busy",
                                RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT);
  EXPECT_THROW(check_topic(producer.get(), producer.config(), h, "p2k-admin-busy"),
               pg2kafka::sdk::RetryError);
}

}  // namespace
