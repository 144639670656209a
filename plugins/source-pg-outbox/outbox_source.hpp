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
// Backfills (backfill.hpp) are sent by the active instance too, between its windows: a chunk
// read in a window's snapshot is queued right after that window's events.
//
// Only one instance drains a queue: the one holding the session-level advisory lock
// (1882352481, 2) of the database. Others are hot standbys that retry the lock every
// poll_interval and take over when the active one's session ends.
#pragma once

#include <pg2kafka/sdk/plugin.hpp>

#include <atomic>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <pg2kafka/sdk/backoff.hpp>

#include "backfill.hpp"
#include "batch.hpp"
#include "drain_window.hpp"
#include "event_ledger.hpp"
#include "json_text.hpp"
#include "monitor.hpp"
#include "outbox_config.hpp"
#include "pg_connection.hpp"
#include "record_format.hpp"

namespace pg2kafka::pg_outbox {

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
  // Operations (plugin ABI 1.3; sql/README.md "Monitoring"). metrics and health run on the host's
  // HTTP thread: they read atomics and the Monitor (monitor.hpp), which reads the queue's lag,
  // size, drainers and backfills on a connection and a thread of its own, started by the first
  // call. status reads the same on a connection made for the call (the instance is not opened).
  void metrics(sdk::MetricWriter& out) override;
  sdk::Health health() override;
  std::string status() override;
  // Parking (plugin ABI 1.4; sql/README.md "Parked events"). park: the record (a failed event, a
  // malformed row, or a parked event retried that failed again) goes to pg2kafka.parked_events,
  // and its table and key become held: later events of the key are parked behind it as they are
  // read ("held"). Retry requests (pg2kafka.retry_event and its siblings, `pg2kafka queue
  // retry`) are carried out by the active instance between windows: each requested key's parked
  // events are sent again in park order, before anything the key queues later, the failed one
  // alone first; once delivered they leave pg2kafka.parked_events and the key flows again.
  // queue: `pg2kafka queue` (on an instance never opened; queue_admin.cpp).
  void park(const p2k_record& record, const std::string& error) override;
  std::string queue(const std::string& request) override;

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
  void maybe_take_horizon();
  std::unique_ptr<sdk::RecordBatch> fetch(size_t limit);
  // Turns the batch rows of a page into pending events, up to the first row past the byte budget
  // (then sets cut_by_bytes); returns the number of events the rows read hold (whether or not
  // they were pending already).
  int64_t add_pending(const PgResult& rows, bool& cut_by_bytes);
  void remove_batches(const std::vector<int64_t>& ids);
  // Parking.
  struct ParkedKey {
    std::string head;  // the uuid of its oldest parked event
    bool retrying;     // a retry of the key is under way: events held now join it
  };
  void add_malformed(int64_t id, const BatchRow& row, const std::string& schema,
                     const std::string& table, int64_t created_us, const std::string& what);
  // The ledger's pending events, those of held keys parked instead of returned.
  std::unique_ptr<sdk::RecordBatch> take_records(size_t limit);
  bool hold(const EventLedger::PendingView& e);
  void load_parked_keys();
  void maybe_retry_parked(std::chrono::steady_clock::time_point now);
  void remove_retried(const std::vector<int64_t>& ids);
  // Backfills (backfill.hpp).
  // Takes up the oldest open backfill when none is being sent (a window's snapshot tells when
  // one is open).
  void maybe_load_backfill();
  bool chunk_due(std::chrono::steady_clock::time_point now) const;
  // Reads the next chunk and starts the window of its snapshot; false when none was read.
  bool read_chunk(std::chrono::steady_clock::time_point now);
  // The chunk's window is done: its events follow that window's.
  void queue_chunk();
  // Records the delivery of chunks (ledger ids, in order) in pg2kafka.backfills.
  void record_chunks(const std::vector<int64_t>& ids);
  struct ChunkInFlight;
  // Records one delivered chunk (with the rate and time left), and ends the backfill with its
  // last chunk, or when it was cancelled or removed meanwhile.
  void record_progress(const ChunkInFlight& c);
  void fail_backfill(const std::string& why);
  void end_backfill();

