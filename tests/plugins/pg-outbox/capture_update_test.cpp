// Captured UPDATEs: only the columns that changed are sent, old and new rows are paired right
// even when every key changes, and the old row is kept in the queue for the comparison.
#include <gtest/gtest.h>

#include <set>

#include "pg_test_support.hpp"

using namespace p2k_pg_test;
namespace json = boost::json;

TEST(Capture, UpdateCarriesOnlyChangedColumns_PairingRowsCorrectlyWhenKeysChange) {
  TestDatabase db;
  db.sql().exec("CREATE TABLE t (id int, k text, a text, b int)");
  db.sql().exec("INSERT INTO t SELECT g, 'k' || g, 'a' || g, g FROM generate_series(1, 200) g");
  db.sql().exec("SELECT pg2kafka.setup('t', 'k')");
  auto source = make_source(db.url());
  source->open();
  drain(*source);
  // Every row's key changes (so pairing by key is impossible); only even rows change `a`; `b`
  // is set to its own value. The statement also updates rows in a non-id order.
  db.sql().exec(
      "UPDATE t SET k = 'n' || id, a = CASE WHEN id % 2 = 0 THEN 'x' || id ELSE a END, b = b "
      "WHERE id IN (SELECT id FROM t ORDER BY random())");
  db.sql().exec("UPDATE t SET b = b");  // changes nothing at all
  auto events = drain(*source);
  ASSERT_EQ(events.size(), 200u);
  std::set<std::string> keys;
  for (const auto& e : events) {
    ASSERT_EQ(e.statement(), "UPDATE");
    ASSERT_TRUE(e.key);
    keys.insert(*e.key);
    int id = std::stoi(e.key->substr(1));
    json::object expected{{"k", *e.key}};
    if (id % 2 == 0) expected["a"] = "x" + std::to_string(id);
    EXPECT_EQ(e.data(), json::value(expected)) << e.value;
  }
  EXPECT_EQ(keys.size(), 200u);
}

TEST(Capture, UpdateKeepsTheOldRowInTheQueue_AndSendsOnlyChangedColumns) {
  TestDatabase db;
  db.sql().exec("CREATE TABLE p (sku text PRIMARY KEY, name text, price numeric)");
  db.sql().exec("INSERT INTO p VALUES ('a', 'A', 1.50)");
  db.sql().exec("SELECT pg2kafka.setup('p', 'sku')");
  auto source = make_source(db.url());
  source->open();
  drain(*source);
  db.sql().exec("UPDATE p SET price = 1.75");
  EXPECT_EQ(db.sql().value("SELECT old_data -> 0 ->> 'price' FROM pg2kafka.event_batches"), "1.50");
  EXPECT_EQ(db.sql().value("SELECT data::text FROM pg2kafka.outbound_event_queue"),
            R"({"price": 1.75})");
  auto events = drain(*source);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].value.find("\"data\":{\"price\": 1.75}"), events[0].value.find("\"data\""))
      << events[0].value;
}
