#include "monitor.hpp"

#include <pg2kafka/sdk/json.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <ctime>

#include "queue_sql.hpp"

namespace pg2kafka::pg_outbox {

namespace {

using Clock = std::chrono::steady_clock;
using queue_sql::replace_all;
using std::chrono::milliseconds;

// Events waiting longer than this are a problem; so is a transaction (or prepared transaction)
// open longer than kLongTransactionSeconds, or a replication slot this far behind.
constexpr double kLagProblemSeconds = 300;
constexpr double kLongTransactionSeconds = 3600;
constexpr int64_t kSlotProblemXids = 10'000'000;

// A timestamptz expression as ISO 8601 UTC text.
std::string iso(const std::string& expr) {
  return "to_char((" + expr + ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')";
}

// pg2kafka.lag's body (sql/functions/70_monitoring.sql) without its visibility rule, which needs
// no enforcing here: reading the queue takes the drainer's SELECT on it. For schemas without the
// view, and for the tracked tables alone (%QUEUED% empty) when the queue is not counted.
// %BYTES%: a batch's size (data_bytes from migration 006 on); %CAPTURE%: the capture mode
// (tracked_tables.capture from migration 009 on).
constexpr const char* kLagSql = R"sql(
WITH queued AS (%QUEUED%),
tracked AS (
  SELECT c.oid AS relid, n.nspname::text AS table_schema, c.relname::text AS table_name,
         c.relkind, %CAPTURE% AS capture
    FROM pg2kafka.tracked_tables t
    JOIN pg_catalog.pg_class c ON c.oid = t.relid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
)
SELECT COALESCE(tr.table_schema, q.table_schema), COALESCE(tr.table_name, q.table_name),
       tr.relid IS NOT NULL, COALESCE(q.events, 0), COALESCE(q.batches, 0), COALESCE(q.bytes, 0),
       %OLDEST_AT%, extract(epoch FROM now() - q.oldest)::float8,
       CASE WHEN tr.relid IS NULL THEN NULL
            WHEN tg.present = 0 THEN 'missing'
            WHEN tg.present < tg.expected THEN 'partial'
            WHEN tg.disabled > 0 THEN 'disabled'
            WHEN tg.not_always > 0 THEN 'not always'
            ELSE 'enabled' END
  FROM queued q
  FULL JOIN tracked tr ON tr.table_schema = q.table_schema AND tr.table_name = q.table_name
  LEFT JOIN LATERAL (
    SELECT count(*) AS expected, count(g.oid) AS present,
           count(g.oid) FILTER (WHERE g.tgenabled = 'D' OR g.tgenabled = 'R') AS disabled,
           count(g.oid) FILTER (WHERE g.tgenabled = 'O') AS not_always
      FROM (SELECT tr.relid AS rel WHERE tr.relkind <> 'p'
            UNION ALL
            SELECT p.relid FROM pg_catalog.pg_partition_tree(tr.relid) p
             WHERE tr.relkind = 'p') r
     CROSS JOIN unnest(CASE WHEN tr.relkind = 'p' OR tr.capture = 'row'
                            THEN ARRAY['pg2kafka_row', 'pg2kafka_truncate']::name[]
                            ELSE ARRAY['pg2kafka_insert', 'pg2kafka_update', 'pg2kafka_delete',
                                       'pg2kafka_truncate']::name[] END) e(name)
      LEFT JOIN pg_catalog.pg_trigger g ON g.tgrelid = r.rel AND g.tgname = e.name
     WHERE tr.relid IS NOT NULL) tg ON true
 ORDER BY 1, 2)sql";

constexpr const char* kQueuedSql = R"sql(
  SELECT b.table_schema, b.table_name, sum(b.events)::int8 AS events, count(*) AS batches,
         sum(%BYTES%)::int8 AS bytes, min(b.created_at) AS oldest
    FROM pg2kafka.event_batches b
   GROUP BY b.table_schema, b.table_name)sql";
constexpr const char* kNothingQueuedSql =
    "SELECT NULL::text AS table_schema, NULL::text AS table_name, NULL::int8 AS events, "
    "NULL::int8 AS batches, NULL::int8 AS bytes, NULL::timestamptz AS oldest WHERE false";

// pg2kafka.drainers' body (its comment says what each column means).
constexpr const char* kDrainersSql = R"sql(
WITH db AS (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = current_database()),
drain_lock AS (
  SELECT l.pid, bool_or(l.granted) AS granted
    FROM pg_catalog.pg_locks l, db
   WHERE l.locktype = 'advisory' AND l.database = db.oid AND l.classid = '1882352481'::oid
     AND l.objid = '2'::oid AND l.objsubid = 2
   GROUP BY l.pid
)
SELECT a.pid, CASE WHEN l.granted THEN 'active' ELSE 'standby' END AS role,
       a.usename::text AS usename, a.application_name, a.client_addr, a.backend_start, a.state,
       pg_has_role(a.usesysid, 'USAGE') OR pg_has_role('pg_read_all_stats', 'USAGE')
         AS details_visible
  FROM pg_catalog.pg_stat_activity a
 CROSS JOIN db
  LEFT JOIN drain_lock l ON l.pid = a.pid
 WHERE l.pid IS NOT NULL
    OR a.datid = db.oid AND a.query = 'SELECT pg_try_advisory_lock(1882352481, 2)')sql";

