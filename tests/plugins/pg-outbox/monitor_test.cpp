// Monitoring (sql/README.md, "Monitoring"; plugins/source-pg-outbox/monitor.hpp): the views
// pg2kafka.lag and pg2kafka.drainers, read_state() on current and older schemas, the status
// document, the Monitor thread, and the views' trust boundary, tested as the attacker.
#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "embedded_sql.hpp"
#include "monitor.hpp"
#include "pg_test_support.hpp"
#include "schema.hpp"

using namespace p2k_pg_test;
using namespace pg2kafka::pg_outbox;
namespace json = boost::json;
using std::chrono::milliseconds;

namespace {

std::unique_ptr<PgConnection> connect(const std::string& url,
                                      const std::string& app = "p2k-monitor-test") {
  return std::make_unique<PgConnection>(ConnInfo::parse(url), app);
}

OutboxConfig config_for(const std::string& url, const std::string& app) {
  std::map<std::string, std::string> values{{"connection", url}, {"application_name", app}};
  std::vector<p2k_option_value> raw;
  for (const auto& [k, v] : values) raw.push_back({k.c_str(), v.c_str()});
  return OutboxConfig::from(pg2kafka::sdk::Options(raw.data(), raw.size()));
}

// "schema.table tracked events batches bytes triggers" per row of a state, in name order.
std::vector<std::string> lag_lines(const OutboxState& s) {
  std::vector<std::string> out;
  for (const auto& t : s.tables)
    out.push_back(t.table_schema + "." + t.table_name + " " + (t.tracked ? "tracked" : "-") + " " +
                  std::to_string(t.queued_events) + " " + std::to_string(t.queued_batches) + " " +
                  std::to_string(t.queued_bytes) + " " + t.triggers.value_or("-"));
  return out;
}

// The same lines from the view, as `sql`'s role sees it.
std::vector<std::string> view_lines(Session& sql) {
  std::vector<std::string> out;
  for (const auto& r :
       sql.rows("SELECT table_schema || '.' || table_name, CASE WHEN tracked THEN 'tracked' ELSE "
                "'-' END, queued_events, queued_batches, queued_bytes, coalesce(triggers, '-') "
                "FROM pg2kafka.lag"))
    out.push_back(*r[0] + " " + *r[1] + " " + *r[2] + " " + *r[3] + " " + *r[4] + " " + *r[5]);
  return out;
}

// The queued bytes of a table as the drainer counts them: data_bytes, or (rows queued before
// migration 006, which added it) the size as stored.
std::string sum_bytes(Session& sql, const std::string& table, bool data_bytes = true) {
  std::string stored = "coalesce(pg_column_size(data), 0) + coalesce(pg_column_size(old_data), 0)";
  return sql.value("SELECT coalesce(sum(" +
                   (data_bytes ? "coalesce(data_bytes, " + stored + ")" : stored) +
                   "), 0) FROM pg2kafka.event_batches WHERE table_name = '" + table + "'");
}

// Tables in every state the view tells apart, with events queued in known numbers.
void known_queue(Session& sql) {
  sql.exec("CREATE TABLE plain (k text, v int)");
  sql.exec("SELECT pg2kafka.setup('plain', 'k')");
  sql.exec("INSERT INTO plain VALUES ('a', 1), ('b', 2), ('c', 3)");  // one batch of 3
  sql.exec("UPDATE plain SET v = v + 1 WHERE k = 'a'");               // one batch of 1
  sql.exec("CREATE TABLE gone (k text, v int)");  // torn down, events left behind
  sql.exec("SELECT pg2kafka.setup('gone', 'k')");
  sql.exec("INSERT INTO gone VALUES ('x', 1)");
  sql.exec("INSERT INTO gone VALUES ('y', 2)");
  sql.exec("SELECT pg2kafka.teardown('gone')");
  sql.exec("CREATE TABLE dropped (k text)");  // dropped with its events queued
  sql.exec("SELECT pg2kafka.setup('dropped', 'k')");
  sql.exec("INSERT INTO dropped VALUES ('z')");
  sql.exec("DROP TABLE dropped");
  sql.exec("CREATE TABLE off (k text, v int)");  // one trigger disabled
  sql.exec("SELECT pg2kafka.setup('off', 'k')");
  sql.exec("INSERT INTO off VALUES ('p', 1)");
  sql.exec("ALTER TABLE off DISABLE TRIGGER pg2kafka_update");
  sql.exec("UPDATE off SET v = 2");                // not captured
  sql.exec("CREATE TABLE holed (k text, v int)");  // one trigger dropped
  sql.exec("SELECT pg2kafka.setup('holed', 'k')");
  sql.exec("DROP TRIGGER pg2kafka_delete ON holed");
  sql.exec("CREATE TABLE bare (k text)");  // every trigger dropped
  sql.exec("SELECT pg2kafka.setup('bare', 'k')");
  sql.exec("SELECT pg2kafka.drop_triggers('bare')");
  sql.exec("CREATE TABLE rows (k text)");  // row capture, only ENABLEd (not ALWAYS)
  sql.exec("SELECT pg2kafka.setup('rows', 'k', '{\"capture\": \"row\"}')");
  sql.exec("ALTER TABLE rows ENABLE TRIGGER pg2kafka_row");
  sql.exec("INSERT INTO rows VALUES ('r1'), ('r2')");  // two batches (one per row)
  sql.exec("CREATE TABLE parted (k text, v int) PARTITION BY RANGE (v)");
  sql.exec("CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (0) TO (10)");
  sql.exec("SELECT pg2kafka.setup('parted', 'k')");
  sql.exec("INSERT INTO parted VALUES ('q', 1)");
  sql.exec(
      "CREATE TABLE parted_2 PARTITION OF parted FOR VALUES FROM (10) TO (20)");  // no TRUNCATE
  sql.exec("CREATE TABLE quiet (k text)");  // tracked, nothing queued
  sql.exec("SELECT pg2kafka.setup('quiet', 'k')");
  // A batch queued before migration 006 recorded no size: its size as stored counts.
  sql.exec(
      "INSERT INTO pg2kafka.event_batches (table_schema, table_name, statement, external_id, "
      "events, data) VALUES ('public', 'old', 'INSERT', 'o', 1, '[{\"k\": \"o\"}]')");
}

std::vector<std::string> expected_lag(Session& sql) {
  return {"public.bare tracked 0 0 0 missing",
          "public.dropped - 1 1 " + sum_bytes(sql, "dropped") + " -",
          "public.gone - 2 2 " + sum_bytes(sql, "gone") + " -",
          "public.holed tracked 0 0 0 partial",
          "public.off tracked 1 1 " + sum_bytes(sql, "off") + " disabled",
          "public.old - 1 1 " + sum_bytes(sql, "old") + " -",
          "public.parted tracked 1 1 " + sum_bytes(sql, "parted") + " partial",
          "public.plain tracked 4 2 " + sum_bytes(sql, "plain") + " enabled",
          "public.quiet tracked 0 0 0 enabled",
          "public.rows tracked 2 2 " + sum_bytes(sql, "rows") + " not always"};
}

}  // namespace

