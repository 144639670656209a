// Capture modes (sql/README.md, "Capture modes"): a table captured row by row sends exactly what
// the statement-level triggers send; setup and configure choose and switch the mode, check their
// options, and lose or double no write made while the mode changes.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "pg_test_support.hpp"

using namespace p2k_pg_test;
namespace json = boost::json;

namespace {

constexpr const char* kRow = R"('{"capture": "row"}')";

// The same writes, in every shape a statement can take, on a table tracked in `options`' mode.
std::vector<std::string> stream_of_writes(const std::string& options) {
  TestDatabase db;
  // No primary key: setup copies the snapshot at once, so it comes ahead of the writes.
  db.sql().exec("CREATE TABLE t (id int, k text, a text, b int, big text)");
  db.sql().exec("INSERT INTO t SELECT g, 'k' || g, 'a' || g, g, NULL FROM generate_series(1, 3) g");
  db.sql().exec("SELECT pg2kafka.setup('t', 'k'" + options + ")");
  db.sql().exec("INSERT INTO t VALUES (4, 'k4', 'a4', 4, NULL)");
  db.sql().exec("INSERT INTO t SELECT g, 'k' || g, 'a' || g, g, NULL FROM generate_series(5, 8) g");
  db.sql().exec("UPDATE t SET a = 'x' WHERE id = 1");
  db.sql().exec("UPDATE t SET b = b WHERE id = 2");  // changes nothing: sends nothing
  db.sql().exec("UPDATE t SET b = b + 10 WHERE id > 5");
  db.sql().exec("UPDATE t SET k = 'n3' WHERE id = 3");                   // the key changes
  db.sql().exec("UPDATE t SET big = repeat('v', 300000) WHERE id = 4");  // stored out of line
  db.sql().exec("DELETE FROM t WHERE id = 5");
  db.sql().exec("DELETE FROM t WHERE id IN (4, 6)");
  db.sql().exec("TRUNCATE t");
  db.sql().exec("INSERT INTO t VALUES (9, NULL, 'no key', 9, NULL)");
  auto source = make_source(db.url());
  source->open();
  auto events = drain(*source);
  auto lines = describe(events);
  // A large value is compared by its length.
  for (auto& line : lines)
    if (line.size() > 1000) line = line.substr(0, 60) + "... (" + std::to_string(line.size()) + ")";
  return lines;
}

}  // namespace

TEST(CaptureModes, RowCapture_SendsExactlyWhatStatementCaptureSends) {
  auto by_statement = stream_of_writes("");
  auto by_row = stream_of_writes(std::string(", ") + kRow);
  EXPECT_EQ(by_row, by_statement);
  // And what that is, so that both cannot be wrong alike.
  ASSERT_EQ(by_statement.size(), 19u);
  EXPECT_EQ(by_statement[3], R"(t INSERT k4 {"id":4,"k":"k4","a":"a4","b":4,"big":null})");
  EXPECT_EQ(by_statement[8], R"(t UPDATE k1 {"a":"x"})");
  EXPECT_EQ(by_statement[12], R"(t UPDATE n3 {"k":"n3"})");
  EXPECT_EQ(by_statement[14], R"(t DELETE k5 {"k":"k5"})");
  EXPECT_EQ(by_statement[17], "t TRUNCATE null null");
  EXPECT_EQ(by_statement[18], R"(t INSERT null {"id":9,"k":null,"a":"no key","b":9,"big":null})");
}

TEST(CaptureModes, RowCapture_QueuesOneBatchPerRow_WithTheRowsTriggers) {
  TestDatabase db;
  tracked_table(db.sql());
  db.sql().exec(std::string("SELECT pg2kafka.configure('t', ") + kRow + ")");
  EXPECT_EQ(db.sql().value("SELECT string_agg(tgname || ':' || (tgtype & 1)::text, ',' "
                           "ORDER BY tgname) FROM pg_trigger WHERE tgrelid = 't'::regclass"),
            "pg2kafka_row:1,pg2kafka_truncate:0");  // 1: FOR EACH ROW
  EXPECT_EQ(db.sql().value("SELECT capture FROM pg2kafka.tracked_tables"), "row");
  db.sql().exec("INSERT INTO t SELECT 'k' || g, g FROM generate_series(1, 3) g");
  EXPECT_EQ(db.sql().value("SELECT string_agg(events::text, ',' ORDER BY id) "
                           "FROM pg2kafka.event_batches"),
            "1,1,1");
  EXPECT_EQ(db.sql().value("SELECT count(*) FROM pg2kafka.tracking_problems()"), "0");
}

