// Monitoring a pg-outbox queue: what `pg2kafka status` prints and the metrics endpoint exports
// (sql/README.md, "Monitoring"; docs/alerts.md for the alert rules built on it).
//
// read_state() reads, in one consistent snapshot, how far behind each table's events are, how
// large the queue table is, which sessions hold or wait for the drain lock, the backfills, and
// what keeps capture or vacuum from doing their job. status_json() turns that into the
// `pg2kafka status --format json` document, and problems() into sentences for an operator.
// Monitor keeps a fresh OutboxState for a metrics endpoint on a connection and a thread of its
// own, so that a scrape never waits for PostgreSQL for longer than it allows.
//
// Rights: read_state() works as the drainer's role (the pipeline's connection: it may read the
// queue, and sees the details of its own instances' sessions), and, on a schema with function
// set 6 or later, as any role (through the views pg2kafka.lag and pg2kafka.drainers, which
// show such a role the tables it owns and hide other roles' session details, unless it is a
// member of pg_read_all_stats). On older schemas it reads the queue directly, which needs the
// drainer's SELECT on pg2kafka.event_batches.
#pragma once

#include <pg2kafka/plugin.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "interrupter.hpp"
#include "outbox_config.hpp"
#include "pg_connection.hpp"

namespace pg2kafka::pg_outbox {

// One row of pg2kafka.lag: a table that is tracked or has events queued.
struct TableLag {
  std::string table_schema, table_name;  // current names (tracked), else those the events carry
  bool tracked = false;
  // Zero when OutboxState::counted is false (the queue was not counted).
  int64_t queued_events = 0, queued_batches = 0;
  int64_t queued_bytes = 0;                    // the events' data as uncompressed JSON (data_bytes)
  std::optional<std::string> oldest_event_at;  // ISO 8601 UTC; none when nothing is queued
  std::optional<double> oldest_event_age_seconds;
  // 'enabled', 'not always', 'disabled', 'partial', 'missing' (see pg2kafka.lag); none when the
  // table is not tracked.
  std::optional<std::string> triggers;
};

// One row of pg2kafka.drainers: a session that holds the drain lock or stands by to take it.
struct DrainerSession {
  int pid = 0;
  std::string role;  // "active" (holds the drain lock) or "standby"
  std::string usename, application_name;
  // Hidden (none) when details_visible is false; client_addr is also none for a local socket.
  std::optional<std::string> client_addr, backend_start, state;
  bool details_visible = false;
};

// A backfill (pg2kafka.backfills, migration 010): every pending or running one, and those that
// ended within the last day.
struct BackfillState {
  int64_t id = 0;
  std::string table_schema, table_name;  // when it was asked for
  std::string state;                     // pending, running, done, cancelled, failed
  int64_t rows_done = 0;
  std::optional<int64_t> rows_estimated;
  std::optional<double> percent, rows_per_second;
  std::optional<std::string> eta, started_at, finished_at, error;  // times: ISO 8601 UTC
  std::string requested_by;
};

// The oldest transaction horizon of the cluster: what keeps VACUUM from removing the queue's
// deleted rows (and everyone else's) while it lasts.
// Events parked in pg2kafka.parked_events (migration 012), per table and reason.
struct ParkedCount {
  std::string table_schema, table_name;
  std::string reason;  // failed, held, malformed
  int64_t events = 0;
  double oldest_age_seconds = 0;  // since the oldest was parked
};

struct VacuumHorizon {
  std::string kind;        // "session", "prepared transaction" or "replication slot"
  std::optional<int> pid;  // sessions
  std::string name;        // the session's user, the prepared transaction's gid, the slot's name
  std::optional<std::string> application_name;  // sessions
  int64_t xmin_age = 0;                         // transactions since its horizon (age(xmin))
  // How long its transaction has been open (sessions whose details are visible, prepared
  // transactions); none otherwise.
  std::optional<double> transaction_age_seconds;
  bool details_visible = true;
};

// Everything read_state() reads, in one snapshot.
struct OutboxState {
  std::string database;
  std::string read_as;  // current_user: the role whose rights decided what is visible
  double collected_at_unix = 0;
  int schema_version = 0;           // max(pg2kafka.schema_migrations.version)
  std::optional<int> function_set;  // max(pg2kafka.schema_functions.version); none before 007
  bool views = false;               // read through pg2kafka.lag and pg2kafka.drainers

