// The pg-outbox source: drains pg2kafka.event_batches (filled by the capture triggers of sql/,
// one row per statement holding up to 1000 of its rows) into records, one per event, and
// deletes (or archives) a batch once the host has acknowledged all its events.
//
// How draining works (and why it loses nothing): every batch row carries the id of the
// transaction that wrote it (txid). The source reads the queue in *windows*: it takes a snapshot
// S (pg_current_snapshot()) and returns, in id order and in pages, the batches whose transaction
// is visible in S but was not visible in the previous window's snapshot. A transaction that
// commits late, with ids lower than batches already returned, simply falls into a later window,
// so nothing is skipped; a committed transaction is visible in every later snapshot, so each
// batch belongs to exactly one window and is returned once per instance. Acknowledged batches
// are deleted (or moved to pg2kafka.acknowledged_batches), so a new instance starts from
// whatever is left: returned-but-unacknowledged events come back (at-least-once; the events of a
// batch that were delivered before a crash come back too, with the same uuids).
//
// Only one instance drains a queue: the one holding the session-level advisory lock
// (1882352481, 2) of the database. Others are hot standbys that retry the lock every
// poll_interval and take over when the active one's session ends.
#pragma once

#include <pg2kafka/sdk/plugin.hpp>

#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "batch.hpp"
#include "json_text.hpp"
#include "pg_connection.hpp"

namespace pg2kafka::pg_outbox {

// The plugin's options, parsed and checked (no I/O). See plugin.cpp for their documentation.
struct OutboxConfig {
  enum class Acknowledged { kDelete, kKeep };