TEST(MonitorLag, ExactFiguresPerTable_TrackedTornDownDroppedDisabledAndMissingTriggers) {
  TestDatabase db;
  known_queue(db.sql());
  EXPECT_EQ(view_lines(db.sql()), expected_lag(db.sql()));
  EXPECT_EQ(db.sql().value("SELECT sum(data_bytes) > 0 FROM pg2kafka.event_batches"), "t");
  EXPECT_EQ(sum_bytes(db.sql(), "old"),
            db.sql().value("SELECT pg_column_size(data) FROM pg2kafka.event_batches "
                           "WHERE table_name = 'old'"));
  // Ages and times: those of the oldest batch of each table.
  EXPECT_EQ(db.sql().value("SELECT bool_and(l.oldest_event_at = (SELECT min(created_at) FROM "
                           "pg2kafka.event_batches b WHERE b.table_name = l.table_name) "
                           "AND l.oldest_event_age >= interval '0') "
                           "FROM pg2kafka.lag l WHERE queued_events > 0"),
            "t");
  EXPECT_EQ(db.sql().value("SELECT count(*) FROM pg2kafka.lag WHERE queued_events = 0 AND "
                           "(oldest_event_at IS NOT NULL OR oldest_event_age IS NOT NULL)"),
            "0");
  // read_state gives the same through the view and through the inline queries of older
  // schemas.
  auto conn = connect(db.url());
  ReadOptions views, inline_queries;
  inline_queries.use_views = false;
  OutboxState a = read_state(*conn, views), b = read_state(*conn, inline_queries);
  EXPECT_TRUE(a.views);
  EXPECT_FALSE(b.views);
  EXPECT_EQ(lag_lines(a), expected_lag(db.sql()));
  EXPECT_EQ(lag_lines(b), expected_lag(db.sql()));
  EXPECT_EQ(a.queued_events(), 12);
  EXPECT_EQ(a.queued_batches(), 10);
  ASSERT_TRUE(a.queue_oldest_age_seconds);
  EXPECT_GE(*a.queue_oldest_age_seconds, 0);
  EXPECT_LT(*a.queue_oldest_age_seconds, 300);
  EXPECT_GT(a.queue_table_bytes, 0);
  EXPECT_EQ(a.queue_table_bytes,
            std::stoll(db.sql().value("SELECT pg_total_relation_size('pg2kafka.event_batches')")));
  EXPECT_GT(a.queue_index_bytes, 0);
  // tracking_problems() names each broken table with its fix.
  std::string all;
  for (const auto& p : problems(a)) all += p + "\n";
  for (const char* table : {"public.off", "public.holed", "public.bare", "public.rows"})
    EXPECT_NE(all.find(std::string("tracked table ") + table), std::string::npos) << all;
  EXPECT_NE(all.find("SELECT pg2kafka.setup('public.off', 'k')"), std::string::npos) << all;
}

TEST(MonitorLag, NotCountingTheQueue_KeepsTheTrackedTablesAndTheOldestAge) {
  TestDatabase db;
  known_queue(db.sql());
  auto conn = connect(db.url());
  ReadOptions o;
  o.count_queue = false;
  OutboxState s = read_state(*conn, o);
  EXPECT_FALSE(s.counted);
  ASSERT_TRUE(s.count_note);
  EXPECT_EQ(lag_lines(s),
            (std::vector<std::string>{
                "public.bare tracked 0 0 0 missing", "public.holed tracked 0 0 0 partial",
                "public.off tracked 0 0 0 disabled", "public.parted tracked 0 0 0 partial",
                "public.plain tracked 0 0 0 enabled", "public.quiet tracked 0 0 0 enabled",
                "public.rows tracked 0 0 0 not always"}));
  ASSERT_TRUE(s.queue_oldest_age_seconds);  // from the oldest batches, for the drainer's role
  auto doc = json::parse(status_json(s)).as_object();
  EXPECT_TRUE(doc.at("queue").at("events").is_null());
  EXPECT_FALSE(doc.at("queue").at("counted").as_bool());
}

