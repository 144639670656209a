// The kafka sink's metrics and health without a broker: reading librdkafka's statistics
// (kafka_stats), the figures written from them, and the readiness rules (sink_health). The same
// against a real broker is in sink_broker_test.cpp, with broker failures in sink_mock_test.cpp.
#include <gtest/gtest.h>

#include <string>

#include "kafka_stats.hpp"
#include "sink_health.hpp"
#include "sink_test_util.hpp"

namespace {

using namespace p2k_test::kafka;
using pg2kafka::kafka::parse_statistics;
using pg2kafka::kafka::SinkHealth;
using pg2kafka::kafka::Statistics;
using pg2kafka::kafka::StatisticsMetrics;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

// A producer's statistics as librdkafka 2.0.2 emits them (shortened: one topic, no request type
// counters), with a bootstrap broker, the broker learned from the metadata, and the internal one.
constexpr const char* kSample = R"({
  "name": "pg2kafka#producer-1", "client_id": "pg2kafka", "type": "producer",
  "ts": 2938474722, "time": 1700000000, "age": 5004213, "replyq": 0,
  "msg_cnt": 3, "msg_size": 900, "msg_max": 100000, "msg_size_max": 1073741824,
  "simple_cnt": 0, "metadata_cache_cnt": 1,
  "brokers": {
    "127.0.0.1:39092/bootstrap": {
      "name": "127.0.0.1:39092/bootstrap", "nodeid": -1, "nodename": "127.0.0.1:39092",
      "source": "configured", "state": "INIT", "stateage": 4901311,
      "outbuf_cnt": 0, "outbuf_msg_cnt": 0, "waitresp_cnt": 0, "waitresp_msg_cnt": 0,
      "tx": 2, "txbytes": 120, "txerrs": 0, "txretries": 0, "txidle": -1, "req_timeouts": 0,
      "rx": 2, "rxbytes": 1500, "rxerrs": 0, "rxcorriderrs": 0, "rxpartial": 0, "rxidle": -1,
      "zbuf_grow": 0, "buf_grow": 0, "wakeups": 12, "connects": 1, "disconnects": 1,
      "int_latency": {"min": 0, "max": 0, "avg": 0, "sum": 0, "stddev": 0, "p50": 0, "p75": 0,
                      "p90": 0, "p95": 0, "p99": 0, "p99_99": 0, "outofrange": 0,
                      "hdrsize": 11376, "cnt": 0},
      "rtt": {"min": 0, "max": 0, "avg": 0, "sum": 0, "stddev": 0, "p50": 0, "p75": 0, "p90": 0,
              "p95": 0, "p99": 0, "p99_99": 0, "outofrange": 0, "hdrsize": 13424, "cnt": 0},
      "throttle": {"min": 0, "max": 0, "avg": 0, "sum": 0, "stddev": 0, "p50": 0, "p75": 0,
                   "p90": 0, "p95": 0, "p99": 0, "p99_99": 0, "outofrange": 0,
                   "hdrsize": 17520, "cnt": 0},
      "req": {"Produce": 0, "Metadata": 2, "ApiVersion": 1},
      "toppars": {}
    },
    "127.0.0.1:39092/1": {
      "name": "127.0.0.1:39092/1", "nodeid": 1, "nodename": "127.0.0.1:39092",
      "source": "learned", "state": "UP", "stateage": 4890211,
      "outbuf_cnt": 1, "outbuf_msg_cnt": 3, "waitresp_cnt": 2, "waitresp_msg_cnt": 5,
      "tx": 57, "txbytes": 28311, "txerrs": 4, "txretries": 2, "txidle": 10234,
      "req_timeouts": 1, "rx": 55, "rxbytes": 5023, "rxerrs": 0, "rxcorriderrs": 0,
      "rxpartial": 0, "rxidle": 10110, "zbuf_grow": 0, "buf_grow": 0, "wakeups": 301,
      "connects": 3, "disconnects": 2,
      "int_latency": {"min": 12, "max": 480, "avg": 66, "sum": 3300, "stddev": 40, "p50": 55,
                      "p75": 70, "p90": 120, "p95": 200, "p99": 470, "p99_99": 480,
                      "outofrange": 0, "hdrsize": 11376, "cnt": 50},
      "outbuf_latency": {"min": 5, "max": 40, "avg": 11, "sum": 550, "stddev": 4, "p50": 10,
                         "p75": 12, "p90": 16, "p95": 20, "p99": 39, "p99_99": 40,
                         "outofrange": 0, "hdrsize": 11376, "cnt": 50},
      "rtt": {"min": 900, "max": 8200, "avg": 1750, "sum": 87500, "stddev": 800, "p50": 1500,
              "p75": 1900, "p90": 2600, "p95": 3100, "p99": 8191, "p99_99": 8200,
              "outofrange": 0, "hdrsize": 13424, "cnt": 49},
      "throttle": {"min": 0, "max": 0, "avg": 0, "sum": 0, "stddev": 0, "p50": 0, "p75": 0,
                   "p90": 0, "p95": 0, "p99": 0, "p99_99": 0, "outofrange": 0,
                   "hdrsize": 17520, "cnt": 50},
      "req": {"Produce": 50, "Metadata": 5, "ApiVersion": 1, "InitProducerId": 1},
      "toppars": {"orders-0": {"topic": "orders", "partition": 0}}
    },
    ":0/internal": {
      "name": ":0/internal", "nodeid": -1, "nodename": "", "source": "internal",
      "state": "UP", "stateage": 5003811, "outbuf_cnt": 0, "outbuf_msg_cnt": 0,
      "waitresp_cnt": 0, "waitresp_msg_cnt": 0, "tx": 0, "txbytes": 0, "txerrs": 0,
      "txretries": 0, "txidle": -1, "req_timeouts": 0, "rx": 0, "rxbytes": 0, "rxerrs": 0,
      "rxcorriderrs": 0, "rxpartial": 0, "rxidle": -1, "zbuf_grow": 0, "buf_grow": 0,
      "wakeups": 4, "connects": 0, "disconnects": 0, "toppars": {}
    }
  },
  "topics": {
    "orders": {"topic": "orders", "age": 4890, "metadata_age": 4880,
               "batchsize": {"min": 99, "max": 2970, "avg": 640, "sum": 32000, "cnt": 50},
               "batchcnt": {"min": 1, "max": 30, "avg": 6, "sum": 300, "cnt": 50},
               "partitions": {}}
  },
  "tx": 59, "tx_bytes": 28431, "rx": 57, "rx_bytes": 6523,
  "txmsgs": 297, "txmsg_bytes": 89100, "rxmsgs": 0, "rxmsg_bytes": 0,
  "eos": {"idemp_state": "Assigned", "idemp_stateage": 4870, "txn_state": "Init",
          "txn_stateage": 5003, "txn_may_enq": false, "producer_id": 1000, "producer_epoch": 0,
          "epoch_cnt": 1}
})";

