#include "outbox_source.hpp"

#include <time.h>

#include <algorithm>
#include <cstdio>

#include "batch.hpp"
#include "schema.hpp"

namespace pg2kafka::pg_outbox {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// pg_advisory_lock(kLockClass, kDrainLock) elects the active drainer (1882352481 is 'p2ka'; lock
// 1 of that class serialises installers, see schema.cpp).
constexpr const char* kLockClass = "1882352481";
constexpr const char* kDrainLock = "2";

constexpr Oid kOidInt8 = 20;
constexpr Oid kOidInt8Array = 1016;
constexpr Oid kOidPgSnapshot = 5038;

constexpr milliseconds kPurgeInterval{60'000};
// How often a horizon is taken (see maybe_take_horizon): each costs one transaction id, ten a
// second, so about 0.9 million a day; a window's scan starts at most about this far back.
constexpr milliseconds kHorizonInterval{100};
// After events were found, the queue is looked at every min_poll_interval for this long before
// the wait starts doubling towards poll_interval.
constexpr milliseconds kBusySpell{1'000};
constexpr int kPurgeBatch = 10'000;
constexpr milliseconds kMaxReconnectBackoff{10'000};

// One page of a window: whole batches in id order, up to $4 events and up to $6 bytes of data
// (each: at least one batch, so a batch larger than $6 comes alone). The inner LIMIT bounds the
// scan; running sums end the page. A batch's size is data_bytes, the uncompressed size its
// writer recorded (migration 006); for batches queued before, the size as stored, which is all
// that can be had without decompressing them. Batches past the byte budget come back without
// their data and with `over` set: the page ends before the first of them, and the caller knows
// it ended early (the window is not done). %BYTES% is replaced by the size expression.
constexpr const char* kFetchSql = R"sql(
SELECT w.id, w.uuid, w.key_column, w.external_id, w.table_schema, w.table_name, w.statement,
       w.events,
       CASE WHEN w.within THEN w.data::text END,
       CASE WHEN w.within THEN w.old_data::text END,
       (extract(epoch FROM w.created_at) * 1000000)::int8,
       NOT w.within AS over
  FROM (SELECT b.*, sum(b.events) OVER p AS upto,
               (sum(%BYTES%) OVER p <= $6 OR sum(%BYTES%) OVER p = %BYTES%) AS within
          FROM pg2kafka.event_batches b
         WHERE b.id > $3 AND b.id <= $5
           AND pg_visible_in_snapshot(b.txid, $2)
           AND ($1 IS NULL OR NOT pg_visible_in_snapshot(b.txid, $1))
        WINDOW p AS (ORDER BY b.id ROWS UNBOUNDED PRECEDING)
         ORDER BY b.id
         LIMIT $4) w
 WHERE w.upto - w.events < $4
 ORDER BY w.id)sql";
constexpr const char* kStoredBytes =
    "(coalesce(pg_column_size(b.data), 0) + coalesce(pg_column_size(b.old_data), 0))";

constexpr const char* kAckDeleteSql = "DELETE FROM pg2kafka.event_batches WHERE id = ANY($1)";

constexpr const char* kAckKeepSql = R"sql(
WITH done AS (DELETE FROM pg2kafka.event_batches WHERE id = ANY($1) RETURNING *)
INSERT INTO pg2kafka.acknowledged_batches
       (id, uuid, table_schema, table_name, statement, key_column, external_id, events, data,
        old_data, created_at, txid)
SELECT id, uuid, table_schema, table_name, statement, key_column, external_id, events, data,
       old_data, created_at, txid
  FROM done
ON CONFLICT (id) DO NOTHING)sql";

constexpr const char* kPurgeSql = R"sql(
DELETE FROM pg2kafka.acknowledged_batches
 WHERE id IN (SELECT id FROM pg2kafka.acknowledged_batches
               WHERE acked_at < now() - make_interval(secs => least($1, %MAX%) / 1000.0)
               ORDER BY acked_at LIMIT $2))sql";

constexpr const char* kTopicsSql = R"sql(
SELECT n.nspname::text, c.relname::text
  FROM pg2kafka.tracked_tables t
  JOIN pg_class c ON c.oid = t.relid
  JOIN pg_namespace n ON n.oid = c.relnamespace
UNION
SELECT DISTINCT table_schema, table_name FROM pg2kafka.event_batches
ORDER BY 1, 2)sql";

