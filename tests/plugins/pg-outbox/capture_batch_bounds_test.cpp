// How the capture triggers cut a statement into pg2kafka.event_batches rows: by rows and by the
// bytes of JSON they hold, the same events whichever way a statement was written.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <vector>

#include "pg_test_support.hpp"

using namespace p2k_pg_test;
namespace json = boost::json;

// Migration 005 writes statements that fit in one batch with a query of its own and cuts larger
// ones with the batching queries of 004. Both must give the same events and the same bounds.
TEST(Capture, LargeStatementsAreCutIntoBoundedBatches_SmallOnesMakeOne_SameEventsEitherWay) {
  TestDatabase db;
  db.sql().exec("CREATE TABLE t (id int PRIMARY KEY, k text, a text)");
  db.sql().exec("CREATE TABLE big (id int PRIMARY KEY, k text, pad text)");
  db.sql().exec("ALTER TABLE big ALTER COLUMN pad SET STORAGE EXTERNAL");  // sizes as written
  db.sql().exec("SELECT pg2kafka.setup('t', 'k')");
  db.sql().exec("SELECT pg2kafka.setup('big', 'k')");
  auto batches = [&](const std::string& statement, const std::string& table) {
    return db.sql().value(
        "SELECT string_agg(events::text, ',' ORDER BY id) "
        "FROM pg2kafka.event_batches WHERE statement = '" +
        statement + "' AND table_name = '" + table + "'");
  };
  db.sql().exec("INSERT INTO t SELECT g, 'k' || g, 'a' || g FROM generate_series(1, 2500) g");
  db.sql().exec("INSERT INTO t SELECT g, 'k' || g, 'a' || g FROM generate_series(2501, 2510) g");
  EXPECT_EQ(batches("INSERT", "t"), "1000,1000,500,10");
  // Rows of ~330 kB: one statement of 5 rows is over 1 MB, so it is cut by size.
  db.sql().exec(
      "INSERT INTO big SELECT g, 'b' || g, (SELECT string_agg(md5(g::text || i), '') "
      "FROM generate_series(1, 10000) i) FROM generate_series(1, 5) g");
  EXPECT_EQ(batches("INSERT", "big"), "3,2");

  // Every key changes, so old and new rows can only be paired by position; only even rows
  // change `a`.
  const std::string update =
      "UPDATE t SET k = 'n' || id, a = CASE WHEN id % 2 = 0 THEN 'x' || id ELSE a END ";
  db.sql().exec(update + "WHERE id <= 2500");
  db.sql().exec(update + "WHERE id > 2500");
  EXPECT_EQ(batches("UPDATE", "t"), "1000,1000,500,10");
  db.sql().exec("UPDATE big SET k = 'c' || id");
  EXPECT_EQ(batches("UPDATE", "big"), "3,2");
  // The new rows are small now, the old ones are not: batches are sized by both, so that the
  // old rows kept for comparison stay within the bound too.
  db.sql().exec("UPDATE big SET pad = NULL");
  EXPECT_EQ(batches("UPDATE", "big"), "3,2,3,2");
  EXPECT_LT(std::stoll(db.sql().value("SELECT max(pg_column_size(old_data)) "
                                      "FROM pg2kafka.event_batches WHERE table_name = 'big'")),
            1100000);
  // A table whose rows may hold large values: its DELETEs read the key column directly.
  db.sql().exec("DELETE FROM big WHERE id <= 2");
  EXPECT_EQ(batches("DELETE", "big"), "2");

  db.sql().exec("INSERT INTO t SELECT g, 'k' || g, '' FROM generate_series(2511, 12600) g");
  db.sql().exec("DELETE FROM t WHERE id <= 50");
  db.sql().exec("DELETE FROM t WHERE id > 50");
  EXPECT_EQ(batches("DELETE", "t"), "50,10000,2550");
  // Every batch records the size of its JSON, uncompressed (migration 006): the drainer bounds
  // its reads by it. (Each row's or array's size counts a 4-byte header.)
  EXPECT_EQ(db.sql().value("SELECT count(*) FROM pg2kafka.event_batches WHERE data_bytes IS NULL "
                           "OR abs(data_bytes - octet_length(data::text) "
                           "       - coalesce(octet_length(old_data::text), 0)) > 4 * events + 8"),
            "0");

  auto source = make_source(db.url());
  source->open();
  auto events = drain(*source);
  std::map<std::string, std::vector<const Event*>> by_kind;
  for (const auto& e : events)
    by_kind[e.statement() + " " + e.topic.substr(e.topic.rfind('.') + 1)].push_back(&e);
  ASSERT_EQ(by_kind["INSERT t"].size(), 2510u + 10090u);
  ASSERT_EQ(by_kind["UPDATE t"].size(), 2510u);
  ASSERT_EQ(by_kind["DELETE t"].size(), 12600u);
  ASSERT_EQ(by_kind["UPDATE big"].size(), 10u);
  ASSERT_EQ(by_kind["DELETE big"].size(), 2u);
  for (size_t i = 0; i < 2510; ++i) {
    const Event& e = *by_kind["INSERT t"][i];
    EXPECT_EQ(e.key, "k" + std::to_string(i + 1));
    EXPECT_EQ(e.data().as_object().at("id"), json::value(int(i + 1)));
  }
  std::set<std::string> keys;
  for (const Event* e : by_kind["UPDATE t"]) {
    ASSERT_TRUE(e->key);
    keys.insert(*e->key);
    int id = std::stoi(e->key->substr(1));
    json::object expected{{"k", *e->key}};
    if (id % 2 == 0) expected["a"] = "x" + std::to_string(id);
    EXPECT_EQ(e->data(), json::value(expected)) << e->value;
  }
  EXPECT_EQ(keys.size(), 2510u);
  for (size_t i = 0; i < 5; ++i) {
    const Event& e = *by_kind["UPDATE big"][i];
    EXPECT_EQ(e.key, "c" + std::to_string(i + 1));
    EXPECT_EQ(e.data(), json::value(json::object{{"k", *e.key}})) << e.value;
    const Event& emptied = *by_kind["UPDATE big"][i + 5];
    EXPECT_EQ(emptied.key, "c" + std::to_string(i + 1));
    EXPECT_EQ(emptied.data(), json::parse(R"({"pad":null})")) << emptied.value;
  }
  EXPECT_EQ(by_kind["DELETE big"][1]->data(), json::parse(R"({"k":"c2"})"));
  // Deleted keys are the current ones (n<id> after the UPDATE, k<id> for rows inserted later),
  // each exactly once, whichever way the statement was captured.
  std::set<std::string> deleted;
  for (const Event* e : by_kind["DELETE t"]) {
    ASSERT_TRUE(e->key);
    int id = std::stoi(e->key->substr(1));
    EXPECT_EQ(*e->key, (id <= 2510 ? "n" : "k") + std::to_string(id));
    EXPECT_EQ(e->data(), json::value(json::object{{"k", *e->key}})) << e->value;
    deleted.insert(*e->key);
  }
  EXPECT_EQ(deleted.size(), 12600u);
  EXPECT_EQ(queued_events(db.sql()), "0");
}