TEST(CaptureModes, RowCapture_FollowsARenamedKeyColumn_AndKeepsWholeRowsOnceItIsDropped) {
  TestDatabase db;
  db.sql().exec("CREATE TABLE t (id int PRIMARY KEY, code text, v int)");
  db.sql().exec(std::string("SELECT pg2kafka.setup('t', 'code', ") + kRow + ")");
  db.sql().exec("ALTER TABLE t RENAME COLUMN code TO ref");
  db.sql().exec("INSERT INTO t VALUES (1, 'R1', 1), (2, 'R2', 2)");
  db.sql().exec("DELETE FROM t WHERE id = 1");
  db.sql().exec("ALTER TABLE t DROP COLUMN ref");
  db.sql().exec("UPDATE t SET v = 3");
  db.sql().exec("DELETE FROM t");
  auto source = make_source(db.url());
  source->open();
  EXPECT_EQ(describe(drain(*source)),
            (std::vector<std::string>{R"(t INSERT R1 {"id":1,"ref":"R1","v":1})",
                                      R"(t INSERT R2 {"id":2,"ref":"R2","v":2})",
                                      R"(t DELETE R1 {"ref":"R1"})", R"(t UPDATE null {"v":3})",
                                      R"(t DELETE null {"id":2,"v":3})"}));
}

