// The batch-expansion rules exist twice: in SQL (pg2kafka.event_uuid, pg2kafka.batch_events,
// behind the view outbound_event_queue) and in C++ (expand_batch, event_uuid), which builds the
// messages. These tests make sure both give the same event ids, keys and data, for rows written
// by the triggers and for every other shape the queue can hold.
#include <gtest/gtest.h>

#include "batch.hpp"
#include "pg_test_support.hpp"

using namespace p2k_pg_test;

namespace {

std::string dollar_quoted(const std::string& text) {
  return "$p2k_q$" + text + "$p2k_q$";
}

}  // namespace

TEST(BatchRules, EventUuidIsTheSameInSqlAndCpp) {
  TestDatabase db;
  for (const char* uuid :
       {"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "00000000-0000-4000-8000-000000000000",
        "ffffffff-ffff-4fff-bfff-ffffffffffff"}) {
    for (uint32_t index : {0u, 1u, 2u, 255u, 256u, 65535u, 65536u, 1000000u, 2147483647u}) {
      EXPECT_EQ(db.sql().value(std::string("SELECT pg2kafka.event_uuid('") + uuid + "', " +
                               std::to_string(index) + ")"),
                pg2kafka::pg_outbox::event_uuid(uuid, index))
          << uuid << " " << index;
    }
  }
}

TEST(BatchRules, SqlViewAndPluginGiveTheSameEvents_ForEveryShapeOfBatch) {
  TestDatabase db;
  // Written by the triggers: awkward values, keys of every JSON kind, an UPDATE that changes
  // nothing for one row and the key for another, deletes, truncate, and a dropped key column.
  // No primary key: setup copies its snapshot into the queue (a SNAPSHOT batch of the queue).
  db.sql().exec(
      "CREATE TABLE r (id int, k text, n numeric, f float8, j jsonb, b bool, "
      "a int[], t text)");
  db.sql().exec(
      "INSERT INTO r VALUES "
      "(1, 'plain', 1.50, 1e20, '{\"x\": [1, {\"y\": null}]}', true, '{1,2}', 'q\"uo\\\\te'),"
      "(2, E'line\\nbreak \\u00e9 \\u2603', 0, 'NaN', 'null', false, '{}', NULL),"
      "(3, NULL, -0.0001, -1.5e-7, '\"str\"', NULL, NULL, '')");
  db.sql().exec("SELECT pg2kafka.setup('r', 'k')");
  db.sql().exec(
      "INSERT INTO r VALUES (4, 'four', 4, 4, '[4]', true, '{4}', 'x'), "
      "(5, 'five', 5, 5, '{}', false, '{5}', 'y')");
  // Row 3 changes only the scale of n (-0.0001 to -0.00010): a change, as PostgreSQL prints it.
  db.sql().exec(
      "UPDATE r SET t = CASE id WHEN 1 THEN 'changed' ELSE t END, "
      "k = CASE id WHEN 2 THEN 'rekeyed' ELSE k END, "
      "n = CASE id WHEN 3 THEN -0.00010 ELSE n END WHERE id IN (1, 2, 3, 4)");
  db.sql().exec("DELETE FROM r WHERE id IN (3, 5)");
  db.sql().exec("TRUNCATE r");
  // Keys that are not strings: numbers (as printed, exponent included), objects, arrays.
  for (const char* type : {"float8", "numeric", "jsonb", "int[]"}) {
    std::string table = std::string("key_") + (type[0] == 'i' ? "arr" : type);
    db.sql().exec("CREATE TABLE " + table + " (id int PRIMARY KEY, key " + type + ", v text)");
    db.sql().exec("SELECT pg2kafka.setup('" + table + "', 'key')");
  }
  db.sql().exec("INSERT INTO key_float8 VALUES (1, 1e20, 'a'), (2, -2.5e-8, 'b'), (3, 7, 'c')");
  db.sql().exec("INSERT INTO key_numeric VALUES (1, 1.50, 'a'), (2, 100, 'b')");
  db.sql().exec(
      "INSERT INTO key_jsonb VALUES (1, '{\"b\": 1, \"a\": [true, null]}', 'a'), "
      "(2, '\"s\"', 'b'), (3, '12.0', 'c')");
  db.sql().exec("INSERT INTO key_arr VALUES (1, '{1,2,3}', 'a')");
  for (const char* table : {"key_float8", "key_numeric", "key_jsonb", "key_arr"}) {
    db.sql().exec(std::string("UPDATE ") + table + " SET v = v || '!'");
    db.sql().exec(std::string("DELETE FROM ") + table + " WHERE id = 1");
  }
  db.sql().exec("CREATE TABLE dropped (id int PRIMARY KEY, k text, v text)");
  db.sql().exec("SELECT pg2kafka.setup('dropped', 'k')");
  db.sql().exec("INSERT INTO dropped VALUES (1, 'a', 'x'), (2, 'b', 'y')");
  db.sql().exec("ALTER TABLE dropped DROP COLUMN k");
  db.sql().exec("INSERT INTO dropped VALUES (3, 'z')");
  db.sql().exec("UPDATE dropped SET v = 'w' WHERE id = 3");
  db.sql().exec("DELETE FROM dropped WHERE id IN (1, 3)");
  // Shapes only older migrations wrote: one event per row with its external_id, data as sent.
  db.sql().exec(
      "INSERT INTO pg2kafka.event_batches (table_schema, table_name, statement, external_id, "
      "events, data) VALUES "
      "('public', 'legacy', 'UPDATE', 'L1', 1, '[{\"name\": \"reduced\"}]'),"
      "('public', 'legacy', 'DELETE', 'L2', 1, '[{\"sku\": \"L2\"}]'),"
      "('public', 'legacy', 'TRUNCATE', NULL, 1, NULL)");

  auto expected = db.sql().rows(
      "SELECT uuid::text, external_id, data::text, statement FROM pg2kafka.outbound_event_queue "
      "ORDER BY batch_id, batch_index");
  ASSERT_GT(expected.size(), 30u);

  auto source = make_source(db.url());
  source->open();
  auto events = drain(*source, /*ack=*/false);
  ASSERT_EQ(events.size(), expected.size());
  for (size_t i = 0; i < events.size(); ++i) {
    const auto& e = events[i];
    const auto& row = expected[i];
    SCOPED_TRACE("event " + std::to_string(i) + ": " + e.value);
    EXPECT_EQ(e.id, *row[0]);
    EXPECT_EQ(e.key, row[1]);
    EXPECT_EQ(e.statement(), *row[3]);
    // Compared as jsonb: the view's data column is jsonb, the message holds the text as built.
    std::string data = boost::json::serialize(e.data());
    if (row[2])
      EXPECT_EQ(db.sql().value("SELECT " + dollar_quoted(data) +
                               "::jsonb = " + dollar_quoted(*row[2]) + "::jsonb"),
                "t")
          << data << " vs " << *row[2];
    else
      EXPECT_EQ(data, "null");
  }
}
