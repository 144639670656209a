// Per-table capture options (issue 20) against a real PostgreSQL and a real Kafka broker, read
// back from the broker: column selection, masking and redaction, provenance headers, whole rows
// and before images with 5 MB values, composite keys, key changes, tombstones and topic routing
// (also to a topic that appears while the daemon runs), in statement-level and row-level capture
// and on a partitioned table. What the SQL layer stores, its errors and its attacker tests are
// in tests/plugins/pg-outbox/capture_options_sql_test.cpp.
#include <gtest/gtest.h>
#include <signal.h>

#include <boost/json.hpp>

#include <algorithm>
#include <map>
#include <regex>
#include <set>
#include <thread>

#include "kafka_test_util.hpp"
#include "pg_test_support.hpp"
#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
namespace kafka = p2k_test::kafka;
namespace json = boost::json;

constexpr size_t kFiveMegabytes = 5 * 1024 * 1024;

class CaptureOptionsPgKafka : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    db_ = std::make_unique<p2k_pg_test::TestDatabase>();
    brokers_ = kafka::fixture_brokers();
  }

  std::string topic(const std::string& table) { return "pg2kafka." + db_->name() + "." + table; }

  std::string config(int partitions = 1) {
    return dir_.write("pipeline.json", R"({
      "source": {"plugin": "pg-outbox", "options": {
        "connection": ")" + db_->url() + R"(", "poll_interval": "100ms"}},
      "sink": {"plugin": "kafka", "options": {"bootstrap_servers": ")" +
                                           brokers_ + R"(", "create_topics": true,
        "topic_partitions": )" + std::to_string(partitions) +
                                           R"(, "rdkafka": {"message.max.bytes": 33554432}}},
      "pipeline": {"http.listen": "127.0.0.1:0", "shutdown_timeout": "20s"}})");
  }

  void drain(int partitions = 1) {
    auto run = p2k_test::run_pg2kafka({"run", "--once", "--config", config(partitions)}, {}, 180s);
    ASSERT_EQ(run.exit_code, 0) << run.err;
  }

  std::vector<kafka::Message> read(const std::string& topic, size_t at_least) {
    // A topic that the running daemon creates may not be there yet.
    for (int i = 0; i < 300 && kafka::partition_count(brokers_, topic) < 0; ++i)
      std::this_thread::sleep_for(100ms);
    return kafka::read_topic(brokers_, topic, at_least, 60s,
                             {{"fetch.max.bytes", "52428800"},
                              {"max.partition.fetch.bytes", "33554432"},
                              {"receive.message.max.bytes", "104857600"}});
  }

  static json::object body(const kafka::Message& m) {
    return json::parse(m.value.value_or("{}")).as_object();
  }
  static std::string statement(const kafka::Message& m) {
    if (!m.value) return "TOMBSTONE";
    return std::string(body(m).at("statement").as_string());
  }
  static std::string keys(const std::vector<kafka::Message>& messages) {
    std::string out;
    for (const auto& m : messages)
      out += (out.empty() ? "" : " ") + m.key.value_or("null") + ":" + statement(m);
    return out;
  }

  // "row" capture, a partitioned table (row-level, always), or the default statement-level.
  void create_table(const std::string& ddl_columns, const std::string& name = "t") {
    if (GetParam() == "partitioned") {
      db_->sql().exec("CREATE TABLE " + name + " (" + ddl_columns + ") PARTITION BY RANGE (id)");
      db_->sql().exec("CREATE TABLE " + name + "_low PARTITION OF " + name +
                      " FOR VALUES FROM (MINVALUE) TO (100)");
      db_->sql().exec("CREATE TABLE " + name + "_high PARTITION OF " + name +
                      " FOR VALUES FROM (100) TO (MAXVALUE)");
    } else {
      db_->sql().exec("CREATE TABLE " + name + " (" + ddl_columns + ")");
    }
  }
  std::string with_mode(const std::string& options) {
    if (GetParam() != "row") return options;
    return "{\"capture\": \"row\", " + options.substr(1);
  }

  std::unique_ptr<p2k_pg_test::TestDatabase> db_;
  p2k_test::TempDir dir_;
  std::string brokers_;
};

