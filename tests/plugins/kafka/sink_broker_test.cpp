// The kafka sink against a real Apache Kafka 3.9 broker (the `kafka` CTest fixture): produce
// through the sink, read back with a consumer, assert on content.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

#include "kafka_sink.hpp"
#include "sink_test_util.hpp"
#include "test_support.hpp"

namespace {

using namespace p2k_test::kafka;
using pg2kafka::kafka::KafkaSink;
using std::chrono::milliseconds;
using std::chrono::seconds;

class KafkaSinkBroker : public ::testing::Test {
 protected:
  void SetUp() override { brokers_ = fixture_brokers(); }

  std::unique_ptr<KafkaSink> open_sink(std::map<std::string, std::string> values = {}) {
    auto sink = make_sink(host_, brokers_, std::move(values));
    sink->open();
    return sink;
  }

  // Every position in [first, first + count) reported exactly once, with `status`.
  void expect_reported_once(uint64_t first, size_t count, p2k_status status) {
    auto by = host_.reports_by_position();
    for (uint64_t p = first; p < first + count; ++p) {
      ASSERT_EQ(by[p].size(), 1u) << "position " << p;
      EXPECT_EQ(by[p][0].status, status) << "position " << p << ": " << by[p][0].message;
    }
  }

  std::string brokers_;
  FakeHost host_;
};

TEST_F(KafkaSinkBroker, Write_KeepsValueKeyTimestampAndHeaders) {
  auto topic = unique_topic("p2k-roundtrip");
  create_topic(brokers_, topic, 1);
  auto sink = open_sink();
  sink->prepare_topic(topic);

  Records records;
  records.add({1,
               topic,
               "sku-1",
               R"({"op":"UPDATE","data":{"price":3}})",
               1700000000123,
               "0b6f7c1e-1111-4e3a-9d5b-000000000001",
               {{"pg2kafka.statement", "UPDATE"}, {"pg2kafka.table", "public.products"}}});
  records.add({2,
               topic,
               std::nullopt,
               "no key",
               1700000000456,
               "0b6f7c1e-1111-4e3a-9d5b-000000000002",
               {}});
  records.add({3,
               topic,
               std::string("quote\" and back\\slash"),
               "",
               1700000000789,
               "0b6f7c1e-1111-4e3a-9d5b-000000000003",
               {}});
  records.add({4,
               topic,
               std::string(),
               "empty key",
               1700000000999,
               "0b6f7c1e-1111-4e3a-9d5b-000000000004",
               {}});
  auto view = records.view(0, records.size());
  sink->write(view);
  ASSERT_TRUE(sink->flush(seconds(30)));
  expect_reported_once(1, 4, P2K_OK);

  auto messages = read_topic(brokers_, topic, 4);
  ASSERT_EQ(messages.size(), 4u);
  EXPECT_EQ(messages[0].key, "sku-1");
  EXPECT_EQ(messages[0].value, R"({"op":"UPDATE","data":{"price":3}})");
  EXPECT_EQ(messages[0].timestamp_ms, 1700000000123);
  EXPECT_TRUE(messages[0].create_time);
  EXPECT_EQ(messages[0].header("pg2kafka.statement"), "UPDATE");
  EXPECT_EQ(messages[0].header("pg2kafka.table"), "public.products");
  EXPECT_EQ(messages[0].header("pg2kafka.id"), "0b6f7c1e-1111-4e3a-9d5b-000000000001");
  EXPECT_EQ(messages[1].key, std::nullopt) << "a NULL key must stay a null key";
  EXPECT_EQ(messages[1].value, "no key");
  EXPECT_EQ(messages[1].header("pg2kafka.id"), "0b6f7c1e-1111-4e3a-9d5b-000000000002");
  EXPECT_EQ(messages[2].key, "quote\" and back\\slash");
  EXPECT_EQ(messages[2].timestamp_ms, 1700000000789);
  EXPECT_EQ(messages[3].key, std::optional<std::string>(""));
  sink->close();
}

TEST_F(KafkaSinkBroker, Partitioning_SameKeySamePartition_AsTheJavaProducer) {
  constexpr int kPartitions = 6;
  auto topic = unique_topic("p2k-partitions");
  create_topic(brokers_, topic, kPartitions);
  auto sink = open_sink();
  sink->prepare_topic(topic);

  Records records;
  uint64_t position = 0;
  for (int round = 0; round < 4; ++round)
    for (int k = 0; k < 50; ++k)
      records.add({++position,
                   topic,
                   "key-" + std::to_string(k),
                   std::to_string(round),
                   0,
                   "id-" + std::to_string(position),
                   {}});
  auto view = records.view(0, records.size());
  sink->write(view);
  ASSERT_TRUE(sink->flush(seconds(30)));
  expect_reported_once(1, records.size(), P2K_OK);

  auto messages = read_topic(brokers_, topic, records.size());
  ASSERT_EQ(messages.size(), records.size());
  std::map<std::string, std::set<int>> partitions_of_key;
  std::set<int> used;
  for (const auto& m : messages) {
    ASSERT_TRUE(m.key);
    partitions_of_key[*m.key].insert(m.partition);
    used.insert(m.partition);
    EXPECT_EQ(m.partition, java_partition(*m.key, kPartitions)) << "key " << *m.key;
  }
  for (const auto& [key, parts] : partitions_of_key) EXPECT_EQ(parts.size(), 1u) << key;
  EXPECT_EQ(used.size(), static_cast<size_t>(kPartitions)) << "50 keys should use all partitions";
}

TEST_F(KafkaSinkBroker, ManyWrites_KeepOrderPerKeyWithoutLossOrDuplicates) {
  auto topic = unique_topic("p2k-order");
  create_topic(brokers_, topic, 3);
  auto sink = open_sink({{"linger", "2"}});
  sink->prepare_topic(topic);

  constexpr int kKeys = 20, kPerKey = 250;
  Records records;
  uint64_t position = 0;
  for (int seq = 0; seq < kPerKey; ++seq)
    for (int k = 0; k < kKeys; ++k)
      records.add({++position,
                   topic,
                   "k" + std::to_string(k),
                   std::to_string(seq),
                   0,
                   "id-" + std::to_string(position),
                   {}});
  for (size_t from = 0; from < records.size(); from += 500) {
    auto view = records.view(from, std::min(records.size(), from + 500));
    sink->write(view);
    sink->poll(milliseconds(0));
  }
  ASSERT_TRUE(sink->flush(seconds(60)));
  expect_reported_once(1, records.size(), P2K_OK);

  auto messages = read_topic(brokers_, topic, records.size());
  ASSERT_EQ(messages.size(), records.size());
  std::map<std::string, int> next;
  std::set<std::string> ids;
  for (const auto& m : messages) {
    int seq = std::stoi(*m.value);
    EXPECT_EQ(seq, next[*m.key]++) << "key " << *m.key << " out of order";
    EXPECT_TRUE(ids.insert(*m.header("pg2kafka.id")).second) << "duplicate";
  }
}

TEST_F(KafkaSinkBroker, PrepareTopic_Missing_IsFatalNamingTopicAndHowToCreateIt) {
  auto topic = unique_topic("p2k-missing");
  auto sink = open_sink({{"topic_partitions", "3"}});
  try {
    sink->prepare_topic(topic);
    FAIL() << "prepare_topic accepted a missing topic";
  } catch (const pg2kafka::sdk::FatalError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("'" + topic + "' does not exist"), std::string::npos) << m;
    EXPECT_NE(m.find("kafka-topics.sh --bootstrap-server " + brokers_ + " --create --topic '" +
                     topic + "' --partitions 3"),
              std::string::npos)
        << m;
    EXPECT_NE(m.find("create_topics"), std::string::npos) << m;
  }
  EXPECT_EQ(partition_count(brokers_, topic), -1) << "checking must not create the topic";
}