std::string sanitize_topic_part(std::string_view name) {
  std::string out(name);
  for (char& c : out) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-';
    if (!ok) c = '_';
  }
  return out;
}

void route_notice(void* ctx, const char* message) {
  std::string m(message ? message : "");
  while (!m.empty() && m.back() == '\n') m.pop_back();
  static_cast<sdk::Host*>(ctx)->debug("PostgreSQL: " + m);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Configuration and formatting
// ---------------------------------------------------------------------------------------------

OutboxConfig OutboxConfig::from(const sdk::Options& options) {
  OutboxConfig c;
  // The connection and application_name, reported together (the first is checked with the
  // second when it is valid).
  sdk::ConfigError::Problems problems;
  c.application_name = options.find("application_name").value_or("pg2kafka");
  std::string app_problem = application_name_problem(c.application_name);
  if (!app_problem.empty()) problems.push_back({"application_name", app_problem});
  const std::string& connection = options.string("connection");
  if (connection.find_first_not_of(" \t\r\n") == std::string::npos) {
    problems.push_back(
        {"connection",
         "is empty: libpq would connect with its defaults (PGHOST or the local socket, "
         "PGDATABASE or the user's name) to a database nobody chose. Set it to a libpq URL "
         "(postgresql://user@host:5432/dbname) or a key=value string (host=... dbname=...); when "
         "it comes from ${VARIABLE}, check that the variable is set where pg2kafka runs"});
  } else {
    try {
      c.connection =
          ConnInfo::parse(connection, app_problem.empty() ? c.application_name : "pg2kafka");
    } catch (const ConnInfoError& e) {
      problems.push_back({"connection", e.what()});
    } catch (const std::invalid_argument& e) {
      problems.push_back(
          {"connection",
           std::string("is neither a libpq URL nor a key=value connection string: ") + e.what()});
    }
  }
  if (!problems.empty()) throw sdk::ConfigError(std::move(problems));
  if (options.has("perform_migrations"))
    c.perform_migrations = options.boolean("perform_migrations");
  c.topic_namespace = options.find("topic_namespace").value_or("");
  for (char ch : c.topic_namespace) {
    bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-';
    if (!ok)
      throw sdk::ConfigError(
          "option 'topic_namespace' may contain only letters, digits, '.', "
          "'_' and '-': got '" +
          c.topic_namespace + "'");
  }
  // pg2kafka.<namespace>.<database>.<table>, the last two at least one character each, within
  // Kafka's 249: a longer namespace makes every topic name one the broker refuses.
  constexpr size_t kMaxNamespace = 249 - std::string_view("pg2kafka...").size() - 2;
  if (c.topic_namespace.size() > kMaxNamespace)
    throw sdk::ConfigError("topic_namespace",
                           "is " + std::to_string(c.topic_namespace.size()) +
                               " characters long: with it no topic name "
                               "(pg2kafka.<namespace>.<database>.<table>) fits into Kafka's 249; "
                               "use at most " +
                               std::to_string(kMaxNamespace));
  if (options.has("batch_size")) {
    int64_t n = options.integer("batch_size");
    if (n < 1) throw sdk::ConfigError("option 'batch_size' must be at least 1");
    c.batch_size = static_cast<size_t>(n);
  }
  if (options.has("batch_bytes")) {
    uint64_t n = options.size("batch_bytes");
    if (n < 1024) throw sdk::ConfigError("option 'batch_bytes' must be at least 1KiB");
    c.batch_bytes = static_cast<size_t>(n);
  }
  if (options.has("poll_interval")) c.poll_interval = options.duration("poll_interval");
  if (c.poll_interval.count() < 1) throw sdk::ConfigError("option 'poll_interval' must be > 0");
  if (options.has("min_poll_interval")) c.min_poll_interval = options.duration("min_poll_interval");
  if (c.min_poll_interval > c.poll_interval)
    throw sdk::ConfigError(
        "option 'min_poll_interval' (" + std::to_string(c.min_poll_interval.count()) +
        " ms) must not exceed poll_interval (" + std::to_string(c.poll_interval.count()) + " ms)");
  if (options.has("notify")) c.notify = options.boolean("notify");
  if (auto a = options.find("acknowledged")) {
    if (*a == "delete")
      c.acknowledged = Acknowledged::kDelete;
    else if (*a == "keep")
      c.acknowledged = Acknowledged::kKeep;
    else
      throw sdk::ConfigError("option 'acknowledged' must be 'delete' or 'keep', not '" + *a + "'");
  }
  if (options.has("retention")) c.retention = options.duration("retention");
  if (c.retention.count() < 1) throw sdk::ConfigError("option 'retention' must be > 0");
  if (c.retention.count() > kMaxRetentionMs)
    throw sdk::ConfigError("retention", "is above 36500 days (100 years), the longest retention");
  if (options.has("lock_timeout")) c.lock_timeout = options.duration("lock_timeout");
  if (options.has("statement_timeout")) c.statement_timeout = options.duration("statement_timeout");
  for (auto [name, value] : {std::pair{"lock_timeout", c.lock_timeout},
                             std::pair{"statement_timeout", c.statement_timeout}}) {
    if (value.count() < 0 || value.count() > kMaxQueryTimeoutMs)
      problems.push_back({name, "must be between 0 (no limit) and 24h"});
  }
  if (c.statement_timeout.count() > 0 && c.statement_timeout.count() < kMinStatementTimeoutMs)
    problems.push_back({"statement_timeout",
                        "must be 0 (no limit) or at least 1s: a shorter limit would cancel "
                        "ordinary drain queries of a busy server, over and over"});
  if (!problems.empty()) throw sdk::ConfigError(std::move(problems));
  return c;
}

std::string topic_name(std::string_view topic_namespace, std::string_view database,
                       std::string_view schema, std::string_view table) {
  std::string t = "pg2kafka.";
  if (!topic_namespace.empty()) {
    t += topic_namespace;
    t += '.';
  }
  t += sanitize_topic_part(database);
  t += '.';
  if (schema != "public") {
    t += sanitize_topic_part(schema);
    t += '.';
  }
  t += sanitize_topic_part(table);
  return t;
}

std::string rfc3339_utc(int64_t epoch_us) {
  int64_t secs = epoch_us / 1'000'000;
  int64_t micros = epoch_us % 1'000'000;
  if (micros < 0) {
    micros += 1'000'000;
    secs -= 1;
  }
  time_t tt = static_cast<time_t>(secs);
  struct tm tm {};
  gmtime_r(&tt, &tm);
  char buf[64];
  int n = std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
                        tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  std::string out(buf, static_cast<size_t>(n));
  if (micros != 0) {
    std::snprintf(buf, sizeof buf, ".%06lld", static_cast<long long>(micros));
    std::string frac(buf);
    while (frac.back() == '0') frac.pop_back();
    out += frac;
  }
  out += 'Z';
  return out;
}

std::string envelope_json(std::string_view uuid, const std::optional<std::string>& external_id,
                          std::string_view statement, std::optional<std::string_view> data_json,
                          std::string_view created_at) {
  std::string out;
  out.reserve(96 + uuid.size() + (external_id ? external_id->size() : 4) +
              (data_json ? data_json->size() : 4));
  out += "{\"uuid\":";
  sdk::append_json_string(out, uuid);
  out += ",\"external_id\":";
  if (external_id)
    sdk::append_json_string(out, *external_id);
  else
    out += "null";
  out += ",\"statement\":";
  sdk::append_json_string(out, statement);
  out += ",\"data\":";
  if (data_json)
    out += *data_json;
  else
    out += "null";
  out += ",\"created_at\":";
  sdk::append_json_string(out, created_at);
  out += '}';
  return out;
}

// ---------------------------------------------------------------------------------------------
// The source
// ---------------------------------------------------------------------------------------------

OutboxSource::OutboxSource(sdk::Host host, const sdk::Options& options)
    : host_(host), config_(OutboxConfig::from(options)), target_(config_.connection.target) {}

OutboxSource::~OutboxSource() = default;

void OutboxSource::interrupt() {
  interrupter_.interrupt();
}

void OutboxSource::refuse_if_interrupted(const char* call) const {
  if (interrupter_.interrupted())
    throw sdk::RetryError(std::string("interrupted: ") + call +
                          " refused, the source was interrupted (pg2kafka is stopping it); it "
                          "takes no more calls but close()");
}

void OutboxSource::throw_interrupted(const std::string& what) {
  bool query_cut = conn_ && conn_->broken();
  drop_connection(/*warn=*/false);
  throw sdk::RetryError(
      "interrupted: stopped " + what + " at pg2kafka's request" +
      (query_cut ? " (the running query is cancelled and its connection closed)" : "") +
      "; the source takes no more calls but close()");
}

template <class F>
auto OutboxSource::guarded(const char* what, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const PgInterrupted&) {
    throw_interrupted(what);
  } catch (const PgError& e) {
    if (e.connection_lost() || (conn_ && conn_->broken())) {
      drop_connection();
      throw sdk::RetryError(std::string("lost the connection to PostgreSQL at ") + target_ +
                            " while " + what + ": " + e.what() + " (reconnecting)");
    }
    if (e.transient()) {
      std::string hint;
      if (timeouts_set_ && e.sqlstate() == "55P03")
        hint = " (lock_timeout is " + std::to_string(config_.lock_timeout.count()) +
               " ms: another session holds a lock on the queue, e.g. LOCK TABLE, ALTER TABLE, "
               "VACUUM FULL or a long transaction; nothing is lost, the next call tries again)";
      else if (timeouts_set_ && e.sqlstate() == "57014")
        hint = " (statement_timeout is " + std::to_string(config_.statement_timeout.count()) +
               " ms, or someone cancelled the query; nothing is lost, the next call tries "
               "again)";
      throw sdk::RetryError(std::string("transient PostgreSQL error while ") + what + ": " +
                            e.what() + hint);
    }
    throw sdk::FatalError(std::string("PostgreSQL error while ") + what + ": " + e.what());
  }
}