TEST(MonitorLag, ACountLongerThanStatementTimeout_IsGivenUp_AndTheRestIsStillRead) {
  TestDatabase db;
  known_queue(db.sql());
  // The count (through the view) waits for a lock held by an ALTER of the view, as it would
  // scan a huge queue: statement_timeout ends it, and the rest is read without it.
  Session alter(db.url());
  alter.exec("BEGIN");
  alter.exec("ALTER VIEW pg2kafka.lag SET (security_barrier = true)");
  auto conn = connect(db.url());
  conn->exec("SET statement_timeout = 1000");
  auto started = std::chrono::steady_clock::now();
  OutboxState s = read_state(*conn, true);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
  EXPECT_FALSE(s.counted);
  ASSERT_TRUE(s.count_note);
  EXPECT_NE(s.count_note->find("statement_timeout"), std::string::npos) << *s.count_note;
  EXPECT_EQ(s.tables.size(), 7u);  // the tracked tables, with their trigger states
  EXPECT_EQ(s.queued_events(), 0);
  EXPECT_TRUE(s.queue_oldest_age_seconds);
  EXPECT_GT(s.queue_table_bytes, 0);
  EXPECT_TRUE(s.sessions_read);
  EXPECT_FALSE(s.tracking_problems.empty());
  std::string all;
  for (const auto& p : problems(s)) all += p + "\n";
  EXPECT_NE(all.find("the queue was not counted: counting the queue took longer than"),
            std::string::npos)
      << all;
  alter.exec("ROLLBACK");
  s = read_state(*conn, true);
  EXPECT_TRUE(s.counted);
  EXPECT_EQ(s.queued_events(), 12);
}

TEST(MonitorSchema, ReadsOlderSchemas_WithoutTheViews) {
  for (int version : {4, 6, 10}) {
    SCOPED_TRACE("migration " + std::to_string(version));
    TestDatabase db(/*install_schema=*/false);
    // The current function set needs migration 013: applied for it, then forgotten below.
    apply_migrations_up_to(db.sql(), version == 10 ? 13 : version);
    if (version == 10) {
      // The previous release: migration 010 and function set 5, whose set had no views.
      apply_function_set(db.sql());
      db.sql().exec("DROP VIEW pg2kafka.lag, pg2kafka.drainers");
      db.sql().exec("DELETE FROM pg2kafka.schema_migrations WHERE version > 10");
      db.sql().exec("DELETE FROM pg2kafka.schema_functions");
      db.sql().exec("INSERT INTO pg2kafka.schema_functions (version) VALUES (5)");
    }
    db.sql().exec("CREATE TABLE t (k text, v int)");
    db.sql().exec("SELECT pg2kafka.setup('t', 'k')");
    db.sql().exec("INSERT INTO t VALUES ('a', 1), ('b', 2)");
    db.sql().exec("INSERT INTO t VALUES ('c', 3)");
    auto conn = connect(db.url());
    OutboxState s = read_state(*conn, true);
    EXPECT_EQ(s.schema_version, version);
    EXPECT_FALSE(s.views);
    std::string bytes = sum_bytes(db.sql(), "t", version >= 6);
    // Before the function set, setup enabled its triggers ORIGIN only (not ALWAYS).
    EXPECT_EQ(lag_lines(s), (std::vector<std::string>{"public.t tracked 3 2 " + bytes + " " +
                                                      (version >= 10 ? "enabled" : "not always")}));
    std::string all;
    for (const auto& p : problems(s)) all += p + "\n";
    if (version < 10) {
      EXPECT_NE(all.find("tracked table public.t: its capture triggers are not enabled ALWAYS"),
                std::string::npos)
          << all;
    }
    EXPECT_EQ(s.function_set.has_value(), version >= 10);
    EXPECT_TRUE(s.backfills.empty());
    EXPECT_TRUE(s.sessions_read);
    auto doc = json::parse(status_json(s)).as_object();
    EXPECT_EQ(doc.at("schema_version").as_int64(), version);
  }
  // Before 004 there is no queue to read: the error says so and how to upgrade.
  TestDatabase old(/*install_schema=*/false);
  apply_migrations_up_to(old.sql(), 3);
  auto conn = connect(old.url());
  try {
    read_state(*conn, true);
    FAIL() << "read a schema at migration 3";
  } catch (const MonitorError& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("is at migration 3, older than 004"), std::string::npos) << what;
    EXPECT_NE(what.find("perform_migrations=true"), std::string::npos) << what;
  }
  TestDatabase none(/*install_schema=*/false);
  auto bare = connect(none.url());
  try {
    read_state(*bare, true);
    FAIL() << "read a database without the schema";
  } catch (const MonitorError& e) {
    EXPECT_NE(std::string(e.what()).find("has no pg2kafka schema"), std::string::npos) << e.what();
  }
  // The connection is usable afterwards: nothing was left open.
  EXPECT_EQ(bare->exec("SELECT 1").text(0, 0), "1");
}

TEST(MonitorDrainers, ShowTheActiveInstanceAndTheStandbys_OfRealSources) {
  TestDatabase db;
  tracked_table(db.sql());
  auto first = make_source(db.url(), {{"application_name", "p2k-drainer-a"}});
  first->open();
  ASSERT_TRUE(first->active());
  auto second = make_source(db.url(), {{"application_name", "p2k-drainer-b"}});
  second->open();
  ASSERT_FALSE(second->active());
  // A session waiting in pg_advisory_lock for the drain lock is a standby too.
  Session waiter(db.url() + "?application_name=p2k-waiter");
  waiter.send("SELECT pg_advisory_lock(1882352481, 2)");
  for (int i = 0; i < 100 && db.sql().value("SELECT count(*) FROM pg_locks WHERE locktype = "
                                            "'advisory' AND NOT granted") == "0";
       ++i)
    std::this_thread::sleep_for(milliseconds(20));
  auto rows = db.sql().rows(
      "SELECT role, application_name, details_visible, backend_start IS NOT NULL "
      "FROM pg2kafka.drainers");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(*rows[0][0] + " " + *rows[0][1], "active p2k-drainer-a");
  std::set<std::string> standbys{*rows[1][1], *rows[2][1]};
  EXPECT_EQ(standbys, (std::set<std::string>{"p2k-drainer-b", "p2k-waiter"}));
  for (const auto& r : rows) {
    EXPECT_EQ(*r[2], "t");
    EXPECT_EQ(*r[3], "t");
  }
  auto conn = connect(db.url());
  OutboxState s = read_state(*conn, true);
  ASSERT_NE(s.active(), nullptr);
  EXPECT_EQ(s.active()->application_name, "p2k-drainer-a");
  EXPECT_EQ(s.active()->client_addr, "127.0.0.1");
  EXPECT_EQ(s.drainers.size(), 3u);
  auto doc = json::parse(status_json(s)).as_object();
  EXPECT_EQ(doc.at("drain_lock").at("holder").at("application_name").as_string(), "p2k-drainer-a");
  EXPECT_EQ(doc.at("drain_lock").at("standbys").as_array().size(), 2u);
  // The monitor's own session is none of them, whatever its application_name.
  auto monitor_like = connect(db.url(), "p2k-drainer-b");
  EXPECT_EQ(read_state(*monitor_like, true).drainers.size(), 3u);

  // The active instance goes: the lock passes to the standby that tries first.
  first->close();
  first.reset();
  waiter.finish();  // it got the lock
  waiter.exec("SELECT pg_advisory_unlock(1882352481, 2)");
  for (int i = 0; i < 100 && !second->active(); ++i) {
    try {
      second->poll(10, milliseconds(50));
    } catch (const pg2kafka::sdk::RetryError&) {
    }
  }
  ASSERT_TRUE(second->active());
  s = read_state(*conn, true);
  ASSERT_NE(s.active(), nullptr);
  EXPECT_EQ(s.active()->application_name, "p2k-drainer-b");
  second->close();
  s = read_state(*conn, true);
  EXPECT_EQ(s.active(), nullptr);
  std::string all;
  for (const auto& p : problems(s)) all += p + "\n";
  EXPECT_NE(all.find("no session holds the drain lock of database \"" + db.name() +
                     "\", so nothing drains its queue"),
            std::string::npos)
      << all;
}

