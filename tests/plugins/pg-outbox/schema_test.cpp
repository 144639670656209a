// The pg2kafka schema's life cycle: installing it (by the plugin and by hand with psql), the
// version policy of migrations and function set, upgrades with events queued, and pg_dump /
// pg_restore of a tracked database.
#include <gtest/gtest.h>

#include <regex>
#include <thread>

#include "embedded_sql.hpp"
#include "pg_test_support.hpp"
#include "schema.hpp"
#include "test_support.hpp"

using namespace p2k_pg_test;
using pg2kafka::pg_outbox::shipped_schema;
namespace json = boost::json;

namespace {

// psql --single-transaction -v ON_ERROR_STOP=1 -f sql/install.sql, as the README says.
p2k_test::CommandResult psql_install(const std::string& url) {
  return p2k_test::run({pg_tool("psql"), "-X", "-q", "--single-transaction", "-v",
                        "ON_ERROR_STOP=1", "-f",
                        p2k_test::ctest_env("P2K_SOURCE_DIR") + "/sql/install.sql", url});
}

std::string versions(Session& sql) {
  return sql.value(
      "SELECT (SELECT max(version) FROM pg2kafka.schema_migrations) || ',' || "
      "coalesce((SELECT max(version) FROM pg2kafka.schema_functions), 0)");
}

std::string shipped_versions() {
  return std::to_string(shipped_schema().migrations) + "," +
         std::to_string(shipped_schema().functions);
}

// The arguments of a table's capture triggers, one line per trigger in name order.
std::string trigger_args(Session& sql, const std::string& table) {
  return sql.value(
      "SELECT string_agg(tgname || '(' || array_to_string("
      "pg2kafka.trigger_arguments(tgargs, tgnargs), ',') || ')', ' ' ORDER BY "
      "tgname) FROM pg_trigger WHERE tgrelid = '" +
      table + "'::regclass AND tgname LIKE 'pg2kafka%'");
}

std::string config_error(pg2kafka::pg_outbox::OutboxSource& source) {
  try {
    source.open();
  } catch (const pg2kafka::sdk::ConfigError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Migrations, InstallIdempotently_AndSafelyFromTwoProcessesAtOnce) {
  TestDatabase db(/*install_schema=*/false);
  std::vector<std::unique_ptr<pg2kafka::pg_outbox::OutboxSource>> sources;
  for (int i = 0; i < 4; ++i)
    sources.push_back(make_source(db.url(), {{"perform_migrations", "true"}}));
  std::vector<std::thread> threads;
  std::vector<std::string> errors(sources.size());
  for (size_t i = 0; i < sources.size(); ++i)
    threads.emplace_back([&, i] {
      try {
        sources[i]->open();
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
    });
  for (auto& t : threads) t.join();
  for (const auto& e : errors) EXPECT_EQ(e, "");
  EXPECT_EQ(db.sql().value("SELECT string_agg(version::text, ',' ORDER BY version) "
                           "FROM pg2kafka.schema_migrations"),
            "1,2,3,4,5,6,7,8,9,10,11,12,13");
  EXPECT_EQ(db.sql().value("SELECT string_agg(version::text, ',') FROM pg2kafka.schema_functions"),
            std::to_string(shipped_schema().functions));
  // Exactly one of them drains; the others stand by.
  int active = 0;
  for (auto& s : sources) active += s->active();
  EXPECT_EQ(active, 1);
  sources.clear();
  // Opening again applies nothing; applying the latest migration and the function set by hand
  // again changes nothing either.
  LogSink logs;
  auto again = make_source(db.url(), {{"perform_migrations", "true"}}, &logs);
  again->open();
  EXPECT_EQ(logs.all().find("applied"), std::string::npos) << logs.all();
  db.sql().exec(std::string("BEGIN;\n") + pg2kafka::pg_outbox::migrations().back().sql +
                "\nCOMMIT;");
  apply_function_set(db.sql());
  EXPECT_EQ(db.sql().value("SELECT count(*) FROM pg2kafka.schema_migrations"), "13");
  EXPECT_EQ(versions(db.sql()), shipped_versions());
  seed_products(db.sql());
  EXPECT_EQ(db.sql().value("SELECT pg2kafka.setup('products', 'sku')"), "t");
  EXPECT_EQ(drain(*again).size(), 2u);
}

TEST(Migrations, SourceRefusesToStart_WhenSchemaMissingAndMigrationsOff) {
  TestDatabase db(/*install_schema=*/false);
  auto source = make_source(db.url());
  std::string what = config_error(*source);
  EXPECT_NE(what.find("has no pg2kafka schema"), std::string::npos) << what;
  EXPECT_NE(what.find("perform_migrations=true"), std::string::npos) << what;
  EXPECT_NE(what.find("sql/install.sql"), std::string::npos) << what;
}

TEST(Migrations, SourceRefusesToStart_OnASchemaOlderThanEventBatches) {
  TestDatabase db(/*install_schema=*/false);
  apply_migrations_up_to(db.sql(), 3);
  auto source = make_source(db.url());
  std::string what = config_error(*source);
  EXPECT_NE(what.find("is at migration 3, function set 0; this plugin needs migration 4"),
            std::string::npos)
      << what;
  EXPECT_NE(what.find("perform_migrations=true"), std::string::npos) << what;
}

TEST(Migrations, SourceRunsOnVersion4_WarningThatAnUpgradeIsAvailable) {
  // Migrations 005 and later only make capture cheaper or safer: a schema at 004 still drains.
  TestDatabase db(/*install_schema=*/false);
  apply_migrations_up_to(db.sql(), 4);
  seed_products(db.sql());
  db.sql().exec("SELECT pg2kafka.setup('products', 'sku')");
  db.sql().exec("UPDATE products SET name = 'Big Red Coffee Mug' WHERE sku = 'CM01-R'");
  LogSink logs;
  auto source = make_source(db.url(), {}, &logs);
  source->open();
  EXPECT_NE(logs.all().find("is at migration 4, function set 0, this plugin ships migration " +
                            std::to_string(shipped_schema().migrations) + ", function set " +
                            std::to_string(shipped_schema().functions) +
                            ": upgrade it as the schema's owner (perform_migrations=true"),
            std::string::npos)
      << logs.all();
  auto events = drain(*source);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[2].data(), json::parse(R"({"name":"Big Red Coffee Mug"})"));
}

TEST(Migrations, AddingTheSizeColumn_WaitsAtMost2sForTheQueue_ThenFailsCleanlyAndIsRetried) {
  // Migration 006 adds a column to the queue table. A transaction that wrote to a tracked table
  // holds a lock on the queue until it ends; the migration must not wait for it for long (every
  // tracked write would queue behind the ALTER), and must leave nothing half done.
  TestDatabase db(/*install_schema=*/false);
  apply_migrations_up_to(db.sql(), 5);
  seed_products(db.sql());
  db.sql().exec("SELECT pg2kafka.setup('products', 'sku')");
  Session writer(db.url());
  writer.exec("BEGIN");
  writer.exec("UPDATE products SET name = 'held' WHERE sku = 'CM01-R'");
  auto source = make_source(db.url(), {{"perform_migrations", "true"}});
  auto started = std::chrono::steady_clock::now();
  try {
    source->open();
    FAIL() << "the migration did not wait for the queue's lock";
  } catch (const pg2kafka::sdk::RetryError& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("migration 006_bulk_statements failed"), std::string::npos) << what;
    EXPECT_NE(what.find("lock timeout"), std::string::npos) << what;
  }
  auto waited = std::chrono::steady_clock::now() - started;
  EXPECT_LT(waited, std::chrono::seconds(10));
  EXPECT_EQ(db.sql().value("SELECT max(version) FROM pg2kafka.schema_migrations"), "5");
  writer.exec("COMMIT");
  auto again = make_source(db.url(), {{"perform_migrations", "true"}});
  again->open();
  EXPECT_EQ(versions(db.sql()), shipped_versions());
  auto events = drain(*again);
  ASSERT_EQ(events.size(), 3u);  // the snapshot and the held transaction's UPDATE
  EXPECT_EQ(events[2].data(), json::parse(R"({"name":"held"})"));
}

TEST(Migrations, EventsQueuedBeforeMigration4_AreDeliveredUnchanged_AndTriggersUpgraded) {
  // A database running migrations 1-3 with events queued (and archived) one row per event,
  // including an UPDATE queued by migration 002 (already reduced, no old row).
  TestDatabase db(/*install_schema=*/false);
  apply_migrations_up_to(db.sql(), 3);
  seed_products(db.sql());
  db.sql().exec("SELECT pg2kafka.setup('products', 'sku')");
  db.sql().exec("UPDATE products SET name = 'Big Red Coffee Mug' WHERE sku = 'CM01-R'");
  db.sql().exec("DELETE FROM products WHERE sku = 'CM01-B'");
  db.sql().exec(
      "INSERT INTO pg2kafka.outbound_event_queue "
      "(external_id, table_schema, table_name, statement, data) "
      "VALUES ('CM01-R', 'public', 'products', 'UPDATE', '{\"name\": \"Mug\"}')");
  db.sql().exec("TRUNCATE products");
  db.sql().exec(
      "INSERT INTO pg2kafka.acknowledged_events (id, uuid, external_id, table_name, statement, "
      "data, created_at, table_schema, txid) VALUES (7, gen_random_uuid(), 'x', 'products', "
      "'INSERT', '{\"sku\": \"x\"}', now(), 'public', '1')");
  auto queued = db.sql().rows(
      "SELECT uuid::text, external_id, statement FROM pg2kafka.outbound_event_queue ORDER BY id");
  ASSERT_EQ(queued.size(), 6u);

  auto source = make_source(db.url(), {{"perform_migrations", "true"}});
  source->open();
  EXPECT_EQ(versions(db.sql()), shipped_versions());
  // The tracked table's triggers now follow the key column by position and know their table.
  std::string oid = db.sql().value("SELECT 'products'::regclass::oid");
  EXPECT_EQ(trigger_args(db.sql(), "products"),
            "pg2kafka_delete(sku,2," + oid + ") pg2kafka_insert(sku,2," + oid +
                ") pg2kafka_truncate(sku,2," + oid + ") pg2kafka_update(sku,2," + oid + ")");
  db.sql().exec("INSERT INTO products VALUES (9, 'CM09', 'after')");
  auto events = drain(*source);
  ASSERT_EQ(events.size(), 7u);
  for (size_t i = 0; i < queued.size(); ++i) {
    EXPECT_EQ(events[i].id, *queued[i][0]) << i;
    EXPECT_EQ(events[i].key, queued[i][1]) << i;
    EXPECT_EQ(events[i].statement(), *queued[i][2]) << i;
  }
  EXPECT_EQ(events[1].data(), json::parse(R"({"id":2,"sku":"CM01-B","name":"Blue Coffee Mug"})"));
  EXPECT_EQ(events[2].data(), json::parse(R"({"name":"Big Red Coffee Mug"})"));
  EXPECT_EQ(events[3].data(), json::parse(R"({"sku":"CM01-B"})"));
  EXPECT_EQ(events[4].data(), json::parse(R"({"name":"Mug"})"));
  EXPECT_TRUE(events[5].data().is_null());
  EXPECT_EQ(events[6].key, "CM09");
  EXPECT_EQ(db.sql().value("SELECT external_id || ' ' || statement || ' ' || data::text "
                           "FROM pg2kafka.acknowledged_events"),
            R"(x INSERT {"sku": "x"})");
}

TEST(Migrations, UpgradeFrom006WithEventsQueued_LosesNothing_NewFunctionsLive_TriggersRepointed) {
  // A database at migration 006 (the previous release) with events queued on two tables, one of
  // them locked by a writer's transaction that is still open while the upgrade runs: its
  // triggers cannot be replaced within the upgrade's 200 ms lock wait, so they stay (and keep
  // working), the upgrade says so, the drainer reports them, and setup re-attaches them later.
  TestDatabase db(/*install_schema=*/false);
  apply_migrations_up_to(db.sql(), 6);
  seed_products(db.sql());
  db.sql().exec("SELECT pg2kafka.setup('products', 'sku')");
  db.sql().exec("CREATE TABLE busy (id int PRIMARY KEY, v text)");
  db.sql().exec("SELECT pg2kafka.setup('busy', 'id')");
  db.sql().exec("UPDATE products SET name = 'before' WHERE sku = 'CM01-R'");
  db.sql().exec("INSERT INTO busy VALUES (1, 'before')");
  Session writer(db.url());
  writer.exec("BEGIN");
  writer.exec("LOCK TABLE busy IN ROW EXCLUSIVE MODE");  // what a writer holds
  EXPECT_EQ(queued_events(db.sql()), "4");

  LogSink logs;
  auto source = make_source(db.url(), {{"perform_migrations", "true"}}, &logs);
  source->open();
  EXPECT_EQ(versions(db.sql()), shipped_versions());
  EXPECT_NE(logs.all().find("applied migration 007_function_versions"), std::string::npos)
      << logs.all();
  EXPECT_NE(logs.all().find("applied function set " + std::to_string(shipped_schema().functions)),
            std::string::npos)
      << logs.all();
  // New function bodies are live: the limits are functions of the set, and capture calls them.
  EXPECT_EQ(db.sql().value("SELECT pg2kafka.batch_max_rows()"), "1000");
  std::string oid = db.sql().value("SELECT 'products'::regclass::oid");
  EXPECT_EQ(trigger_args(db.sql(), "products"),
            "pg2kafka_delete(sku,2," + oid + ") pg2kafka_insert(sku,2," + oid +
                ") pg2kafka_truncate(sku,2," + oid + ") pg2kafka_update(sku,2," + oid + ")");
  EXPECT_EQ(
      trigger_args(db.sql(), "busy"),
      "pg2kafka_delete(id,1) pg2kafka_insert(id,1) pg2kafka_truncate() pg2kafka_update(id,1)");
  EXPECT_NE(logs.all().find("tracked table public.busy: its capture triggers are in an older "
                            "form"),
            std::string::npos)
      << logs.all();

  writer.exec("INSERT INTO busy VALUES (2, 'during')");
  writer.exec("COMMIT");
  db.sql().exec("UPDATE products SET name = 'after' WHERE sku = 'CM01-R'");
  db.sql().exec("UPDATE busy SET v = 'after' WHERE id = 1");
  auto events = drain(*source);
  std::vector<std::string> got;
  for (const auto& e : events)
    got.push_back(e.statement() + " " + e.key.value_or("null") + " " + json::serialize(e.data()));
  EXPECT_EQ(got, (std::vector<std::string>{
                     R"(SNAPSHOT CM01-R {"id":1,"sku":"CM01-R","name":"Red Coffee Mug"})",
                     R"(SNAPSHOT CM01-B {"id":2,"sku":"CM01-B","name":"Blue Coffee Mug"})",
                     R"(UPDATE CM01-R {"name":"before"})", R"(INSERT 1 {"id":1,"v":"before"})",
                     R"(INSERT 2 {"id":2,"v":"during"})", R"(UPDATE CM01-R {"name":"after"})",
                     R"(UPDATE 1 {"v":"after"})"}));

  // setup, as the table's owner, re-attaches the old triggers without a new snapshot.
  EXPECT_EQ(db.sql().value("SELECT pg2kafka.setup('busy', 'id')"), "f");
  std::string busy = db.sql().value("SELECT 'busy'::regclass::oid");
  EXPECT_EQ(trigger_args(db.sql(), "busy"),
            "pg2kafka_delete(id,1," + busy + ") pg2kafka_insert(id,1," + busy +
                ") pg2kafka_truncate(id,1," + busy + ") pg2kafka_update(id,1," + busy + ")");
  EXPECT_EQ(db.sql().value("SELECT count(*) FROM pg2kafka.tracking_problems()"), "0");
  EXPECT_EQ(queued_events(db.sql()), "0");
}

TEST(FunctionSet, AppliedOnlyWhenNewer_NeverReplacedByAnOlderOne) {
  TestDatabase db;
  const int64_t shipped = shipped_schema().functions;
  // A body that differs from the shipped one, to see whether the set is applied again.
  auto mark = [&] {
    db.sql().exec(
        "CREATE OR REPLACE FUNCTION pg2kafka.batch_max_rows() RETURNS integer "
        "LANGUAGE sql IMMUTABLE AS $$ SELECT 7 $$");
  };
  auto limit = [&] { return db.sql().value("SELECT pg2kafka.batch_max_rows()"); };

  // Same version installed: left alone.
  mark();
  make_source(db.url(), {{"perform_migrations", "true"}})->open();
  EXPECT_EQ(limit(), "7");

  // Older version installed: the set is applied.
  db.sql().exec("DELETE FROM pg2kafka.schema_functions WHERE version >= " +
                std::to_string(shipped));
  make_source(db.url(), {{"perform_migrations", "true"}})->open();
  EXPECT_EQ(limit(), "1000");
  EXPECT_EQ(versions(db.sql()), shipped_versions());

  // Newer version installed (by a newer release): nothing is replaced, and this build refuses
  // to run against it, with or without perform_migrations, naming both versions.
  mark();
  db.sql().exec("INSERT INTO pg2kafka.schema_functions (version) VALUES (" +
                std::to_string(shipped + 1) + ")");
  for (const char* migrate : {"true", "false"}) {
    auto source = make_source(db.url(), {{"perform_migrations", migrate}});
    std::string what = config_error(*source);
    const std::string migration = std::to_string(shipped_schema().migrations);
    EXPECT_NE(what.find("is newer than this pg2kafka: it is at migration " + migration +
                        ", function set " + std::to_string(shipped + 1) +
                        ", this build knows up to migration " + migration + ", function set " +
                        std::to_string(shipped)),
              std::string::npos)
        << migrate << ": " << what;
    EXPECT_NE(what.find("run that release (or a newer one)"), std::string::npos) << what;
    EXPECT_EQ(limit(), "7") << migrate;
  }
  // Nor does the function set applied by hand.
  std::string err =
      db.sql().try_exec(std::string("BEGIN;\n") + pg2kafka::pg_outbox::function_set().files[0].sql);
  db.sql().exec("ROLLBACK");
  EXPECT_NE(err.find("the database has function set version " + std::to_string(shipped + 1) +
                     ", newer than this one (" + std::to_string(shipped) + ")"),
            std::string::npos)
      << err;
  EXPECT_EQ(limit(), "7");

  // A newer migration is refused the same way.
  db.sql().exec("DELETE FROM pg2kafka.schema_functions WHERE version > " + std::to_string(shipped));
  const int64_t future = shipped_schema().migrations + 1;
  db.sql().exec("INSERT INTO pg2kafka.schema_migrations (version, name) VALUES (" +
                std::to_string(future) + ", 'future')");
  auto source = make_source(db.url(), {{"perform_migrations", "true"}});
  std::string what = config_error(*source);
  EXPECT_NE(what.find("it is at migration " + std::to_string(future) + ", function set " +
                      std::to_string(shipped)),
            std::string::npos)
      << what;
  EXPECT_EQ(limit(), "7");
}

TEST(Install, ByHandWithPsql_InstallsUpgradesAndIsIdempotent) {
  // sql/install.sql names every migration the plugin embeds, in order.
  std::string script =
      p2k_test::read_file(p2k_test::ctest_env("P2K_SOURCE_DIR") + "/sql/install.sql");
  std::vector<std::string> listed;
  std::regex include(R"(\\ir migrations/([0-9]+_[a-z0-9_]+)\.sql)");
  for (auto it = std::sregex_iterator(script.begin(), script.end(), include);
       it != std::sregex_iterator(); ++it)
    listed.push_back((*it)[1]);
  std::vector<std::string> embedded;
  for (const auto& m : pg2kafka::pg_outbox::migrations()) embedded.push_back(m.name);
  EXPECT_EQ(listed, embedded);
  std::vector<std::string> listed_functions, embedded_functions;
  std::regex function_file(R"(\\ir functions/([0-9]+_[a-z0-9_]+)\.sql)");
  for (auto it = std::sregex_iterator(script.begin(), script.end(), function_file);
       it != std::sregex_iterator(); ++it)
    listed_functions.push_back((*it)[1]);
  for (const auto& f : pg2kafka::pg_outbox::function_set().files)
    embedded_functions.push_back(f.name);
  EXPECT_EQ(listed_functions, embedded_functions);
  EXPECT_NE(script.find("release knows (" + std::to_string(shipped_schema().migrations) + ")"),
            std::string::npos);

  // A fresh database.
  TestDatabase fresh(/*install_schema=*/false);
  auto r = psql_install(fresh.url());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(versions(fresh.sql()), shipped_versions());
  LogSink logs;
  auto source = make_source(fresh.url(), {{"perform_migrations", "true"}}, &logs);
  source->open();
  EXPECT_EQ(logs.all().find("applied"), std::string::npos) << logs.all();
  seed_products(fresh.sql());
  EXPECT_EQ(fresh.sql().value("SELECT pg2kafka.setup('products', 'sku')"), "t");
  fresh.sql().exec("UPDATE products SET name = 'x' WHERE sku = 'CM01-B'");
  // Again: nothing changes, nothing is lost.
  r = psql_install(fresh.url());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(versions(fresh.sql()), shipped_versions());
  EXPECT_EQ(drain(*source).size(), 3u);

  // A database at 006 with events queued.
  TestDatabase old(/*install_schema=*/false);
  apply_migrations_up_to(old.sql(), 6);
  seed_products(old.sql());
  old.sql().exec("SELECT pg2kafka.setup('products', 'sku')");
  old.sql().exec("DELETE FROM products WHERE sku = 'CM01-R'");
  r = psql_install(old.url());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(versions(old.sql()), shipped_versions());
  EXPECT_EQ(old.sql().value("SELECT count(*) FROM pg2kafka.tracking_problems()"), "0");
  old.sql().exec("INSERT INTO products (sku, name) VALUES ('CM02', 'new')");
  auto upgraded = make_source(old.url());
  upgraded->open();
  auto events = drain(*upgraded);
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[2].statement() + " " + *events[2].key, "DELETE CM01-R");
  EXPECT_EQ(events[3].statement() + " " + *events[3].key, "INSERT CM02");

