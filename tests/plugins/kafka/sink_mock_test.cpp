// The kafka sink against librdkafka's in-process mock cluster (rdkafka_mock.h), for faults a real
// broker cannot easily be made to show: brokers down and up, injected request errors.
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <algorithm>
#include <cctype>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <thread>

#include "kafka_sink.hpp"
#include "runtime/delivery_window.hpp"
#include "sink_test_util.hpp"

namespace {

using namespace p2k_test::kafka;
using pg2kafka::kafka::KafkaSink;
using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

// Kafka protocol API keys (rdkafka_mock.h takes them as numbers).
constexpr int16_t kProduceApi = 0;
constexpr int16_t kInitProducerIdApi = 22;

class MockCluster {
 public:
  explicit MockCluster(int brokers) {
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    char errstr[256];
    rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof errstr);
    owner_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!owner_) throw std::runtime_error(errstr);
    cluster_ = rd_kafka_mock_cluster_new(owner_, brokers);
    if (!cluster_) throw std::runtime_error("cannot create a mock cluster");
  }
  ~MockCluster() {
    rd_kafka_mock_cluster_destroy(cluster_);
    rd_kafka_destroy(owner_);
  }
  MockCluster(const MockCluster&) = delete;
  MockCluster& operator=(const MockCluster&) = delete;

  rd_kafka_mock_cluster_t* get() { return cluster_; }
  std::string bootstraps() const { return rd_kafka_mock_cluster_bootstraps(cluster_); }
  void create_topic(const std::string& topic, int partitions) {
    ASSERT_EQ(rd_kafka_mock_topic_create(cluster_, topic.c_str(), partitions, 1),
              RD_KAFKA_RESP_ERR_NO_ERROR);
  }

 private:
  rd_kafka_t* owner_ = nullptr;
  rd_kafka_mock_cluster_t* cluster_ = nullptr;
};

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// Plays the pipeline host with the host's own delivery window (runtime/delivery_window.hpp):
// checks that every write of a record is reported exactly once, and writes RETRY records again
// once nothing else awaits an outcome (after a short backoff), with the later records of their
// keys that were delivered meanwhile (the per-key ordering rule, which the sink leaves to the
// host), until every record is acknowledged or `timeout` passes.
class MiniHost {
 public:
  MiniHost(KafkaSink& sink, FakeHost& host, Records& records)
      : sink_(sink), host_(host), records_(records) {}

  void write(const std::vector<uint64_t>& positions) {
    auto view = records_.view_positions(positions);
    for (const auto& r : view) window_.add(r, nullptr);
    write_view(view);
  }

  void write_range(uint64_t first, uint64_t last) {
    std::vector<uint64_t> positions;
    for (uint64_t p = first; p <= last; ++p) positions.push_back(p);
    write(positions);
  }

  // Serves reports for `duration` (rewriting RETRY records as the host would).
  void run_for(milliseconds duration) { run(Clock::now() + duration, false); }
  bool run_until_all_ok(milliseconds timeout) { return run(Clock::now() + timeout, true); }

  size_t acknowledged() const { return acknowledged_; }
  size_t rewrites() const { return rewrites_; }

 private:
  void write_view(const std::vector<p2k_record>& view) {
    try {
      sink_.write(view);
    } catch (const pg2kafka::sdk::RetryError&) {
      for (const auto& r : view) window_.failed(r.position);
    }
  }

  bool run(Clock::time_point deadline, bool until_all_ok) {
    while (Clock::now() < deadline) {
      sink_.poll(milliseconds(20));
      for (const auto& r : host_.take_reports()) {
        if (r.status == P2K_OK) {
          EXPECT_TRUE(window_.delivered(r.position))
              << "position " << r.position << " reported twice";
        } else if (r.status == P2K_RETRY) {
          EXPECT_TRUE(window_.failed(r.position)) << "position " << r.position << " reported twice";
        } else {
          ADD_FAILURE() << "unexpected FATAL for " << r.position << ": " << r.message;
          return false;
        }
      }
      size_t count = 0;
      window_.take_ackable(&count);
      acknowledged_ += count;
      if (window_.awaiting_retry() > 0 && window_.awaiting_outcome() == 0 &&
          Clock::now() >= next_retry_) {
        if (retry_wait_started_) {
          retry_wait_started_ = false;
          ++rewrites_;
          write_view(window_.take_rewrites());
        } else {
          retry_wait_started_ = true;
          next_retry_ = Clock::now() + milliseconds(200);
        }
      }
      if (until_all_ok && acknowledged_ == records_.size()) return true;
    }
    return !until_all_ok;
  }

