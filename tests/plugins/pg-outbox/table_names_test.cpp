// Names of tracked tables and key columns: mixed case, schema-qualified, the same table name in
// two schemas (their topics and headers), and hostile names that try to inject SQL.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "pg_test_support.hpp"

using namespace p2k_pg_test;
namespace json = boost::json;

TEST(Names, MixedCaseSchemaQualifiedAndSameNameInTwoSchemas) {
  TestDatabase db;
  db.sql().exec("CREATE SCHEMA \"Shop\"");
  db.sql().exec("CREATE TABLE \"Shop\".\"Products\" (\"SKU\" text, \"Name\" text)");
  db.sql().exec("CREATE TABLE public.items (sku text)");
  db.sql().exec("CREATE SCHEMA other");
  db.sql().exec("CREATE TABLE other.items (sku text)");
  db.sql().exec("SELECT pg2kafka.setup('\"Shop\".\"Products\"', 'SKU')");
  db.sql().exec("SELECT pg2kafka.setup('items', 'sku')");
  db.sql().exec("SELECT pg2kafka.setup('other.items', 'sku')");
  db.sql().exec("INSERT INTO \"Shop\".\"Products\" VALUES ('P1', 'x')");
  db.sql().exec("INSERT INTO public.items VALUES ('I1')");
  db.sql().exec("INSERT INTO other.items VALUES ('I2')");
  auto source = make_source(db.url(), {{"topic_namespace", "prod"}});
  source->open();
  auto topics = source->list_topics();
  std::string base = "pg2kafka.prod." + db.name() + ".";
  EXPECT_EQ(std::set<std::string>(topics.begin(), topics.end()),
            (std::set<std::string>{base + "Shop.Products", base + "items", base + "other.items"}));
  auto events = drain(*source);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].topic, base + "Shop.Products");
  EXPECT_EQ(events[0].key, "P1");
  EXPECT_EQ(events[0].headers.at("table"), "Shop.Products");
  EXPECT_EQ(events[1].topic, base + "items");
  EXPECT_EQ(events[2].topic, base + "other.items");
  EXPECT_EQ(events[2].key, "I2");
}

TEST(Names, HostileNamesCannotInjectSql) {
  TestDatabase db;
  seed_products(db.sql());
  const std::string hostile_table = "Robert'); DROP TABLE products; --";
  const std::string hostile_column = "k\"); DROP TABLE products; --";
  db.sql().exec(
      "CREATE TABLE \"Robert'); DROP TABLE products; --\" "
      "(\"k\"\"); DROP TABLE products; --\" text, v text)");
  // Injection attempts through the table argument are rejected as names.
  for (const char* attempt :
       {"SELECT pg2kafka.setup('products; DROP TABLE products', 'sku')",
        "SELECT pg2kafka.setup('products', 'sku''); DROP TABLE products; --')",
        "SELECT pg2kafka.setup('products'' ; DROP TABLE products; --', 'sku')"}) {
    EXPECT_NE(db.sql().try_exec(attempt), "") << attempt;
  }
  // A table and a key column with hostile names are tracked like any other.
  db.sql().exec(
      "SELECT pg2kafka.setup('\"Robert''); DROP TABLE products; --\"', "
      "'k\"); DROP TABLE products; --')");
  db.sql().exec("INSERT INTO \"Robert'); DROP TABLE products; --\" VALUES ('key1', 'v')");
  db.sql().exec("UPDATE \"Robert'); DROP TABLE products; --\" SET v = 'w'");
  db.sql().exec("DELETE FROM \"Robert'); DROP TABLE products; --\"");
  EXPECT_EQ(db.sql().value("SELECT count(*) FROM products"), "2");
  auto source = make_source(db.url());
  source->open();
  auto events = drain(*source);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].topic, "pg2kafka." + db.name() + ".Robert____DROP_TABLE_products__--");
  EXPECT_EQ(events[0].headers.at("table"), "public." + hostile_table);
  for (const auto& e : events) EXPECT_EQ(e.key, "key1");
  EXPECT_EQ(events[0].data().as_object().at(hostile_column), "key1");
  EXPECT_EQ(events[1].data(), json::value(json::object{{"v", "w"}}));
  EXPECT_EQ(events[2].data(), json::value(json::object{{hostile_column, "key1"}}));
}

// Per-table topics (capture option "topic"): the drainer checks the registry's routes again,
// since a table's owner can write its row of the registry around pg2kafka.configure. A route
// into the default names' space, or to a topic that another owner's older table named first, is
// refused (the table keeps its default topic); routes within the rules are followed.
TEST(Names, RoutesWrittenAroundConfigureAreCheckedAgainByTheDrainer) {
  TestDatabase db;
  auto& s = db.sql();
  TestRole bob(db, "bob");
  s.exec("GRANT CREATE ON SCHEMA public TO " + bob.name());
  s.exec("CREATE TABLE a (id int PRIMARY KEY)");
  s.exec("CREATE TABLE c (id int PRIMARY KEY)");
  s.exec("SELECT pg2kafka.setup('a', 'id', '{\"topic\": \"orders\"}')");
  s.exec("SELECT pg2kafka.setup('c', 'id')");
  Session b(bob.url());
  b.exec("CREATE TABLE b (id int PRIMARY KEY)");
  b.exec("SELECT pg2kafka.setup('b', 'id', '{\"tombstones\": false}')");
  // The registry allows an owner to write its own row: both escape configure's checks.
  b.exec(
      "UPDATE pg2kafka.tracked_tables SET options = '{\"topic\": \"orders\"}' "
      "WHERE relid = 'b'::regclass");
  s.exec("UPDATE pg2kafka.tracked_tables SET options = '{\"topic\": \"pg2kafka_" + db.name() +
         "_a\"}' WHERE relid = 'c'::regclass");
  s.exec("INSERT INTO a VALUES (1)");
  s.exec("INSERT INTO b VALUES (2)");
  s.exec("INSERT INTO c VALUES (3)");
  auto source = make_source(db.url());
  source->open();
  auto topics = source->list_topics();
  std::string base = "pg2kafka." + db.name() + ".";
  EXPECT_EQ(std::set<std::string>(topics.begin(), topics.end()),
            (std::set<std::string>{"orders", base + "b", base + "c"}));
  std::map<std::string, std::string> topic_of;
  for (const auto& e : drain(*source)) topic_of[*e.key] = e.topic;
  EXPECT_EQ(topic_of["1"], "orders") << "a route within the rules is followed";
  EXPECT_EQ(topic_of["2"], base + "b") << "another owner's table named orders first";
  EXPECT_EQ(topic_of["3"], base + "c") << "a pg2kafka_ name collides with the default names";
}