TEST_F(KafkaSinkBroker, Write_ToMissingTopic_FailsTheWholeCallAndReportsNothing) {
  auto existing = unique_topic("p2k-exists");
  create_topic(brokers_, existing, 1);
  auto missing = unique_topic("p2k-missing");
  auto sink = open_sink();
  Records records;
  records.add({1, existing, "a", "1", 0, "id-1", {}});
  records.add({2, missing, "a", "2", 0, "id-2", {}});
  auto view = records.view(0, 2);
  EXPECT_THROW(sink->write(view), pg2kafka::sdk::FatalError);
  EXPECT_EQ(sink->in_flight(), 0u);
  ASSERT_TRUE(sink->flush(seconds(5)));
  EXPECT_TRUE(host_.reports().empty()) << "a failed write must not report its records";
  EXPECT_EQ(read_topic(brokers_, existing, 0, seconds(10)).size(), 0u);
}

TEST_F(KafkaSinkBroker, CreateTopics_CreatesMissingTopicsAtPrepareAndAtWrite) {
  auto prepared = unique_topic("p2k-created");
  auto runtime = unique_topic("p2k-created-later");
  auto sink = open_sink(
      {{"create_topics", "true"}, {"topic_partitions", "3"}, {"topic_replication_factor", "1"}});
  sink->prepare_topic(prepared);
  EXPECT_EQ(partition_count(brokers_, prepared), 3);

  // A topic first seen in write (a table set up while running) follows the same rule.
  Records records;
  records.add({1, runtime, "a", "hello", 0, "id-1", {}});
  auto view = records.view(0, 1);
  sink->write(view);
  ASSERT_TRUE(sink->flush(seconds(30)));
  expect_reported_once(1, 1, P2K_OK);
  EXPECT_EQ(partition_count(brokers_, runtime), 3);
  auto messages = read_topic(brokers_, runtime, 1);
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].value, "hello");
}

