// The SQL contract: setup, the capture triggers, teardown, migrations, names and odd types,
// observed through the pg-outbox source against the fixture's PostgreSQL.
#include <gtest/gtest.h>

#include <regex>
#include <set>
#include <thread>

#include "pg_test_support.hpp"

using namespace p2k_pg_test;
using pg2kafka::pg_outbox::topic_name;
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

TEST(Capture, TruncateIsCapturedAsTruncateEvent) {
  TestDatabase db;
  seed_products(db.sql());
  db.sql().exec("SELECT pg2kafka.setup('products', 'sku')");
  db.sql().exec("TRUNCATE products");
  auto source = make_source(db.url());
  source->open();
  auto events = drain(*source);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[2].statement(), "TRUNCATE");
  EXPECT_EQ(events[2].key, std::nullopt);
  EXPECT_TRUE(events[2].data().is_null());
  EXPECT_EQ(events[2].topic, "pg2kafka." + db.name() + ".products");
}

TEST(Teardown, StopsTracking_AndKeepsQueuedEvents) {
  TestDatabase db;
  seed_products(db.sql());
  db.sql().exec("SELECT pg2kafka.setup('products', 'sku')");
  db.sql().exec("INSERT INTO products (sku, name) VALUES ('A', 'before teardown')");
  EXPECT_EQ(db.sql().value("SELECT pg2kafka.teardown('products')"), "t");
  EXPECT_EQ(db.sql().value("SELECT pg2kafka.teardown('products')"), "f");
  db.sql().exec("INSERT INTO products (sku, name) VALUES ('B', 'after teardown')");
  db.sql().exec("UPDATE products SET name = 'changed'");
  EXPECT_EQ(db.sql().value("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'products'::regclass"),
            "0");
  EXPECT_EQ(db.sql().value("SELECT count(*) FROM pg2kafka.tracked_tables"), "0");
  auto source = make_source(db.url());
  source->open();
  auto events = drain(*source);
  ASSERT_EQ(events.size(), 3u);  // two snapshots and the insert before teardown
  EXPECT_EQ(events[2].key, "A");
  // Tracking again snapshots again.
  EXPECT_EQ(db.sql().value("SELECT pg2kafka.setup('products', 'sku')"), "t");
  EXPECT_EQ(drain(*source).size(), 4u);
}

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

TEST(Topics, NameRule) {
  EXPECT_EQ(topic_name("", "shop", "public", "products"), "pg2kafka.shop.products");
  EXPECT_EQ(topic_name("ns", "shop", "public", "products"), "pg2kafka.ns.shop.products");
  EXPECT_EQ(topic_name("", "shop", "sales", "orders"), "pg2kafka.shop.sales.orders");
  EXPECT_EQ(topic_name("", "my db", "a.b", "My Table!"), "pg2kafka.my_db.a_b.My_Table_");
  EXPECT_EQ(pg2kafka::pg_outbox::rfc3339_utc(1509639313940770), "2017-11-02T16:15:13.94077Z");
  EXPECT_EQ(pg2kafka::pg_outbox::rfc3339_utc(1509639313000000), "2017-11-02T16:15:13Z");
  EXPECT_EQ(pg2kafka::pg_outbox::rfc3339_utc(-1), "1969-12-31T23:59:59.999999Z");
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
  // an INSERT that copies them (its values stay compressed: small as stored, 6 MB as JSON).
  db.sql().exec("CREATE TABLE docs (id int PRIMARY KEY, body text)");
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