// The oldest horizon of the cluster (sessions other than this one and autovacuum, prepared
// transactions, replication slots), by age.
constexpr const char* kHorizonSql = R"sql(
SELECT h.kind, h.pid, h.name, h.application_name, h.xmin_age, h.xact_age, h.visible
  FROM (SELECT 'session' AS kind, a.pid, a.usename::text AS name, a.application_name,
               age(a.backend_xmin)::int8 AS xmin_age,
               extract(epoch FROM now() - a.xact_start)::float8 AS xact_age,
               pg_has_role(a.usesysid, 'USAGE') OR pg_has_role('pg_read_all_stats', 'USAGE')
                 AS visible
          FROM pg_catalog.pg_stat_activity a
         WHERE a.backend_xmin IS NOT NULL AND a.pid <> pg_backend_pid()
           AND a.backend_type IS DISTINCT FROM 'autovacuum worker'
        UNION ALL
        SELECT 'prepared transaction', NULL, p.gid, NULL, age(p.transaction)::int8,
               extract(epoch FROM now() - p.prepared)::float8, true
          FROM pg_catalog.pg_prepared_xacts p
        UNION ALL
        SELECT 'replication slot', NULL, s.slot_name::text, NULL, age(s.xmin)::int8, NULL, true
          FROM pg_catalog.pg_replication_slots s
         WHERE s.xmin IS NOT NULL) h
 ORDER BY h.xmin_age DESC
 LIMIT 1)sql";

std::optional<double> optional_double(const PgResult& r, int row, int col) {
  if (r.is_null(row, col)) return std::nullopt;
  std::string_view t = r.text(row, col);
  double v = 0;
  auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (ec != std::errc() || end != t.data() + t.size()) return std::nullopt;  // NaN, Infinity
  return v;
}

std::optional<int64_t> optional_int64(const PgResult& r, int row, int col) {
  if (r.is_null(row, col)) return std::nullopt;
  return r.int64(row, col);
}

bool is_statement_timeout(const PgError& e) {
  return e.sqlstate() == "57014" && !e.connection_lost();
}

// Runs `read` inside a savepoint; a statement_timeout ends it without ending the transaction:
// returns false then.
template <class F>
bool bounded(PgConnection& conn, F&& read) {
  conn.exec("SAVEPOINT p2k_bounded");
  try {
    read();
  } catch (const PgError& e) {
    if (!is_statement_timeout(e) || conn.broken()) throw;
    conn.exec("ROLLBACK TO SAVEPOINT p2k_bounded");
    return false;
  }
  conn.exec("RELEASE SAVEPOINT p2k_bounded");
  return true;
}

std::string qualified(const std::string& schema, const std::string& table) {
  return schema + "." + table;
}

std::string human_seconds(double s) {
  char buf[64];
  if (s < 120)
    std::snprintf(buf, sizeof buf, "%.0f s", s);
  else if (s < 7200)
    std::snprintf(buf, sizeof buf, "%.0f min", s / 60);
  else if (s < 172800)
    std::snprintf(buf, sizeof buf, "%.1f h", s / 3600);
  else
    std::snprintf(buf, sizeof buf, "%.1f days", s / 86400);
  return buf;
}

std::string session_words(const DrainerSession& d) {
  std::string out = "pid " + std::to_string(d.pid) + ", user " + d.usename + ", application \"" +
                    d.application_name + "\"";
  if (d.client_addr) out += ", from " + *d.client_addr;
  return out;
}

void read_versions(PgConnection& conn, OutboxState& s) {
  auto r = conn.exec(
      "SELECT current_database(), current_user::text, extract(epoch FROM now())::float8, "
      "to_regclass('pg2kafka.schema_migrations') IS NOT NULL, "
      "to_regclass('pg2kafka.schema_functions') IS NOT NULL, "
      "to_regclass('pg2kafka.event_batches') IS NOT NULL, "
      "CASE WHEN to_regclass('pg2kafka.schema_migrations') IS NOT NULL "
      "THEN has_table_privilege('pg2kafka.schema_migrations', 'SELECT') END");
  s.database = std::string(r.text(0, 0));
  s.read_as = std::string(r.text(0, 1));
  s.collected_at_unix = optional_double(r, 0, 2).value_or(0);
  const std::string fix =
      "install or upgrade it as the schema's owner (the option perform_migrations=true, or psql "
      "--single-transaction -v ON_ERROR_STOP=1 -f sql/install.sql)";
  if (!r.boolean(0, 3))
    throw MonitorError("database \"" + s.database + "\" has no pg2kafka schema: " + fix);
  if (!r.boolean(0, 6))
    throw MonitorError("role " + s.read_as +
                       " may not read pg2kafka.schema_migrations of database \"" + s.database +
                       "\" (readable by every role from migration 011 on; before, by the "
                       "drainer's role): read the status as the drainer's role, or upgrade the "
                       "schema");
  s.schema_version = static_cast<int>(
      conn.exec("SELECT coalesce(max(version), 0) FROM pg2kafka.schema_migrations").int64(0, 0));
  if (r.boolean(0, 4))
    s.function_set = static_cast<int>(
        conn.exec("SELECT coalesce(max(version), 0) FROM pg2kafka.schema_functions").int64(0, 0));
  if (s.schema_version < 4 || !r.boolean(0, 5))
    throw MonitorError(
        "the pg2kafka schema of database \"" + s.database + "\" is at migration " +
        std::to_string(s.schema_version) +
        ", older than 004 (the queue of event batches), which pg2kafka needs: " + fix);
}