TEST(MonitorDrainers, DetailsVisibleOnlyToTheSessionsRole_AndToPgReadAllStats) {
  TestDatabase db;
  TestRole drainer(db, "drainer"), watcher(db, "watcher");
  db.sql().exec("GRANT SELECT, DELETE ON pg2kafka.event_batches TO " + drainer.name());
  db.sql().exec("GRANT SELECT ON pg2kafka.tracked_tables, pg2kafka.schema_migrations TO " +
                drainer.name());
  Session active(drainer.url() + "?application_name=p2k-active");
  active.exec("SELECT pg_advisory_lock(1882352481, 2)");
  Session standby(drainer.url() + "?application_name=p2k-standby");
  EXPECT_EQ(standby.value("SELECT pg_try_advisory_lock(1882352481, 2)"), "f");

  auto seen_by = [&](const std::string& url) {
    Session s(url);
    std::vector<std::string> out;
    for (const auto& r : s.rows("SELECT role, application_name, details_visible, "
                                "coalesce(host(client_addr), 'hidden'), "
                                "backend_start IS NOT NULL FROM pg2kafka.drainers"))
      out.push_back(*r[0] + " " + *r[1] + " " + *r[2] + " " + *r[3] + " " + *r[4]);
    return out;
  };
  // The drainer's own role sees both of its sessions with their details.
  EXPECT_EQ(seen_by(drainer.url()),
            (std::vector<std::string>{"active p2k-active t 127.0.0.1 t",
                                      "standby p2k-standby t 127.0.0.1 t"}));
  // Another role sees who holds the lock, without details, and no standby.
  EXPECT_EQ(seen_by(watcher.url()), (std::vector<std::string>{"active p2k-active f hidden f"}));
  {
    auto conn = connect(watcher.url());
    OutboxState s = read_state(*conn, true);
    EXPECT_EQ(s.read_as, watcher.name());
    ASSERT_NE(s.active(), nullptr);
    EXPECT_FALSE(s.active()->details_visible);
    EXPECT_GE(s.hidden_sessions, 2);
    std::string all;
    for (const auto& p : problems(s)) all += p + "\n";
    EXPECT_NE(all.find("GRANT pg_read_all_stats TO " + watcher.name()), std::string::npos) << all;
    auto doc = json::parse(status_json(s)).as_object();
    EXPECT_FALSE(doc.at("drain_lock").at("holder").at("details_visible").as_bool());
    EXPECT_TRUE(doc.at("drain_lock").at("holder").at("client_addr").is_null());
  }
  // pg_read_all_stats shows everything.
  db.sql().exec("GRANT pg_read_all_stats TO " + watcher.name());
  EXPECT_EQ(seen_by(watcher.url()),
            (std::vector<std::string>{"active p2k-active t 127.0.0.1 t",
                                      "standby p2k-standby t 127.0.0.1 t"}));
}

