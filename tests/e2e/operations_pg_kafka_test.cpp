// Operations against a real PostgreSQL and a real Kafka broker: /metrics during a run (the queue
// drains, acknowledged equals written, lag age rises while the broker is down and falls after),
// /readyz (503 while the broker is down, 200 after; a standby says standby), and `pg2kafka
// status` against a real database in both formats.
#include <gtest/gtest.h>
#include <signal.h>

#include <boost/json.hpp>

#include <fstream>
#include <functional>
#include <thread>

#include "kafka_test_util.hpp"
#include "pg_test_support.hpp"
#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using p2k_test::Background;
using p2k_test::http_get;
using p2k_test::metric_sample;

// A Kafka broker of this test's own (kafka_fixture.sh in a directory of its own), so that it can
// be frozen (SIGSTOP: a broker that stops answering) without disturbing the other tests.
class PrivateBroker {
 public:
  PrivateBroker() {
    script_ = p2k_test::ctest_env("P2K_SOURCE_DIR") + "/tests/support/kafka/kafka_fixture.sh";
    auto r = p2k_test::run({script_, "start", dir_.path().string()}, {}, 180s);
    if (r.exit_code != 0) throw std::runtime_error("cannot start a broker:\n" + r.err);
    for (const auto& line : p2k_test::lines(p2k_test::read_file(dir_.path() / "kafka.env")))
      if (line.rfind("P2K_TEST_KAFKA_BROKERS=", 0) == 0) brokers_ = line.substr(23);
    pid_ = std::stoi(p2k_test::read_file(dir_.path() / "kafka" / "kafka.pid"));
  }
  ~PrivateBroker() {
    kill(pid_, SIGCONT);
    p2k_test::run({script_, "stop", dir_.path().string()}, {}, 60s);
  }
  const std::string& brokers() const { return brokers_; }
  void freeze() const { kill(pid_, SIGSTOP); }
  void thaw() const { kill(pid_, SIGCONT); }

 private:
  p2k_test::TempDir dir_;
  std::string script_, brokers_;
  int pid_ = 0;
};

class OperationsPgKafka : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = std::make_unique<p2k_pg_test::TestDatabase>();
    db_->sql().exec("CREATE TABLE t (id bigint PRIMARY KEY, v text)");
    db_->sql().exec("SELECT pg2kafka.setup('t', 'id')");
  }

  void insert(int from, int to) {
    db_->sql().exec("INSERT INTO t SELECT g, md5(g::text) FROM generate_series(" +
                    std::to_string(from) + ", " + std::to_string(to) + ") g");
  }

  std::string config(const std::string& brokers, const std::string& extra_source = "",
                     const std::string& name = "pipeline.json") {
    return dir_.write(name, R"({
      "source": {"plugin": "pg-outbox", "options": {
        "connection": ")" + db_->url() +
                                R"(", "poll_interval": "200ms",
        "monitor_interval": "1s")" +
                                extra_source +
                                R"(}},
      "sink": {"plugin": "kafka", "options": {"bootstrap_servers": ")" +
                                brokers +
                                R"(", "create_topics": true,
        "rdkafka": {"socket.timeout.ms": 3000, "reconnect.backoff.max.ms": 1000}}},
      "pipeline": {"http.listen": "127.0.0.1:0", "retry.initial_backoff": "50ms",
                   "retry.max_backoff": "1s", "shutdown_timeout": "10s"}})");
  }

  std::unique_ptr<Background> start(const std::string& config_path) {
    return std::make_unique<Background>(std::vector<std::string>{p2k_test::ctest_env("P2K_BINARY"),
                                                                 "run", "--config", config_path});
  }

  // Scrapes `path` until `pred` holds for the answer; fails (with the daemon's log) otherwise.
  p2k_test::HttpAnswer until(Background& daemon, int port, const std::string& path,
                             const std::function<bool(const p2k_test::HttpAnswer&)>& pred,
                             std::chrono::seconds timeout = 60s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    p2k_test::HttpAnswer a;
    while (std::chrono::steady_clock::now() < deadline) {
      a = http_get(port, path);
      if (pred(a)) return a;
      std::this_thread::sleep_for(200ms);
    }
    ADD_FAILURE() << "no answer of " << path << " matched; the last one:\n"
                  << a.status << "\n"
                  << a.body << "\n--- daemon's log:\n"
                  << daemon.err();
    return a;
  }

  std::unique_ptr<p2k_pg_test::TestDatabase> db_;
  p2k_test::TempDir dir_;
};

