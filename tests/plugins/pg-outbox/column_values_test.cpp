// Column values as the events' JSON: escaped strings, and types without a plain JSON form
// (arrays, hstore, bytea, NaN and infinities, jsonb), which must never make a write fail.
#include <gtest/gtest.h>

#include "pg_test_support.hpp"

using namespace p2k_pg_test;
namespace json = boost::json;

TEST(Json, EscapesQuotesBackslashesAndControlCharacters) {
  TestDatabase db;
  db.sql().exec("CREATE TABLE t (k text, v text)");
  db.sql().exec("SELECT pg2kafka.setup('t', 'k')");
  // k = a"b\c<newline><tab><0x01>d ; v contains a quote-heavy JSON-looking string.
  db.sql().exec("INSERT INTO t VALUES (E'a\"b\\\\c\\n\\t\\x01d', E'{\"x\": \"\\\\\"}\\r')");
  auto source = make_source(db.url());
  source->open();
  auto events = drain(*source);
  ASSERT_EQ(events.size(), 1u);
  const std::string key =
      "a\"b\\c\n\t\x01"
      "d";
  EXPECT_EQ(events[0].key, key);
  EXPECT_EQ(events[0].json.at("external_id"), json::value(key));
  EXPECT_EQ(events[0].data().as_object().at("k"), json::value(key));
  EXPECT_EQ(events[0].data().as_object().at("v"), json::value("{\"x\": \"\\\"}\r"));
}

TEST(Types, OddTypesNeverMakeApplicationWritesFail) {
  TestDatabase db;
  db.sql().exec("CREATE EXTENSION IF NOT EXISTS hstore");
  db.sql().exec(
      "CREATE TABLE odd (k int, arr int[], h hstore, b bytea, n numeric, f float8, "
      "ts timestamptz, t timestamp, d date, iv interval, j jsonb, tags text[], "
      // columns named like the aliases inside the trigger functions
      "o int, r int, e text, rn int, key text, value text)");
  db.sql().exec("SELECT pg2kafka.setup('odd', 'k')");
  db.sql().exec(
      "INSERT INTO odd VALUES (1, '{1,NULL,3}', 'a=>1, b=>NULL', '\\x00ff', 'NaN', 'NaN', "
      "'infinity', '-infinity', 'infinity', '1 day', '{\"a\": [1, {\"b\": null}]}', "
      "ARRAY['x\"y', NULL])");
  db.sql().exec(
      "INSERT INTO odd (k, n, f, o, r, e, rn) VALUES (2, 'Infinity', '-Infinity', 1, 2, "
      "'3', 4)");
  db.sql().exec("UPDATE odd SET n = '-Infinity', b = '\\x01', ts = '2020-01-01 00:00:00+00'");
  db.sql().exec("DELETE FROM odd WHERE k = 2");
  auto source = make_source(db.url());
  source->open();
  auto events = drain(*source);
  ASSERT_EQ(events.size(), 5u);
  const auto& row = events[0].data().as_object();
  EXPECT_EQ(row.at("arr"), json::parse("[1,null,3]"));
  EXPECT_EQ(row.at("h"), json::parse(R"({"a":"1","b":null})"));
  EXPECT_EQ(row.at("b"), json::value("\\x00ff"));
  EXPECT_EQ(row.at("n"), json::value("NaN"));
  EXPECT_EQ(row.at("ts"), json::value("infinity"));
  EXPECT_EQ(row.at("j"), json::parse(R"({"a":[1,{"b":null}]})"));
  EXPECT_EQ(events[1].data().as_object().at("n"), json::value("Infinity"));
  EXPECT_EQ(events[1].data().as_object().at("rn"), json::value(4));
  EXPECT_EQ(events[2].statement(), "UPDATE");
  EXPECT_EQ(events[2].key, "1");
  EXPECT_EQ(events[2].data(),
            json::parse(R"({"b":"\\x01","n":"-Infinity","ts":"2020-01-01T00:00:00+00:00"})"));
  EXPECT_EQ(events[3].key, "2");
  EXPECT_EQ(events[4].statement(), "DELETE");
  EXPECT_EQ(events[4].data(), json::parse(R"({"k":2})"));
  EXPECT_EQ(events[4].key, "2");
}