TEST_P(CaptureOptionsPgKafka, SelectionMaskingRedactionAndProvenance) {
  create_table("id int PRIMARY KEY, email text, password_hash text, ssn text, notes text");
  auto& s = db_->sql();
  s.exec("INSERT INTO t VALUES (1, 'old@x', 'h0', '111-22-3333', 'before setup')");
  s.exec("SELECT pg2kafka.setup('t', 'id', '" +
         with_mode(R"({"exclude": ["password_hash"], "mask": ["ssn"], "redact": ["notes"],
                       "provenance": ["actor", "request_id"]})") +
         "')");
  EXPECT_EQ(s.value("SELECT options ->> 'mask' FROM pg2kafka.tracked_tables"), R"(["ssn"])")
      << "the options are visible in the registry";
  s.exec(
      "BEGIN; SET LOCAL pg2kafka.actor = 'alice'; SET LOCAL pg2kafka.request_id = 'req-7';"
      "INSERT INTO t VALUES (2, 'a@x', 'h1', '111-22-3333', 'secret note'),"
      "                     (150, 'b@x', 'h2', '999-88-7777', NULL); COMMIT");
  s.exec("UPDATE t SET password_hash = 'h3' WHERE id = 2");  // only excluded: nothing sent
  s.exec("UPDATE t SET email = 'new@x', notes = 'another secret' WHERE id = 2");
  s.exec("DELETE FROM t WHERE id = 150");
  s.exec("TRUNCATE t");
  // No column that is excluded ever reached the queue (the drainer has not run yet).
  EXPECT_EQ(s.value("SELECT count(*) FROM pg2kafka.event_batches WHERE "
                    "coalesce(data::text, '') || coalesce(old_data::text, '') "
                    "~ '(password_hash|h1|h2|h3|secret note|111-22-3333|999-88-7777)'"),
            "0");
  drain();

  auto messages = read(topic("t"), 6);
  // A partitioned table's TRUNCATE fires on the table and on each partition.
  while (messages.size() > 6 && statement(messages.back()) == "TRUNCATE") messages.pop_back();
  ASSERT_EQ(keys(messages), "1:SNAPSHOT 2:INSERT 150:INSERT 2:UPDATE 150:DELETE null:TRUNCATE");
  const std::regex hex64("[0-9a-f]{64}");
  for (size_t i = 0; i < 3; ++i) {
    auto data = body(messages[i]).at("data").as_object();
    EXPECT_FALSE(data.contains("password_hash")) << messages[i].value.value_or("");
    ASSERT_TRUE(data.contains("notes"));
    EXPECT_TRUE(data.at("notes").is_null()) << "redacted";
    ASSERT_TRUE(data.at("ssn").is_string());
    EXPECT_TRUE(std::regex_match(std::string(data.at("ssn").as_string()), hex64));
  }
  // Masks are stable (the same value gives the same mask, in a snapshot and in a write) and
  // differ between values.
  EXPECT_EQ(body(messages[0]).at("data").at("ssn"), body(messages[1]).at("data").at("ssn"));
  EXPECT_NE(body(messages[1]).at("data").at("ssn"), body(messages[2]).at("data").at("ssn"));
  // The UPDATE sends the changed column; the redacted one changed but shows nothing.
  EXPECT_EQ(json::serialize(body(messages[3]).at("data")), R"({"email":"new@x"})");

  // Provenance: headers, not members of the message; SET LOCAL values only in their transaction.
  for (const auto& m : messages) {
    if (statement(m) == "SNAPSHOT") continue;
    EXPECT_TRUE(m.header("pg2kafka.current_user")) << statement(m);
    EXPECT_TRUE(m.header("pg2kafka.session_user"));
    EXPECT_TRUE(m.header("pg2kafka.txid"));
    EXPECT_FALSE(body(m).contains("current_user"));
  }
  EXPECT_EQ(messages[1].header("pg2kafka.actor"), std::optional<std::string>("alice"));
  EXPECT_EQ(messages[2].header("pg2kafka.request_id"), std::optional<std::string>("req-7"));
  EXPECT_EQ(messages[1].header("pg2kafka.txid"), messages[2].header("pg2kafka.txid"));
  EXPECT_NE(messages[1].header("pg2kafka.txid"), messages[3].header("pg2kafka.txid"));
  EXPECT_FALSE(messages[3].header("pg2kafka.actor")) << "SET LOCAL ended with its transaction";
  EXPECT_EQ(messages[3].header("pg2kafka.current_user"), std::optional<std::string>("postgres"));
  EXPECT_EQ(messages[5].header("pg2kafka.current_user"), std::optional<std::string>("postgres"))
      << "TRUNCATE carries provenance too";
}

