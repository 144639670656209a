// Backfills (sql/README.md, "Backfills"): the drainer sends a tracked table's existing rows as
// SNAPSHOT events, in chunks, between its drain windows. A chunk is read in the very snapshot
// that bounds one window, and its events are queued right after that window's: every change a
// chunk's rows reflect is delivered before them, every later change after them, so a consumer
// that applies events in order ends with the table's state. Progress is recorded in
// pg2kafka.backfills once a chunk's events are acknowledged; a new drainer resumes there.
//
// Chunks are read by the reader function of the role that asked for the backfill (it runs with
// that role's rights, not the drainer's), on a connection of its own that the drainer uses for
// nothing else: each chunk in a READ ONLY transaction that is rolled back, after which the
// session is reset (DISCARD ALL). So whatever the reader's code does (it belongs to a table
// owner) stays inside that transaction: no deferred trigger fires at a commit with the drainer's
// rights, no setting, prepared statement, lock or temporary object it leaves behind reaches the
// drainer's next query, and the drain lock is not on that connection.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "batch.hpp"
#include "interrupter.hpp"
#include "outbox_config.hpp"
#include "pg_connection.hpp"

namespace pg2kafka::pg_outbox {

// The backfill being sent: a row of pg2kafka.backfills, with the table's names as they are now.
struct Backfill {
  int64_t id = 0;
  std::string schema, table;               // the table's current names (its topic)
  std::optional<std::string> key_column;   // the tracked key column's current name
  std::optional<BatchOptions> options;     // a composite key (capture option "key")
  std::vector<std::string> order_columns;  // the key the chunks follow, as JSON member names
  std::optional<std::string> after_key;    // text[] as PostgreSQL prints it; none: from the start
  int64_t rows_done = 0;                   // delivered (acknowledged) so far, in all
  std::optional<int64_t> rows_estimated;
  bool all_read = false;  // the last chunk was read: done once it is delivered
};

// One chunk, read in `snapshot`.
struct BackfillChunk {
  std::string snapshot;  // as PostgreSQL prints it
  uint64_t xmin = 0;
  int64_t max_id = 0;  // the queue's largest id in that snapshot
  std::string uuid;    // the chunk's random uuid; event i has event_uuid(uuid, i)
  std::string data;    // the rows, as a JSON array
  int64_t rows = 0;
  std::optional<std::string> last_key;  // the last row's key (text[]), when there are rows
  bool last = false;                    // no row after these: the backfill is read to its end
  // Set (and nothing read) when the backfill was cancelled or removed meanwhile: its state, or
  // "removed".
  std::optional<std::string> ended;
};

// Why a chunk could not be read.
class BackfillError : public std::runtime_error {
 public:
  BackfillError(const std::string& message, bool permanent)
      : std::runtime_error(message), permanent_(permanent) {}
  // True when retrying cannot help (an error raised by the reader or the table's own code, a
  // reader that is not the requester's): the backfill fails.
  bool permanent() const { return permanent_; }

 private:
  bool permanent_;
};

// The connection that reads chunks (see the top of this file). Connects when first used and again
// after losing its connection.
class BackfillReader {
 public:
  BackfillReader(const OutboxConfig& config, Interrupter* interrupter, NoticeHandler notices,
                 void* notice_ctx);
  ~BackfillReader();

  // Reads the chunk of backfill `b` after b.after_key: at most `max_rows` rows, and no more rows
  // once `max_bytes` of JSON are reached (but at least one). Throws BackfillError, and
  // PgInterrupted when interrupted.
  BackfillChunk read(const Backfill& b, size_t max_rows, size_t max_bytes);
  // Closes the connection (the next read connects again).
  void close() { conn_.reset(); }

 private:
  void connect();
  // Ends the chunk's transaction and resets the session; drops the connection if that fails.
  void reset_session();

  const OutboxConfig& config_;
  Interrupter* interrupter_;
  NoticeHandler notices_;
  void* notice_ctx_;
  std::unique_ptr<PgConnection> conn_;
};

// The rows of an UPDATE batch (its `data` and `old_data` arrays) in which a member named in
// `members` (JSON member names with their quotes) changed. During a backfill, such a row may have
// moved from ahead of the chunks' cursor to behind it, so no chunk would send it: the drainer
// sends its new row whole (a SNAPSHOT) right after the UPDATE.
std::vector<size_t> rows_with_changed_members(std::string_view data, std::string_view old_data,
                                              const std::vector<std::string>& members);

// The log line on a backfill's progress: rows delivered, the share of the estimate, the rate over
// `seconds` and the time left at that rate.
std::string backfill_progress(const Backfill& b, int64_t rows_in_period, double seconds);

}  // namespace pg2kafka::pg_outbox