void OutboxSource::connect() {
  auto now = Clock::now();
  if (now < next_connect_at_) {
    auto wait = std::chrono::duration_cast<milliseconds>(next_connect_at_ - now);
    throw sdk::RetryError("reconnecting to PostgreSQL at " + config_.connection.target + " in " +
                          std::to_string(wait.count()) + " ms");
  }
  timeouts_set_ = false;
  try {
    conn_ = std::make_unique<PgConnection>(config_.connection, config_.application_name,
                                           &route_notice, &host_, &interrupter_);
    connect_failures_ = 0;
    target_ = conn_->target() + config_.connection.origins;
  } catch (const PgInterrupted&) {
    throw_interrupted("connecting to PostgreSQL at " + config_.connection.target);
  } catch (const PgConnectError& e) {
    if (e.permanent()) throw sdk::ConfigError(std::string(e.what()));
    ++connect_failures_;
    auto backoff = milliseconds(100) * (1LL << std::min(connect_failures_, 7));
    next_connect_at_ = Clock::now() + std::min<milliseconds>(backoff, kMaxReconnectBackoff);
    throw sdk::RetryError(std::string(e.what()));
  }
}

void OutboxSource::apply_migrations() {
  auto applied = guarded("installing the pg2kafka schema", [&] { return install_schema(*conn_); });
  for (const std::string& what : applied) host_.info("applied " + what);
}