  // The queue table pg2kafka.event_batches, from the catalog and the statistics (cheap).
  int64_t queue_table_bytes = 0;               // pg_total_relation_size: heap, indexes, TOAST, maps
  int64_t queue_heap_bytes = 0;                // pg_relation_size: the main fork
  int64_t queue_index_bytes = 0;               // pg_indexes_size
  int64_t queue_toast_bytes = 0;               // the TOAST table with its index
  std::optional<int64_t> queue_rows_estimate;  // pg_class.reltuples (none: never analyzed)
  int64_t queue_dead_rows = 0;                 // pg_stat_all_tables.n_dead_tup
  std::optional<std::string> queue_last_autovacuum;
  int64_t queue_autovacuum_count = 0;

  // Per table (pg2kafka.lag). `counted` is false when the queue was not counted (ReadOptions::
  // count_queue false, or counting took longer than statement_timeout): then `tables` holds the
  // tracked tables with their trigger state and zero counts, count_note says why, and
  // queue_oldest_age_seconds comes from the 1000 oldest batches (when the reader may read the
  // queue).
  bool counted = true;
  std::optional<std::string> count_note;
  std::vector<TableLag> tables;
  std::optional<double> queue_oldest_age_seconds;  // over all tables

  // Sessions (ReadOptions::with_sessions).
  bool sessions_read = false;
  std::vector<DrainerSession> drainers;  // the active one first
  int hidden_sessions = 0;  // sessions of this database whose details read_as may not see
  std::optional<VacuumHorizon> vacuum_horizon;

  std::vector<BackfillState> backfills;  // migration 010 on
  std::vector<ParkedCount> parked;       // migration 012 on, when the reader may see them
  bool parked_visible = false;
  // pg2kafka.tracking_problems() (function set 1 on): one message, with its fix, per tracked
  // table whose capture is not complete and current.
  std::vector<std::string> tracking_problems;

