// The seed README's scenario through the pg2kafka binary, with the original environment
// interface (DATABASE_URL, KAFKA_BROKER, PERFORM_MIGRATIONS, DRY_RUN) and the shipped default
// pipeline, against a real PostgreSQL and a real Kafka broker.
#include <fcntl.h>
#include <libpq-fe.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <map>
#include <random>
#include <set>
#include <thread>

#include "kafka_test_util.hpp"
#include "test_support.hpp"

namespace {

namespace json = boost::json;
using p2k_test::kafka::Message;

class Db {
 public:
  explicit Db(const std::string& url) : conn_(PQconnectdb(url.c_str())) {
    if (PQstatus(conn_) != CONNECTION_OK)
      throw std::runtime_error("cannot connect: " + std::string(PQerrorMessage(conn_)));
  }
  ~Db() { PQfinish(conn_); }
  // Runs SQL and returns the first column of the first row ("" when none).
  std::string exec(const std::string& sql) {
    PGresult* r = PQexec(conn_, sql.c_str());
    auto status = PQresultStatus(r);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
      std::string e = PQresultErrorMessage(r);
      PQclear(r);
      throw std::runtime_error("SQL failed: " + sql + "\n" + e);
    }
    std::string out = PQntuples(r) > 0 && PQnfields(r) > 0 ? PQgetvalue(r, 0, 0) : "";
    PQclear(r);
    return out;
  }

 private:
  PGconn* conn_;
};

std::string url_for(const std::string& db, const std::string& user = "postgres") {
  return "postgresql://" + user +
         "@127.0.0.1:" + p2k_test::state_value("pg.env", "P2K_TEST_PG_PORT") + "/" + db;
}

class SeedScenario : public ::testing::Test {
 protected:
  void SetUp() override {
    db_name_ = "shop_test_" + std::to_string(std::random_device{}() % 1000000);
    Db(url_for("postgres")).exec("CREATE DATABASE " + db_name_);
    db_ = std::make_unique<Db>(url_for(db_name_));
    brokers_ = p2k_test::kafka::fixture_brokers();
    topic_ = "pg2kafka." + db_name_ + ".products";
    p2k_test::kafka::create_topic(brokers_, topic_, kPartitions);
  }

  // `pg2kafka run --once` with the shipped default pipeline and the original's variables.
  p2k_test::CommandResult run(std::map<std::string, std::string> extra = {},
                              const std::string& user = "postgres") {
    std::map<std::string, std::string> env = {{"DATABASE_URL", url_for(db_name_, user)},
                                              {"KAFKA_BROKER", brokers_},
                                              {"PERFORM_MIGRATIONS", "true"},
                                              {"-PG2KAFKA_CONFIG", ""},
                                              {"-TOPIC_NAMESPACE", ""},
                                              {"-DRY_RUN", ""}};
    for (auto& [k, v] : extra) env[k] = v;
    return p2k_test::run_pg2kafka({"run", "--once"}, env, std::chrono::seconds(120));
  }

  std::vector<Message> messages(size_t at_least) {
    return p2k_test::kafka::read_topic(brokers_, topic_, at_least, std::chrono::seconds(20));
  }

  static constexpr int kPartitions = 3;
  std::string db_name_, brokers_, topic_;
  std::unique_ptr<Db> db_;
};

