// The kafka sink against a real Apache Kafka 3.9 broker (the `kafka` CTest fixture): produce
// through the sink, read back with a consumer, assert on content.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "kafka_sink.hpp"
#include "kafka_stats.hpp"
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

  // First in a call, the record is still reported alone (the failure is its own), so that a
  // pipeline parking such records parks it and writes the others again.
  host_.take_reports();
  auto first = records.view(1, 3);
  sink->write(first);
  ASSERT_TRUE(sink->flush(seconds(30)));
  by = host_.reports_by_position();
  ASSERT_EQ(by[2].size(), 1u);
  EXPECT_EQ(by[2][0].status, P2K_FATAL);
  EXPECT_NE(by[2][0].message.find("id-too-big"), std::string::npos) << by[2][0].message;
  ASSERT_EQ(by[3].size(), 1u);
  EXPECT_EQ(by[3][0].status, P2K_RETRY);
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

// ---- metrics and health (ABI 1.3) ----

// `count` records for `topic`, positions first..first+count-1.
void add_records(Records& records, const std::string& topic, uint64_t first, size_t count) {
  for (uint64_t p = first; p < first + count; ++p)
    records.add({p,
                 topic,
                 "key-" + std::to_string(p % 7),
                 "value " + std::to_string(p),
                 0,
                 "id-" + std::to_string(p),
                 {}});
}

TEST_F(KafkaSinkBroker, Metrics_AfterProducing_ShowTheBrokerUpItsRttAndWhatWasSent) {
  auto topic = unique_topic("p2k-metrics");
  create_topic(brokers_, topic, 2);
  auto sink = open_sink({{"statistics_interval", "200ms"}});
  sink->prepare_topic(topic);
  constexpr size_t kRecords = 60;
  Records records;
  add_records(records, topic, 1, kRecords);
  auto view = records.view(0, kRecords);
  sink->write(view);
  ASSERT_TRUE(sink->flush(seconds(30)));
  expect_reported_once(1, kRecords, P2K_OK);

  // Nothing is in flight: the sink serves librdkafka's statistics on its own thread. Wait for
  // statistics emitted after the flush.
  Scrape s = wait_for_scrape(*sink, [&](const Scrape& s) {
    const Sample* queued = s.find("queue_messages");
    const Sample* sent = s.find("transmitted_messages_total");
    return queued && sent && queued->value == 0 && sent->value >= kRecords;
  });
  ASSERT_TRUE(s.warnings.empty()) << s.warnings.front();
  ASSERT_TRUE(s.convention_problems().empty()) << s.convention_problems().front();
  ASSERT_NE(s.find("transmitted_messages_total"), nullptr) << s.text;
  EXPECT_GE(s.find("transmitted_messages_total")->value, kRecords) << s.text;
  EXPECT_EQ(s.find("queue_messages")->value, 0) << "nothing waits after the flush";
  EXPECT_EQ(s.find("queue_bytes")->value, 0);
  EXPECT_GT(s.find("queue_max_messages")->value, 0);
  EXPECT_GT(s.find("queue_max_bytes")->value, 0);
  EXPECT_GT(s.find("transmitted_bytes_total")->value, 0);
  EXPECT_LT(s.find("statistics_age_seconds")->value, 5);

  // One broker, named as librdkafka does: host:port/id.
  auto up = s.with_prefix("broker_up");
  ASSERT_EQ(up.size(), 1u) << s.text;
  const std::string broker = up[0].labels.at("broker");
  EXPECT_EQ(broker.rfind(brokers_ + "/", 0), 0u) << broker;
  EXPECT_EQ(up[0].value, 1);
  EXPECT_EQ(up[0].type, P2K_METRIC_GAUGE);
  const Sample* rtt = s.find("broker_rtt_seconds", {{"broker", broker}});
  ASSERT_NE(rtt, nullptr) << s.text;
  EXPECT_GT(rtt->value, 0);
  EXPECT_LT(rtt->value, 10) << "seconds, not microseconds";
  for (const char* counter :
       {"broker_requests_total", "broker_transmit_errors_total", "broker_transmit_retries_total",
        "broker_request_timeouts_total", "broker_connects_total", "broker_disconnects_total"}) {
    const Sample* c = s.find(counter, {{"broker", broker}});
    ASSERT_NE(c, nullptr) << counter << "\n" << s.text;
    EXPECT_EQ(c->type, P2K_METRIC_COUNTER) << counter;
  }
  EXPECT_GT(s.find("broker_requests_total", {{"broker", broker}})->value, 0);
  EXPECT_GE(s.find("broker_connects_total", {{"broker", broker}})->value, 1);
  EXPECT_FALSE(s.has("delivery_errors_total")) << "no delivery failed";
  EXPECT_NE(s.text.find("pg2kafka_kafka_broker_up{broker=\"" + broker + "\"} 1"), std::string::npos)
      << s.text;
}