void read_queue_table(PgConnection& conn, OutboxState& s) {
  auto r = conn.exec(
      "SELECT pg_total_relation_size(c.oid), pg_relation_size(c.oid), pg_indexes_size(c.oid), "
      "coalesce(pg_total_relation_size(nullif(c.reltoastrelid, 0::oid)), 0), "
      "c.reltuples::int8, coalesce(st.n_dead_tup, 0), " +
      iso("st.last_autovacuum") +
      ", coalesce(st.autovacuum_count, 0) "
      "FROM pg_catalog.pg_class c "
      "LEFT JOIN pg_catalog.pg_stat_all_tables st ON st.relid = c.oid "
      "WHERE c.oid = 'pg2kafka.event_batches'::regclass");
  s.queue_table_bytes = r.int64(0, 0);
  s.queue_heap_bytes = r.int64(0, 1);
  s.queue_index_bytes = r.int64(0, 2);
  s.queue_toast_bytes = r.int64(0, 3);
  int64_t tuples = r.int64(0, 4);
  if (tuples >= 0) s.queue_rows_estimate = tuples;
  s.queue_dead_rows = r.int64(0, 5);
  s.queue_last_autovacuum = r.optional_text(0, 6);
  s.queue_autovacuum_count = r.int64(0, 7);
}

void read_tables(const PgResult& r, OutboxState& s) {
  for (int i = 0; i < r.rows(); ++i) {
    TableLag t;
    t.table_schema = std::string(r.text(i, 0));
    t.table_name = std::string(r.text(i, 1));
    t.tracked = r.boolean(i, 2);
    t.queued_events = r.int64(i, 3);
    t.queued_batches = r.int64(i, 4);
    t.queued_bytes = r.int64(i, 5);
    t.oldest_event_at = r.optional_text(i, 6);
    t.oldest_event_age_seconds = optional_double(r, i, 7);
    t.triggers = r.optional_text(i, 8);
    if (t.oldest_event_age_seconds)
      s.queue_oldest_age_seconds =
          std::max(s.queue_oldest_age_seconds.value_or(0), *t.oldest_event_age_seconds);
    s.tables.push_back(std::move(t));
  }
}

std::string inline_lag_sql(const OutboxState& s, bool counted) {
  std::string bytes =
      s.schema_version >= 6
          ? "COALESCE(b.data_bytes, COALESCE(pg_column_size(b.data), 0) + "
            "COALESCE(pg_column_size(b.old_data), 0))"
          : "COALESCE(pg_column_size(b.data), 0) + COALESCE(pg_column_size(b.old_data), 0)";
  std::string sql = replace_all(
      kLagSql, "%QUEUED%",
      counted ? replace_all(kQueuedSql, "%BYTES%", bytes) : std::string(kNothingQueuedSql));
  sql = replace_all(sql, "%CAPTURE%", s.schema_version >= 9 ? "t.capture" : "'statement'::text");
  return replace_all(sql, "%OLDEST_AT%", iso("q.oldest"));
}

void read_lag(PgConnection& conn, const ReadOptions& o, OutboxState& s) {
  if (o.count_queue) {
    std::string sql =
        s.views ? "SELECT table_schema, table_name, tracked, queued_events, queued_batches, "
                  "queued_bytes, " +
                      iso("oldest_event_at") +
                      ", extract(epoch FROM oldest_event_age)::float8, triggers "
                      "FROM pg2kafka.lag"
                : inline_lag_sql(s, true);
    if (bounded(conn, [&] { read_tables(conn.exec(sql), s); })) return;
    s.count_note =
        "counting the queue took longer than this session's statement_timeout: the backlog is "
        "large (the queue table takes " +
        std::to_string(s.queue_table_bytes / (1024 * 1024)) +
        " MB); per-table counts are left out and retried later";
  } else {
    s.count_note = "the queue was not counted (a recent count took too long)";
  }
  s.counted = false;
  s.tables.clear();
  s.queue_oldest_age_seconds.reset();
  read_tables(conn.exec(inline_lag_sql(s, false)), s);
  // The oldest batches, through the primary key, whatever the backlog (for the drainer's role).
  if (conn.exec("SELECT has_table_privilege('pg2kafka.event_batches', 'SELECT')").boolean(0, 0))
    bounded(conn, [&] {
      auto r = conn.exec(
          "SELECT extract(epoch FROM now() - min(b.created_at))::float8 FROM (SELECT created_at "
          "FROM pg2kafka.event_batches ORDER BY id LIMIT 1000) b");
      s.queue_oldest_age_seconds = optional_double(r, 0, 0);
    });
}

