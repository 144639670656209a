// The kafka sink's options and descriptor: no broker needed (one test opens against a closed
// loopback port).
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "kafka_sink.hpp"
#include "sink_config.hpp"
#include "sink_test_util.hpp"
#include "test_support.hpp"

namespace {

using p2k_test::kafka::options;
using pg2kafka::kafka::parse_config;
using pg2kafka::kafka::producer_properties;

std::string config_error(const std::map<std::string, std::string>& values) {
  try {
    parse_config(options(values));
  } catch (const pg2kafka::sdk::ConfigError& e) {
    return e.what();
  }
  return "";
}

std::string property(const pg2kafka::kafka::SinkConfig& c, const std::string& name) {
  for (const auto& [k, v] : producer_properties(c))
    if (k == name) return v;
  return "<unset>";
}

TEST(KafkaSinkConfig, BootstrapServers_AcceptsListAndKafkaUrlForm) {
  auto c = parse_config(options({{"bootstrap_servers", "kafka://127.0.0.1:9092,broker-2:9093/"}}));
  ASSERT_EQ(c.bootstrap_servers.size(), 2u);
  EXPECT_EQ(c.bootstrap_servers[0], "127.0.0.1:9092");
  EXPECT_EQ(c.bootstrap_servers[1], "broker-2:9093");
  EXPECT_EQ(property(c, "bootstrap.servers"), "127.0.0.1:9092,broker-2:9093");
}

TEST(KafkaSinkConfig, BootstrapServers_MalformedOrMissing_IsConfigError) {
  EXPECT_NE(config_error({{"bootstrap_servers", "localhost"}}).find("host:port"),
            std::string::npos);
  EXPECT_NE(config_error({{"bootstrap_servers", "kafka://h:notaport"}}).find("invalid port"),
            std::string::npos);
  EXPECT_NE(config_error({}).find("bootstrap_servers' is required"), std::string::npos);
}

TEST(KafkaSinkConfig, Defaults_AreSafeAndFast) {
  auto c = parse_config(options({{"bootstrap_servers", "127.0.0.1:9092"}}));
  EXPECT_EQ(property(c, "acks"), "all");
  EXPECT_EQ(property(c, "enable.idempotence"), "true");
  EXPECT_EQ(property(c, "partitioner"), "murmur2_random");
  EXPECT_EQ(property(c, "compression.codec"), "lz4");
  EXPECT_EQ(property(c, "socket.nagle.disable"), "true");
  EXPECT_EQ(property(c, "allow.auto.create.topics"), "false");
  EXPECT_EQ(property(c, "linger.ms"), "1");
}

TEST(KafkaSinkConfig, AcksOneWithIdempotence_IsConfigErrorNamingBoth) {
  auto e = config_error({{"bootstrap_servers", "h:1"}, {"acks", "1"}});
  EXPECT_NE(e.find("acks"), std::string::npos) << e;
  EXPECT_NE(e.find("enable_idempotence"), std::string::npos) << e;
  EXPECT_EQ(
      config_error({{"bootstrap_servers", "h:1"}, {"acks", "1"}, {"enable_idempotence", "false"}}),
      "");
}

TEST(KafkaSinkConfig, Passthrough_KeysThatLoadCodeOrBreakDelivery_AreRefused) {
  for (const char* key :
       {"rdkafka.plugin.library.paths", "rdkafka.ssl.engine.location",
        "rdkafka.delivery.report.only.error", "rdkafka.transactional.id", "rdkafka.acks",
        "rdkafka.enable.idempotence", "rdkafka.some.interceptor.thing"}) {
    auto e = config_error({{"bootstrap_servers", "h:1"}, {key, "x"}});
    EXPECT_NE(e.find(std::string("'") + key + "' is not allowed"), std::string::npos)
        << key << ": " << e;
  }
}

TEST(KafkaSinkConfig, Passthrough_IsHandedToLibrdkafkaAndOverridesNagle) {
  auto c = parse_config(options({{"bootstrap_servers", "h:1"},
                                 {"rdkafka.socket.nagle.disable", "false"},
                                 {"rdkafka.security.protocol", "SASL_SSL"},
                                 {"rdkafka.sasl.mechanism", "SCRAM-SHA-512"}}));
  EXPECT_EQ(property(c, "socket.nagle.disable"), "false");
  EXPECT_EQ(property(c, "security.protocol"), "SASL_SSL");
}

TEST(KafkaSinkConfig, Passthrough_UnknownOrInvalid_IsConfigErrorWithoutSecretValues) {
  auto unknown = config_error({{"bootstrap_servers", "h:1"}, {"rdkafka.no.such.thing", "1"}});
  EXPECT_NE(unknown.find("rdkafka.no.such.thing"), std::string::npos) << unknown;
  auto bad = config_error({{"bootstrap_servers", "h:1"}, {"rdkafka.linger.ms.typo", "1"}});
  EXPECT_FALSE(bad.empty());
  // A secret's value never appears in an error.
  auto secret =
      config_error({{"bootstrap_servers", "h:1"}, {"rdkafka.sasl.password.typo", "hunter2"}});
  EXPECT_EQ(secret.find("hunter2"), std::string::npos) << secret;
  EXPECT_TRUE(pg2kafka::kafka::is_secret_property("sasl.password"));
  EXPECT_TRUE(pg2kafka::kafka::is_secret_property("ssl.key.password"));
  EXPECT_FALSE(pg2kafka::kafka::is_secret_property("security.protocol"));
}

TEST(KafkaSinkConfig, EveryProblem_IsReportedAtOnce) {
  auto e = config_error({{"bootstrap_servers", "nope"},
                         {"acks", "1"},
                         {"rdkafka.plugin.library.paths", "/tmp/x.so"}});
  EXPECT_NE(e.find("3 problems"), std::string::npos) << e;
}

TEST(KafkaSinkConfig, JavaMurmur2_MatchesTheJavaClient) {
  // Values computed with org.apache.kafka.common.utils.Utils.murmur2 (kafka-clients 3.9.1).
  using p2k_test::kafka::java_murmur2;
  EXPECT_EQ(java_murmur2("21"), -973932308);
  EXPECT_EQ(java_murmur2("foobar"), -790332482);
  EXPECT_EQ(java_murmur2("a-little-bit-long-string"), -985981536);
  EXPECT_EQ(java_murmur2("abc"), 479470107);
  EXPECT_EQ(java_murmur2("order-7"), 323129857);
  EXPECT_EQ(java_murmur2(""), 275646681);
  EXPECT_EQ(java_murmur2("k\"\\1"), -163606151);
  EXPECT_EQ(p2k_test::kafka::java_partition("a-little-bit-long-string", 6), 2);
  EXPECT_EQ(p2k_test::kafka::java_partition("order-7", 6), 1);
}

TEST(KafkaSinkConfig, Open_UnreachableBroker_IsRetryNamingTheAddress) {
  p2k_test::kafka::FakeHost host;
  // Port 1 on loopback: nothing listens there.
  auto sink = p2k_test::kafka::make_sink(host, "127.0.0.1:1", {{"request_timeout", "1500"}});
  try {
    sink->open();
    FAIL() << "open succeeded";
  } catch (const pg2kafka::sdk::RetryError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot reach Kafka at 127.0.0.1:1"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(sink->in_flight(), 0u);
}

// ---- the built plugin, through its C entry point ----

class KafkaPluginSo : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string path = p2k_test::ctest_env("P2K_PLUGIN_DIR") + "/pg2kafka-sink-kafka.so";
    lib_ = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    ASSERT_NE(lib_, nullptr) << dlerror();
    auto entry = reinterpret_cast<p2k_plugin_entry_fn>(dlsym(lib_, P2K_PLUGIN_ENTRY_SYMBOL));
    ASSERT_NE(entry, nullptr);
    plugin_ = entry(P2K_ABI_MAJOR, P2K_ABI_MINOR);
    ASSERT_NE(plugin_, nullptr);
  }
  void TearDown() override {
    if (lib_) dlclose(lib_);
  }
  const p2k_option* find(const std::string& name) const {
    for (size_t i = 0; i < plugin_->option_count; ++i)
      if (name == plugin_->options[i].name) return &plugin_->options[i];
    return nullptr;
  }
  void* lib_ = nullptr;
  const p2k_plugin* plugin_ = nullptr;
};