TEST_F(SeedScenario, StreamsEveryChangeToKafka_InOrderPerKey) {
  // The schema is installed by the first run (PERFORM_MIGRATIONS=true), with an empty queue.
  auto install = run();
  ASSERT_EQ(install.exit_code, 0) << install.err;

  db_->exec("CREATE TABLE products (id BIGSERIAL, sku TEXT, name TEXT)");
  db_->exec("INSERT INTO products (sku, name) VALUES ('CM01-R', 'Red Coffee Mug')");
  db_->exec("INSERT INTO products (sku, name) VALUES ('CM01-B', 'Blue Coffee Mug')");
  db_->exec("SELECT pg2kafka.setup('products', 'sku')");
  db_->exec("UPDATE products SET name = 'Big Red Coffee Mug' WHERE sku = 'CM01-R'");
  db_->exec(R"(INSERT INTO products (sku, name) VALUES ('Q"uote\back', 'Odd Mug'))");
  db_->exec(R"(UPDATE products SET name = 'Odder Mug' WHERE sku = 'Q"uote\back')");
  db_->exec("DELETE FROM products WHERE sku = 'CM01-B'");

  auto r = run();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto got = messages(6);
  ASSERT_EQ(got.size(), 6u) << "one message per event";

  const std::string odd = R"(Q"uote\back)";
  std::map<std::string, std::vector<json::object>> by_key;
  std::map<std::string, std::set<int32_t>> partitions;
  std::set<std::string> uuids;
  for (const auto& m : got) {
    ASSERT_TRUE(m.key.has_value());
    ASSERT_TRUE(m.value.has_value());
    auto envelope = json::parse(*m.value).as_object();
    for (const char* field : {"uuid", "external_id", "statement", "data", "created_at"})
      EXPECT_TRUE(envelope.contains(field)) << "missing " << field << " in " << *m.value;
    EXPECT_EQ(envelope.size(), 5u) << *m.value;
    EXPECT_EQ(envelope.at("external_id").as_string(), *m.key) << "key equals external_id";
    EXPECT_TRUE(uuids.insert(std::string(envelope.at("uuid").as_string())).second) << "duplicate";
    EXPECT_EQ(m.header("pg2kafka.id"), std::string(envelope.at("uuid").as_string()));
    std::string created = std::string(envelope.at("created_at").as_string());
    EXPECT_EQ(created.back(), 'Z') << "created_at is RFC 3339 UTC: " << created;
    EXPECT_EQ(m.partition, p2k_test::kafka::java_partition(*m.key, kPartitions))
        << "same partition as a Java producer";
    partitions[*m.key].insert(m.partition);
    by_key[*m.key].push_back(envelope);
  }
  for (const auto& [key, parts] : partitions)
    EXPECT_EQ(parts.size(), 1u) << "every message of " << key << " on one partition";

  auto statements = [&](const std::string& key) {
    std::vector<std::string> out;
    for (const auto& e : by_key[key]) out.emplace_back(e.at("statement").as_string());
    return out;
  };
  EXPECT_EQ(statements("CM01-R"), (std::vector<std::string>{"SNAPSHOT", "UPDATE"}));
  EXPECT_EQ(statements("CM01-B"), (std::vector<std::string>{"SNAPSHOT", "DELETE"}));
  EXPECT_EQ(statements(odd), (std::vector<std::string>{"INSERT", "UPDATE"}));

  EXPECT_EQ(json::serialize(by_key["CM01-R"][1].at("data")), R"({"name":"Big Red Coffee Mug"})")
      << "UPDATE carries only the changed column";
  EXPECT_EQ(json::serialize(by_key[odd][1].at("data")), R"({"name":"Odder Mug"})");
  const auto& snapshot = by_key["CM01-R"][0].at("data").as_object();
  EXPECT_EQ(snapshot.at("sku").as_string(), "CM01-R");
  EXPECT_EQ(snapshot.at("name").as_string(), "Red Coffee Mug");
  const auto& inserted = by_key[odd][0].at("data").as_object();
  EXPECT_EQ(inserted.at("sku").as_string(), odd);

  EXPECT_EQ(db_->exec("SELECT count(*) FROM pg2kafka.outbound_event_queue"), "0")
      << "the queue is empty once everything is acknowledged";

  auto again = run();
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(messages(6).size(), 6u) << "a second run produces nothing";

  // DRY_RUN=true: prints, produces nothing, removes nothing, and needs no Kafka setting.
  db_->exec("UPDATE products SET name = 'Dry Mug' WHERE sku = 'CM01-R'");
  auto dry = run({{"DRY_RUN", "true"}, {"-KAFKA_BROKER", ""}});
  ASSERT_EQ(dry.exit_code, 0) << dry.err;
  auto lines = p2k_test::lines(dry.out);
  ASSERT_EQ(lines.size(), 1u) << dry.out;
  auto printed = json::parse(lines[0]).as_object();
  EXPECT_EQ(printed.at("topic").as_string(), topic_);
  EXPECT_EQ(printed.at("key").as_string(), "CM01-R");
  EXPECT_EQ(json::serialize(printed.at("value").as_object().at("data")), R"({"name":"Dry Mug"})");
  EXPECT_EQ(messages(6).size(), 6u) << "a dry run produces nothing";
  EXPECT_EQ(db_->exec("SELECT count(*) FROM pg2kafka.outbound_event_queue"), "1")
      << "a dry run removes nothing";

  auto after = run();
  ASSERT_EQ(after.exit_code, 0) << after.err;
  EXPECT_EQ(messages(7).size(), 7u) << "the event the dry run showed is delivered for real";
}

// A dry run must show exactly what Kafka gets: numbers are never re-serialised (a double would
// turn the big decimal into 1.2345678901234568E29, 3.5 into 3.5E0).
TEST_F(SeedScenario, ADryRunPrintsByteForByteWhatKafkaReceives) {
  ASSERT_EQ(run().exit_code, 0);
  db_->exec("CREATE TABLE products (sku TEXT PRIMARY KEY, price NUMERIC, weight FLOAT8, doc JSON)");
  db_->exec("SELECT pg2kafka.setup('products', 'sku')");
  db_->exec(
      "INSERT INTO products VALUES ('big', 123456789012345678901234567890.123456789012345, "
      "3.5, '{\"n\": 1.0E+2, \"z\": -0.0, \"u\": \"\\u00e9\"}'), "
      "('zero', 0.0, 1e308, '[0.10, 1e-7]'), ('neg', -0.000000000000000000001, -0, 'null')");
  auto dry = run({{"DRY_RUN", "true"}, {"-KAFKA_BROKER", ""}});
  ASSERT_EQ(dry.exit_code, 0) << dry.err;
  std::map<std::string, std::string> printed;  // key -> the value exactly as printed
  for (const auto& line : p2k_test::lines(dry.out)) {
    auto parsed = json::parse(line).as_object();
    const std::string marker = ",\"value\":";
    auto at = line.find(marker);
    ASSERT_NE(at, std::string::npos) << line;
    printed[std::string(parsed.at("key").as_string())] =
        line.substr(at + marker.size(), line.size() - at - marker.size() - 1);
  }
  ASSERT_EQ(printed.size(), 3u) << dry.out;
  EXPECT_NE(printed["big"].find("123456789012345678901234567890.123456789012345"),
            std::string::npos)
      << printed["big"];

  ASSERT_EQ(run().exit_code, 0);
  auto got = messages(3);
  ASSERT_EQ(got.size(), 3u);
  for (const auto& m : got) {
    ASSERT_TRUE(m.key && m.value);
    EXPECT_EQ(printed[*m.key], *m.value) << "the dry run printed something else than Kafka got";
  }
}

// `pg2kafka run >&-` with the stdout sink: the database connection once took descriptor 1, the
// JSON lines went into it, and the events were acknowledged. Now the sink refuses to open.
TEST_F(SeedScenario, AClosedStdoutNeverSwallowsEvents) {
  ASSERT_EQ(run().exit_code, 0);
  db_->exec("CREATE TABLE products (sku TEXT PRIMARY KEY, name TEXT)");
  db_->exec("INSERT INTO products VALUES ('a', 'A'), ('b', 'B')");
  db_->exec("SELECT pg2kafka.setup('products', 'sku')");
  db_->exec("INSERT INTO products VALUES ('c', 'C')");  // queued; the first two are backfilled
  p2k_test::TempDir dir;
  auto config = dir.write("p.json", R"({"source": {"plugin": "pg-outbox", "options":
      {"connection": ")" + url_for(db_name_) +
                                        R"("}}, "sink": {"plugin": "stdout"}})");
  std::string queued = db_->exec("SELECT count(*) FROM pg2kafka.outbound_event_queue");
  ASSERT_EQ(queued, "1");
  auto r = p2k_test::run({"sh", "-c", "exec \"$0\" \"$@\" >&-", p2k_test::ctest_env("P2K_BINARY"),
                          "run", "--once", "--config", config},
                         {{"-PG2KAFKA_CONFIG", ""}});
  EXPECT_EQ(r.exit_code, 4) << r.err;
  EXPECT_NE(r.err.find("stdout is not open for writing"), std::string::npos) << r.err;
  EXPECT_EQ(db_->exec("SELECT count(*) FROM pg2kafka.outbound_event_queue"), queued)
      << "nothing was acknowledged";
  EXPECT_EQ(db_->exec("SELECT state || ' ' || rows_done FROM pg2kafka.backfills"), "pending 0")
      << "no backfilled row was counted as sent";
}