TEST_F(OperationsPgKafka, MetricsFollowTheQueue_AndReadinessTheBroker) {
  PrivateBroker broker;
  insert(1, 200);
  auto daemon = start(config(broker.brokers()));
  int port = p2k_test::served_port(*daemon, 30s);
  const std::string table = "{table=\"public.t\"}";
  const std::string topic = "{topic=\"pg2kafka." + db_->name() + ".t\"}";

  auto m = until(*daemon, port, "/metrics", [&](const p2k_test::HttpAnswer& a) {
    return metric_sample(a.body, "pg2kafka_records_acknowledged_total") == 200 &&
           metric_sample(a.body, "pg2kafka_pg_outbox_queued_events" + table) == 0;
  });
  EXPECT_EQ(metric_sample(m.body, "pg2kafka_records_delivered_total" + topic), 200);
  EXPECT_EQ(metric_sample(m.body, "pg2kafka_pg_outbox_oldest_event_age_seconds" + table), 0);
  EXPECT_EQ(metric_sample(m.body, "pg2kafka_pg_outbox_drain_lock_held"), 1);
  EXPECT_EQ(metric_sample(m.body, "pg2kafka_pg_outbox_capture_enabled" + table), 1);
  EXPECT_GT(metric_sample(m.body, "pg2kafka_pg_outbox_queue_table_bytes"), 0);
  EXPECT_EQ(metric_sample(m.body, "pg2kafka_pg_outbox_drain_sessions{role=\"active\"}"), 1);
  EXPECT_EQ(metric_sample(m.body, "pg2kafka_delivery_latency_seconds_count"), 200);
  EXPECT_GT(metric_sample(m.body, "pg2kafka_delivery_latency_seconds_sum"), 0);
  EXPECT_EQ(metric_sample(m.body, "pg2kafka_ready"), 1);
  auto lint = p2k_test::run({"promtool", "check", "metrics"}, {}, 30s, m.body);
  EXPECT_EQ(lint.exit_code, 0) << "promtool check metrics:\n" << lint.out << lint.err;
  EXPECT_EQ(http_get(port, "/readyz").status, 200);

  // The broker stops answering: events wait in the queue, their age grows, and /readyz says so.
  broker.freeze();
  insert(201, 250);
  auto r = until(
      *daemon, port, "/readyz",
      [](const p2k_test::HttpAnswer& a) {
        return a.status == 503 && a.body.find("sink 'kafka': not ready") != std::string::npos;
      },
      90s);
  EXPECT_EQ(r.status, 503) << r.body;
  m = until(*daemon, port, "/metrics", [&](const p2k_test::HttpAnswer& a) {
    return metric_sample(a.body, "pg2kafka_pg_outbox_queued_events" + table) == 50 &&
           metric_sample(a.body, "pg2kafka_pg_outbox_oldest_event_age_seconds" + table) > 2;
  });
  double age = metric_sample(m.body, "pg2kafka_pg_outbox_oldest_event_age_seconds" + table);
  m = until(*daemon, port, "/metrics", [&](const p2k_test::HttpAnswer& a) {
    return metric_sample(a.body, "pg2kafka_pg_outbox_oldest_event_age_seconds" + table) > age;
  });
  EXPECT_EQ(metric_sample(m.body, "pg2kafka_records_acknowledged_total"), 200);
  EXPECT_EQ(metric_sample(m.body, "pg2kafka_ready"), 0);

  // It answers again: everything is delivered, the lag falls to zero, ready again.
  broker.thaw();
  m = until(
      *daemon, port, "/metrics",
      [&](const p2k_test::HttpAnswer& a) {
        return metric_sample(a.body, "pg2kafka_records_acknowledged_total") == 250 &&
               metric_sample(a.body, "pg2kafka_pg_outbox_queued_events" + table) == 0;
      },
      120s);
  EXPECT_EQ(metric_sample(m.body, "pg2kafka_pg_outbox_oldest_event_age_seconds" + table), 0);
  until(*daemon, port, "/readyz", [](const p2k_test::HttpAnswer& a) { return a.status == 200; });
  auto messages =
      p2k_test::kafka::read_topic(broker.brokers(), "pg2kafka." + db_->name() + ".t", 250, 60s);
  std::set<std::string> keys;
  for (const auto& msg : messages) keys.insert(msg.key.value_or(""));
  EXPECT_EQ(keys.size(), 250u) << "every row's event reached the topic";

  daemon->signal(SIGTERM);
  EXPECT_EQ(daemon->wait(30s), 0) << daemon->err();
}