  KafkaSink& sink_;
  FakeHost& host_;
  Records& records_;
  pg2kafka::runtime::DeliveryWindow window_;
  size_t acknowledged_ = 0;
  size_t rewrites_ = 0;
  bool retry_wait_started_ = false;
  Clock::time_point next_retry_{};
};

// Adds `per_key` records for each of `keys` keys, values "<seq>", interleaved.
void add_keyed(Records& records, const std::string& topic, int keys, int per_key,
               uint64_t& position) {
  for (int seq = 0; seq < per_key; ++seq)
    for (int k = 0; k < keys; ++k)
      records.add({++position,
                   topic,
                   "key-" + std::to_string(k),
                   std::to_string(seq),
                   0,
                   "id-" + std::to_string(position),
                   {}});
}

// Per key: every value 0..per_key-1 is present, and the last occurrences are in order (the
// order a consumer ends up with; earlier copies are duplicates from retries).
void expect_complete_and_ordered(const std::vector<Message>& messages, int keys, int per_key) {
  std::map<std::string, std::vector<int>> by_key;
  for (const auto& m : messages) by_key[*m.key].push_back(std::stoi(*m.value));
  ASSERT_EQ(by_key.size(), static_cast<size_t>(keys));
  for (auto& [key, values] : by_key) {
    std::vector<int> last_order;
    std::set<int> seen;
    for (auto it = values.rbegin(); it != values.rend(); ++it)
      if (seen.insert(*it).second) last_order.push_back(*it);
    std::reverse(last_order.begin(), last_order.end());
    ASSERT_EQ(last_order.size(), static_cast<size_t>(per_key)) << key << ": records lost";
    for (int i = 0; i < per_key; ++i) ASSERT_EQ(last_order[i], i) << key << ": out of order";
  }
}

TEST(KafkaSinkMock, BrokerDownThenUp_EveryRecordDeliveredInOrderPerKey) {
  MockCluster cluster(1);
  const std::string topic = "p2k-mock-outage";
  cluster.create_topic(topic, 3);
  FakeHost host;
  auto sink = make_sink(host, cluster.bootstraps(),
                        {{"message_timeout", "1500"},
                         {"request_timeout", "2000"},
                         {"rdkafka.reconnect.backoff.max.ms", "500"}});
  sink->open();
  sink->prepare_topic(topic);

  constexpr int kKeys = 10, kPerKey = 40;
  Records records;
  uint64_t position = 0;
  add_keyed(records, topic, kKeys, kPerKey, position);
  MiniHost mini(*sink, host, records);
  mini.write_range(1, 200);
  mini.run_for(milliseconds(300));
  rd_kafka_mock_broker_set_down(cluster.get(), 1);
  mini.write_range(201, 400);
  // Long enough for messages to time out and be written again while the broker is down.
  mini.run_for(milliseconds(2500));
  rd_kafka_mock_broker_set_up(cluster.get(), 1);
  ASSERT_TRUE(mini.run_until_all_ok(seconds(60)))
      << mini.acknowledged() << " of " << records.size() << " delivered";
  EXPECT_GT(mini.rewrites(), 0u) << "the outage should have made the sink report RETRY";
  ASSERT_TRUE(sink->flush(seconds(10)));

  auto messages = read_topic(cluster.bootstraps(), topic, records.size());
  expect_complete_and_ordered(messages, kKeys, kPerKey);
}