void read_sessions(PgConnection& conn, OutboxState& s) {
  s.sessions_read = true;
  auto r = conn.exec(
      std::string("SELECT pid, role, usename, application_name, host(client_addr), ") +
      iso("backend_start") + ", state, details_visible FROM " +
      (s.views ? std::string("pg2kafka.drainers") : "(" + std::string(kDrainersSql) + ") d") +
      " ORDER BY role, backend_start, pid");
  for (int i = 0; i < r.rows(); ++i) {
    DrainerSession d;
    d.pid = static_cast<int>(r.int64(i, 0));
    d.role = std::string(r.text(i, 1));
    d.usename = r.optional_text(i, 2).value_or("");
    d.application_name = r.optional_text(i, 3).value_or("");
    d.client_addr = r.optional_text(i, 4);
    d.backend_start = r.optional_text(i, 5);
    d.state = r.optional_text(i, 6);
    d.details_visible = !r.is_null(i, 7) && r.boolean(i, 7);
    s.drainers.push_back(std::move(d));
  }
  s.hidden_sessions =
      static_cast<int>(conn.exec("SELECT count(*) FROM pg_catalog.pg_stat_activity a "
                                 "WHERE a.datname = current_database() AND a.usesysid IS NOT NULL "
                                 "AND NOT (pg_has_role(a.usesysid, 'USAGE') "
                                 "OR pg_has_role('pg_read_all_stats', 'USAGE'))")
                           .int64(0, 0));
  auto h = conn.exec(kHorizonSql);
  if (h.rows() == 1) {
    VacuumHorizon v;
    v.kind = std::string(h.text(0, 0));
    if (!h.is_null(0, 1)) v.pid = static_cast<int>(h.int64(0, 1));
    v.name = h.optional_text(0, 2).value_or("");
    v.application_name = h.optional_text(0, 3);
    v.xmin_age = h.int64(0, 4);
    v.transaction_age_seconds = optional_double(h, 0, 5);
    v.details_visible = !h.is_null(0, 6) && h.boolean(0, 6);
    s.vacuum_horizon = std::move(v);
  }
}

void read_backfills(PgConnection& conn, OutboxState& s) {
  auto r = conn.exec(
      "SELECT b.id, b.table_schema, b.table_name, b.state, b.rows_done, b.rows_estimated, "
      "b.percent::float8, b.rows_per_second::float8, " +
      iso("b.eta") + ", " + iso("b.started_at") + ", " + iso("b.finished_at") +
      ", b.error, b.requested_by::text FROM pg2kafka.backfills b "
      "WHERE b.state IN ('pending', 'running') OR b.finished_at > now() - interval '1 day' "
      "ORDER BY b.id LIMIT 100");
  for (int i = 0; i < r.rows(); ++i) {
    BackfillState b;
    b.id = r.int64(i, 0);
    b.table_schema = std::string(r.text(i, 1));
    b.table_name = std::string(r.text(i, 2));
    b.state = std::string(r.text(i, 3));
    b.rows_done = r.int64(i, 4);
    b.rows_estimated = optional_int64(r, i, 5);
    b.percent = optional_double(r, i, 6);
    b.rows_per_second = optional_double(r, i, 7);
    b.eta = r.optional_text(i, 8);
    b.started_at = r.optional_text(i, 9);
    b.finished_at = r.optional_text(i, 10);
    b.error = r.optional_text(i, 11);
    b.requested_by = std::string(r.text(i, 12));
    s.backfills.push_back(std::move(b));
  }
}

void read_parked(PgConnection& conn, OutboxState& s) {
  s.parked_visible =
      conn.exec("SELECT has_table_privilege('pg2kafka.parked_events', 'SELECT')").boolean(0, 0);
  if (!s.parked_visible) return;
  auto r = conn.exec(
      "SELECT p.table_schema, p.table_name, p.reason, count(*), "
      "extract(epoch FROM now() - min(p.parked_at))::float8 FROM pg2kafka.parked_events p "
      "GROUP BY 1, 2, 3 ORDER BY 1, 2, 3 LIMIT 1000");
  for (int i = 0; i < r.rows(); ++i) {
    ParkedCount c;
    c.table_schema = std::string(r.text(i, 0));
    c.table_name = std::string(r.text(i, 1));
    c.reason = std::string(r.text(i, 2));
    c.events = r.int64(i, 3);
    c.oldest_age_seconds = optional_double(r, i, 4).value_or(0);
    s.parked.push_back(std::move(c));
  }
}

}  // namespace

int64_t OutboxState::queued_events() const {
  int64_t n = 0;
  for (const auto& t : tables) n += t.queued_events;
  return n;
}

int64_t OutboxState::queued_batches() const {
  int64_t n = 0;
  for (const auto& t : tables) n += t.queued_batches;
  return n;
}

int64_t OutboxState::queued_bytes() const {
  int64_t n = 0;
  for (const auto& t : tables) n += t.queued_bytes;
  return n;
}