void OutboxSource::prepare_session() {
  guarded("preparing the session", [&] {
    // Every query from here on is the drain's: bounded (the schema's installation, before, is
    // not; its migrations bound their own lock waits). A query the server does not answer
    // within statement_timeout and a grace gives the connection up (a frozen server or network).
    conn_->exec("SET lock_timeout = " + std::to_string(config_.lock_timeout.count()) +
                "; SET statement_timeout = " + std::to_string(config_.statement_timeout.count()));
    int64_t statement_ms = config_.statement_timeout.count();
    conn_->set_reply_timeout(
        milliseconds(statement_ms == 0 ? 0 : statement_ms + std::min(statement_ms, kReplyGraceMs)));
    timeouts_set_ = true;
    database_ = std::string(conn_->exec("SELECT current_database()").text(0, 0));
    SchemaVersion installed = installed_schema(*conn_);
    std::string warning = check_schema(installed, database_, target_);
    if (!warning.empty()) host_.warn(warning);
    // A transaction id at or above this cluster's counter was never assigned here: the batch
    // was restored from another cluster's dump, and no snapshot would show it (sql/README.md,
    // "pg_dump and pg_restore"). Restored batches are the oldest queued ones, and all of a
    // dump's transaction ids lie close together: the oldest 1000 tell, read through the
    // primary key, whatever the backlog.
    auto foreign = conn_->exec(
        "SELECT count(*) FROM (SELECT txid FROM pg2kafka.event_batches ORDER BY id LIMIT 1000) b "
        "WHERE b.txid >= pg_snapshot_xmax(pg_current_snapshot())");
    if (foreign.int64(0, 0) > 0)
      throw sdk::ConfigError(
          std::to_string(foreign.int64(0, 0)) + " of the oldest queued batches of database \"" +
          database_ +
          "\" carry transaction ids of another PostgreSQL cluster (it was restored from a "
          "dump): they would not be delivered before newer events. With no pg2kafka running, "
          "run SELECT pg2kafka.adopt_restored_events() as the schema's owner" +
          (installed.functions < 1 ? " (after upgrading the schema: sql/install.sql)" : "") +
          ", then start again");
    // The queue is usually near empty when autovacuum analyzes it; planned from those
    // statistics, a read of a sudden backlog becomes a sequential scan and sort of the whole
    // table on every page (measured: the drain fell ever further behind a 68k events/s writer).
    // Every query of this session wants the primary key's order, so rule the other paths out.
    conn_->exec("SET enable_seqscan = off");
    conn_->exec("SET enable_bitmapscan = off");

    // A window's snapshot and, read in that same snapshot, the largest id: every event visible
    // in the snapshot is at or below it. (One statement: one round trip per window.)
    conn_->prepare("p2k_snapshot",
                   "SELECT s::text, pg_snapshot_xmin(s)::text, "
                   "(SELECT coalesce(max(id), 0) FROM pg2kafka.event_batches) "
                   "FROM pg_current_snapshot() s",
                   {});
    // Assigns (and at once commits) one transaction id: a "horizon" for window_start_id.
    conn_->prepare("p2k_xid", "SELECT pg_current_xact_id()::text", {});
    // The largest id now (a horizon's floor).
    conn_->prepare("p2k_max_id", "SELECT coalesce(max(id), 0) FROM pg2kafka.event_batches", {});
    std::string bytes = installed.migrations >= 6
                            ? std::string("coalesce(b.data_bytes, ") + kStoredBytes + ")"
                            : std::string(kStoredBytes);
    std::string fetch = kFetchSql;
    for (auto at = fetch.find("%BYTES%"); at != std::string::npos; at = fetch.find("%BYTES%"))
      fetch.replace(at, 7, bytes);
    conn_->prepare("p2k_fetch", fetch,
                   {kOidPgSnapshot, kOidPgSnapshot, kOidInt8, kOidInt8, kOidInt8, kOidInt8});
    conn_->prepare(
        "p2k_ack",
        config_.acknowledged == OutboxConfig::Acknowledged::kKeep ? kAckKeepSql : kAckDeleteSql,
        {kOidInt8Array});
    conn_->prepare(
        "p2k_lock",
        std::string("SELECT pg_try_advisory_lock(") + kLockClass + ", " + kDrainLock + ")", {});
    if (config_.acknowledged == OutboxConfig::Acknowledged::kKeep) {
      std::string purge = kPurgeSql;
      purge.replace(purge.find("%MAX%"), 5, std::to_string(kMaxRetentionMs));
      conn_->prepare("p2k_purge", purge, {kOidInt8, kOidInt8});
    }
    if (config_.notify) conn_->exec("LISTEN pg2kafka");

    // Tracked tables whose capture is not complete and current (sql/functions/40_tracking.sql);
    // a schema from before the function set is reported by the upgrade warning above.
    if (installed.functions >= 1) {
      auto problems = conn_->exec("SELECT message FROM pg2kafka.tracking_problems()");
      for (int i = 0; i < problems.rows(); ++i) host_.warn(std::string(problems.text(i, 0)));
    }
    return 0;
  });
}