TEST(KafkaSinkMock, InjectedRetriableErrors_AreRetriedWithoutLossOrDuplicates) {
  MockCluster cluster(1);
  const std::string topic = "p2k-mock-retriable";
  cluster.create_topic(topic, 1);
  FakeHost host;
  auto sink = make_sink(host, cluster.bootstraps());
  sink->open();
  sink->prepare_topic(topic);
  rd_kafka_mock_push_request_errors(
      cluster.get(), kProduceApi, 4, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
      RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
      RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND);
  Records records;
  uint64_t position = 0;
  add_keyed(records, topic, 1, 100, position);
  MiniHost mini(*sink, host, records);
  mini.write_range(1, 50);
  mini.write_range(51, 100);
  ASSERT_TRUE(mini.run_until_all_ok(seconds(30)));
  EXPECT_EQ(mini.rewrites(), 0u) << "librdkafka retries these itself";

  auto messages = read_topic(cluster.bootstraps(), topic, 100);
  ASSERT_EQ(messages.size(), 100u) << "idempotence: no duplicates from internal retries";
  for (int i = 0; i < 100; ++i) EXPECT_EQ(*messages[i].value, std::to_string(i));
}

TEST(KafkaSinkMock, AuthorizationError_IsFatalWithAClearMessage) {
  MockCluster cluster(1);
  const std::string topic = "p2k-mock-authz";
  cluster.create_topic(topic, 1);
  FakeHost host;
  auto sink = make_sink(host, cluster.bootstraps());
  sink->open();
  sink->prepare_topic(topic);
  rd_kafka_mock_push_request_errors(cluster.get(), kProduceApi, 1,
                                    RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
  Records records;
  for (uint64_t p = 1; p <= 5; ++p)
    records.add({p, topic, "k", std::to_string(p), 0, "id-" + std::to_string(p), {}});
  auto view = records.view(0, 5);
  sink->write(view);
  ASSERT_TRUE(sink->flush(seconds(30)));
  auto by = host.reports_by_position();
  for (uint64_t p = 1; p <= 5; ++p) ASSERT_EQ(by[p].size(), 1u) << "position " << p;
  ASSERT_EQ(by[1][0].status, P2K_FATAL) << by[1][0].message;
  EXPECT_NE(lower(by[1][0].message).find("authorization"), std::string::npos) << by[1][0].message;
  EXPECT_NE(by[1][0].message.find("WRITE"), std::string::npos) << by[1][0].message;
  for (uint64_t p = 2; p <= 5; ++p) EXPECT_NE(by[p][0].status, P2K_OK) << "after a FATAL record";
}

TEST(KafkaSinkMock, IdempotentProducerFatalError_IsFatalAndNothingIsReportedOk) {
  MockCluster cluster(1);
  const std::string topic = "p2k-mock-fatal";
  cluster.create_topic(topic, 1);
  FakeHost host;
  // The producer id is requested when the producer starts: refuse it.
  rd_kafka_mock_push_request_errors(cluster.get(), kInitProducerIdApi, 1,
                                    RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED);
  auto sink = make_sink(host, cluster.bootstraps());
  sink->open();
  sink->prepare_topic(topic);
  Records records;
  for (uint64_t p = 1; p <= 3; ++p)
    records.add({p, topic, "k", std::to_string(p), 0, "id-" + std::to_string(p), {}});

  // Depending on timing the fatal error is known at write (the call fails) or arrives with the
  // delivery reports; either way it is FATAL, explained, and nothing is reported OK.
  std::string message;
  auto deadline = Clock::now() + seconds(10);
  while (message.empty() && Clock::now() < deadline) {
    auto view = records.view(0, 3);
    try {
      sink->write(view);
      ASSERT_TRUE(sink->flush(seconds(30)));
      auto reports = host.take_reports();
      ASSERT_EQ(reports.size(), 3u);
      for (const auto& r : reports) {
        ASSERT_NE(r.status, P2K_OK);
        if (r.status == P2K_FATAL) message = r.message;
      }
    } catch (const pg2kafka::sdk::FatalError& e) {
      message = e.what();
    }
  }
  EXPECT_NE(message.find("fatal"), std::string::npos) << message;
  EXPECT_NE(message.find("CLUSTER_AUTHORIZATION_FAILED"), std::string::npos) << message;
  // Once fatal, later writes fail at once.
  auto view = records.view(0, 1);
  EXPECT_THROW(sink->write(view), pg2kafka::sdk::FatalError);
}

TEST(KafkaSinkMock, BrokerRefusesRecordAsTooLarge_IsFatalNamingTheEvent) {
  MockCluster cluster(1);
  const std::string topic = "p2k-mock-too-large";
  cluster.create_topic(topic, 1);
  FakeHost host;
  // The mock cluster does not answer DescribeConfigs: do not wait long for the topic's limit.
  auto sink = make_sink(host, cluster.bootstraps(), {{"request_timeout", "500"}});
  sink->open();
  sink->prepare_topic(topic);
  rd_kafka_mock_push_request_errors(cluster.get(), kProduceApi, 1,
                                    RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
  Records records;
  records.add({1, topic, "k", std::string(3000, 'z'), 0, "9e7c-large-event-id", {}});
  auto view = records.view(0, 1);
  sink->write(view);
  ASSERT_TRUE(sink->flush(seconds(30)));
  auto reports = host.reports();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].status, P2K_FATAL);
  EXPECT_NE(reports[0].message.find("9e7c-large-event-id"), std::string::npos)
      << reports[0].message;
  EXPECT_NE(reports[0].message.find("max.message.bytes"), std::string::npos) << reports[0].message;
  EXPECT_NE(reports[0].message.find("stays in the source"), std::string::npos)
      << reports[0].message;
}