// kSample with `from` replaced by `to` (once).
std::string sample_with(const std::string& from, const std::string& to) {
  std::string s = kSample;
  auto at = s.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) s.replace(at, from.size(), to);
  return s;
}

Scrape written(const StatisticsMetrics& m, Clock::time_point now) {
  return collect([&](pg2kafka::sdk::MetricWriter& w) { m.write(w, now); });
}

double value(const Scrape& s, const std::string& name,
             const std::map<std::string, std::string>& labels = {}) {
  const Sample* sample = s.find(name, labels);
  EXPECT_NE(sample, nullptr) << name << " missing in:\n" << s.text;
  return sample ? sample->value : -1;
}

const std::map<std::string, std::string> kBroker1 = {{"broker", "127.0.0.1:39092/1"}};

// ---- parse_statistics ----

TEST(KafkaStatistics, Parse_ReadsTheClientAndEveryBroker) {
  Statistics s = parse_statistics(kSample);
  EXPECT_EQ(s.ts_us, 2938474722);
  EXPECT_EQ(s.msg_cnt, 3);
  EXPECT_EQ(s.msg_size, 900);
  EXPECT_EQ(s.msg_max, 100000);
  EXPECT_EQ(s.msg_size_max, 1073741824);
  EXPECT_EQ(s.txmsgs, 297u);
  EXPECT_EQ(s.txmsg_bytes, 89100u);
  ASSERT_EQ(s.brokers.size(), 3u);
  const pg2kafka::kafka::BrokerStatistics* learned = nullptr;
  for (const auto& b : s.brokers)
    if (b.nodeid == 1) learned = &b;
  ASSERT_NE(learned, nullptr);
  EXPECT_EQ(learned->name, "127.0.0.1:39092/1");
  EXPECT_EQ(learned->source, "learned");
  EXPECT_TRUE(learned->up());
  EXPECT_EQ(learned->outbuf_cnt, 1);
  EXPECT_EQ(learned->waitresp_cnt, 2);
  EXPECT_EQ(learned->tx, 57u);
  EXPECT_EQ(learned->txerrs, 4u);
  EXPECT_EQ(learned->txretries, 2u);
  EXPECT_EQ(learned->req_timeouts, 1u);
  EXPECT_EQ(learned->connects, 3u);
  EXPECT_EQ(learned->disconnects, 2u);
  EXPECT_EQ(learned->rtt_cnt, 49);
  EXPECT_EQ(learned->rtt_avg_us, 1750);
  EXPECT_EQ(learned->rtt_p99_us, 8191);
  EXPECT_EQ(s.learned_total(), 1);
  EXPECT_EQ(s.learned_up(), 1);
  EXPECT_TRUE(s.any_up());
}