void OutboxSource::drop_connection(bool warn) {
  conn_.reset();
  timeouts_set_ = false;
  if (active_ && warn)
    host_.warn(
        "the connection holding the drain lock is gone; another instance may "
        "take over");
  active_ = false;
  standby_logged_ = false;
  // Without the lock the cursor may be stale (another instance may have drained meanwhile):
  // start again from whatever is left in the queue; in_flight_ids_ keeps this instance from
  // returning its own unacknowledged events twice.
  prev_snapshot_.reset();
  cur_snapshot_.reset();
  horizons_.clear();
  after_id_ = 0;
}

void OutboxSource::ensure_session() {
  if (conn_ && !conn_->broken()) return;
  if (conn_) drop_connection();
  connect();
  try {
    prepare_session();
  } catch (...) {
    conn_.reset();
    throw;
  }
  host_.info("connected to PostgreSQL at " + target_);
}

void OutboxSource::open() {
  refuse_if_interrupted("open");
  connect();
  try {
    if (config_.perform_migrations) apply_migrations();
    prepare_session();
  } catch (...) {
    conn_.reset();
    throw;
  }
  opened_ = true;
  host_.info("connected to PostgreSQL at " + target_);
  try_become_active();
}

void OutboxSource::try_become_active() {
  if (active_) return;
  bool got = guarded("taking the drain lock",
                     [&] { return conn_->exec_prepared("p2k_lock", {}).boolean(0, 0); });
  if (got) {
    active_ = true;
    standby_logged_ = false;
    prev_snapshot_.reset();
    cur_snapshot_.reset();
    horizons_.clear();
    after_id_ = 0;
    host_.info("draining the queue of database \"" + database_ +
               "\" (this instance holds the drain lock)");
  } else if (!standby_logged_) {
    standby_logged_ = true;
    host_.info("another pg2kafka instance drains database \"" + database_ +
               "\"; standing by until its session ends");
  }
}