// With the queue locked by another session (LOCK TABLE ... ACCESS EXCLUSIVE), the drain's query
// waits; a SIGTERM once took until the lock was released (37 s). The stop is bounded: after
// shutdown_timeout the host interrupts the source, which cancels the query, and exits 4.
TEST_F(SeedScenario, AStopIsBounded_WhenTheDrainIsBlockedByALock) {
  ASSERT_EQ(run().exit_code, 0);
  db_->exec("CREATE TABLE products (sku TEXT PRIMARY KEY, name TEXT)");
  db_->exec("SELECT pg2kafka.setup('products', 'sku')");
  p2k_test::TempDir dir;
  auto config = dir.write("p.json", R"({"source": {"plugin": "pg-outbox", "options":
      {"connection": ")" + url_for(db_name_) +
                                        R"(", "lock_timeout": "60s",
       "application_name": "p2k-lock-test"}},
      "sink": {"plugin": "stdout"}, "pipeline": {"shutdown_timeout": "1s"}})");
  std::string err_file = (dir.path() / "stderr").string();
  std::string bin = p2k_test::ctest_env("P2K_BINARY");
  pid_t pid = fork();
  if (pid == 0) {
    int out = open((dir.path() / "stdout").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = open(err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(out, 1);
    dup2(err, 2);
    execl(bin.c_str(), bin.c_str(), "run", "--config", config.c_str(), nullptr);
    _exit(127);
  }
  // Once the pipeline runs, lock the queue: the drain's next query waits for the lock.
  for (int i = 0; i < 300; ++i) {
    if (p2k_test::read_file(err_file).find("pipeline running") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  Db locker(url_for(db_name_));
  locker.exec("BEGIN");
  locker.exec("LOCK TABLE pg2kafka.event_batches IN ACCESS EXCLUSIVE MODE");
  bool blocked = false;
  for (int i = 0; i < 300 && !blocked; ++i) {
    blocked = db_->exec(
                  "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                  "'p2k-lock-test' AND wait_event_type = 'Lock'") == "1";
    if (!blocked) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(blocked) << p2k_test::read_file(err_file);
  auto start = std::chrono::steady_clock::now();
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  auto took = std::chrono::steady_clock::now() - start;
  std::string err = p2k_test::read_file(err_file);
  ASSERT_TRUE(WIFEXITED(status)) << err;
  EXPECT_EQ(WEXITSTATUS(status), 4) << err;
  EXPECT_LT(took, std::chrono::milliseconds(1000 + 1000))
      << "within shutdown_timeout + 1 s: " << err;
  EXPECT_NE(err.find("interrupted source 'pg-outbox' (blocked in poll for"), std::string::npos)
      << err;
  EXPECT_EQ(db_->exec("SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                      "'p2k-lock-test' AND wait_event_type = 'Lock'"),
            "0")
      << "the query was cancelled, not left waiting";
  locker.exec("ROLLBACK");
}

TEST_F(SeedScenario, FailsClearly_WhenTheTopicDoesNotExist) {
  ASSERT_EQ(run().exit_code, 0);
  db_->exec("CREATE TABLE orders (ref TEXT PRIMARY KEY, total NUMERIC)");
  db_->exec("INSERT INTO orders VALUES ('o-1', 10)");
  db_->exec("SELECT pg2kafka.setup('orders', 'ref')");
  auto r = run();
  EXPECT_EQ(r.exit_code, 4) << r.err;
  std::string missing = "pg2kafka." + db_name_ + ".orders";
  EXPECT_NE(r.err.find(missing), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("kafka-topics.sh"), std::string::npos) << "says how to create it: " << r.err;
  EXPECT_EQ(db_->exec("SELECT state || ' ' || rows_done FROM pg2kafka.backfills"), "pending 0")
      << "nothing is lost: the snapshot is still to be sent";
}

TEST_F(SeedScenario, DrainsAsALeastPrivilegedRole) {
  // The schema is installed once by an administrator; the daemon's role may only read and
  // delete queued events (the grants the README documents).
  ASSERT_EQ(run().exit_code, 0);
  std::string role = "drainer_" + db_name_;
  db_->exec("CREATE ROLE " + role + " LOGIN");
  db_->exec("GRANT USAGE ON SCHEMA pg2kafka TO " + role);
  db_->exec("GRANT SELECT, DELETE ON pg2kafka.event_batches TO " + role);
  db_->exec("GRANT SELECT ON pg2kafka.tracked_tables, pg2kafka.schema_migrations TO " + role);
  db_->exec("CREATE TABLE products (sku TEXT PRIMARY KEY, name TEXT)");
  db_->exec("INSERT INTO products VALUES ('CM01-R', 'Red Coffee Mug')");
  db_->exec("SELECT pg2kafka.setup('products', 'sku')");
  db_->exec("UPDATE products SET name = 'Big Red Coffee Mug'");

  auto r = run({{"PERFORM_MIGRATIONS", "false"}}, role);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto got = messages(2);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(db_->exec("SELECT count(*) FROM pg2kafka.outbound_event_queue"), "0");
  EXPECT_EQ(
      db_->exec("SELECT has_table_privilege('" + role + "', 'pg2kafka.event_batches', 'INSERT')"),
      "f");
}

}  // namespace