const DrainerSession* OutboxState::active() const {
  for (const auto& d : drainers)
    if (d.role == "active") return &d;
  return nullptr;
}

OutboxState read_state(PgConnection& conn, const ReadOptions& options) {
  OutboxState s;
  conn.exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  try {
    // The queries below name built-in functions and operators without their schema: a
    // search_path of the session's (the role's or database's default) must not redirect them.
    conn.exec("SET LOCAL search_path = pg_catalog, pg_temp");
    read_versions(conn, s);
    s.views = options.use_views && s.function_set.value_or(0) >= 6;
    read_queue_table(conn, s);
    read_lag(conn, options, s);
    if (options.with_sessions) read_sessions(conn, s);
    if (s.schema_version >= 10) read_backfills(conn, s);
    if (s.schema_version >= 12) read_parked(conn, s);
    if (s.function_set.value_or(0) >= 1) {
      auto r = conn.exec("SELECT message FROM pg2kafka.tracking_problems()");
      for (int i = 0; i < r.rows(); ++i) s.tracking_problems.emplace_back(r.text(i, 0));
    }
  } catch (...) {
    if (!conn.broken()) {
      try {
        conn.exec("ROLLBACK");
      } catch (...) {
      }
    }
    throw;
  }
  conn.exec("ROLLBACK");
  return s;
}

// ---------------------------------------------------------------------------------------------
// Problems and the status document
// ---------------------------------------------------------------------------------------------

std::vector<std::string> problems(const OutboxState& s) {
  std::vector<std::string> out = s.tracking_problems;
  // Before the function set (schemas 004-006) there is no tracking_problems(): the lag's
  // trigger states say it.
  if (!s.function_set || *s.function_set < 1)
    for (const auto& t : s.tables) {
      if (!t.tracked || !t.triggers || *t.triggers == "enabled") continue;
      const std::string& state = *t.triggers;
      out.push_back(
          "tracked table " + qualified(t.table_schema, t.table_name) + ": " +
          (state == "missing"    ? "its capture triggers are gone, so none of its changes are "
                                   "captured"
           : state == "partial"  ? "some of its capture triggers are gone, so those statements "
                                   "are not captured"
           : state == "disabled" ? "some of its capture triggers are disabled, so the changes "
                                   "they would capture are lost"
                                 : "its capture triggers are not enabled ALWAYS, so changes made "
                                   "with session_replication_role = replica are not captured") +
          ". Upgrade the schema (perform_migrations=true, or sql/install.sql), then run SELECT "
          "pg2kafka.setup(table, key_column) as its owner");
    }
  if (!s.counted && s.count_note) out.push_back("the queue was not counted: " + *s.count_note);

  const DrainerSession* active = s.active();
  std::optional<double> age = s.queue_oldest_age_seconds;
  if (s.sessions_read) {
    std::string waiting;
    if (age && *age > kLagProblemSeconds)
      waiting = "; the oldest queued event has waited " + human_seconds(*age);
    if (!active) {
      size_t standbys = s.drainers.size();
      out.push_back(
          "no session holds the drain lock of database \"" + s.database +
          "\", so nothing drains its queue" + waiting +
          (standbys ? " (" + std::to_string(standbys) +
                          " standby instance(s) will take it within their poll_interval; if "
                          "this lasts, see their logs)"
                    : ": start pg2kafka (pg2kafka run) with this database's pipeline, or see "
                      "in the logs of its instances why they stopped") +
          (s.hidden_sessions > 0
               ? ". Sessions of other roles are hidden from role " + s.read_as +
                     ", so standbys among them are not listed: run status as the drainer's "
                     "role, or GRANT pg_read_all_stats TO " +
                     s.read_as
               : ""));
    } else {
      if (!active->details_visible)
        out.push_back("the session holding the drain lock (" + session_words(*active) +
                      ") belongs to another role: its client address, start and state are "
                      "hidden from role " +
                      s.read_as + ". Run status as " + active->usename +
                      ", or GRANT pg_read_all_stats TO " + s.read_as);
      if (!waiting.empty())
        out.push_back("events wait although a session holds the drain lock (" +
                      session_words(*active) + ")" + waiting +
                      ": that instance is not keeping up, or cannot deliver (its sink is down "
                      "or refuses records): see its log and the metrics "
                      "pg2kafka_records_failed_total and pg2kafka_records_retried_total");
    }
  } else if (age && *age > kLagProblemSeconds) {
    out.push_back("the oldest queued event has waited " + human_seconds(*age));
  }

  int64_t parked = 0, failed = 0;
  for (const auto& c : s.parked) {
    parked += c.events;
    if (c.reason != "held") failed += c.events;
  }
  if (parked > 0)
    out.push_back(std::to_string(parked) + " event" + (parked == 1 ? " is" : "s are") +
                  " parked (" + std::to_string(failed) + " failed, the others held behind them " +
                  "on their keys): see pg2kafka queue list --parked; once the cause is fixed, " +
                  "pg2kafka queue retry delivers them in order, or pg2kafka queue skip drops one");

  for (const auto& b : s.backfills)
    if (b.state == "failed")
      out.push_back("backfill " + std::to_string(b.id) + " of " +
                    qualified(b.table_schema, b.table_name) + " failed" +
                    (b.error ? ": " + *b.error : std::string()) +
                    ". Once the cause is fixed, ask again with SELECT pg2kafka.backfill('" +
                    qualified(b.table_schema, b.table_name) + "') as the table's owner");

  if (const auto& h = s.vacuum_horizon) {
    const std::string effect =
        ": autovacuum cannot remove rows deleted since then, from the queue or any table, so "
        "the queue table grows while it lasts";
    if (h->kind == "session" && h->transaction_age_seconds &&
        *h->transaction_age_seconds > kLongTransactionSeconds)
      out.push_back("session pid " + std::to_string(h->pid.value_or(0)) + " (user " + h->name +
                    ", application \"" + h->application_name.value_or("") +
                    "\") has had a transaction open for " +
                    human_seconds(*h->transaction_age_seconds) + effect +
                    ". End it, or SELECT pg_terminate_backend(" +
                    std::to_string(h->pid.value_or(0)) + ")");
    else if (h->kind == "prepared transaction" && h->transaction_age_seconds &&
             *h->transaction_age_seconds > kLongTransactionSeconds)
      out.push_back("prepared transaction '" + h->name + "' has been open for " +
                    human_seconds(*h->transaction_age_seconds) + effect +
                    ". COMMIT PREPARED or ROLLBACK PREPARED it");
    else if (h->kind == "replication slot" && h->xmin_age > kSlotProblemXids)
      out.push_back("replication slot " + h->name + " holds a horizon " +
                    std::to_string(h->xmin_age) + " transactions old" + effect +
                    ". Bring its consumer (a standby with hot_standby_feedback) back, or drop "
                    "the slot if nothing uses it");
  }
  return out;
}