void OutboxSource::maybe_purge() {
  if (config_.acknowledged != OutboxConfig::Acknowledged::kKeep) return;
  auto now = Clock::now();
  if (now < next_purge_at_) return;
  auto removed = guarded("purging acknowledged events", [&] {
    return conn_
        ->exec_prepared("p2k_purge",
                        {std::to_string(config_.retention.count()), std::to_string(kPurgeBatch)})
        .affected();
  });
  // A full batch means more is due: purge again on the next poll.
  next_purge_at_ = removed >= kPurgeBatch ? now : now + kPurgeInterval;
}

const OutboxSource::TableNames& OutboxSource::names_for(const std::string& schema,
                                                        const std::string& table) {
  auto key = std::make_pair(schema, table);
  auto it = tables_.find(key);
  if (it == tables_.end())
    it = tables_
             .emplace(key, TableNames{topic_name(config_.topic_namespace, database_, schema, table),
                                      schema + "." + table})
             .first;
  return it->second;
}

// Where a new window's scan may start without missing an event. Its events come from
// transactions not visible in the previous snapshot, so with an xid >= that snapshot's xmin.
// A horizon pairs a floor F (an id at least as large as every id taken before it was read: the
// largest committed id, or the largest this instance returned) with a transaction id X assigned
// right after reading F. A transaction whose xid is above X got it after F was read, so took all
// its event ids later, and they exceed F. (A snapshot's own xmax cannot serve as X: a running
// transaction may hold an xid above it.) Without such a bound every window would scan from the
// queue's head, through the rows of everything delivered before that vacuum has not removed yet.
void OutboxSource::maybe_take_horizon() {
  auto now = Clock::now();
  if (now < next_horizon_at_) return;
  next_horizon_at_ = now + kHorizonInterval;
  int64_t floor = std::max(conn_->exec_prepared("p2k_max_id", {}).int64(0, 0), max_returned_id_);
  uint64_t xid = std::stoull(std::string(conn_->exec_prepared("p2k_xid", {}).text(0, 0)));
  horizons_.push_back({xid, floor});
}

int64_t OutboxSource::window_start_id() {
  if (!prev_snapshot_) return 0;
  // The latest horizon below prev's xmin gives the bound; older ones will never be needed again
  // (xmin never decreases).
  while (horizons_.size() > 1 && horizons_[1].xid < prev_xmin_) horizons_.pop_front();
  if (horizons_.empty() || horizons_.front().xid >= prev_xmin_) return 0;
  return horizons_.front().floor;
}

