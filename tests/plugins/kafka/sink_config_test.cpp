// The kafka sink's options and descriptor: no broker needed (one test opens against a closed
// loopback port).
#include <arpa/inet.h>
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

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
  EXPECT_NE(config_error({}).find("required option 'bootstrap_servers' is missing"),
            std::string::npos);
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
    EXPECT_NE(e.find(std::string("option '") + key + "': is not allowed"), std::string::npos)
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

TEST(KafkaSinkConfig, StatisticsInterval_DefaultsTo5s_ZeroTurnsThemOff_PassthroughRefused) {
  auto c = parse_config(options({{"bootstrap_servers", "h:1"}}));
  EXPECT_EQ(c.statistics_interval_ms, 5000);
  EXPECT_EQ(property(c, "statistics.interval.ms"), "5000");
  auto off = parse_config(options({{"bootstrap_servers", "h:1"}, {"statistics_interval", "0"}}));
  EXPECT_EQ(property(off, "statistics.interval.ms"), "0");
  auto e = config_error({{"bootstrap_servers", "h:1"}, {"rdkafka.statistics.interval.ms", "100"}});
  EXPECT_NE(e.find("use the option 'statistics_interval' instead"), std::string::npos) << e;
}

// A loopback port where nothing listens: bound, then closed.
int closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  ::close(fd);
  return ntohs(addr.sin_port);
}

TEST(KafkaSinkConfig, Health_NoListenerOnThePort_IsNotReadyNamingTheBrokerAndTheFix) {
  p2k_test::kafka::FakeHost host;
  std::string broker = "127.0.0.1:" + std::to_string(closed_port());
  auto sink = p2k_test::kafka::make_sink(host, broker, {{"request_timeout", "1500"}});
  auto before = sink->health();
  EXPECT_FALSE(before.ready);
  EXPECT_NE(before.message.find("not connected yet"), std::string::npos) << before.message;
  EXPECT_THROW(sink->open(), pg2kafka::sdk::RetryError);
  auto after = sink->health();
  EXPECT_FALSE(after.ready);
  EXPECT_NE(after.message.find("cannot reach Kafka at " + broker), std::string::npos)
      << after.message;
  EXPECT_NE(after.message.find("Connection refused"), std::string::npos) << after.message;
  EXPECT_NE(after.message.find("check that the brokers run and that bootstrap_servers"),
            std::string::npos)
      << after.message;
  EXPECT_LE(after.message.size(), 255u) << "fits the host's buffer: " << after.message;
  // No statistics without a producer.
  EXPECT_TRUE(p2k_test::kafka::scrape(*sink).samples.empty());
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
  ASSERT_NE(find("statistics_interval"), nullptr);
  EXPECT_EQ(find("statistics_interval")->type, P2K_OPT_DURATION);
  EXPECT_STREQ(find("statistics_interval")->default_value, "5s");
  // ABI 1.3: metrics for /metrics, health for /readyz.
  EXPECT_EQ(plugin_->abi_minor, uint32_t{P2K_ABI_MINOR});
  EXPECT_NE(plugin_->sink->metrics, nullptr);
  EXPECT_NE(plugin_->sink->health, nullptr);
  for (size_t i = 0; i < plugin_->option_count; ++i) {
    const char* d = plugin_->options[i].description;
    ASSERT_NE(d, nullptr);
    EXPECT_GT(std::strlen(d), 40u) << plugin_->options[i].name;
    EXPECT_EQ(d[std::strlen(d) - 1], '.') << plugin_->options[i].name;
  }
}

// Secrets by declaration: every librdkafka property that holds a secret is an option of its own,
// flagged P2K_OPT_IS_SECRET, so the host never prints it; the sink hides the same keys in its own
// errors (is_secret_property reads the same table).
TEST_F(KafkaPluginSo, DeclaresEveryLibrdkafkaSecret) {
  for (const char* name :
       {"sasl.password", "sasl.oauthbearer.client.secret", "sasl.oauthbearer.config",
        "ssl.key.password", "ssl.key.pem", "ssl.keystore.password"}) {
    const p2k_option* o = find(std::string("rdkafka.") + name);
    ASSERT_NE(o, nullptr) << name;
    EXPECT_TRUE(o->flags & P2K_OPT_IS_SECRET) << name;
    EXPECT_TRUE(pg2kafka::kafka::is_secret_property(name)) << name;
  }
  EXPECT_FALSE(pg2kafka::kafka::is_secret_property("sasl.username"));
  EXPECT_GE(plugin_->abi_minor, 1u) << "the secret flag needs ABI 1.1";
}

TEST_F(KafkaPluginSo, Create_WithContradictoryOptions_IsInvalidConfig_NamingEachOption) {
  auto values = p2k_test::kafka::resolved({{"bootstrap_servers", "127.0.0.1:9092"},
                                           {"acks", "1"},
                                           {"rdkafka.plugin.library.paths", "/tmp/evil.so"}});
  auto raw = values.c_values();
  // A host of ABI 1.1 takes the problems one by one, with their options.
  struct Problems {
    std::vector<std::pair<std::string, std::string>> items;
  } problems;
  p2k_host host{};
  host.struct_size = sizeof host;
  host.abi_major = P2K_ABI_MAJOR;
  host.abi_minor = P2K_ABI_MINOR;
  host.ctx = &problems;
  host.report = [](void*, uint64_t, p2k_status, const char*) {};
  host.option_error = [](void* ctx, const char* key, const char* message) {
    static_cast<Problems*>(ctx)->items.emplace_back(key ? key : "", message);
  };
  void* instance = nullptr;
  char err[1024] = "";
  EXPECT_EQ(plugin_->sink->create(&host, raw.data(), raw.size(), &instance, err, sizeof err),
            P2K_INVALID_CONFIG);
  EXPECT_EQ(instance, nullptr);
  EXPECT_NE(std::string(err).find("plugin.library.paths"), std::string::npos) << err;
  ASSERT_EQ(problems.items.size(), 2u) << err;
  EXPECT_EQ(problems.items[0].first, "acks");
  EXPECT_NE(problems.items[0].second.find("enable_idempotence"), std::string::npos);
  EXPECT_EQ(problems.items[1].first, "rdkafka.plugin.library.paths");
}

// Through the binary: each problem is shown where the user wrote the option (issue 12).
TEST(KafkaSinkCheck, PointsAtTheOptionsLine_ForEachProblemTheSinkFinds) {
  p2k_test::TempDir dir;
  auto config = dir.write("pipeline.json", R"({
  "source": {"plugin": "test-sequence"},
  "sink": {"plugin": "kafka", "options": {
    "bootstrap_servers": "127.0.0.1:9092",
    "acks": "1",
    "rdkafka": {"plugin.library.paths": "/tmp/evil.so", "sasl.password": "hunter2"}
  }}
})");
  auto r = p2k_test::run_pg2kafka(
      {"check", "--config", config, "--plugin-dir", p2k_test::ctest_env("P2K_TEST_PLUGIN_DIR")});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("pipeline.json:5:5: sink.options.acks: is '1' but enable_idempotence is "
                       "true"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("pipeline.json:6:17: sink.options.rdkafka.plugin.library.paths: is not "
                       "allowed: it loads shared libraries"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(r.err.find("hunter2"), std::string::npos) << r.err;
}

}  // namespace