TEST_P(CaptureOptionsPgKafka, WholeRowsAndBeforeImagesOfFiveMegabyteValues) {
  create_table("id int PRIMARY KEY, small text, big text");
  auto& s = db_->sql();
  s.exec("SELECT pg2kafka.setup('t', 'id', '" +
         with_mode(R"({"update": "full", "before": "full", "delete": "row"})") + "')");
  std::string big = "repeat('x', " + std::to_string(kFiveMegabytes) + ")";
  s.exec("INSERT INTO t VALUES (1, 'a', " + big + ")");
  s.exec("UPDATE t SET small = 'b' WHERE id = 1");  // big is unchanged (and stored out of line)
  s.exec("UPDATE t SET small = 'b' WHERE id = 1");  // changes nothing: nothing sent
  s.exec("DELETE FROM t WHERE id = 1");
  drain();

  auto messages = read(topic("t"), 3);
  ASSERT_EQ(keys(messages), "1:INSERT 1:UPDATE 1:DELETE");
  auto update = body(messages[1]);
  EXPECT_EQ(update.at("data").at("small").as_string(), "b");
  EXPECT_EQ(update.at("data").at("big").as_string().size(), kFiveMegabytes) << "whole new row";
  EXPECT_EQ(update.at("before").at("small").as_string(), "a");
  EXPECT_EQ(update.at("before").at("big").as_string().size(), kFiveMegabytes) << "whole old row";
  auto del = body(messages[2]);
  EXPECT_EQ(del.at("data").at("small").as_string(), "b");
  EXPECT_EQ(del.at("data").at("big").as_string().size(), kFiveMegabytes) << "whole deleted row";
  EXPECT_FALSE(del.contains("before"));
  EXPECT_FALSE(body(messages[0]).contains("before"));
}

TEST_P(CaptureOptionsPgKafka, CompositeKeysKeyChangesTombstonesAndRouting) {
  create_table("tenant text, id int, v text, PRIMARY KEY (tenant, id)");
  auto& s = db_->sql();
  std::string routed = kafka::unique_topic("p2k-orders");
  s.exec("SELECT pg2kafka.setup('t', NULL, '" +
         with_mode(R"({"key": ["tenant", "id"], "key_changes": "delete", "tombstones": true,
                       "topic": ")" +
                   routed + R"("})") +
         "')");
  s.exec("INSERT INTO t VALUES ('acme', 1, 'a'), ('acme', 2, 'b'), ('beta', 1, 'c')");
  s.exec("UPDATE t SET id = 3 WHERE tenant = 'acme' AND id = 2");  // the key changes
  s.exec("UPDATE t SET v = 'a2' WHERE tenant = 'acme' AND id = 1");
  s.exec("DELETE FROM t WHERE tenant = 'beta'");
  drain(3);

  auto messages = read(routed, 9);
  ASSERT_EQ(messages.size(), 9u);
  // Per key, in order (the topic has three partitions; a key's messages share one).
  std::map<std::string, std::vector<std::string>> by_key;
  std::map<std::string, std::set<int32_t>> partitions;
  for (const auto& m : messages) {
    ASSERT_TRUE(m.key);
    by_key[*m.key].push_back(statement(m));
    partitions[*m.key].insert(m.partition);
    EXPECT_EQ(m.partition, kafka::java_partition(*m.key, 3)) << "partitioned by the whole key";
    if (m.value) {
      EXPECT_EQ(body(m).at("external_id").as_string(), *m.key);
    }
  }
  EXPECT_EQ(by_key[R"(["acme","1"])"], (std::vector<std::string>{"INSERT", "UPDATE"}));
  EXPECT_EQ(by_key[R"(["acme","2"])"], (std::vector<std::string>{"INSERT", "DELETE", "TOMBSTONE"}))
      << "the old key is deleted when the key changes";
  EXPECT_EQ(by_key[R"(["acme","3"])"], (std::vector<std::string>{"UPDATE"}));
  EXPECT_EQ(by_key[R"(["beta","1"])"], (std::vector<std::string>{"INSERT", "DELETE", "TOMBSTONE"}));
  for (const auto& m : messages) {
    if (m.key == R"(["beta","1"])" && statement(m) == "DELETE") {
      EXPECT_EQ(json::serialize(body(m).at("data")), R"({"tenant":"beta","id":1})");
    }
  }
  EXPECT_EQ(kafka::partition_count(brokers_, topic("t")), -1) << "nothing went to the default";
}