// Scrapes run on another thread all along, while the sink writes, polls, closes and opens again
// (a new librdkafka client, whose counters start at 0): no counter ever goes down.
TEST_F(KafkaSinkBroker, Metrics_CountersNeverDecrease_AcrossScrapesAndAReopen) {
  auto topic = unique_topic("p2k-metrics-monotonic");
  create_topic(brokers_, topic, 1);
  auto sink = open_sink({{"statistics_interval", "100ms"}});
  sink->prepare_topic(topic);

  std::atomic<bool> stop{false};
  std::mutex mutex;
  std::vector<Scrape> scrapes;
  std::thread scraper([&] {
    while (!stop) {
      Scrape s = scrape(*sink);
      std::lock_guard lock(mutex);
      scrapes.push_back(std::move(s));
    }
  });
  auto health = std::thread([&] {
    while (!stop) wait_for_health(*sink, [](const auto&) { return true; });
  });

  Records records;
  add_records(records, topic, 1, 400);
  for (size_t from = 0; from < 200; from += 20) {
    auto view = records.view(from, from + 20);
    sink->write(view);
    sink->poll(milliseconds(30));
  }
  ASSERT_TRUE(sink->flush(seconds(30)));
  std::this_thread::sleep_for(milliseconds(300));  // statistics of the first client
  sink->close();
  sink->open();
  sink->prepare_topic(topic);
  for (size_t from = 200; from < 400; from += 20) {
    auto view = records.view(from, from + 20);
    sink->write(view);
    sink->poll(milliseconds(30));
  }
  ASSERT_TRUE(sink->flush(seconds(30)));
  Scrape last = wait_for_scrape(*sink, [](const Scrape& s) {
    const Sample* sent = s.find("transmitted_messages_total");
    return sent && sent->value >= 400;
  });
  stop = true;
  scraper.join();
  health.join();
  expect_reported_once(1, 400, P2K_OK);
  EXPECT_GE(last.find("transmitted_messages_total")->value, 400)
      << "the second client's messages add to the first one's";

  std::lock_guard lock(mutex);
  ASSERT_GT(scrapes.size(), 10u);
  std::map<std::pair<std::string, std::map<std::string, std::string>>, double> seen;
  for (const auto& s : scrapes) {
    ASSERT_TRUE(s.warnings.empty()) << s.warnings.front();
    for (const auto& sample : s.samples) {
      if (sample.type != P2K_METRIC_COUNTER) continue;
      auto key = std::make_pair(sample.name, sample.labels);
      auto it = seen.find(key);
      if (it != seen.end()) {
        EXPECT_GE(sample.value, it->second) << sample.name << " went down";
      }
      seen[key] = sample.value;
    }
  }
}

TEST_F(KafkaSinkBroker, Health_NotReadyBeforeOpen_ReadyAfterOpen_NamingTheBrokers) {
  auto sink = make_sink(host_, brokers_, {{"statistics_interval", "200ms"}});
  auto before = sink->health();
  EXPECT_FALSE(before.ready);
  EXPECT_NE(before.message.find("not connected yet"), std::string::npos) << before.message;
  sink->open();
  auto after = sink->health();
  EXPECT_TRUE(after.ready) << after.message;
  // Once the statistics came: how many brokers are up.
  auto counted = wait_for_health(*sink, [](const auto& h) {
    return h.message.find("connected to 1 of 1 Kafka broker") != std::string::npos;
  });
  EXPECT_TRUE(counted.ready) << counted.message;
  EXPECT_EQ(counted.message, "connected to 1 of 1 Kafka broker");
  sink->close();
  EXPECT_FALSE(sink->health().ready);
}

TEST_F(KafkaSinkBroker, StatisticsOff_NoStatisticsMetrics_HealthStillReady) {
  auto topic = unique_topic("p2k-metrics-off");
  create_topic(brokers_, topic, 1);
  auto sink = open_sink({{"statistics_interval", "0"}});
  sink->prepare_topic(topic);
  Records records;
  add_records(records, topic, 1, 10);
  auto view = records.view(0, 10);
  sink->write(view);
  ASSERT_TRUE(sink->flush(seconds(30)));
  std::this_thread::sleep_for(milliseconds(500));  // what statistics there were would have come
  Scrape s = scrape(*sink);
  EXPECT_TRUE(s.samples.empty()) << s.text;
  auto h = sink->health();
  EXPECT_TRUE(h.ready) << h.message;
  EXPECT_EQ(h.message, "connected to Kafka at " + brokers_);
}