TEST(MonitorStatus, JsonHasTheDocumentedMembers) {
  TestDatabase db;
  known_queue(db.sql());
  db.sql().exec("CREATE TABLE keyed (id int PRIMARY KEY, v text)");
  db.sql().exec("INSERT INTO keyed VALUES (1, 'a')");
  db.sql().exec("SELECT pg2kafka.setup('keyed', 'id')");  // a pending backfill
  auto conn = connect(db.url());
  OutboxState s = read_state(*conn, true);
  json::object doc = json::parse(status_json(s)).as_object();
  for (const char* member :
       {"database", "read_as", "collected_at", "schema_version", "function_set", "queue",
        "drain_lock", "vacuum_horizon", "tables", "backfills", "problems"})
    EXPECT_TRUE(doc.contains(member)) << member;
  EXPECT_EQ(doc.at("database").as_string(), db.name());
  EXPECT_EQ(doc.at("schema_version").as_int64(), 13);
  EXPECT_EQ(doc.at("function_set").as_int64(), shipped_schema().functions);
  EXPECT_EQ(std::string(doc.at("collected_at").as_string()).size(), 24u);  // ...T..:..:..._Z
  const auto& queue = doc.at("queue").as_object();
  for (const char* member :
       {"events", "batches", "bytes", "oldest_event_at", "oldest_event_age_seconds", "counted",
        "count_note", "table_bytes", "heap_bytes", "index_bytes", "toast_bytes", "rows_estimate",
        "dead_rows", "last_autovacuum", "autovacuum_count"})
    EXPECT_TRUE(queue.contains(member)) << member;
  EXPECT_EQ(queue.at("events").as_int64(), 12);
  EXPECT_EQ(queue.at("batches").as_int64(), 10);
  EXPECT_TRUE(queue.at("oldest_event_age_seconds").is_double());
  EXPECT_GT(queue.at("table_bytes").as_int64(), 0);
  const auto& lock = doc.at("drain_lock").as_object();
  EXPECT_TRUE(lock.at("holder").is_null());
  EXPECT_TRUE(lock.at("standbys").as_array().empty());
  EXPECT_TRUE(lock.at("note").is_string());
  const auto& tables = doc.at("tables").as_array();
  ASSERT_EQ(tables.size(), 11u);
  const auto& plain = tables[8].as_object();
  EXPECT_EQ(plain.at("table").as_string(), "public.plain");
  EXPECT_EQ(plain.at("schema").as_string(), "public");
  EXPECT_EQ(plain.at("name").as_string(), "plain");
  EXPECT_TRUE(plain.at("tracked").as_bool());
  EXPECT_EQ(plain.at("events").as_int64(), 4);
  EXPECT_EQ(plain.at("batches").as_int64(), 2);
  EXPECT_GT(plain.at("bytes").as_int64(), 0);
  EXPECT_EQ(plain.at("triggers").as_string(), "enabled");
  EXPECT_EQ(std::string(plain.at("oldest_event_at").as_string()).back(), 'Z');
  EXPECT_TRUE(tables[4].at("triggers").as_string() == "enabled");  // keyed
  EXPECT_TRUE(tables[2].at("triggers").is_null());                 // gone: not tracked
  const auto& backfills = doc.at("backfills").as_array();
  ASSERT_EQ(backfills.size(), 1u);
  EXPECT_EQ(backfills[0].at("table").as_string(), "public.keyed");
  EXPECT_EQ(backfills[0].at("state").as_string(), "pending");
  EXPECT_EQ(backfills[0].at("rows_done").as_int64(), 0);
  EXPECT_TRUE(backfills[0].at("started_at").is_string());
  const auto& problems_list = doc.at("problems").as_array();
  std::string all;
  for (const auto& p : problems_list) all += std::string(p.as_string()) + "\n";
  EXPECT_NE(all.find("tracked table public.off: some of its capture triggers are disabled"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("no session holds the drain lock"), std::string::npos) << all;
  // Without sessions there is no drain_lock member's content to give.
  ReadOptions quiet;
  quiet.with_sessions = false;
  doc = json::parse(status_json(read_state(*conn, quiet))).as_object();
  EXPECT_TRUE(doc.at("drain_lock").is_null());
}

TEST(MonitorThread, ReturnsStates_ReportsALostConnection_AndRecovers) {
  TestDatabase db;
  tracked_table(db.sql());
  insert_one_by_one(db.sql(), 1, 3);
  MonitorSettings settings;
  settings.interval = milliseconds(200);
  settings.retry_initial = milliseconds(100);
  settings.retry_max = milliseconds(400);
  std::mutex mutex;
  std::vector<std::string> logged;
  Monitor monitor(
      config_for(db.url(), "p2k-app"),
      [&](p2k_log_level, std::string line) {
        std::lock_guard lock(mutex);
        logged.push_back(std::move(line));
      },
      settings);
  auto first = monitor.latest(milliseconds(5000));
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first->queued_events(), 3);
  EXPECT_FALSE(first->sessions_read);  // metrics leave sessions out by default
  EXPECT_EQ(monitor.errors(), 0u);
  // Its session is recognisable, and bounded.
  std::string pid =
      db.sql().value("SELECT pid FROM pg_stat_activity WHERE application_name = 'p2k-app/monitor'");
  // A fresh state after the interval.
  insert_one_by_one(db.sql(), 4, 4);
  std::shared_ptr<const OutboxState> next;
  for (int i = 0; i < 50; ++i) {
    next = monitor.latest(milliseconds(500));
    if (next->queued_events() == 4) break;
    std::this_thread::sleep_for(milliseconds(50));
  }
  EXPECT_EQ(next->queued_events(), 4);
  // Its session is killed: the next read fails, is counted and logged, then a new connection
  // makes reads work again.
  db.sql().exec("SELECT pg_terminate_backend(" + pid + ")");
  std::this_thread::sleep_for(milliseconds(300));
  for (int i = 0; i < 100 && monitor.errors() == 0; ++i) {
    monitor.latest(milliseconds(200));
    std::this_thread::sleep_for(milliseconds(20));
  }
  EXPECT_GE(monitor.errors(), 1u);
  insert_one_by_one(db.sql(), 5, 5);
  std::shared_ptr<const OutboxState> later;
  for (int i = 0; i < 100; ++i) {
    later = monitor.latest(milliseconds(300));
    if (later->queued_events() == 5 && !monitor.last_error()) break;
    std::this_thread::sleep_for(milliseconds(50));
  }
  EXPECT_EQ(later->queued_events(), 5);
  EXPECT_FALSE(monitor.last_error());
  {
    std::lock_guard lock(mutex);
    std::string all;
    for (const auto& l : logged) all += l + "\n";
    EXPECT_NE(all.find("monitor: cannot read the queue's state: "), std::string::npos) << all;
    EXPECT_NE(all.find("monitor: reading the queue's state works again"), std::string::npos) << all;
  }
  EXPECT_NE(db.sql().value("SELECT pid FROM pg_stat_activity WHERE application_name = "
                           "'p2k-app/monitor'"),
            pid);
  auto stopping = std::chrono::steady_clock::now();
  monitor.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - stopping, std::chrono::seconds(3));
  EXPECT_NE(monitor.latest(milliseconds(0)), nullptr);
}