std::unique_ptr<sdk::RecordBatch> OutboxSource::fetch(size_t limit) {
  const std::string limit_text = std::to_string(limit);
  const std::string bytes_text = std::to_string(config_.batch_bytes);
  while (true) {
    bool fresh = false;
    if (!cur_snapshot_) {
      // A window ends at the largest id once its snapshot is taken, so a page never scans on
      // through events committed after it; it starts at window_start_id().
      guarded("taking a snapshot", [&] {
        maybe_take_horizon();
        auto snap = conn_->exec_prepared("p2k_snapshot", {});
        cur_snapshot_ = std::string(snap.text(0, 0));
        cur_xmin_ = std::stoull(std::string(snap.text(0, 1)));
        window_max_id_ = snap.int64(0, 2);
        return 0;
      });
      after_id_ = window_start_id();
      fresh = true;
    }
    auto rows = guarded("reading the queue", [&] {
      return conn_->exec_prepared(
          "p2k_fetch", {prev_snapshot_, cur_snapshot_, std::to_string(after_id_), limit_text,
                        std::to_string(window_max_id_), bytes_text});
    });
    // Fewer events than asked for, without reaching the byte budget, means the page did not
    // stop early, so the window is done (every batch holds at least one event).
    bool cut_by_bytes = false;
    int64_t events = add_pending(rows, cut_by_bytes);
    bool window_done = !cut_by_bytes && events < static_cast<int64_t>(limit);
    if (window_done) {
      prev_snapshot_ = std::move(cur_snapshot_);
      prev_xmin_ = cur_xmin_;
      cur_snapshot_.reset();
      after_id_ = 0;
    }
    if (!pending_.empty()) return take_pending(limit);
    // Nothing new: stop when a fresh window was empty; otherwise the window ended (a new one
    // may hold more) or a whole page was our own in-flight events: keep reading.
    if (window_done && fresh) return std::make_unique<sdk::RecordBatch>();
  }
}

int64_t OutboxSource::add_pending(const PgResult& rows, bool& cut_by_bytes) {
  int64_t events = 0;
  std::vector<int64_t> empty_batches;
  for (int i = 0; i < rows.rows(); ++i) {
    if (rows.boolean(i, 11)) {
      cut_by_bytes = true;
      break;
    }
    int64_t id = rows.int64(i, 0);
    events += rows.int64(i, 7);
    after_id_ = id;
    max_returned_id_ = std::max(max_returned_id_, id);
    if (in_flight_ids_.count(id)) continue;
    BatchRow row;
    row.uuid = rows.text(i, 1);
    if (!rows.is_null(i, 2)) row.key_column = rows.text(i, 2);
    if (!rows.is_null(i, 3)) row.external_id = rows.text(i, 3);
    std::string schema(rows.text(i, 4));
    std::string table(rows.text(i, 5));
    row.statement = rows.text(i, 6);
    row.events = rows.int64(i, 7);
    if (!rows.is_null(i, 8)) row.data = rows.text(i, 8);
    if (!rows.is_null(i, 9)) row.old_data = rows.text(i, 9);
    int64_t created_us = rows.int64(i, 10);
    std::vector<BatchEvent> batch_events;
    std::string mismatch;
    try {
      batch_events = expand_batch(row, &mismatch);
    } catch (const std::invalid_argument& e) {
      // Only a hand-made row can look like this; stop rather than skip it.
      throw sdk::FatalError("pg2kafka.event_batches row " + std::to_string(id) +
                            " is malformed: " + e.what() +
                            ". Fix or delete that row (it was not written by pg2kafka's "
                            "triggers) and start again.");
    }
    if (!mismatch.empty())
      host_.warn("pg2kafka.event_batches row " + std::to_string(id) + " disagrees with itself (" +
                 mismatch +
                 "); sending every event its data holds. Only a row queued by hand "
                 "can look like this.");
    if (batch_events.empty()) {
      // Only UPDATEs that changed nothing: there is nothing to send.
      empty_batches.push_back(id);
      continue;
    }
    const TableNames& names = names_for(schema, table);
    auto statement = statements_.find(row.statement);
    if (statement == statements_.end()) statement = statements_.emplace(row.statement).first;
    const std::string created_at = rfc3339_utc(created_us);
    for (BatchEvent& e : batch_events) {
      std::string value = envelope_json(e.uuid, e.key, *statement, e.data(), created_at);
      pending_.push_back(PendingEvent{next_position_++, id, false, &names, std::move(e.key),
                                      std::move(value), created_us / 1000, std::move(e.uuid),
                                      &*statement});
    }
    pending_.back().last_of_batch = true;
    in_flight_ids_.insert(id);
  }
  if (!empty_batches.empty()) remove_batches(empty_batches);
  return events;
}