// A producer of our own against the broker: what librdkafka really emits is what the parser reads.
TEST_F(KafkaSinkBroker, StatisticsOfARealProducer_AreReadAndWrittenAsValidMetrics) {
  auto topic = unique_topic("p2k-stats-sample");
  create_topic(brokers_, topic, 1);
  struct Captured {
    std::mutex mutex;
    std::string json;
  } captured;
  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  ASSERT_EQ(rd_kafka_conf_set(conf, "bootstrap.servers", brokers_.c_str(), errstr, sizeof errstr),
            RD_KAFKA_CONF_OK);
  ASSERT_EQ(rd_kafka_conf_set(conf, "statistics.interval.ms", "100", errstr, sizeof errstr),
            RD_KAFKA_CONF_OK);
  rd_kafka_conf_set_opaque(conf, &captured);
  rd_kafka_conf_set_stats_cb(conf, [](rd_kafka_t*, char* json, size_t len, void* opaque) {
    auto* c = static_cast<Captured*>(opaque);
    std::lock_guard lock(c->mutex);
    c->json.assign(json, len);
    return 0;
  });
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  ASSERT_NE(rk, nullptr) << errstr;
  ASSERT_EQ(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_VALUE((void*)"v", 1),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
            RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_flush(rk, 30000);
  pg2kafka::kafka::Statistics parsed;
  auto deadline = std::chrono::steady_clock::now() + seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    rd_kafka_poll(rk, 100);
    std::string json;
    {
      std::lock_guard lock(captured.mutex);
      json = captured.json;
    }
    if (json.empty()) continue;
    parsed = pg2kafka::kafka::parse_statistics(json);
    if (parsed.txmsgs >= 1 && parsed.msg_cnt == 0) break;
  }
  rd_kafka_destroy(rk);
  EXPECT_EQ(parsed.txmsgs, 1u);
  EXPECT_EQ(parsed.msg_cnt, 0);
  EXPECT_GT(parsed.msg_max, 0);
  EXPECT_EQ(parsed.learned_total(), 1);
  EXPECT_EQ(parsed.learned_up(), 1);
  EXPECT_TRUE(parsed.any_up());
  for (const auto& b : parsed.brokers)
    if (b.learned()) {
      EXPECT_EQ(b.name.rfind(brokers_ + "/", 0), 0u) << b.name;
      EXPECT_EQ(b.state, "UP");
      EXPECT_GE(b.tx, 1u);
      EXPECT_GE(b.connects, 1u);
    }

  pg2kafka::kafka::StatisticsMetrics metrics;
  metrics.update(parsed, std::chrono::steady_clock::now());
  Scrape s = collect(
      [&](pg2kafka::sdk::MetricWriter& w) { metrics.write(w, std::chrono::steady_clock::now()); });
  EXPECT_TRUE(s.warnings.empty()) << s.warnings.front();
  EXPECT_TRUE(s.convention_problems().empty()) << s.convention_problems().front();
  EXPECT_EQ(s.with_prefix("broker_up").size(), 1u) << s.text;
}

// The built plugin as the host drives it: the metrics and health operations of ABI 1.3.
TEST_F(KafkaSinkBroker, PluginSo_ReportsMetricsAndHealthThroughTheCInterface) {
  std::string path = p2k_test::ctest_env("P2K_PLUGIN_DIR") + "/pg2kafka-sink-kafka.so";
  void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(lib, nullptr) << dlerror();
  auto entry = reinterpret_cast<p2k_plugin_entry_fn>(dlsym(lib, P2K_PLUGIN_ENTRY_SYMBOL));
  const p2k_plugin* plugin = entry(P2K_ABI_MAJOR, P2K_ABI_MINOR);
  ASSERT_EQ(plugin->abi_minor, uint32_t{P2K_ABI_MINOR});
  const p2k_sink_ops* ops = plugin->sink;
  ASSERT_NE(ops->metrics, nullptr);
  ASSERT_NE(ops->health, nullptr);
  auto options = p2k_test::kafka::resolved(
      {{"bootstrap_servers", brokers_}, {"statistics_interval", "100ms"}});
  auto values = options.c_values();
  void* instance = nullptr;
  char err[1024] = "";
  ASSERT_EQ(ops->create(host_.raw(), values.data(), values.size(), &instance, err, sizeof err),
            P2K_OK)
      << err;
  char message[256] = "";
  EXPECT_EQ(ops->health(instance, message, sizeof message), P2K_RETRY);
  EXPECT_NE(std::string(message).find("not connected yet"), std::string::npos) << message;
  ASSERT_EQ(ops->open(instance, err, sizeof err), P2K_OK) << err;
  EXPECT_EQ(ops->health(instance, message, sizeof message), P2K_OK) << message;

  pg2kafka::metrics::Exposition exposition;
  std::vector<std::string> warnings;
  pg2kafka::metrics::PluginSamples checker("kafka",
                                           [&](const std::string& w) { warnings.push_back(w); });
  auto deadline = std::chrono::steady_clock::now() + seconds(30);
  while (exposition.text().find("pg2kafka_kafka_broker_up{") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(50));
    exposition = pg2kafka::metrics::Exposition();
    checker.begin(exposition);
    ops->metrics(instance, &pg2kafka::metrics::PluginSamples::callback, &checker);
  }
  ops->close(instance);
  EXPECT_EQ(ops->health(instance, message, sizeof message), P2K_RETRY) << "closed";
  ops->destroy(instance);
  dlclose(lib);
  EXPECT_TRUE(warnings.empty()) << warnings.front();
  std::string text = exposition.text();
  EXPECT_NE(text.find("pg2kafka_kafka_broker_up{broker=\"" + brokers_ + "/"), std::string::npos)
      << text;
  EXPECT_NE(text.find("# TYPE pg2kafka_kafka_broker_transmit_errors_total counter"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("pg2kafka_kafka_statistics_age_seconds "), std::string::npos) << text;
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