  ConnInfo connection;
  bool perform_migrations = false;
  std::string topic_namespace;
  size_t batch_size = 1000;
  size_t batch_bytes = 4u << 20;
  std::chrono::milliseconds poll_interval{1000};
  std::chrono::milliseconds min_poll_interval{5};
  bool notify = true;
  Acknowledged acknowledged = Acknowledged::kDelete;
  std::chrono::milliseconds retention{7LL * 24 * 3600 * 1000};
  std::string application_name = "pg2kafka";
  // Applied to the session (SET) for every drain query, after the schema is installed; 0: none.
  std::chrono::milliseconds lock_timeout{5'000};
  std::chrono::milliseconds statement_timeout{60'000};

  // Throws sdk::ConfigError naming the option at fault.
  static OutboxConfig from(const sdk::Options& options);
};

// Bounds of the options (plugin.cpp's table gives them to the host; OutboxConfig::from checks
// them again for callers that skip the host).
// retention: 36500 days (100 years); now() minus that never leaves PostgreSQL's timestamp range.
constexpr int64_t kMaxRetentionMs = 36500LL * 24 * 3600 * 1000;
// lock_timeout and statement_timeout: one day (PostgreSQL takes up to about 24.8 days).
constexpr int64_t kMaxQueryTimeoutMs = 24LL * 3600 * 1000;
// statement_timeout: 0 (none) or at least this; shorter would cancel ordinary drain queries.
constexpr int64_t kMinStatementTimeoutMs = 1000;
// How long past statement_timeout the source waits for the server's answer to a drain query (at
// most as long again as statement_timeout) before it gives the connection up as stuck.
constexpr int64_t kReplyGraceMs = 5000;

// The topic of a table: pg2kafka.[<namespace>.]<database>.[<schema>.]<table>, the schema part
// only for tables outside `public`. Every name is kept as is except that characters Kafka does
// not allow in topic names (anything but ASCII letters, digits, '_' and '-', and also '.' inside
// a name, which would be ambiguous) become '_'.
std::string topic_name(std::string_view topic_namespace, std::string_view database,
                       std::string_view schema, std::string_view table);

// The record value: {"uuid","external_id","statement","data","created_at"}. `data_json` is JSON
// text as PostgreSQL printed it (inserted verbatim; nullopt gives null); `created_at` is
// rfc3339_utc of the statement's time (formatted once per batch, shared by its events).
std::string envelope_json(std::string_view uuid, const std::optional<std::string>& external_id,
                          std::string_view statement, std::optional<std::string_view> data_json,
                          std::string_view created_at);
// RFC 3339 UTC with trailing zeros of the fraction removed, e.g. 2017-11-02T16:15:13.94077Z.
std::string rfc3339_utc(int64_t epoch_us);

class OutboxSource : public sdk::Source {
 public:
  OutboxSource(sdk::Host host, const sdk::Options& options);
  ~OutboxSource() override;

  void open() override;
  std::unique_ptr<sdk::RecordBatch> poll(size_t max_records,
                                         std::chrono::milliseconds timeout) override;
  void ack(uint64_t through) override;
  std::vector<std::string> list_topics() override;
  void close() override;
  // Thread-safe; called from another thread while any other method may run (never with the
  // constructor or destructor); never blocks. The call blocked now returns soon with RetryError
  // ("interrupted: ..."): a running query is cancelled (a cancel request, sent on a thread of its
  // own, and the connection is dropped), a wait for notifications or a sleep ends at once. From
  // then on open, poll, ack and list_topics throw RetryError("interrupted: ...") at once;
  // close() still works. A connection attempt in progress is not cut short (connect_timeout
  // bounds it); its connection is not used.
  void interrupt() override;

  // True while this instance holds the drain lock (it is the active drainer).
  bool active() const { return active_; }
  // The backend pid of the current connection, or -1 when disconnected (tests use it to kill
  // the session).
  int backend_pid() const { return conn_ ? conn_->backend_pid() : -1; }
  const OutboxConfig& config() const { return config_; }

 private:
  void connect();
  void apply_migrations();
  void prepare_session();
  void ensure_session();
  // `warn`: log that the drain lock went with the connection (not when interrupted).
  void drop_connection(bool warn = true);
  // Throws RetryError("interrupted: ...") once interrupt() was called.
  void refuse_if_interrupted(const char* call) const;
  [[noreturn]] void throw_interrupted(const std::string& what);
  void try_become_active();
  void maybe_purge();
  std::unique_ptr<sdk::RecordBatch> fetch(size_t limit);
  // Turns the batch rows of a page into pending events, up to the first row past the byte budget
  // (then sets cut_by_bytes); returns the number of events the rows read hold (whether or not
  // they were pending already).
  int64_t add_pending(const PgResult& rows, bool& cut_by_bytes);
  std::unique_ptr<sdk::RecordBatch> take_pending(size_t limit);
  void remove_batches(const std::vector<int64_t>& ids);
  // What a table's events are sent with, kept for the source's life (events point to it).
  struct TableNames {
    std::string topic;
    std::string qualified;  // schema.table, the "table" header
  };
  const TableNames& names_for(const std::string& schema, const std::string& table);
  // Runs f, turning PostgreSQL errors into the SDK's: RetryError (and a reconnect on the next
  // call) for lost connections and transient errors, FatalError otherwise.
  template <class F>
  auto guarded(const char* what, F&& f) -> decltype(f());

  sdk::Host host_;
  OutboxConfig config_;
  Interrupter interrupter_;  // before conn_: the connection uses it until it is gone
  std::unique_ptr<PgConnection> conn_;
  // Where the source connects, for messages: what libpq reported on the last successful connect
  // (until then, the configured target).
  std::string target_;
  // Whether the session's lock_timeout and statement_timeout are set (the drain's errors then
  // name them).
  bool timeouts_set_ = false;
  bool opened_ = false;
  bool active_ = false;
  bool standby_logged_ = false;
  std::string database_;

  // How long to wait before the next look at an empty queue: min_poll_interval after events
  // were found, doubling up to poll_interval while the queue stays empty.
  std::chrono::milliseconds idle_wait_{0};
  std::chrono::steady_clock::time_point last_events_at_{};

  // Reconnection backoff.
  int connect_failures_ = 0;
  std::chrono::steady_clock::time_point next_connect_at_{};

  // The window cursor: events visible in cur_ and not in prev_, with after_id_ < id <=
  // window_max_id_ (the largest id once cur_ was taken: no event visible in cur_ is above it).
  std::optional<std::string> prev_snapshot_;
  std::optional<std::string> cur_snapshot_;
  int64_t window_max_id_ = 0;
  int64_t after_id_ = 0;
  uint64_t cur_xmin_ = 0, prev_xmin_ = 0;  // the snapshots' xmin
  int64_t max_returned_id_ = 0;            // the largest queue id this instance returned
  struct Horizon {
    uint64_t xid;   // assigned right after `floor` was read
    int64_t floor;  // no id taken after it was read is <= it
  };
  std::deque<Horizon> horizons_;  // oldest first
  std::chrono::steady_clock::time_point next_horizon_at_{};
  void maybe_take_horizon();
  int64_t window_start_id();

  // Events read but not returned yet (a batch may hold more than a poll asks for).
  struct PendingEvent {
    uint64_t position;
    int64_t batch_id;
    bool last_of_batch;
    const TableNames* names;
    std::optional<std::string> key;
    std::string value;
    int64_t timestamp_ms;
    std::string uuid;
    const std::string* statement;  // in statements_
  };
  std::deque<PendingEvent> pending_;
  // Returned but not yet acknowledged, in position order.
  struct InFlight {
    uint64_t position;
    int64_t batch_id;
    bool last_of_batch;
  };
  uint64_t next_position_ = 1;
  std::deque<InFlight> in_flight_;
  // Batches with events pending or in flight: never read again by this instance.
  std::unordered_set<int64_t> in_flight_ids_;

  std::chrono::steady_clock::time_point next_purge_at_{};
  std::map<std::pair<std::string, std::string>, TableNames> tables_;
  std::set<std::string, std::less<>> statements_;
};

}  // namespace pg2kafka::pg_outbox