TEST_F(OperationsPgKafka, AStandbyInstanceIsReadyAsStandby_NamingTheActiveOne) {
  std::string brokers = p2k_test::kafka::fixture_brokers();
  auto active = start(config(brokers, R"(, "application_name": "p2k-active")", "a.json"));
  int active_port = p2k_test::served_port(*active, 30s);
  until(*active, active_port, "/readyz", [](const p2k_test::HttpAnswer& a) {
    return a.status == 200 &&
           a.body.find("active: this instance holds the drain lock") != std::string::npos;
  });
  auto standby = start(config(brokers, R"(, "application_name": "p2k-standby")", "b.json"));
  int standby_port = p2k_test::served_port(*standby, 30s);
  auto r = until(*standby, standby_port, "/readyz", [](const p2k_test::HttpAnswer& a) {
    return a.status == 200 && a.body.find("application_name 'p2k-active'") != std::string::npos;
  });
  EXPECT_NE(r.body.find("source 'pg-outbox': ready: standby: session "), std::string::npos)
      << r.body;
  auto m = until(*standby, standby_port, "/metrics", [](const p2k_test::HttpAnswer& a) {
    return metric_sample(a.body, "pg2kafka_pg_outbox_drain_sessions{role=\"standby\"}") == 1;
  });
  EXPECT_EQ(metric_sample(m.body, "pg2kafka_pg_outbox_drain_lock_held"), 0);
  EXPECT_EQ(metric_sample(m.body, "pg2kafka_pg_outbox_drain_sessions{role=\"active\"}"), 1);

  // The active one goes: the standby takes over.
  active->signal(SIGTERM);
  EXPECT_EQ(active->wait(30s), 0) << active->err();
  until(*standby, standby_port, "/readyz", [](const p2k_test::HttpAnswer& a) {
    return a.body.find("active: this instance holds the drain lock") != std::string::npos;
  });
  standby->signal(SIGTERM);
  EXPECT_EQ(standby->wait(30s), 0) << standby->err();
}

TEST_F(OperationsPgKafka, StatusDescribesARealDatabase_InTextAndJson) {
  insert(1, 30);
  // A running drainer: it holds the drain lock and sends the 30 events.
  auto daemon = start(
      config(p2k_test::kafka::fixture_brokers(), R"(, "application_name": "p2k-status-test")"));
  p2k_test::served_port(*daemon, 30s);
  std::string cfg = dir_.write("status.json", R"({
      "source": {"plugin": "pg-outbox", "options": {"connection": ")" +
                                                  db_->url() + R"("}},
      "sink": {"plugin": "stdout"}})");
  db_->sql().exec("CREATE TABLE quiet (id int PRIMARY KEY)");
  db_->sql().exec("SELECT pg2kafka.setup('quiet', 'id')");
  auto deadline = std::chrono::steady_clock::now() + 60s;
  p2k_test::CommandResult json;
  auto settled = [&] {
    boost::system::error_code ec;
    auto v = boost::json::parse(json.out, ec);
    if (ec || !v.is_object()) return false;
    const auto& holder = v.at("drain_lock").at("holder");
    return holder.is_object() && holder.at("application_name") == "p2k-status-test" &&
           v.at("queue").at("events") == 0;
  };
  while (std::chrono::steady_clock::now() < deadline) {
    json = p2k_test::run_pg2kafka({"status", "--config", cfg, "--format", "json"});
    if (settled()) break;
    std::this_thread::sleep_for(300ms);
  }
  ASSERT_TRUE(settled()) << json.out << json.err;
  ASSERT_EQ(json.exit_code, 0) << json.out << json.err;
  auto doc = boost::json::parse(json.out).as_object();
  EXPECT_EQ(doc.at("database").as_string(), db_->name());
  EXPECT_GE(doc.at("schema_version").as_int64(), 11);
  EXPECT_EQ(doc.at("drain_lock").at("holder").at("application_name").as_string(),
            "p2k-status-test");
  EXPECT_EQ(doc.at("tables").as_array().size(), 2u);
  EXPECT_TRUE(doc.at("problems").as_array().empty());

  // Text, with a problem: the capture triggers of a table disabled.
  daemon->signal(SIGTERM);
  EXPECT_EQ(daemon->wait(30s), 0) << daemon->err();
  db_->sql().exec("ALTER TABLE quiet DISABLE TRIGGER ALL");
  insert(31, 33);
  auto text = p2k_test::run_pg2kafka({"status", "--config", cfg});
  EXPECT_EQ(text.exit_code, 5) << text.out << text.err;
  EXPECT_NE(text.out.find("database: " + db_->name() + "\n"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("public.t"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("problems:\n  - "), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("quiet"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("disabled"), std::string::npos) << text.out;
}

}  // namespace