// Since ABI 1.1 the sink reports each outcome as it happened and the host keeps the per-key order:
// A fails (its partition's leader is down until the message times out), B of the same key is
// written before A is written again and stored once the leader is back. The sink reports B OK
// (it no longer turns it into RETRY); the host, seeing A's RETRY, writes A and B again in order.
TEST(KafkaSinkMock, RecordAfterAFailedOne_IsReportedAsItHappened_AndTheHostWritesItAgainBehind) {
  MockCluster cluster(1);
  const std::string topic = "p2k-mock-order";
  cluster.create_topic(topic, 1);
  FakeHost host;
  auto sink = make_sink(host, cluster.bootstraps(),
                        {{"message_timeout", "1000"},
                         {"request_timeout", "3000"},
                         {"rdkafka.reconnect.backoff.max.ms", "500"}});
  sink->open();
  sink->prepare_topic(topic);
  Records records;
  records.add({1, topic, "key", "A", 0, "id-A", {}});
  records.add({2, topic, "key", "B", 0, "id-B", {}});
  MiniHost mini(*sink, host, records);

  rd_kafka_mock_broker_set_down(cluster.get(), 1);
  mini.write_range(1, 1);
  ASSERT_TRUE(wait_for_reports(*sink, host, 1, seconds(20)));
  auto a = host.reports();
  ASSERT_EQ(a[0].status, P2K_RETRY) << a[0].message;
  EXPECT_NE(a[0].message.find("id-A"), std::string::npos) << "names the event: " << a[0].message;

  rd_kafka_mock_broker_set_up(cluster.get(), 1);
  mini.write_range(2, 2);  // written before A is written again
  ASSERT_TRUE(wait_for_reports(*sink, host, 2, seconds(20)));
  auto reports = host.reports();
  EXPECT_EQ(reports[1].position, 2u);
  EXPECT_EQ(reports[1].status, P2K_OK) << "the sink reports what happened: " << reports[1].message;

  ASSERT_TRUE(mini.run_until_all_ok(seconds(30)));
  auto stored = read_topic(cluster.bootstraps(), topic, 3);
  std::vector<std::string> values;
  for (const auto& m : stored) values.push_back(*m.value);
  EXPECT_EQ(values, (std::vector<std::string>{"B", "A", "B"}))
      << "B was stored before A, then again behind it";
}

// ---- health (ABI 1.3) ----