TEST(MonitorThread, NeverWaitsLongerThanAskedFor_AndReportsAnUnreachableDatabase) {
  // A port nobody listens on: connecting fails at once; latest() returns null quickly and the
  // error names the target.
  std::string url = "postgresql://postgres@127.0.0.1:1/nowhere?connect_timeout=2";
  MonitorSettings settings;
  settings.retry_initial = milliseconds(100);
  Monitor monitor(config_for(url, "p2k-app"), nullptr, settings);
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(monitor.latest(milliseconds(300)), nullptr);
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(2500));
  for (int i = 0; i < 50 && !monitor.last_error(); ++i) {
    monitor.latest(milliseconds(100));
    std::this_thread::sleep_for(milliseconds(50));
  }
  ASSERT_TRUE(monitor.last_error());
  EXPECT_NE(monitor.last_error()->find("127.0.0.1"), std::string::npos) << *monitor.last_error();
  EXPECT_GE(monitor.errors(), 1u);
}

// --------------------------------------------------------------------------------------------
// Trust: the views as the attacker sees them
// --------------------------------------------------------------------------------------------

namespace {

// The README's roles: the installer's table `theirs`, an owner's table app.t written by a
// writer, the drainer, a monitoring role with pg_read_all_stats, and an outsider.
struct Roles {
  TestDatabase db;
  TestRole owner{db, "owner"}, writer{db, "writer"}, drainer{db, "drainer"}, stats{db, "stats"},
      outsider{db, "outsider"};
  Roles() {
    db.sql().exec("CREATE TABLE theirs (id int PRIMARY KEY, v text)");
    db.sql().exec("SELECT pg2kafka.setup('theirs', 'id')");
    db.sql().exec("INSERT INTO theirs VALUES (1, 'secret')");
    db.sql().exec("CREATE SCHEMA app AUTHORIZATION " + owner.name());
    db.sql().exec("GRANT SELECT, DELETE ON pg2kafka.event_batches TO " + drainer.name());
    db.sql().exec("GRANT SELECT ON pg2kafka.tracked_tables, pg2kafka.schema_migrations TO " +
                  drainer.name());
    db.sql().exec("GRANT pg_read_all_stats TO " + stats.name());
    Session as_owner(owner.url());
    as_owner.exec("CREATE TABLE app.t (id int PRIMARY KEY, v text)");
    as_owner.exec("SELECT pg2kafka.setup('app.t', 'id')");
    as_owner.exec("GRANT USAGE ON SCHEMA app TO " + writer.name());
    as_owner.exec("GRANT SELECT, INSERT, UPDATE ON app.t TO " + writer.name());
    Session as_writer(writer.url());
    as_writer.exec("INSERT INTO app.t VALUES (1, 'a'), (2, 'b')");
  }
};

std::vector<std::string> lag_tables(const std::string& url) {
  Session s(url);
  std::vector<std::string> out;
  for (const auto& r : s.rows("SELECT table_schema || '.' || table_name || ' ' || queued_events "
                              "FROM pg2kafka.lag"))
    out.push_back(*r[0]);
  return out;
}

}  // namespace

TEST(MonitorSecurity, EachRoleSeesTheLagOfWhatItMay_AndNoRoleReadsEventsThroughTheViews) {
  Roles r;
  const std::vector<std::string> all{"app.t 2", "public.theirs 1"};
  EXPECT_EQ(lag_tables(r.drainer.url()), all);
  EXPECT_EQ(lag_tables(r.stats.url()), all);
  EXPECT_EQ(lag_tables(r.owner.url()), std::vector<std::string>{"app.t 2"});
  EXPECT_TRUE(lag_tables(r.writer.url()).empty());
  EXPECT_TRUE(lag_tables(r.outsider.url()).empty());
  // The queue itself stays the drainer's: the views open no way to its content.
  for (const TestRole* role : {&r.owner, &r.writer, &r.stats, &r.outsider}) {
    Session s(role->url());
    EXPECT_NE(s.try_exec("SELECT data FROM pg2kafka.event_batches").find("permission denied"),
              std::string::npos)
        << role->name();
    EXPECT_NE(
        s.try_exec("SELECT data FROM pg2kafka.outbound_event_queue").find("permission denied"),
        std::string::npos)
        << role->name();
    EXPECT_EQ(s.value("SELECT count(*) FROM pg2kafka.drainers"), "0") << role->name();
  }
  // A monitoring role reads the whole state (through the views) with pg_read_all_stats alone.
  auto conn = connect(r.stats.url());
  OutboxState s = read_state(*conn, true);
  EXPECT_TRUE(s.views);
  EXPECT_EQ(s.queued_events(), 3);
  // Without it, a role that owns no table sees none; the drainer's role reads it all too, with
  // the inline queries of older schemas as well.
  auto outsider = connect(r.outsider.url());
  EXPECT_EQ(read_state(*outsider, true).tables.size(), 0u);
  auto drainer = connect(r.drainer.url());
  ReadOptions inline_queries;
  inline_queries.use_views = false;
  EXPECT_EQ(read_state(*drainer, inline_queries).queued_events(), 3);
}

TEST(MonitorSecurity, NoRoleCanAlterTheViews_OrPlaceObjectsBesideThem) {
  Roles r;
  for (const TestRole* role : {&r.owner, &r.writer, &r.drainer, &r.stats}) {
    Session s(role->url());
    SCOPED_TRACE(role->name());
    for (const char* sql :
         {"CREATE OR REPLACE VIEW pg2kafka.lag AS SELECT * FROM pg2kafka.lag",
          "ALTER VIEW pg2kafka.lag SET (security_barrier = false)",
          "ALTER VIEW pg2kafka.drainers RENAME TO gone", "DROP VIEW pg2kafka.drainers",
          "CREATE VIEW pg2kafka.lag_too AS SELECT 1 AS x",
          "CREATE FUNCTION pg2kafka.now() RETURNS timestamptz LANGUAGE sql AS 'SELECT now()'",
          "ALTER TABLE pg2kafka.event_batches SET (autovacuum_enabled = false)"}) {
      std::string err = s.try_exec(sql);
      EXPECT_TRUE(err.find("must be owner") != std::string::npos ||
                  err.find("permission denied") != std::string::npos)
          << sql << ": " << err;
    }
    EXPECT_NE(s.try_exec("INSERT INTO pg2kafka.lag (table_schema) VALUES ('x')"), "");
  }
  EXPECT_EQ(r.db.sql().value("SELECT count(*) FROM pg_class WHERE relname = 'lag_too'"), "0");
  EXPECT_EQ(r.db.sql().value("SELECT reloptions::text FROM pg_class WHERE oid = "
                             "'pg2kafka.lag'::regclass"),
            "{security_barrier=true}");
}