  int64_t queued_events() const;  // sums over `tables` (0 when not counted)
  int64_t queued_batches() const;
  int64_t queued_bytes() const;
  const DrainerSession* active() const;  // the session holding the drain lock, if any
};

// Why read_state() cannot read a database: no pg2kafka schema, or one older than migration 004.
class MonitorError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ReadOptions {
  // Read pg_stat_activity and pg_locks (the drainers, the vacuum horizon). Metrics may skip it.
  bool with_sessions = true;
  // Count the queue per table (one pass over it). False reads only what is cheap whatever the
  // backlog (catalog, statistics, the oldest batches): see OutboxState::counted.
  bool count_queue = true;
  // Use the views of function set 6 when the database has them (false: the equivalent inline
  // queries, which need SELECT on the queue; for tests).
  bool use_views = true;
};

// Reads the state of the pg2kafka schema of the database `conn` is connected to, in one
// REPEATABLE READ READ ONLY transaction that is always rolled back: every figure is of one
// snapshot. `conn` must not be the drain connection (nor be inside a transaction); its session
// settings (statement_timeout) bound each query: a count that runs out of statement_timeout is
// given up (OutboxState::counted false, the rest still read), any other failure throws. Works
// on schemas from migration 004 on; uses the views of function set 6 when present, else
// equivalent queries (backfills from migration 010 on, tracking problems from function set 1
// on). Throws MonitorError (no schema, or older than 004), PgError, PgInterrupted.
OutboxState read_state(PgConnection& conn, const ReadOptions& options = {});
inline OutboxState read_state(PgConnection& conn, bool with_sessions) {
  ReadOptions options;
  options.with_sessions = with_sessions;
  return read_state(conn, options);
}

// What needs an operator's attention, one sentence each naming the problem and the fix: capture
// triggers disabled or missing (tracking_problems), no session holding the drain lock, the
// active session's details hidden (and the grant that shows them), events waiting longer than
// 5 minutes, a queue too large to count, failed backfills, a transaction or replication slot
// holding back vacuum for more than an hour (or 10 million transactions).
std::vector<std::string> problems(const OutboxState& state);

// The `pg2kafka status --format json` document: one JSON object whose member names are stable
// (new members may be added). Times are ISO 8601 UTC text ("2026-12-01T10:00:00.000Z"), ages and
// durations seconds (numbers), sizes bytes; null where unknown.
//   database, read_as, collected_at, schema_version, function_set
//   queue: {events, batches, bytes (null when not counted), oldest_event_at,
//           oldest_event_age_seconds, counted, count_note, table_bytes, heap_bytes, index_bytes,
//           toast_bytes, rows_estimate, dead_rows, last_autovacuum, autovacuum_count}
//   drain_lock: {holder: {pid, usename, application_name, client_addr, backend_start, state,
//                details_visible} | null, standbys: [same members], hidden_sessions, note}
//               (null when sessions were not read)
//   vacuum_horizon: {kind, pid, name, application_name, xmin_age, transaction_age_seconds,
//                    details_visible} | null
//   tables: [{table ("schema.table"), schema, name, tracked, events, batches, bytes,
//             oldest_event_at, oldest_event_age_seconds, triggers}]
//   backfills: [{id, table, state, rows_done, rows_estimated, percent, rows_per_second, eta,
//                started_at, finished_at, requested_by, error}]
//   problems: [sentences] (problems(state))
std::string status_json(const OutboxState& state);

struct MonitorSettings {
  // A new state is read at most this often, and only while requests keep coming (within
  // keep_alive of the last one): nothing is read for an endpoint nobody scrapes. A reading that
  // takes over a second (counting a large backlog) is repeated less often: at most a twentieth
  // of the time is spent reading.
  std::chrono::milliseconds interval{10'000};
  std::chrono::milliseconds keep_alive{120'000};
  // The monitor session's statement_timeout: the longest any of its queries runs. A count of the
  // queue that runs out of it is not tried again for count_retry (the state then has no counts).
  std::chrono::milliseconds statement_timeout{5'000};
  std::chrono::milliseconds count_retry{300'000};
  bool with_sessions = false;
  // Retries after a failure wait retry_initial, doubling up to retry_max.
  std::chrono::milliseconds retry_initial{1'000};
  std::chrono::milliseconds retry_max{60'000};
};

// A background reader of OutboxState for the metrics endpoint. Its connection is its own, made
// from the source's OutboxConfig as the drain's (same connection string, connect timeout) with
// application_name "<application_name>/monitor", statement_timeout set to
// MonitorSettings::statement_timeout, and made again after it is lost. The thread starts with
// the first latest() call. All members are thread-safe.
class Monitor {
 public:
  using Log = std::function<void(p2k_log_level, std::string)>;
  // `log` receives a warning when reading starts failing (and when the reason changes), and an
  // info line when it works again; it is called from the monitor's thread.
  Monitor(OutboxConfig config, Log log, MonitorSettings settings = {});
  ~Monitor();  // stop()
  Monitor(const Monitor&) = delete;
  Monitor& operator=(const Monitor&) = delete;

  // The latest state read, or null when none has been read yet. When it is older than
  // `interval` (or there is none) a new read is started (unless the last failure's retry wait
  // is not over) and waited for up to `wait`; then the latest state is returned, which may be
  // older than `interval` (see OutboxState::collected_at_unix) when reading takes longer or
  // fails. Never blocks for much longer than `wait`.
  std::shared_ptr<const OutboxState> latest(std::chrono::milliseconds wait);
  // The last read's error while reads fail (none once one succeeds).
  std::optional<std::string> last_error() const;
  // How often readings follow each other: `interval`, or kReadShare (20) times as long as the
  // last reading took when that took over a second (at most a twentieth of the time reading).
  static std::chrono::steady_clock::duration reading_period(
      std::chrono::steady_clock::duration interval, std::chrono::steady_clock::duration last_took);
  // Failed reads so far (for pg2kafka_pg_outbox_monitor_errors_total).
  uint64_t errors() const { return errors_.load(); }
  // Interrupts a read in progress, and joins the thread (a connection attempt in progress may
  // take up to its connect_timeout). Idempotent; latest() then only returns the last state.
  void stop();

 private:
  void run();
  void read_once();
  bool due(std::chrono::steady_clock::time_point now) const;
  using Clock = std::chrono::steady_clock;
  // How often a reading is due: MonitorSettings::interval, or kReadShare times as long as the
  // last reading took when that took over a second and is longer.
  static constexpr int kReadShare = 20;
  Clock::duration period() const;
  Clock::duration last_read_took_{};

  const OutboxConfig config_;
  const Log log_;
  const MonitorSettings settings_;
  Interrupter interrupter_;
  std::unique_ptr<PgConnection> conn_;  // the monitor thread's only

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::thread thread_;
  bool started_ = false, stopping_ = false;
  std::shared_ptr<const OutboxState> state_;
  std::chrono::steady_clock::time_point state_at_{}, last_request_{}, retry_at_{}, count_at_{};
  uint64_t attempts_ = 0;  // reads finished (successful or not), for waiting callers
  std::optional<std::string> last_error_;
  std::atomic<uint64_t> errors_{0};
  int failures_in_a_row_ = 0;
};

}  // namespace pg2kafka::pg_outbox