namespace {

// Writes JSON text in order; separators are placed by the writer (a value after a key, or after
// an opening bracket, takes none).
class JsonWriter {
 public:
  std::string out;
  void key(std::string_view name) {
    separate();
    sdk::append_json_string(out, name);
    out += ':';
    need_comma_ = false;
  }
  void string(std::string_view v) {
    separate();
    sdk::append_json_string(out, v);
    need_comma_ = true;
  }
  void string(const std::string& v) { string(std::string_view(v)); }
  void string(const char* v) { string(std::string_view(v)); }
  void string(const std::optional<std::string>& v) {
    if (v)
      string(std::string_view(*v));
    else
      null();
  }
  void number(int64_t v) { scalar(std::to_string(v)); }
  void number(std::optional<int64_t> v) {
    if (v)
      number(*v);
    else
      null();
  }
  void number(std::optional<double> v) {
    if (!v || !std::isfinite(*v)) return null();
    char buf[64];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, *v, std::chars_format::fixed, 3);
    scalar(std::string_view(buf, ec == std::errc() ? end - buf : 0));
  }
  void boolean(bool v) { scalar(v ? "true" : "false"); }
  void null() { scalar("null"); }
  void begin(char c) {
    separate();
    out += c;
    need_comma_ = false;
  }
  void end(char c) {
    out += c;
    need_comma_ = true;
  }

 private:
  void scalar(std::string_view text) {
    separate();
    out += text;
    need_comma_ = true;
  }
  void separate() {
    if (need_comma_) out += ',';
  }
  bool need_comma_ = false;
};

void write_session(JsonWriter& w, const DrainerSession& d) {
  w.begin('{');
  w.key("pid");
  w.number(int64_t{d.pid});
  w.key("usename");
  w.string(d.usename);
  w.key("application_name");
  w.string(d.application_name);
  w.key("client_addr");
  w.string(d.client_addr);
  w.key("backend_start");
  w.string(d.backend_start);
  w.key("state");
  w.string(d.state);
  w.key("details_visible");
  w.boolean(d.details_visible);
  w.end('}');
}

std::string drain_lock_note(const OutboxState& s) {
  std::string note =
      "backend_start is when the session began: PostgreSQL does not record when an advisory "
      "lock was granted (an instance tries for it right after connecting; a standby that took "
      "over later drains since some time after)";
  if (s.hidden_sessions > 0)
    note += ". " + std::to_string(s.hidden_sessions) +
            " session(s) of this database belong to roles whose details role " + s.read_as +
            " may not see: standbys among them are not listed (GRANT pg_read_all_stats TO " +
            s.read_as + " shows them)";
  return note;
}

}  // namespace