TEST_F(KafkaSinkBroker, RecordLargerThanTheTopicLimit_IsFatalNamingEventAndLimit) {
  auto topic = unique_topic("p2k-small-limit");
  create_topic(brokers_, topic, 1, {{"max.message.bytes", "2000"}});
  // Batches stay under the topic's limit so that only the large record is refused; no
  // compression so that its size is what the broker sees.
  auto sink = open_sink({{"batch_size", "1500"}, {"compression", "none"}});
  sink->prepare_topic(topic);

  Records records;
  records.add({1, topic, "k", "small before", 0, "id-small-1", {}});
  records.add(
      {2, topic, "k", std::string(5000, 'x'), 0, "4f1d2c3b-big0-4000-8000-000000000002", {}});
  records.add({3, topic, "other", "small after", 0, "id-small-3", {}});
  auto view = records.view(0, 3);
  sink->write(view);
  ASSERT_TRUE(sink->flush(seconds(30)));

  auto by = host_.reports_by_position();
  for (uint64_t p = 1; p <= 3; ++p) ASSERT_EQ(by[p].size(), 1u) << "position " << p;
  EXPECT_EQ(by[1][0].status, P2K_OK);
  ASSERT_EQ(by[2][0].status, P2K_FATAL);
  const std::string& m = by[2][0].message;
  EXPECT_NE(m.find("4f1d2c3b-big0-4000-8000-000000000002"), std::string::npos) << m;
  EXPECT_NE(m.find("2000"), std::string::npos) << m;
  EXPECT_NE(m.find("max.message.bytes"), std::string::npos) << m;
  // Nothing silently lost: what was reported OK is in the topic, the large one is not.
  std::set<std::string> stored;
  for (const auto& msg : read_topic(brokers_, topic, 1)) stored.insert(*msg.header("pg2kafka.id"));
  EXPECT_TRUE(stored.count("id-small-1"));
  EXPECT_FALSE(stored.count("4f1d2c3b-big0-4000-8000-000000000002"));
  if (by[3][0].status == P2K_OK) {
    EXPECT_TRUE(stored.count("id-small-3"));
  }
}

TEST_F(KafkaSinkBroker, RecordLargerThanTheProducerLimit_IsFatalBeforeSending) {
  auto topic = unique_topic("p2k-producer-limit");
  create_topic(brokers_, topic, 1);
  auto sink = open_sink({{"rdkafka.message.max.bytes", "1000"}, {"compression", "none"}});
  sink->prepare_topic(topic);
  Records records;
  records.add({1, topic, "k", "small", 0, "id-1", {}});
  records.add({2, topic, "k", std::string(4000, 'y'), 0, "id-too-big", {}});
  records.add({3, topic, "k", "after", 0, "id-3", {}});
  auto view = records.view(0, 3);
  sink->write(view);  // part of the call is accepted: the sink reports the rest itself
  ASSERT_TRUE(sink->flush(seconds(30)));
  auto by = host_.reports_by_position();
  for (uint64_t p = 1; p <= 3; ++p) ASSERT_EQ(by[p].size(), 1u) << "position " << p;
  EXPECT_EQ(by[1][0].status, P2K_OK);
  EXPECT_EQ(by[2][0].status, P2K_FATAL);
  EXPECT_NE(by[2][0].message.find("id-too-big"), std::string::npos) << by[2][0].message;
  EXPECT_NE(by[2][0].message.find("1000"), std::string::npos) << by[2][0].message;
  EXPECT_EQ(by[3][0].status, P2K_RETRY);

  // Alone in a call, the record fails the call itself.
  auto alone = records.view(1, 2);
  try {
    sink->write(alone);
    FAIL() << "write accepted a record above message.max.bytes";
  } catch (const pg2kafka::sdk::FatalError& e) {
    EXPECT_NE(std::string(e.what()).find("id-too-big"), std::string::npos);
  }
}

TEST_F(KafkaSinkBroker, Flush_IsABarrier_EveryWrittenRecordIsReportedWhenItReturns) {
  auto topic = unique_topic("p2k-flush");
  create_topic(brokers_, topic, 2);
  auto sink = open_sink({{"linger", "50"}});
  sink->prepare_topic(topic);
  Records records;
  for (uint64_t p = 1; p <= 3000; ++p)
    records.add({p,
                 topic,
                 "k" + std::to_string(p % 7),
                 std::to_string(p),
                 0,
                 "id-" + std::to_string(p),
                 {}});
  for (size_t from = 0; from < 3000; from += 1000) {
    auto view = records.view(from, from + 1000);
    sink->write(view);  // no polling in between
  }
  ASSERT_TRUE(sink->flush(seconds(60)));
  EXPECT_EQ(sink->in_flight(), 0u);
  EXPECT_EQ(host_.reports().size(), 3000u);
  expect_reported_once(1, 3000, P2K_OK);
  EXPECT_EQ(read_topic(brokers_, topic, 3000).size(), 3000u);
}