TEST(KafkaStatistics, Parse_InternalBrokerUp_IsNotABrokerUp) {
  Statistics s = parse_statistics(sample_with(R"("source": "learned", "state": "UP")",
                                              R"("source": "learned", "state": "DOWN")"));
  EXPECT_EQ(s.learned_up(), 0);
  EXPECT_FALSE(s.any_up()) << "only the internal pseudo-broker is UP";
}

TEST(KafkaStatistics, Parse_MalformedOrPartial_IsRefusedNamingTheProblem) {
  auto error = [](const std::string& text) -> std::string {
    try {
      parse_statistics(text);
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "";
  };
  std::string sample = kSample;
  EXPECT_NE(error("").find("not JSON"), std::string::npos);
  EXPECT_NE(error(sample.substr(0, sample.size() / 2)).find("not JSON"), std::string::npos)
      << "a truncated text";
  EXPECT_NE(error("[1, 2]").find("not a JSON object"), std::string::npos);
  EXPECT_NE(error(R"({"brokers": {}})").find("\"ts\""), std::string::npos);
  EXPECT_NE(error(R"({"ts": 1})").find("\"brokers\""), std::string::npos);
  EXPECT_NE(error(R"({"ts": 1, "brokers": []})").find("\"brokers\" is not an object"),
            std::string::npos);
  EXPECT_NE(error(sample_with(R"("txerrs": 4)", R"("txerrs": "4")")).find("\"txerrs\""),
            std::string::npos);
  EXPECT_NE(error(sample_with(R"("state": "UP", "stateage": 4890211)", R"("state": 1)"))
                .find("127.0.0.1:39092/1"),
            std::string::npos)
      << "names the broker";
  // What every emission has is enough; the rest reads as 0.
  Statistics minimal = parse_statistics(R"({"ts": 5, "brokers": {}})");
  EXPECT_EQ(minimal.msg_cnt, 0);
  EXPECT_TRUE(minimal.brokers.empty());
}

// ---- StatisticsMetrics ----

TEST(KafkaStatistics, Metrics_BeforeTheFirstStatistics_AreAbsent) {
  StatisticsMetrics m;
  EXPECT_TRUE(m.empty());
  EXPECT_TRUE(written(m, Clock::now()).samples.empty());
}

TEST(KafkaStatistics, Metrics_AreTheFiguresOfTheLatestStatistics_InBaseUnits) {
  StatisticsMetrics m;
  auto t0 = Clock::now();
  m.update(parse_statistics(kSample), t0);
  Scrape s = written(m, t0 + milliseconds(2500));
  EXPECT_TRUE(s.warnings.empty()) << s.warnings.front();
  EXPECT_TRUE(s.convention_problems().empty()) << s.convention_problems().front();

  EXPECT_DOUBLE_EQ(value(s, "statistics_age_seconds"), 2.5);
  EXPECT_EQ(value(s, "queue_messages"), 3);
  EXPECT_EQ(value(s, "queue_bytes"), 900);
  EXPECT_EQ(value(s, "queue_max_messages"), 100000);
  EXPECT_EQ(value(s, "queue_max_bytes"), 1073741824);
  EXPECT_EQ(value(s, "transmitted_messages_total"), 297);
  EXPECT_EQ(value(s, "transmitted_bytes_total"), 89100);

  EXPECT_EQ(value(s, "broker_up", kBroker1), 1);
  EXPECT_DOUBLE_EQ(value(s, "broker_rtt_seconds", kBroker1), 0.00175);
  EXPECT_DOUBLE_EQ(value(s, "broker_rtt_p99_seconds", kBroker1), 0.008191);
  EXPECT_EQ(value(s, "broker_requests_in_flight", kBroker1), 3);
  EXPECT_EQ(value(s, "broker_requests_total", kBroker1), 57);
  EXPECT_EQ(value(s, "broker_transmit_errors_total", kBroker1), 4);
  EXPECT_EQ(value(s, "broker_transmit_retries_total", kBroker1), 2);
  EXPECT_EQ(value(s, "broker_request_timeouts_total", kBroker1), 1);
  EXPECT_EQ(value(s, "broker_connects_total", kBroker1), 3);
  EXPECT_EQ(value(s, "broker_disconnects_total", kBroker1), 2);

  // The bootstrap and internal pseudo-brokers are left out.
  for (const auto& sample : s.samples) {
    if (sample.labels.count("broker")) {
      EXPECT_EQ(sample.labels.at("broker"), "127.0.0.1:39092/1");
    }
  }
  EXPECT_NE(s.text.find("pg2kafka_kafka_broker_up{broker=\"127.0.0.1:39092/1\"} 1"),
            std::string::npos)
      << s.text;
  EXPECT_NE(s.text.find("# TYPE pg2kafka_kafka_transmitted_messages_total counter"),
            std::string::npos)
      << s.text;
}

TEST(KafkaStatistics, Metrics_RoundTripTime_IsThatOfTheLastIntervalWithRequests) {
  StatisticsMetrics m;
  auto t0 = Clock::now();
  m.update(parse_statistics(kSample), t0);
  // An idle interval: librdkafka's window has no sample and reports 0.
  m.update(parse_statistics(
               sample_with(R"("hdrsize": 13424, "cnt": 49)", R"("hdrsize": 13424, "cnt": 0)")),
           t0 + seconds(5));
  Scrape s = written(m, t0 + seconds(5));
  EXPECT_DOUBLE_EQ(value(s, "broker_rtt_seconds", kBroker1), 0.00175);
}

TEST(KafkaStatistics, Metrics_CountersNeverGoDown_WhenTheClientIsCreatedAgain) {
  StatisticsMetrics m;
  auto t0 = Clock::now();
  m.update(parse_statistics(kSample), t0);  // txmsgs 297, txerrs 4
  // The sink opens again: a new client counts from 0.
  m.new_client();
  m.update(parse_statistics(sample_with(R"("txmsgs": 297)", R"("txmsgs": 10)")), t0 + seconds(1));
  Scrape s1 = written(m, t0 + seconds(1));
  EXPECT_EQ(value(s1, "transmitted_messages_total"), 307);
  EXPECT_EQ(value(s1, "broker_transmit_errors_total", kBroker1), 8) << "4 before, 4 now";

  // A counter lower than its last value without new_client: a restart all the same.
  m.update(parse_statistics(sample_with(R"("txmsgs": 297)", R"("txmsgs": 2)")), t0 + seconds(2));
  Scrape s2 = written(m, t0 + seconds(2));
  EXPECT_EQ(value(s2, "transmitted_messages_total"), 309);
  for (const auto& a : s1.samples) {
    if (a.type != P2K_METRIC_COUNTER) continue;
    const Sample* b = s2.find(a.name, a.labels);
    ASSERT_NE(b, nullptr) << a.name;
    EXPECT_GE(b->value, a.value) << a.name;
  }
}

// ---- SinkHealth ----

TEST(KafkaSinkHealth, BeforeOpen_WhileOpening_AfterAFailedOpen_AndAfterClose_NotReady) {
  SinkHealth h("kafka-1:9092");
  auto now = Clock::now();
  auto r = h.health(now);
  EXPECT_FALSE(r.ready);
  EXPECT_NE(r.message.find("not connected yet"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("kafka-1:9092"), std::string::npos) << r.message;
  h.opening();
  EXPECT_FALSE(h.health(now).ready);
  h.open_failed("cannot reach Kafka at kafka-1:9092 within 1000 ms: Connection refused", true);
  r = h.health(now);
  EXPECT_FALSE(r.ready);
  EXPECT_NE(r.message.find("Connection refused"), std::string::npos) << r.message;
  h.opening();  // tried again: the last failure stays the reason
  EXPECT_NE(h.health(now).message.find("Connection refused"), std::string::npos);
  h.opened();
  r = h.health(now);
  EXPECT_TRUE(r.ready) << r.message;
  EXPECT_NE(r.message.find("connected to Kafka at kafka-1:9092"), std::string::npos) << r.message;
  h.closed();
  EXPECT_FALSE(h.health(now).ready);
}

TEST(KafkaSinkHealth, AllBrokersDown_IsNotReadyAfterTheGrace_NamingTheBrokerAndTheFix) {
  SinkHealth h("kafka-1:9092");
  h.opened();
  auto t0 = Clock::now();
  EXPECT_FALSE(h.probe_wanted());
  h.broker_error(RD_KAFKA_RESP_ERR__TRANSPORT,
                 "kafka-1:9092/1: Connect to ipv4#10.0.0.1:9092 failed: Connection refused "
                 "(after 0ms in state CONNECT)",
                 t0);
  EXPECT_TRUE(h.probe_wanted()) << "a failed connection: is any broker reachable?";
  h.broker_error(RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN, "1/1 brokers are down", t0);
  EXPECT_TRUE(h.probe_wanted());
  auto during = h.health(t0 + seconds(1));
  EXPECT_TRUE(during.ready) << "within the grace: " << during.message;
  EXPECT_NE(during.message.find("reconnecting"), std::string::npos) << during.message;
  auto after = h.health(t0 + SinkHealth::kDownGrace + seconds(9));
  EXPECT_FALSE(after.ready);
  EXPECT_EQ(after.message,
            "no Kafka broker reachable for 12 s (kafka-1:9092/1: Connect to ipv4#10.0.0.1:9092 "
            "failed: Connection refused): check that the brokers run and that bootstrap_servers "
            "(kafka-1:9092) names them");
  // A confirmed delivery (or an answered probe) ends it.
  h.reachable();
  EXPECT_TRUE(h.health(t0 + seconds(20)).ready);
  EXPECT_FALSE(h.probe_wanted());
}

TEST(KafkaSinkHealth, OneFailedConnection_WhileAnotherBrokerAnswers_StaysReady) {
  SinkHealth h("kafka-1:9092,kafka-2:9092");
  h.opened();
  auto t0 = Clock::now();
  h.broker_error(RD_KAFKA_RESP_ERR__TRANSPORT, "kafka-2:9092/2: Disconnected", t0);
  EXPECT_TRUE(h.health(t0 + seconds(1)).ready);
  h.reachable();  // the probe: another broker answered
  EXPECT_FALSE(h.probe_wanted());
  EXPECT_TRUE(h.health(t0 + seconds(60)).ready);
}

TEST(KafkaSinkHealth, Statistics_TellWhetherABrokerIsUp) {
  SinkHealth h("kafka-1:9092,kafka-2:9092");
  h.opened();
  auto t0 = Clock::now();
  h.brokers_seen(true, 2, 3, t0);
  auto r = h.health(t0);
  EXPECT_TRUE(r.ready);
  EXPECT_EQ(r.message, "connected to 2 of 3 Kafka brokers");
  h.brokers_seen(false, 0, 3, t0 + seconds(1));
  EXPECT_TRUE(h.health(t0 + seconds(2)).ready) << "within the grace";
  r = h.health(t0 + seconds(10));
  EXPECT_FALSE(r.ready);
  EXPECT_NE(r.message.find("no Kafka broker reachable for 9 s (every broker is down)"),
            std::string::npos)
      << r.message;
  h.brokers_seen(true, 1, 3, t0 + seconds(11));
  EXPECT_TRUE(h.health(t0 + seconds(11)).ready);
}

TEST(KafkaSinkHealth, AuthenticationFailure_IsNotReadyAtOnce_UntilABrokerAnswers) {
  SinkHealth h("kafka-1:9093");
  h.opened();
  auto t0 = Clock::now();
  h.broker_error(RD_KAFKA_RESP_ERR__AUTHENTICATION,
                 "sasl_ssl://kafka-1:9093/1: SASL authentication error: Authentication failed", t0);
  auto r = h.health(t0);
  EXPECT_FALSE(r.ready);
  EXPECT_NE(r.message.find("cannot authenticate"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("rdkafka.sasl"), std::string::npos) << r.message;
  EXPECT_TRUE(h.probe_wanted());
  h.reachable();
  EXPECT_TRUE(h.health(t0).ready);
}

TEST(KafkaSinkHealth, FatalProducerError_IsNotReadyForGood) {
  SinkHealth h("kafka-1:9092");
  h.opened();
  h.fatal("the Kafka producer failed fatally and cannot continue: ...");
  h.reachable();
  h.brokers_seen(true, 1, 1, Clock::now());
  auto r = h.health(Clock::now());
  EXPECT_FALSE(r.ready);
  EXPECT_NE(r.message.find("fatally"), std::string::npos) << r.message;
  EXPECT_FALSE(h.probe_wanted());
}

}  // namespace