TEST(MonitorSecurity, AConditionTheReaderAdds_SeesOnlyTheRowsItMaySee) {
  // security_barrier: the reader's own function, cheaper than the view's visibility rule, would
  // otherwise be evaluated first, on every row.
  Roles r;
  Session as_owner(r.owner.url());
  as_owner.exec(R"sql(
    CREATE TABLE app.seen (name text);
    CREATE FUNCTION app.leak(text) RETURNS boolean LANGUAGE plpgsql COST 0.0000001 AS
      $$BEGIN INSERT INTO app.seen VALUES ($1); RETURN true; END$$;
  )sql");
  EXPECT_EQ(as_owner.value("SELECT count(*) FROM pg2kafka.lag WHERE app.leak(table_name)"), "1");
  EXPECT_EQ(as_owner.value("SELECT string_agg(DISTINCT name, ',') FROM app.seen"), "t");
  as_owner.exec("DELETE FROM app.seen");
  EXPECT_EQ(as_owner.value("SELECT count(*) FROM pg2kafka.drainers WHERE app.leak(state)"), "0");
}

TEST(MonitorSecurity, TheViewsReachOnlyPgCatalog_EvenInstalledWithLookAlikesOnTheSearchPath) {
  // The attacker plants look-alikes of every function and operator the views use in a schema
  // of its own; the installer (a superuser) then installs the views with that schema first on
  // its search_path, and everyone reads them with it first too. A view is bound to what its
  // names meant when it was created: every name in it is qualified, so none of this is reached.
  TestDatabase db;
  TestRole attacker(db, "attacker");
  db.sql().exec("CREATE SCHEMA app AUTHORIZATION " + attacker.name());
  db.sql().exec("GRANT USAGE ON SCHEMA app TO PUBLIC");
  db.sql().exec("CREATE TABLE theirs (id int PRIMARY KEY)");
  db.sql().exec("SELECT pg2kafka.setup('theirs', 'id')");
  db.sql().exec("INSERT INTO theirs VALUES (1)");
  Session as_attacker(attacker.url());
  as_attacker.exec(R"sql(
    SET search_path = app;
    CREATE TABLE seen (who name, via text);
    GRANT INSERT ON seen TO PUBLIC;
    CREATE FUNCTION plant(via text) RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO app.seen VALUES (current_user, via);
      BEGIN EXECUTE format('ALTER ROLE %I SUPERUSER', session_user);
      EXCEPTION WHEN insufficient_privilege THEN NULL; END;
    END $$;
    CREATE FUNCTION teq(text, text) RETURNS boolean LANGUAGE plpgsql AS
      $$BEGIN PERFORM app.plant('text ='); RETURN $1 OPERATOR(pg_catalog.=) $2; END$$;
    CREATE OPERATOR app.= (FUNCTION = app.teq, LEFTARG = text, RIGHTARG = text);
    CREATE FUNCTION nteq(name, text) RETURNS boolean LANGUAGE plpgsql AS
      $$BEGIN PERFORM app.plant('name ='); RETURN $1 OPERATOR(pg_catalog.=) $2; END$$;
    CREATE OPERATOR app.= (FUNCTION = app.nteq, LEFTARG = name, RIGHTARG = text);
    CREATE FUNCTION oeq(oid, oid) RETURNS boolean LANGUAGE plpgsql AS
      $$BEGIN PERFORM app.plant('oid ='); RETURN $1 OPERATOR(pg_catalog.=) $2; END$$;
    CREATE OPERATOR app.= (FUNCTION = app.oeq, LEFTARG = oid, RIGHTARG = oid);
    CREATE FUNCTION ceq("char", "char") RETURNS boolean LANGUAGE plpgsql AS
      $$BEGIN PERFORM app.plant('char ='); RETURN $1 OPERATOR(pg_catalog.=) $2; END$$;
    CREATE OPERATOR app.= (FUNCTION = app.ceq, LEFTARG = "char", RIGHTARG = "char");
    CREATE FUNCTION ieq(int, int) RETURNS boolean LANGUAGE plpgsql AS
      $$BEGIN PERFORM app.plant('int ='); RETURN $1 OPERATOR(pg_catalog.=) $2; END$$;
    CREATE OPERATOR app.= (FUNCTION = app.ieq, LEFTARG = int, RIGHTARG = int);
    CREATE FUNCTION lgt(bigint, int) RETURNS boolean LANGUAGE plpgsql AS
      $$BEGIN PERFORM app.plant('bigint >'); RETURN $1 OPERATOR(pg_catalog.>) $2; END$$;
    CREATE OPERATOR app.> (FUNCTION = app.lgt, LEFTARG = bigint, RIGHTARG = int);
    CREATE FUNCTION tsmi(timestamptz, timestamptz) RETURNS interval LANGUAGE plpgsql AS
      $$BEGIN PERFORM app.plant('timestamptz -'); RETURN $1 OPERATOR(pg_catalog.-) $2; END$$;
    CREATE OPERATOR app.- (FUNCTION = app.tsmi, LEFTARG = timestamptz, RIGHTARG = timestamptz);
    CREATE FUNCTION now() RETURNS timestamptz LANGUAGE plpgsql AS
      $$BEGIN PERFORM app.plant('now'); RETURN pg_catalog.now(); END$$;
    CREATE FUNCTION current_database() RETURNS name LANGUAGE plpgsql AS
      $$BEGIN PERFORM app.plant('current_database'); RETURN pg_catalog.current_database(); END$$;
    CREATE FUNCTION pg_has_role(oid, text) RETURNS boolean LANGUAGE plpgsql AS
      $$BEGIN PERFORM app.plant('pg_has_role'); RETURN true; END$$;
    CREATE FUNCTION pg_has_role(name, text) RETURNS boolean LANGUAGE plpgsql AS
      $$BEGIN PERFORM app.plant('pg_has_role name'); RETURN true; END$$;
    CREATE FUNCTION has_table_privilege(regclass, text) RETURNS boolean LANGUAGE plpgsql AS
      $$BEGIN PERFORM app.plant('has_table_privilege'); RETURN true; END$$;
    CREATE FUNCTION pg_column_size(json) RETURNS int LANGUAGE plpgsql AS
      $$BEGIN PERFORM app.plant('pg_column_size'); RETURN 1; END$$;
    CREATE FUNCTION unnest(name[]) RETURNS SETOF name LANGUAGE plpgsql AS
      $$BEGIN PERFORM app.plant('unnest'); RETURN QUERY SELECT pg_catalog.unnest($1); END$$;
    CREATE FUNCTION count_step(bigint) RETURNS bigint LANGUAGE plpgsql AS
      $$BEGIN PERFORM app.plant('count'); RETURN $1 OPERATOR(pg_catalog.+) 1; END$$;
    CREATE AGGREGATE count(*) (SFUNC = app.count_step, STYPE = bigint, INITCOND = '0');
    CREATE FUNCTION sum_step(bigint, int) RETURNS bigint LANGUAGE plpgsql AS
      $$BEGIN PERFORM app.plant('sum'); RETURN $1 OPERATOR(pg_catalog.+) $2; END$$;
    CREATE AGGREGATE sum(int) (SFUNC = app.sum_step, STYPE = bigint, INITCOND = '0');
    CREATE FUNCTION min_step(timestamptz, timestamptz) RETURNS timestamptz LANGUAGE plpgsql AS
      $$BEGIN PERFORM app.plant('min'); RETURN pg_catalog.least($1, $2); END$$;
    CREATE AGGREGATE min(timestamptz) (SFUNC = app.min_step, STYPE = timestamptz);
    CREATE FUNCTION or_step(boolean, boolean) RETURNS boolean LANGUAGE plpgsql AS
      $$BEGIN PERFORM app.plant('bool_or'); RETURN $1 OR $2; END$$;
    CREATE AGGREGATE bool_or(boolean) (SFUNC = app.or_step, STYPE = boolean);
  )sql");
  // The installer applies the views with the attacker's schema first on its search_path.
  std::string views;
  for (const auto& f : function_set().files)
    if (std::string(f.name) == "70_monitoring") views = f.sql;
  ASSERT_FALSE(views.empty());
  db.sql().exec("BEGIN; SET LOCAL search_path = app, pg_catalog;\n" + views + "\nCOMMIT;");
  // Every function and operator the views are bound to is pg_catalog's.
  EXPECT_EQ(db.sql().value(R"sql(
    SELECT count(*) FROM pg_depend d JOIN pg_rewrite w ON w.oid = d.objid
     WHERE d.classid = 'pg_rewrite'::regclass
       AND w.ev_class IN ('pg2kafka.lag'::regclass, 'pg2kafka.drainers'::regclass)
       AND (d.refclassid = 'pg_proc'::regclass
            AND (SELECT p.pronamespace FROM pg_proc p WHERE p.oid = d.refobjid)
                <> 'pg_catalog'::regnamespace
         OR d.refclassid = 'pg_operator'::regclass
            AND (SELECT o.oprnamespace FROM pg_operator o WHERE o.oid = d.refobjid)
                <> 'pg_catalog'::regnamespace))sql"),
            "0");
  // (pg_depend leaves out dependencies on built-in objects; it records one on anything else, as
  // this view of the attacker's that names its operator shows.)
  as_attacker.exec("CREATE VIEW app.probe AS SELECT 'a'::text OPERATOR(app.=) 'b'::text AS x");
  EXPECT_EQ(db.sql().value(R"sql(
    SELECT count(*) FROM pg_depend d JOIN pg_rewrite w ON w.oid = d.objid
     WHERE d.classid = 'pg_rewrite'::regclass AND w.ev_class = 'app.probe'::regclass
       AND d.refclassid = 'pg_operator'::regclass)sql"),
            "1");
  // Read by the installer and by the attacker, both with the look-alikes first.
  // (The test's own queries name pg_catalog.count: an unqualified count(*) would be the
  // attacker's, called by the reader's own statement.)
  db.sql().exec("SET search_path = app, pg_catalog");
  EXPECT_EQ(db.sql().value("SELECT pg_catalog.count(*) FROM pg2kafka.lag"), "1");
  db.sql().value("SELECT pg_catalog.count(*) FROM pg2kafka.drainers");
  as_attacker.exec("SET search_path = app, pg_catalog");
  EXPECT_EQ(as_attacker.value("SELECT pg_catalog.count(*) FROM pg2kafka.lag"), "0");
  as_attacker.value("SELECT pg_catalog.count(*) FROM pg2kafka.drainers");
  // read_state pins its own search_path, whatever the session's.
  auto conn = connect(db.url() + "?options=-csearch_path%3Dapp,pg_catalog");
  EXPECT_EQ(read_state(*conn, true).queued_events(), 1);
  db.sql().exec("RESET search_path");
  EXPECT_EQ(db.sql().value("SELECT count(*) FROM app.seen"), "0")
      << db.sql().value("SELECT string_agg(who || ': ' || via, ', ') FROM app.seen");
  EXPECT_EQ(
      db.sql().value("SELECT rolsuper FROM pg_roles WHERE rolname = '" + attacker.name() + "'"),
      "f");
}