TEST_F(KafkaSinkBroker, Close_WithRecordsInFlight_ReportsEveryRecordOnce) {
  auto topic = unique_topic("p2k-close");
  create_topic(brokers_, topic, 1);
  auto sink = open_sink({{"linger", "1000"}});
  sink->prepare_topic(topic);
  Records records;
  for (uint64_t p = 1; p <= 100; ++p)
    records.add({p, topic, "k", std::to_string(p), 0, "id-" + std::to_string(p), {}});
  auto view = records.view(0, 100);
  sink->write(view);
  sink->close();
  auto by = host_.reports_by_position();
  for (uint64_t p = 1; p <= 100; ++p) {
    ASSERT_EQ(by[p].size(), 1u) << "position " << p;
    EXPECT_TRUE(by[p][0].status == P2K_OK || by[p][0].status == P2K_RETRY);
  }
}

// The built plugin through its C entry point, as the host drives it.
TEST_F(KafkaSinkBroker, PluginSo_ProducesThroughTheCInterface) {
  auto topic = unique_topic("p2k-so");
  create_topic(brokers_, topic, 1);
  std::string path = p2k_test::ctest_env("P2K_PLUGIN_DIR") + "/pg2kafka-sink-kafka.so";
  void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(lib, nullptr) << dlerror();
  auto entry = reinterpret_cast<p2k_plugin_entry_fn>(dlsym(lib, P2K_PLUGIN_ENTRY_SYMBOL));
  const p2k_plugin* plugin = entry(P2K_ABI_MAJOR, P2K_ABI_MINOR);
  const p2k_sink_ops* ops = plugin->sink;
  // As the host passes them: validated, normalised, every other option's default (plugin.h).
  auto options = p2k_test::kafka::resolved({{"bootstrap_servers", "kafka://" + brokers_}});
  auto values = options.c_values();
  void* instance = nullptr;
  char err[1024] = "";
  ASSERT_EQ(ops->create(host_.raw(), values.data(), values.size(), &instance, err, sizeof err),
            P2K_OK)
      << err;
  ASSERT_EQ(ops->open(instance, err, sizeof err), P2K_OK) << err;
  ASSERT_EQ(ops->prepare_topic(instance, p2k_slice{topic.data(), topic.size()}, err, sizeof err),
            P2K_OK)
      << err;
  Records records;
  records.add({7, topic, "key", "value", 1700000000000, "id-7", {}});
  auto view = records.view(0, 1);
  ASSERT_EQ(ops->write(instance, view.data(), view.size(), err, sizeof err), P2K_OK) << err;
  ASSERT_EQ(ops->flush(instance, 30000, err, sizeof err), P2K_OK) << err;
  ops->close(instance);
  ops->destroy(instance);
  dlclose(lib);
  expect_reported_once(7, 1, P2K_OK);
  auto messages = read_topic(brokers_, topic, 1);
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].key, "key");
}

// Not a test (no timing assertions in the suite): prints the sink's throughput. Run with
//   ctest --test-dir build -R KafkaSinkBroker.DISABLED_Throughput  (or the binary with
//   --gtest_also_run_disabled_tests and P2K_TEST_STATE_DIR set).
TEST_F(KafkaSinkBroker, DISABLED_Throughput_PrintsRecordsPerSecond) {
  auto topic = unique_topic("p2k-throughput");
  create_topic(brokers_, topic, 6);
  auto sink = open_sink();
  sink->prepare_topic(topic);
  constexpr size_t kRecords = 300000, kBatch = 1000;
  Records records;
  std::string value(300, 'v');
  for (uint64_t p = 1; p <= kRecords; ++p)
    records.add({p,
                 topic,
                 "key-" + std::to_string(p % 1000),
                 value,
                 1700000000000,
                 "0b6f7c1e-1111-4e3a-9d5b-" + std::to_string(100000000000 + p),
                 {{"pg2kafka.statement", "INSERT"}, {"pg2kafka.table", "public.t"}}});
  std::vector<std::vector<p2k_record>> views;
  for (size_t from = 0; from < kRecords; from += kBatch)
    views.push_back(records.view(from, from + kBatch));
  auto start = std::chrono::steady_clock::now();
  for (auto& v : views) {
    sink->write(v);
    sink->poll(milliseconds(0));
  }
  ASSERT_TRUE(sink->flush(seconds(120)));
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(host_.reports().size(), kRecords);
  std::printf("kafka sink: %zu records in %.2f s = %.0f records/s\n", kRecords, secs,
              kRecords / secs);
}

}  // namespace