// Migration 006: whether a statement fits in one batch is decided after reading at most 1001
// rows (DELETE: 101), and large statements are cut by the bytes of JSON their batches hold. Rows
// read back from the table hold their large values compressed; counted that way, a batch of rows
// whose values compress well held far more JSON than the bound (20 MB in one batch here).
TEST(Capture, BatchesAreBoundedByTheJsonTheyHold_EvenWhenStoredValuesCompressWell) {
  TestDatabase db;
  db.sql().exec("CREATE TABLE t (id int PRIMARY KEY, k text, pad text)");
  db.sql().exec("SELECT pg2kafka.setup('t', 'k')");
  auto batches = [&](const std::string& statement) {
    return db.sql().value(
        "SELECT string_agg(events::text, ',' ORDER BY id) "
        "FROM pg2kafka.event_batches WHERE statement = '" +
        statement + "'");
  };
  // Around the first pass's limit: 1000 rows are one batch, 1001 two.
  db.sql().exec("INSERT INTO t SELECT g, 'k' || g, '' FROM generate_series(1, 1000) g");
  db.sql().exec("INSERT INTO t SELECT g, 'k' || g, '' FROM generate_series(1001, 2001) g");
  EXPECT_EQ(batches("INSERT"), "1000,1000,1");
  db.sql().exec("DELETE FROM t WHERE id <= 100");
  db.sql().exec("DELETE FROM t WHERE id > 100");
  EXPECT_EQ(batches("DELETE"), "100,1901");

  // 1100 rows of 20 kB of JSON each that compress to a few hundred bytes; without the key
  // column, a DELETE keeps the whole rows.
  db.sql().exec(
      "INSERT INTO t SELECT g, 'k' || g, repeat('x', 20000) FROM generate_series(1, 1100) g");
  EXPECT_LT(std::stoll(db.sql().value("SELECT max(pg_column_size(t.*)) FROM t")), 1000);
  db.sql().exec("ALTER TABLE t DROP COLUMN k");
  db.sql().exec("DELETE FROM t");
  EXPECT_EQ(db.sql().value("SELECT count(*) > 20 FROM pg2kafka.event_batches "
                           "WHERE statement = 'DELETE' AND key_column IS NULL"),
            "t");
  EXPECT_LT(std::stoll(db.sql().value("SELECT max(octet_length(data::text)) "
                                      "FROM pg2kafka.event_batches")),
            1048576 + 21000);
  // The same for a snapshot of such rows (read from the table, so stored compressed), and for
  // an INSERT that copies them (its values stay compressed: small as stored, 6 MB as JSON). No
  // primary key: setup copies the snapshot into the queue itself.
  db.sql().exec("CREATE TABLE docs (id int, body text)");
  db.sql().exec("INSERT INTO docs SELECT g, repeat('y', 20000) FROM generate_series(1, 300) g");
  db.sql().exec("SELECT pg2kafka.setup('docs', 'id')");
  db.sql().exec("CREATE TABLE copies (id int PRIMARY KEY, body text)");
  db.sql().exec("SELECT pg2kafka.setup('copies', 'id')");
  db.sql().exec("INSERT INTO copies SELECT * FROM docs");
  for (const char* table : {"docs", "copies"})
    EXPECT_EQ(db.sql().value(std::string("SELECT count(*) >= 6 AND sum(events) = 300 "
                                         "AND max(octet_length(data::text)) < 1048576 + 21000 "
                                         "FROM pg2kafka.event_batches WHERE table_name = '") +
                             table + "'"),
              "t")
        << table;

  auto source = make_source(db.url());
  source->open();
  auto events = drain(*source);
  ASSERT_EQ(events.size(), 2001u + 2001u + 1100u + 1100u + 300u + 300u);
  std::set<int> deleted_whole;
  for (size_t i = 4002; i < events.size(); ++i) {
    const Event& e = events[i];
    if (e.statement() != "DELETE") continue;
    const auto& row = e.data().as_object();
    EXPECT_EQ(row.at("pad").as_string().size(), 20000u) << e.value.substr(0, 200);
    deleted_whole.insert(static_cast<int>(row.at("id").as_int64()));
  }
  EXPECT_EQ(deleted_whole.size(), 1100u);
  EXPECT_EQ(queued_events(db.sql()), "0");
}