  void maybe_log_backfill(std::chrono::steady_clock::time_point now);
  // Whether a backfill has chunks left to read (the source then has work though the queue is
  // empty).
  bool backfill_unread() const { return backfill_ && !backfill_->all_read; }
  std::string backfill_name() const;
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
  // Read by health() and metrics() from another thread.
  std::atomic<bool> opened_{false};
  std::atomic<bool> active_{false};
  std::atomic<bool> connected_{false};
  std::atomic<int64_t> active_since_ms_{0};  // Unix ms when the drain lock was taken
  sdk::Counter reconnects_, batches_removed_;
  Monitor monitor_;
  bool standby_logged_ = false;
  std::string database_;

  // How long to wait before the next look at an empty queue: min_poll_interval after events
  // were found, doubling up to poll_interval while the queue stays empty.
  std::chrono::milliseconds idle_wait_{0};
  std::chrono::steady_clock::time_point last_events_at_{};
  // A window that reached the end of the queue is followed by the next no sooner than
  // min_poll_interval after it began, however often poll is called (the host polls every few
  // milliseconds while records are in flight): while writes flow, each window then takes what
  // committed meanwhile, rather than a few queries for each event or two.
  std::chrono::steady_clock::time_point window_began_at_{};
  std::chrono::steady_clock::time_point next_window_at_{};
  bool paced_ = false;  // the last fetch returned early, the next window not being due

  // Reconnection backoff.
  sdk::Backoff reconnect_backoff_;
  std::chrono::steady_clock::time_point next_connect_at_{};

  DrainWindow window_;
  EventLedger ledger_;

  // Backfills: whether the schema has them (migration 010), the one being sent, the chunk read
  // for the window being read, and what each chunk in the ledger records once delivered.
  struct ChunkInFlight {
    int64_t backfill;
    int64_t rows_done;  // the backfill's rows delivered once this chunk is
    std::optional<std::string> last_key;
    bool last;
  };
  bool backfills_ = false;
  std::optional<Backfill> backfill_;
  std::unique_ptr<BackfillReader> backfill_reader_;
  std::optional<BackfillChunk> chunk_;
  std::map<int64_t, ChunkInFlight> chunks_;  // by ledger id: negative, counting down
  int64_t next_chunk_id_ = -1;
  int64_t rows_queued_ = 0;  // the backfill's rows delivered or in the ledger
  int chunk_failures_ = 0;   // chunks not read for a passing reason, in a row
  std::chrono::steady_clock::time_point next_chunk_at_{};
  std::chrono::steady_clock::time_point progress_since_{}, backfill_taken_at_{};
  int64_t progress_rows_ = 0, backfill_taken_rows_ = 0;

  // Parking: whether the schema has it (migration 012), the keys held back (by park_scope), and
  // when to look for retry requests and read the keys again.
  bool schema_parks_ = false;  // migration 012: parked_events, event_batches.skipped
  bool parking_ = false;       // and this role may read and write parked_events
  bool parking_note_logged_ = false;
  bool parked_keys_loaded_ = false;
  std::unordered_map<std::string, ParkedKey> parked_keys_;
  std::atomic<int64_t> parked_keys_gauge_{0};
  std::unordered_set<std::string> reparked_this_round_;  // keys whose retried event failed again
  std::chrono::steady_clock::time_point next_retry_check_{}, next_keys_reload_{};
  sdk::Counter parked_failed_, parked_malformed_, held_, retried_;

  // Capture options (migration 013): the batches' options parsed once per distinct text, and the
  // topics that tracked tables name for themselves (read again at most once a second).
  using HeaderList = std::vector<std::pair<std::string, std::string>>;
  const BatchOptions* batch_options(std::string_view text);
  std::shared_ptr<const HeaderList> provenance_headers(std::string_view text);
  void refresh_routes(bool now);
  // A table's topic: its route, or the default name.
  std::string topic_for(const std::pair<std::string, std::string>& table) const;
  bool capture_options_ = false;
  std::map<std::string, BatchOptions, std::less<>> batch_options_;
  std::map<std::pair<std::string, std::string>, std::string> routes_;
  std::set<std::string> refused_routes_;  // warned about once
  std::chrono::steady_clock::time_point next_routes_at_{};

  std::chrono::steady_clock::time_point next_purge_at_{};
  std::map<std::pair<std::string, std::string>, TableNames> tables_;
  std::set<std::string, std::less<>> statements_;
};

}  // namespace pg2kafka::pg_outbox
