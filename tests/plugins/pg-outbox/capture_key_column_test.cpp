// The key column changing under a tracked table: renamed, keys follow it; dropped, keys become
// null and deletions keep the whole row.
#include <gtest/gtest.h>

#include "pg_test_support.hpp"

using namespace p2k_pg_test;
namespace json = boost::json;

TEST(Capture, KeyColumnRenamed_KeysFollowIt_Dropped_KeysBecomeNullAndDeletesKeepTheRow) {
  TestDatabase db;
  seed_products(db.sql());
  db.sql().exec("SELECT pg2kafka.setup('products', 'sku')");
  db.sql().exec("ALTER TABLE products RENAME COLUMN sku TO code");
  db.sql().exec("INSERT INTO products (code, name) VALUES ('R1', 'after rename')");
  db.sql().exec("DELETE FROM products WHERE code = 'R1'");
  {
    LogSink logs;
    auto source = make_source(db.url(), {}, &logs);
    source->open();
    EXPECT_EQ(logs.all().find("any more"), std::string::npos) << logs.all();
    auto events = drain(*source);
    ASSERT_EQ(events.size(), 4u);
    EXPECT_EQ(events[2].key, "R1");
    EXPECT_EQ(events[2].data().as_object().at("code"), json::value("R1"));
    EXPECT_EQ(events[3].statement(), "DELETE");
    EXPECT_EQ(events[3].key, "R1");
    EXPECT_EQ(events[3].data(), json::parse(R"({"code":"R1"})"));
  }
  db.sql().exec("ALTER TABLE products DROP COLUMN code");
  db.sql().exec("INSERT INTO products (name) VALUES ('after drop')");
  db.sql().exec("UPDATE products SET name = 'u' WHERE name = 'after drop'");
  db.sql().exec("DELETE FROM products WHERE name = 'u'");
  LogSink logs;
  auto source = make_source(db.url(), {}, &logs);
  source->open();
  EXPECT_NE(logs.all().find("its key column \"sku\" no longer exists"), std::string::npos)
      << logs.all();
  auto events = drain(*source);
  ASSERT_EQ(events.size(), 3u);
  for (const auto& e : events) EXPECT_EQ(e.key, std::nullopt) << e.value;
  EXPECT_EQ(events[1].data(), json::parse(R"({"name":"u"})"));
  // Without a key, a deletion keeps the whole row: what was deleted is not lost.
  EXPECT_EQ(events[2].statement(), "DELETE");
  EXPECT_EQ(events[2].data().as_object().at("name"), json::value("u"));
  EXPECT_TRUE(events[2].data().as_object().contains("id"));
}