std::unique_ptr<sdk::RecordBatch> OutboxSource::take_pending(size_t limit) {
  auto batch = std::make_unique<sdk::RecordBatch>();
  while (!pending_.empty() && batch->size() < limit) {
    PendingEvent& e = pending_.front();
    in_flight_.push_back({e.position, e.batch_id, e.last_of_batch});
    batch->add(e.position, e.names->topic, std::move(e.key), std::move(e.value), e.timestamp_ms,
               std::move(e.uuid), {{"statement", *e.statement}, {"table", e.names->qualified}});
    pending_.pop_front();
  }
  return batch;
}

void OutboxSource::remove_batches(const std::vector<int64_t>& ids) {
  std::string array = "{";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) array += ',';
    array += std::to_string(ids[i]);
  }
  array += '}';
  // Acknowledging needs no drain lock: removing a delivered batch is right whoever drains.
  ensure_session();
  guarded("acknowledging events", [&] { return conn_->exec_prepared("p2k_ack", {array}); });
}

std::unique_ptr<sdk::RecordBatch> OutboxSource::poll(size_t max_records, milliseconds timeout) {
  refuse_if_interrupted("poll");
  if (!opened_) throw sdk::FatalError("poll before open");
  size_t limit = max_records == 0 ? config_.batch_size : std::min(max_records, config_.batch_size);
  auto deadline = Clock::now() + std::max(timeout, milliseconds(0));
  while (true) {
    if (!pending_.empty()) {
      last_events_at_ = Clock::now();
      return take_pending(limit);
    }
    ensure_session();
    try_become_active();
    if (active_) {
      maybe_purge();
      auto batch = fetch(limit);
      if (batch && !batch->empty()) {
        idle_wait_ = config_.min_poll_interval;
        last_events_at_ = Clock::now();
        return batch;
      }
    }
    auto now = Clock::now();
    if (now >= deadline) return nullptr;
    // Busy queues are looked at again soon, idle ones ever less often (up to poll_interval); a
    // standby only retries the lock every poll_interval.
    auto interval =
        active_ ? std::max(idle_wait_, config_.min_poll_interval) : config_.poll_interval;
    auto wait = std::min<milliseconds>(
        std::chrono::duration_cast<milliseconds>(deadline - now) + milliseconds(1), interval);
    if (active_ && config_.notify)
      guarded("waiting for notifications", [&] { return conn_->wait_for_notification(wait); });
    else if (!interrupter_.sleep(wait))
      throw_interrupted(active_ ? "waiting for the next look at the queue"
                                : "waiting for the next try of the drain lock");
    // Back off only once the queue has stayed empty for a while: a steady trickle of events
    // (say a commit every 100 ms) keeps the short interval and so a low latency.
    if (active_ && Clock::now() - last_events_at_ > kBusySpell)
      idle_wait_ = std::min(interval * 2, config_.poll_interval);
  }
}

void OutboxSource::ack(uint64_t through) {
  refuse_if_interrupted("ack");
  if (in_flight_.empty() || in_flight_.front().position > through) return;
  // A batch goes once its last event is delivered; events before it in the batch are delivered
  // already (acks come in position order).
  std::vector<int64_t> done;
  size_t count = 0;
  for (const InFlight& f : in_flight_) {
    if (f.position > through) break;
    ++count;
    if (f.last_of_batch) done.push_back(f.batch_id);
  }
  if (!done.empty()) remove_batches(done);
  for (size_t i = 0; i < count; ++i) {
    if (in_flight_.front().last_of_batch) in_flight_ids_.erase(in_flight_.front().batch_id);
    in_flight_.pop_front();
  }
}

std::vector<std::string> OutboxSource::list_topics() {
  refuse_if_interrupted("list_topics");
  ensure_session();
  auto rows = guarded("listing topics", [&] { return conn_->exec(kTopicsSql); });
  std::vector<std::string> out;
  for (int i = 0; i < rows.rows(); ++i) {
    auto t = names_for(std::string(rows.text(i, 0)), std::string(rows.text(i, 1))).topic;
    if (std::find(out.begin(), out.end(), t) == out.end()) out.push_back(t);
  }
  return out;
}

void OutboxSource::close() {
  conn_.reset();
  timeouts_set_ = false;
  active_ = false;
  opened_ = false;
}

}  // namespace pg2kafka::pg_outbox