std::string status_json(const OutboxState& s) {
  JsonWriter w;
  w.begin('{');
  w.key("database");
  w.string(s.database);
  w.key("read_as");
  w.string(s.read_as);
  w.key("collected_at");
  {
    // ISO 8601 UTC from the Unix time, to the millisecond.
    auto ms = static_cast<int64_t>(std::llround(s.collected_at_unix * 1000));
    std::time_t secs = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[96];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<int>(ms % 1000));
    w.string(std::string_view(buf));
  }
  w.key("schema_version");
  w.number(int64_t{s.schema_version});
  w.key("function_set");
  w.number(s.function_set ? std::optional<int64_t>(*s.function_set) : std::nullopt);

  w.key("queue");
  w.begin('{');
  auto counted = [&](int64_t v) { return s.counted ? std::optional<int64_t>(v) : std::nullopt; };
  w.key("events");
  w.number(counted(s.queued_events()));
  w.key("batches");
  w.number(counted(s.queued_batches()));
  w.key("bytes");
  w.number(counted(s.queued_bytes()));
  std::optional<std::string> oldest_at;
  for (const auto& t : s.tables)
    if (t.oldest_event_at && (!oldest_at || *t.oldest_event_at < *oldest_at))
      oldest_at = t.oldest_event_at;
  w.key("oldest_event_at");
  w.string(oldest_at);
  w.key("oldest_event_age_seconds");
  w.number(s.queue_oldest_age_seconds);
  w.key("counted");
  w.boolean(s.counted);
  w.key("count_note");
  w.string(s.count_note);
  w.key("table_bytes");
  w.number(s.queue_table_bytes);
  w.key("heap_bytes");
  w.number(s.queue_heap_bytes);
  w.key("index_bytes");
  w.number(s.queue_index_bytes);
  w.key("toast_bytes");
  w.number(s.queue_toast_bytes);
  w.key("rows_estimate");
  w.number(s.queue_rows_estimate);
  w.key("dead_rows");
  w.number(s.queue_dead_rows);
  w.key("last_autovacuum");
  w.string(s.queue_last_autovacuum);
  w.key("autovacuum_count");
  w.number(s.queue_autovacuum_count);
  w.end('}');

  w.key("drain_lock");
  if (!s.sessions_read) {
    w.null();
  } else {
    w.begin('{');
    w.key("holder");
    if (const DrainerSession* a = s.active())
      write_session(w, *a);
    else
      w.null();
    w.key("standbys");
    w.begin('[');
    for (const auto& d : s.drainers)
      if (d.role != "active") write_session(w, d);
    w.end(']');
    w.key("hidden_sessions");
    w.number(int64_t{s.hidden_sessions});
    w.key("note");
    w.string(drain_lock_note(s));
    w.end('}');
  }

  w.key("vacuum_horizon");
  if (!s.vacuum_horizon) {
    w.null();
  } else {
    const VacuumHorizon& h = *s.vacuum_horizon;
    w.begin('{');
    w.key("kind");
    w.string(h.kind);
    w.key("pid");
    w.number(h.pid ? std::optional<int64_t>(*h.pid) : std::nullopt);
    w.key("name");
    w.string(h.name);
    w.key("application_name");
    w.string(h.application_name);
    w.key("xmin_age");
    w.number(h.xmin_age);
    w.key("transaction_age_seconds");
    w.number(h.transaction_age_seconds);
    w.key("details_visible");
    w.boolean(h.details_visible);
    w.end('}');
  }

  w.key("tables");
  w.begin('[');
  for (const auto& t : s.tables) {
    w.begin('{');
    w.key("table");
    w.string(qualified(t.table_schema, t.table_name));
    w.key("schema");
    w.string(t.table_schema);
    w.key("name");
    w.string(t.table_name);
    w.key("tracked");
    w.boolean(t.tracked);
    w.key("events");
    w.number(counted(t.queued_events));
    w.key("batches");
    w.number(counted(t.queued_batches));
    w.key("bytes");
    w.number(counted(t.queued_bytes));
    w.key("oldest_event_at");
    w.string(t.oldest_event_at);
    w.key("oldest_event_age_seconds");
    w.number(t.oldest_event_age_seconds);
    w.key("triggers");
    w.string(t.triggers);
    w.end('}');
  }
  w.end(']');

  w.key("backfills");
  w.begin('[');
  for (const auto& b : s.backfills) {
    w.begin('{');
    w.key("id");
    w.number(b.id);
    w.key("table");
    w.string(qualified(b.table_schema, b.table_name));
    w.key("state");
    w.string(b.state);
    w.key("rows_done");
    w.number(b.rows_done);
    w.key("rows_estimated");
    w.number(b.rows_estimated);
    w.key("percent");
    w.number(b.percent);
    w.key("rows_per_second");
    w.number(b.rows_per_second);
    w.key("eta");
    w.string(b.eta);
    w.key("started_at");
    w.string(b.started_at);
    w.key("finished_at");
    w.string(b.finished_at);
    w.key("requested_by");
    w.string(b.requested_by);
    w.key("error");
    w.string(b.error);
    w.end('}');
  }
  w.end(']');

  w.key("parked");
  w.begin('[');
  for (const auto& c : s.parked) {
    w.begin('{');
    w.key("table");
    w.string(qualified(c.table_schema, c.table_name));
    w.key("reason");
    w.string(c.reason);
    w.key("events");
    w.number(c.events);
    w.key("oldest_parked_age_seconds");
    w.number(c.oldest_age_seconds);
    w.end('}');
  }
  w.end(']');

  w.key("problems");
  w.begin('[');
  for (const auto& p : problems(s)) w.string(p);
  w.end(']');
  w.end('}');
  return std::move(w.out);
}