// Rows that exist before setup are sent as SNAPSHOT events in chunks by the daemon (the table
// has a primary key and nothing masked), with the options applied: the reader leaves excluded
// columns out and the composite key is encoded like the writes' keys.
TEST_P(CaptureOptionsPgKafka, SnapshotChunksWithACompositeKeyAndExcludedColumns) {
  create_table("tenant text, id int, secret text, v text, PRIMARY KEY (tenant, id)");
  auto& s = db_->sql();
  s.exec("INSERT INTO t SELECT 'acme', g, 'pw' || g, 'v' || g FROM generate_series(1, 250) g");
  s.exec("SELECT pg2kafka.setup('t', 'tenant', '" +
         with_mode(R"({"key": ["tenant", "id"], "exclude": ["secret"], "delete": "row"})") + "')");
  EXPECT_EQ(s.value("SELECT count(*) FROM pg2kafka.backfills"), "1") << "sent in chunks";
  s.exec("DELETE FROM t WHERE id = 7");
  drain();
  // Row 7 is gone before the chunks are read: 249 rows, and the DELETE.
  auto messages = read(topic("t"), 250);
  ASSERT_EQ(messages.size(), 250u);
  std::set<std::string> snapshot_keys;
  for (const auto& m : messages) {
    EXPECT_EQ(m.value->find("pw"), std::string::npos) << *m.value;
    auto data = body(m).at("data").as_object();
    EXPECT_FALSE(data.contains("secret"));
    EXPECT_EQ(body(m).at("external_id").as_string(), *m.key);
    if (statement(m) == "SNAPSHOT") snapshot_keys.insert(*m.key);
  }
  EXPECT_EQ(snapshot_keys.size(), 249u);
  EXPECT_TRUE(snapshot_keys.count(R"(["acme","250"])"));
  EXPECT_FALSE(snapshot_keys.count(R"(["acme","7"])"));
  auto deleted = std::find_if(messages.begin(), messages.end(),
                              [](const kafka::Message& m) { return statement(m) == "DELETE"; });
  ASSERT_NE(deleted, messages.end());
  EXPECT_EQ(keys({*deleted}), R"(["acme","7"]:DELETE)");
  EXPECT_EQ(json::serialize(body(*deleted).at("data")), R"({"tenant":"acme","id":7,"v":"v7"})");
}

TEST_P(CaptureOptionsPgKafka, ARouteSetWhileTheDaemonRunsCreatesItsTopic) {
  create_table("id int PRIMARY KEY, v text");
  auto& s = db_->sql();
  s.exec("SELECT pg2kafka.setup('t', 'id', '" + with_mode(R"({"tombstones": false})") + "')");
  std::string routed = kafka::unique_topic("p2k-route");
  p2k_test::Background daemon({p2k_test::ctest_env("P2K_BINARY"), "run", "--config", config()});
  s.exec("INSERT INTO t VALUES (1, 'default topic')");
  ASSERT_EQ(read(topic("t"), 1).size(), 1u);
  s.exec("SELECT pg2kafka.configure('t', '{\"topic\": \"" + routed + "\"}')");
  std::this_thread::sleep_for(1500ms);  // the drainer reads the routes at most once a second
  s.exec("INSERT INTO t VALUES (2, 'routed')");
  auto messages = read(routed, 1);
  daemon.signal(SIGTERM);
  ASSERT_TRUE(daemon.wait(30s));
  ASSERT_EQ(keys(messages), "2:INSERT") << daemon.err();
  EXPECT_EQ(keys(read(topic("t"), 1)), "1:INSERT");
}

INSTANTIATE_TEST_SUITE_P(Modes, CaptureOptionsPgKafka,
                         ::testing::Values("statement", "row", "partitioned"),
                         [](const auto& info) { return info.param; });

}  // namespace