TEST(CaptureModes, ConfigureSwitchesModes_WhileWritersRun_LosingAndDoublingNothing) {
  TestDatabase db;
  tracked_table(db.sql());
  // Two writers insert one row per transaction as fast as they can while the mode flips.
  std::atomic<bool> stop{false};
  std::atomic<int> written{0};
  auto write = [&](const std::string& prefix) {
    Session writer(db.url());
    for (int i = 0; !stop; ++i) {
      writer.exec("INSERT INTO t VALUES ('" + prefix + std::to_string(i) + "', " +
                  std::to_string(i) + ")");
      ++written;
    }
  };
  std::thread a(write, "a"), b(write, "b");
  Session admin(db.url());
  for (int flip = 0; flip < 6; ++flip) {
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    EXPECT_EQ(admin.value(std::string("SELECT pg2kafka.configure('t', ") +
                          (flip % 2 == 0 ? kRow : R"('{"capture": "statement"}')") + ")"),
              "t");
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  stop = true;
  a.join();
  b.join();
  auto source = make_source(db.url());
  source->open();
  auto events = drain(*source);
  std::map<std::string, int> seen;
  std::map<char, int> last;
  for (const auto& e : events) {
    ASSERT_TRUE(e.key);
    ++seen[*e.key];
    char writer = (*e.key)[0];
    int i = std::stoi(e.key->substr(1));
    if (last.count(writer)) {
      EXPECT_EQ(i, last[writer] + 1) << "out of order or lost: " << *e.key;
    }
    last[writer] = i;
  }
  EXPECT_EQ(static_cast<int>(events.size()), written.load());
  EXPECT_EQ(static_cast<int>(seen.size()), written.load());  // no key twice
  EXPECT_GT(written.load(), 20);
}

TEST(CaptureModes, OptionsAreChecked_WithMessagesThatNameTheProblemAndTheFix) {
  TestDatabase db;
  db.sql().exec("CREATE TABLE t (k text, v int)");
  db.sql().exec("CREATE TABLE parts (k text, v int) PARTITION BY LIST (v)");
  auto err = [&](const std::string& sql) { return db.sql().try_exec(sql); };
  EXPECT_NE(err("SELECT pg2kafka.setup('t', 'k', '[1]')")
                .find("options must be a JSON object, "
                      "not array"),
            std::string::npos);
  EXPECT_NE(err(R"(SELECT pg2kafka.setup('t', 'k', '{"capture": "rows"}'))")
                .find(R"(option "capture" must be "statement" or "row", not "rows")"),
            std::string::npos);
  EXPECT_NE(err(R"(SELECT pg2kafka.setup('t', 'k', '{"capture": 1}'))")
                .find(R"(option "capture" must be "statement" or "row", not 1)"),
            std::string::npos);
  EXPECT_NE(err(R"(SELECT pg2kafka.setup('t', 'k', '{"exclud": ["v"]}'))")
                .find(R"(pg2kafka.setup: unknown option "exclud")"),
            std::string::npos);
  EXPECT_NE(
      err(R"(SELECT pg2kafka.setup('parts', 'k', '{"capture": "statement"}'))")
          .find("public.parts is partitioned, and partitioned tables are always captured row by "
                "row"),
      std::string::npos);
  EXPECT_NE(err(std::string("SELECT pg2kafka.configure('t', ") + kRow + ")")
                .find("pg2kafka.configure: public.t is not tracked"),
            std::string::npos);
  EXPECT_EQ(queued_events(db.sql()), "0");
  EXPECT_EQ(db.sql().value("SELECT count(*) FROM pg2kafka.tracked_tables"), "0");
  EXPECT_EQ(db.sql().value("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'pg2kafka%'"), "0");

  // The original's two-argument call, and NULL or empty options, take the defaults.
  EXPECT_EQ(db.sql().value("SELECT pg2kafka.setup('t', 'k', NULL)"), "t");
  EXPECT_EQ(db.sql().value("SELECT pg2kafka.setup('parts', 'k', '{}')"), "t");
  EXPECT_EQ(
      db.sql().value("SELECT string_agg(table_name || ':' || capture, ',' ORDER BY table_name) "
                     "FROM pg2kafka.tracked_tables"),
      "parts:row,t:statement");
  EXPECT_EQ(db.sql().value(R"(SELECT pg2kafka.configure('t', '{"capture": "statement"}'))"), "f");
  EXPECT_EQ(db.sql().value(R"(SELECT pg2kafka.configure('parts', '{"capture": "row"}'))"), "f");
}

TEST(CaptureModes, SetupOfATrackedTable_KeepsItsMode_OrSwitchesItWithoutASnapshot) {
  TestDatabase db;
  tracked_table(db.sql());
  insert_one_by_one(db.sql(), 1, 2);
  db.sql().exec("TRUNCATE pg2kafka.event_batches");
  EXPECT_EQ(db.sql().value(std::string("SELECT pg2kafka.setup('t', 'k', ") + kRow + ")"), "f");
  EXPECT_EQ(db.sql().value("SELECT capture FROM pg2kafka.tracked_tables"), "row");
  EXPECT_EQ(db.sql().value("SELECT pg2kafka.setup('t', 'k')"), "f");  // keeps it
  EXPECT_EQ(db.sql().value("SELECT capture FROM pg2kafka.tracked_tables"), "row");
  EXPECT_EQ(queued_events(db.sql()), "0");  // no snapshot

  // A mode changed in the registry by hand no longer matches the triggers: reported, and setup
  // puts the registered mode's triggers in place (no snapshot).
  db.sql().exec("UPDATE pg2kafka.tracked_tables SET capture = 'statement'");
  EXPECT_EQ(db.sql().value("SELECT problem FROM pg2kafka.tracking_problems()"), "outdated");
  EXPECT_EQ(db.sql().value("SELECT pg2kafka.setup('t', 'k')"), "f");
  EXPECT_EQ(db.sql().value("SELECT count(*) FROM pg2kafka.tracking_problems()"), "0");
  EXPECT_EQ(db.sql().value("SELECT string_agg(tgname, ',' ORDER BY tgname) FROM pg_trigger "
                           "WHERE tgrelid = 't'::regclass"),
            "pg2kafka_delete,pg2kafka_insert,pg2kafka_truncate,pg2kafka_update");
  EXPECT_EQ(queued_events(db.sql()), "0");

  // A row-mode table whose triggers were dropped: the fix named in the message keeps the mode.
  db.sql().exec(std::string("SELECT pg2kafka.configure('t', ") + kRow + ")");
  db.sql().exec("DROP TRIGGER pg2kafka_truncate ON t");
  EXPECT_NE(db.sql()
                .value("SELECT message FROM pg2kafka.tracking_problems()")
                .find(R"(SELECT pg2kafka.setup('public.t', 'k', '{"capture": "row"}'))"),
            std::string::npos);

  // teardown removes the row trigger like the others.
  EXPECT_EQ(db.sql().value("SELECT pg2kafka.teardown('t')"), "t");
  EXPECT_EQ(db.sql().value("SELECT count(*) FROM pg_trigger WHERE tgrelid = 't'::regclass"), "0");
}

TEST(CaptureModes, AWriterWithOnlyItsTablePrivileges_IsCapturedInRowMode) {
  TestDatabase db;
  TestRole writer(db, "writer");
  db.sql().exec("CREATE TABLE t (id int PRIMARY KEY, k text, v int)");
  db.sql().exec(std::string("SELECT pg2kafka.setup('t', 'k', ") + kRow + ")");
  db.sql().exec("GRANT SELECT, INSERT, UPDATE, DELETE ON t TO " + writer.name());
  Session as_writer(writer.url());
  as_writer.exec("INSERT INTO t VALUES (1, 'a', 1)");
  as_writer.exec("UPDATE t SET v = 2");
  as_writer.exec("DELETE FROM t");
  // It cannot queue an event for a table it may not write, in either form.
  db.sql().exec("CREATE TABLE other (id int PRIMARY KEY)");
  std::string forged = as_writer.try_exec(
      "INSERT INTO pg2kafka.event_batches (table_schema, table_name, statement, key_column, "
      "events, data) VALUES ('public', 'other', 'INSERT', 'id', 1, '[{\"id\": 1}]')");
  EXPECT_NE(forged.find("row-level security"), std::string::npos) << forged;
  // Nor change how a table it does not own is captured.
  std::string err =
      as_writer.try_exec(R"(SELECT pg2kafka.configure('t', '{"capture": "statement"}'))");
  EXPECT_NE(err.find("must be owner"), std::string::npos) << err;
  EXPECT_EQ(db.sql().value("SELECT capture FROM pg2kafka.tracked_tables"), "row");
  auto source = make_source(db.url());
  source->open();
  EXPECT_EQ(describe(drain(*source)),
            (std::vector<std::string>{R"(t INSERT a {"id":1,"k":"a","v":1})",
                                      R"(t UPDATE a {"v":2})", R"(t DELETE a {"k":"a"})"}));
}

TEST(CaptureModes, ARowCapturedTableRestoredFromADump_KeepsItsKeysAndMode_AndIsReattached) {
  // pg_dump writes no dropped column, so the restored table's key column gets another attnum,
  // and the table another OID: row capture must then find the key column by its name.
  TestDatabase src;
  src.sql().exec("CREATE TABLE orders (gone int, id int PRIMARY KEY, sku text, note text)");
  src.sql().exec("ALTER TABLE orders DROP COLUMN gone");
  src.sql().exec(std::string("SELECT pg2kafka.setup('orders', 'sku', ") + kRow + ")");
  TestDatabase dst(/*install_schema=*/false);
  ASSERT_EQ(dump_and_restore(src.url(), dst.url()), "");

  dst.sql().exec("INSERT INTO orders VALUES (1, 'S1', 'a')");
  dst.sql().exec("UPDATE orders SET note = 'b'");
  dst.sql().exec("DELETE FROM orders");
  EXPECT_EQ(dst.sql().value("SELECT problem FROM pg2kafka.tracking_problems()"), "restored");
  EXPECT_EQ(dst.sql().value("SELECT pg2kafka.setup('orders', 'sku')"), "f");  // re-attached
  EXPECT_EQ(dst.sql().value("SELECT count(*) FROM pg2kafka.tracking_problems()"), "0");
  EXPECT_EQ(dst.sql().value("SELECT capture FROM pg2kafka.tracked_tables"), "row");
  dst.sql().exec("INSERT INTO orders VALUES (2, 'S2', 'c')");
  auto source = make_source(dst.url());
  source->open();
  EXPECT_EQ(describe(drain(*source)),
            (std::vector<std::string>{R"(orders INSERT S1 {"id":1,"sku":"S1","note":"a"})",
                                      R"(orders UPDATE S1 {"note":"b"})",
                                      R"(orders DELETE S1 {"sku":"S1"})",
                                      R"(orders INSERT S2 {"id":2,"sku":"S2","note":"c"})"}));
}