  // A database with a newer schema is left alone, with an error naming the versions.
  old.sql().exec("INSERT INTO pg2kafka.schema_migrations (version, name) VALUES (99, 'future')");
  r = psql_install(old.url());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("the database has schema migrations up to 99, newer than this release "
                       "knows (" +
                       std::to_string(shipped_schema().migrations) + ")"),
            std::string::npos)
      << r.err;
}

TEST(DumpRestore, TrackedTableWithDroppedColumns_KeepsItsKeys_IsReported_AndReattached) {
  // pg_dump writes no dropped column, so a restored table's columns get other attnums; and
  // every table gets another OID. Capture must still produce the right keys (or none, loudly),
  // never another column's value.
  TestDatabase src;
  // sku is column 3; restored, column 3 is note (a trigger following attnum 3 would key by it).
  src.sql().exec("CREATE TABLE orders (gone int, id int PRIMARY KEY, sku text, note text)");
  src.sql().exec("ALTER TABLE orders DROP COLUMN gone");
  src.sql().exec("INSERT INTO orders VALUES (1, 'S1', 'a')");
  src.sql().exec("SELECT pg2kafka.setup('orders', 'sku')");
  // A second table whose key column was renamed after setup, before the dump.
  src.sql().exec("CREATE TABLE renamed (x int, id int PRIMARY KEY, code text)");
  src.sql().exec("ALTER TABLE renamed DROP COLUMN x");
  src.sql().exec("SELECT pg2kafka.setup('renamed', 'code')");
  src.sql().exec("ALTER TABLE renamed RENAME COLUMN code TO ref");
  src.sql().exec("INSERT INTO renamed VALUES (1, 'R1')");
  // The renamed INSERT; the orders snapshot is a backfill, pending until a drainer runs.
  EXPECT_EQ(queued_events(src.sql()), "1");
  EXPECT_EQ(src.sql().value("SELECT string_agg(relid::text || ' ' || state, ',') "
                            "FROM pg2kafka.backfills"),
            "orders pending");

  TestDatabase dst(/*install_schema=*/false);
  ASSERT_EQ(dump_and_restore(src.url(), dst.url()), "");
  ASSERT_NE(dst.sql().value("SELECT 'orders'::regclass::oid"),
            src.sql().value("SELECT 'orders'::regclass::oid"));

  // The registry follows the tables by name.
  EXPECT_EQ(dst.sql().value("SELECT string_agg(relid::text, ',' ORDER BY relid::text) "
                            "FROM pg2kafka.tracked_tables"),
            "orders,renamed");
  dst.sql().exec("INSERT INTO orders VALUES (2, 'S2', 'b')");
  dst.sql().exec("UPDATE orders SET note = 'c' WHERE id = 1");
  dst.sql().exec("DELETE FROM orders WHERE id = 2");
  dst.sql().exec("INSERT INTO renamed VALUES (2, 'R2')");
  dst.sql().exec("DELETE FROM renamed WHERE id = 1");

  LogSink logs;
  auto source = make_source(dst.url(), {}, &logs);
  source->open();
  EXPECT_NE(logs.all().find("tracked table public.orders: its capture triggers were restored "
                            "from a dump"),
            std::string::npos)
      << logs.all();
  EXPECT_NE(logs.all().find("tracked table public.renamed: its capture triggers were restored "
                            "from a dump, so they find the key column by the name it had at "
                            "setup (\"code\")"),
            std::string::npos)
      << logs.all();
  auto events = drain(*source);
  EXPECT_EQ(describe(events),
            (std::vector<std::string>{
                R"(renamed INSERT R1 {"id":1,"ref":"R1"})",
                R"(orders INSERT S2 {"id":2,"sku":"S2","note":"b"})",
                R"(orders UPDATE S1 {"note":"c"})", R"(orders DELETE S2 {"sku":"S2"})",
                // No column is called "code" any more: null keys, whole deleted rows.
                R"(renamed INSERT null {"id":2,"ref":"R2"})",
                R"(renamed DELETE null {"id":1,"ref":"R1"})",
                // setup's backfill came with the dump: the restored database sends its rows as
                // they are there, keyed by the column the restored triggers follow.
                R"(orders SNAPSHOT S1 {"id":1,"sku":"S1","note":"c"})"}));

  // setup, naming the key column, re-attaches the triggers (no new snapshot).
  EXPECT_EQ(dst.sql().value("SELECT pg2kafka.setup('orders', 'sku')"), "f");
  EXPECT_EQ(dst.sql().value("SELECT pg2kafka.setup('renamed', 'ref')"), "f");
  EXPECT_EQ(dst.sql().value("SELECT count(*) FROM pg2kafka.tracking_problems()"), "0");
  EXPECT_EQ(queued_events(dst.sql()), "0");
  dst.sql().exec("UPDATE orders SET note = 'd' WHERE id = 1");
  dst.sql().exec("ALTER TABLE renamed RENAME COLUMN ref TO reference");
  dst.sql().exec("UPDATE renamed SET reference = 'R3' WHERE id = 2");
  events = drain(*source);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].key, "S1");
  EXPECT_EQ(events[1].key, "R3");
  EXPECT_EQ(events[1].data(), json::parse(R"({"reference":"R3"})"));
}