// The pipeline is idle (no sink operation is called): the sink learns by itself that the broker
// went down and came back, from librdkafka's errors and statistics, or, with the statistics off,
// from its errors and a metadata request now and then.
void expect_health_follows_the_broker(const std::string& statistics_interval) {
  MockCluster cluster(1);
  const std::string topic = "p2k-mock-health";
  cluster.create_topic(topic, 1);
  FakeHost host;
  auto sink = make_sink(host, cluster.bootstraps(),
                        {{"statistics_interval", statistics_interval},
                         {"request_timeout", "2000"},
                         {"rdkafka.reconnect.backoff.max.ms", "500"}});
  sink->open();
  sink->prepare_topic(topic);
  auto ready = sink->health();
  ASSERT_TRUE(ready.ready) << ready.message;

  rd_kafka_mock_broker_set_down(cluster.get(), 1);
  auto down = wait_for_health(*sink, is_not_ready, seconds(30));
  ASSERT_FALSE(down.ready) << "still ready 30 s after the broker went down: " << down.message;
  EXPECT_NE(down.message.find("no Kafka broker reachable for"), std::string::npos) << down.message;
  EXPECT_NE(down.message.find(cluster.bootstraps()), std::string::npos)
      << "names the broker: " << down.message;
  if (statistics_interval != "0") {
    Scrape s = wait_for_scrape(*sink, [](const Scrape& s) {
      auto up = s.with_prefix("broker_up");
      return up.size() == 1 && up[0].value == 0;
    });
    auto up = s.with_prefix("broker_up");
    ASSERT_EQ(up.size(), 1u) << s.text;
    EXPECT_EQ(up[0].value, 0) << s.text;
  }

  rd_kafka_mock_broker_set_up(cluster.get(), 1);
  auto back = wait_for_health(*sink, is_ready, seconds(30));
  EXPECT_TRUE(back.ready) << "not ready 30 s after the broker came back: " << back.message;
  if (statistics_interval == "0") {
    EXPECT_TRUE(scrape(*sink).samples.empty());
  }

  // And the sink delivers again.
  Records records;
  records.add({1, topic, "k", "v", 0, "id-1", {}});
  auto view = records.view(0, 1);
  sink->write(view);
  ASSERT_TRUE(sink->flush(seconds(30)));
  ASSERT_EQ(host.reports().size(), 1u);
  EXPECT_EQ(host.reports()[0].status, P2K_OK) << host.reports()[0].message;
}

TEST(KafkaSinkMock, Health_BrokerDownThenUp_NotReadyThenReadyAgain) {
  expect_health_follows_the_broker("200ms");
}

TEST(KafkaSinkMock, Health_WithStatisticsOff_StillFollowsTheBroker) {
  expect_health_follows_the_broker("0");
}

// Records that time out while the broker is down are counted by librdkafka's error name, so an
// operator sees why records are retried.
TEST(KafkaSinkMock, DeliveryErrors_AreCountedByErrorName) {
  MockCluster cluster(1);
  const std::string topic = "p2k-mock-delivery-errors";
  cluster.create_topic(topic, 1);
  FakeHost host;
  auto sink = make_sink(host, cluster.bootstraps(),
                        {{"message_timeout", "500"},
                         {"request_timeout", "2000"},
                         {"rdkafka.reconnect.backoff.max.ms", "500"}});
  sink->open();
  sink->prepare_topic(topic);
  rd_kafka_mock_broker_set_down(cluster.get(), 1);
  Records records;
  for (uint64_t p = 1; p <= 3; ++p)
    records.add({p, topic, "k", std::to_string(p), 0, "id-" + std::to_string(p), {}});
  auto view = records.view(0, 3);
  sink->write(view);
  ASSERT_TRUE(wait_for_reports(*sink, host, 3, seconds(20)));
  for (const auto& r : host.reports()) ASSERT_EQ(r.status, P2K_RETRY) << r.message;
  Scrape s = scrape(*sink);
  EXPECT_TRUE(s.warnings.empty()) << s.warnings.front();
  const Sample* timed_out = s.find("delivery_errors_total", {{"error", "_MSG_TIMED_OUT"}});
  ASSERT_NE(timed_out, nullptr) << s.text;
  EXPECT_EQ(timed_out->value, 3);
  EXPECT_EQ(timed_out->type, P2K_METRIC_COUNTER);
  rd_kafka_mock_broker_set_up(cluster.get(), 1);
}

}  // namespace