// ---------------------------------------------------------------------------------------------
// Monitor
// ---------------------------------------------------------------------------------------------

Monitor::Monitor(OutboxConfig config, Log log, MonitorSettings settings)
    : config_(std::move(config)), log_(std::move(log)), settings_(settings) {}

Monitor::~Monitor() {
  stop();
}

void Monitor::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  interrupter_.interrupt();
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::optional<std::string> Monitor::last_error() const {
  std::lock_guard lock(mutex_);
  return last_error_;
}

// A reading that takes long (counting a large backlog) is repeated less often: the monitor spends
// at most 1/kReadShare of the time reading, so its scans never compete much with the drain. A
// reading of under a second (every reading but a count of a large queue) changes nothing.
Monitor::Clock::duration Monitor::reading_period(Clock::duration interval,
                                                 Clock::duration last_took) {
  if (last_took < std::chrono::seconds(1)) return interval;
  return std::max<Clock::duration>(interval, kReadShare * last_took);
}

Monitor::Clock::duration Monitor::period() const {
  return reading_period(settings_.interval, last_read_took_);
}

bool Monitor::due(Clock::time_point now) const {
  bool wanted = now - last_request_ <= std::max(settings_.keep_alive, settings_.interval);
  bool stale = !state_ || now - state_at_ >= period();
  return wanted && stale && now >= retry_at_;
}

std::shared_ptr<const OutboxState> Monitor::latest(milliseconds wait) {
  std::unique_lock lock(mutex_);
  if (stopping_) return state_;
  auto now = Clock::now();
  last_request_ = now;
  if (!started_) {
    started_ = true;
    thread_ = std::thread([this] { run(); });
  }
  if (due(now)) {
    cv_.notify_all();
    uint64_t before = attempts_;
    cv_.wait_for(lock, wait, [&] { return attempts_ != before || stopping_; });
  }
  return state_;
}

void Monitor::run() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    auto now = Clock::now();
    if (!due(now)) {
      // Woken by a request, by stop(), or when a state goes stale or a retry wait ends.
      auto next = std::max(state_at_ + period(), retry_at_);
      if (next <= now) next = now + settings_.interval;
      cv_.wait_until(lock, next);
      continue;
    }
    lock.unlock();
    read_once();
    lock.lock();
    ++attempts_;
    cv_.notify_all();
  }
}

void Monitor::read_once() {
  std::string error;
  bool permanent = false;
  try {
    if (conn_ && conn_->broken()) conn_.reset();
    if (!conn_) {
      std::string app = config_.connection.application_name.value_or(config_.application_name);
      app = app.substr(0, kMaxNameBytes - 8) + "/monitor";
      conn_ =
          std::make_unique<PgConnection>(config_.connection, app, nullptr, nullptr, &interrupter_);
      // The connection string's application_name would win over the one asked for: the
      // monitor's session is told apart by its suffix all the same.
      conn_->exec_params("SELECT set_config('application_name', $1, false)", {0}, {app});
      conn_->exec("SET statement_timeout = " + std::to_string(settings_.statement_timeout.count()));
      conn_->set_reply_timeout(settings_.statement_timeout +
                               std::min(settings_.statement_timeout, milliseconds(kReplyGraceMs)));
    }
    ReadOptions options;
    options.with_sessions = settings_.with_sessions;
    options.count_queue = Clock::now() >= count_at_;
    auto began = Clock::now();
    auto state = std::make_shared<OutboxState>(read_state(*conn_, options));
    auto took = Clock::now() - began;
    if (options.count_queue && !state->counted) count_at_ = Clock::now() + settings_.count_retry;
    bool recovered;
    {
      std::lock_guard lock(mutex_);
      state_ = std::move(state);
      state_at_ = Clock::now();
      last_read_took_ = took;
      recovered = last_error_.has_value();
      last_error_.reset();
      retry_at_ = {};
      failures_in_a_row_ = 0;
    }
    if (recovered && log_) log_(P2K_LOG_INFO, "monitor: reading the queue's state works again");
    return;
  } catch (const PgInterrupted&) {
    conn_.reset();
    return;  // stop()
  } catch (const PgConnectError& e) {
    error = e.what();
    permanent = e.permanent();
  } catch (const PgError& e) {
    error = e.what();
    if (e.connection_lost() || (conn_ && conn_->broken())) conn_.reset();
  } catch (const std::exception& e) {
    error = e.what();
  }
  errors_.fetch_add(1);
  bool changed;
  milliseconds wait;
  {
    std::lock_guard lock(mutex_);
    changed = last_error_ != error;
    last_error_ = error;
    int shift = std::min(failures_in_a_row_++, 20);
    wait = std::min(settings_.retry_max, settings_.retry_initial * (int64_t{1} << shift));
    retry_at_ = Clock::now() + wait;
  }
  if (changed && log_)
    log_(P2K_LOG_WARN, "monitor: cannot read the queue's state: " + error + " (retrying in " +
                           std::to_string(wait.count()) + " ms" +
                           (permanent ? "; this will not pass by itself" : "") +
                           "; metrics show the last state read)");
}

}  // namespace pg2kafka::pg_outbox
