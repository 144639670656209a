// pg2kafka.setup: the snapshot of a table's rows and the capture of what follows it (the README's
// seed scenario), calling it again, and what it must not do to concurrent readers and writers.
#include <gtest/gtest.h>

#include <regex>
#include <set>
#include <thread>

#include "pg_test_support.hpp"

using namespace p2k_pg_test;
namespace json = boost::json;

namespace {

std::string str(const json::value& v) {
  return std::string(v.as_string());
}

}  // namespace

TEST(Setup, SnapshotsRowsThenCapturesInsertUpdateDelete_SeedScenario) {
  TestDatabase db;
  seed_products(db.sql());
  db.sql().exec("INSERT INTO products (sku, name) VALUES (NULL, 'No SKU')");
  EXPECT_EQ(db.sql().value("SELECT pg2kafka.setup('products', 'sku')"), "t");
  db.sql().exec("UPDATE products SET name = 'Big Red Coffee Mug' WHERE sku = 'CM01-R'");
  db.sql().exec("UPDATE products SET name = name");  // changes nothing: no event
  db.sql().exec("INSERT INTO products (sku, name) VALUES ('CM02', 'Teapot')");
  db.sql().exec("DELETE FROM products WHERE sku = 'CM01-B'");

  auto source = make_source(db.url());
  source->open();
  auto events = drain(*source);
  ASSERT_EQ(events.size(), 6u);
  const std::string topic = "pg2kafka." + db.name() + ".products";
  std::regex rfc3339(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z)");
  for (size_t i = 0; i < events.size(); ++i) {
    const auto& e = events[i];
    EXPECT_EQ(e.topic, topic);
    EXPECT_EQ(e.id, str(e.json.at("uuid")));
    EXPECT_EQ(e.id.size(), 36u);
    EXPECT_TRUE(std::regex_match(str(e.json.at("created_at")), rfc3339)) << e.value;
    EXPECT_GT(e.timestamp_ms, 1500000000000);
    EXPECT_EQ(e.headers.at("statement"), e.statement());
    EXPECT_EQ(e.headers.at("table"), "public.products");
    if (i > 0) {
      EXPECT_GT(e.position, events[i - 1].position);
    }
    if (e.key)
      EXPECT_EQ(*e.key, str(e.json.at("external_id")));
    else
      EXPECT_TRUE(e.json.at("external_id").is_null());
  }
  EXPECT_EQ(events[0].statement(), "SNAPSHOT");
  EXPECT_EQ(events[0].key, "CM01-R");
  EXPECT_EQ(events[0].data(), json::parse(R"({"id":1,"sku":"CM01-R","name":"Red Coffee Mug"})"));
  EXPECT_EQ(events[1].statement(), "SNAPSHOT");
  EXPECT_EQ(events[1].key, "CM01-B");
  EXPECT_EQ(events[2].statement(), "SNAPSHOT");
  EXPECT_EQ(events[2].key, std::nullopt);  // NULL stays NULL: a null Kafka key
  EXPECT_TRUE(events[2].data().as_object().at("sku").is_null());
  EXPECT_EQ(events[3].statement(), "UPDATE");
  EXPECT_EQ(events[3].key, "CM01-R");
  EXPECT_EQ(events[3].data(), json::parse(R"({"name":"Big Red Coffee Mug"})"));
  EXPECT_EQ(events[4].statement(), "INSERT");
  EXPECT_EQ(events[4].data(), json::parse(R"({"id":4,"sku":"CM02","name":"Teapot"})"));
  EXPECT_EQ(events[5].statement(), "DELETE");
  EXPECT_EQ(events[5].key, "CM01-B");
  EXPECT_EQ(events[5].data(), json::parse(R"({"sku":"CM01-B"})"));
  // Delivered events are deleted by default.
  EXPECT_EQ(db.sql().value("SELECT count(*) FROM pg2kafka.outbound_event_queue"), "0");
}

TEST(Setup, IsIdempotent_WhenCalledAgain) {
  TestDatabase db;
  seed_products(db.sql());
  EXPECT_EQ(db.sql().value("SELECT pg2kafka.setup('products', 'sku')"), "t");
  EXPECT_EQ(db.sql().value("SELECT pg2kafka.setup('products', 'sku')"), "f");
  EXPECT_EQ(db.sql().value("SELECT count(*) FROM pg2kafka.outbound_event_queue"), "2");
  EXPECT_EQ(db.sql().value("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'products'::regclass"),
            "4");
  std::string err = db.sql().try_exec("SELECT pg2kafka.setup('products', 'name')");
  EXPECT_NE(err.find("already tracked with key column \"sku\""), std::string::npos) << err;
  err = db.sql().try_exec("SELECT pg2kafka.setup('products', 'nope')");
  EXPECT_NE(err.find("has no column \"nope\""), std::string::npos) << err;
  err = db.sql().try_exec("SELECT pg2kafka.setup('missing_table', 'sku')");
  EXPECT_NE(err.find("does not exist"), std::string::npos) << err;
  db.sql().exec("CREATE VIEW products_view AS SELECT * FROM products");
  err = db.sql().try_exec("SELECT pg2kafka.setup('products_view', 'sku')");
  EXPECT_NE(err.find("is not a table"), std::string::npos) << err;
}

TEST(Setup, RefusesToRun_InRepeatableReadTransaction) {
  TestDatabase db;
  seed_products(db.sql());
  db.sql().exec("BEGIN ISOLATION LEVEL REPEATABLE READ");
  std::string err = db.sql().try_exec("SELECT pg2kafka.setup('products', 'sku')");
  db.sql().exec("ROLLBACK");
  EXPECT_NE(err.find("READ COMMITTED"), std::string::npos) << err;
}

TEST(Setup, DoesNotBlockReaders_AndLosesOrDoublesNoConcurrentWrite) {
  TestDatabase db;
  seed_products(db.sql());
  Session setup(db.url()), reader(db.url()), writer(db.url());
  setup.exec("BEGIN");
  setup.exec("SELECT pg2kafka.setup('products', 'sku')");
  // Setup holds SHARE ROW EXCLUSIVE (never ACCESS EXCLUSIVE) until it commits.
  auto modes = db.sql().rows(
      "SELECT mode FROM pg_locks WHERE relation = 'products'::regclass AND granted ORDER BY 1");
  std::set<std::string> held;
  for (auto& r : modes) held.insert(*r[0]);
  EXPECT_TRUE(held.count("ShareRowExclusiveLock"));
  EXPECT_FALSE(held.count("AccessExclusiveLock"));
  // A reader does not wait: with lock_timeout it would fail if it had to.
  reader.exec("SET lock_timeout = '2s'");
  EXPECT_EQ(reader.value("SELECT count(*) FROM products"), "2");
  // A writer waits for setup and is then captured exactly once, as an INSERT.
  writer.send("INSERT INTO products (sku, name) VALUES ('DURING', 'written during setup')");
  for (int i = 0; i < 100; ++i) {
    if (db.sql().value("SELECT count(*) FROM pg_stat_activity WHERE pid = " +
                       std::to_string(writer.pid()) + " AND wait_event_type = 'Lock'") == "1")
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(writer.busy());
  setup.exec("COMMIT");
  EXPECT_EQ(writer.finish(), "");

  auto source = make_source(db.url());
  source->open();
  auto events = drain(*source);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].statement(), "SNAPSHOT");
  EXPECT_EQ(events[1].statement(), "SNAPSHOT");
  EXPECT_EQ(events[2].statement(), "INSERT");
  EXPECT_EQ(events[2].key, "DURING");
}