TEST(DumpRestore, EventsOfAnotherCluster_StopTheDrainerUntilAdopted_ThenComeInQueueOrder) {
  // Restored into a cluster whose transaction counter is lower than the dumped one's, queued
  // batches carry transaction ids no snapshot here shows as committed.
  TestDatabase db;
  db.sql().exec("CREATE TABLE t (k text PRIMARY KEY, v int)");
  db.sql().exec("SELECT pg2kafka.setup('t', 'k')");
  db.sql().exec(
      "INSERT INTO pg2kafka.event_batches (table_schema, table_name, statement, key_column, "
      "events, data, txid) VALUES ('public', 't', 'INSERT', 'k', 1, '[{\"k\": \"a\", \"v\": 1}]', "
      "(pg_snapshot_xmax(pg_current_snapshot())::text::bigint + 1000000)::text::xid8)");
  db.sql().exec("INSERT INTO t VALUES ('a', 2)");

  auto source = make_source(db.url());
  std::string what = config_error(*source);
  EXPECT_NE(what.find("1 of the oldest queued batches of database \"" + db.name() +
                      "\" carry transaction ids of another PostgreSQL cluster"),
            std::string::npos)
      << what;
  EXPECT_NE(what.find("SELECT pg2kafka.adopt_restored_events()"), std::string::npos) << what;

  EXPECT_EQ(db.sql().value("SELECT pg2kafka.adopt_restored_events()"), "1");
  EXPECT_EQ(db.sql().value("SELECT pg2kafka.adopt_restored_events()"), "0");
  auto again = make_source(db.url());
  again->open();
  auto events = drain(*again);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].data(), json::parse(R"({"k":"a","v":1})"));
  EXPECT_EQ(events[1].data(), json::parse(R"({"k":"a","v":2})"));
}