TEST_F(KafkaPluginSo, Descriptor_IsAKafkaSinkWithDocumentedOptions) {
  EXPECT_EQ(plugin_->kind, P2K_KIND_SINK);
  EXPECT_STREQ(plugin_->name, "kafka");
  EXPECT_EQ(plugin_->abi_major, static_cast<uint32_t>(P2K_ABI_MAJOR));
  ASSERT_NE(plugin_->sink, nullptr);
  const p2k_option* bootstrap = find("bootstrap_servers");
  ASSERT_NE(bootstrap, nullptr);
  EXPECT_TRUE(bootstrap->flags & P2K_OPT_REQUIRED);
  ASSERT_NE(find("rdkafka."), nullptr);
  EXPECT_EQ(find("rdkafka.")->type, P2K_OPT_PREFIX);
  for (size_t i = 0; i < plugin_->option_count; ++i) {
    const char* d = plugin_->options[i].description;
    ASSERT_NE(d, nullptr);
    EXPECT_GT(std::strlen(d), 40u) << plugin_->options[i].name;
    EXPECT_EQ(d[std::strlen(d) - 1], '.') << plugin_->options[i].name;
  }
}

// The option table's defaults (user-facing text) and the sink's built-in ones must agree.
TEST_F(KafkaPluginSo, OptionDefaults_AgreeWithTheSinkDefaults) {
  pg2kafka::kafka::SinkConfig d;
  auto def = [&](const char* name) { return std::string(find(name)->default_value); };
  EXPECT_EQ(def("acks"), d.acks);
  EXPECT_EQ(def("enable_idempotence"), d.enable_idempotence ? "true" : "false");
  EXPECT_EQ(def("compression"), d.compression);
  EXPECT_EQ(def("linger"), std::to_string(d.linger_ms) + "ms");
  EXPECT_EQ(def("batch_size"), "1MB");
  EXPECT_EQ(d.batch_size, 1000000);
  EXPECT_EQ(def("batch_num_messages"), std::to_string(d.batch_num_messages));
  EXPECT_EQ(def("message_timeout"), "5m");
  EXPECT_EQ(d.message_timeout_ms, 300000);
  EXPECT_EQ(def("request_timeout"), "10s");
  EXPECT_EQ(d.request_timeout_ms, 10000);
  EXPECT_EQ(def("partitioner"), d.partitioner);
  EXPECT_EQ(def("create_topics"), d.create_topics ? "true" : "false");
  EXPECT_EQ(def("topic_partitions"), std::to_string(d.topic_partitions));
  EXPECT_EQ(def("topic_replication_factor"), std::to_string(d.topic_replication_factor));
  EXPECT_EQ(def("client_id"), d.client_id);
}

TEST_F(KafkaPluginSo, Create_WithContradictoryOptions_IsInvalidConfig) {
  p2k_test::kafka::FakeHost host;
  p2k_option_value values[] = {{"bootstrap_servers", "127.0.0.1:9092"},
                               {"acks", "1"},
                               {"rdkafka.plugin.library.paths", "/tmp/evil.so"}};
  void* instance = nullptr;
  char err[1024] = "";
  EXPECT_EQ(plugin_->sink->create(host.raw(), values, 3, &instance, err, sizeof err),
            P2K_INVALID_CONFIG);
  EXPECT_EQ(instance, nullptr);
  EXPECT_NE(std::string(err).find("plugin.library.paths"), std::string::npos) << err;
}

}  // namespace
