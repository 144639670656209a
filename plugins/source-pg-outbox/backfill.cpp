#include "backfill.hpp"

#include <pg2kafka/sdk/plugin.hpp>

#include <cmath>
#include <cstdio>

#include "json_text.hpp"
#include "queue_sql.hpp"

namespace pg2kafka::pg_outbox {

namespace {

using queue_sql::kOidInt4;
using queue_sql::kOidInt8;
using queue_sql::kOidTextArray;

// The chunk's snapshot (the transaction's, taken by this first statement), the queue's largest id
// in it, a uuid for the chunk, the backfill's state, and the reader to call: only one owned by
// the role that asked for the backfill, which still owns the table (otherwise NULL). Runs before
// any code of the reader's owner in this session.
constexpr const char* kChunkStartSql = R"sql(
SELECT s::text, pg_snapshot_xmin(s)::text,
       (SELECT coalesce(max(e.id), 0) FROM pg2kafka.event_batches e),
       gen_random_uuid()::text,
       (SELECT b.state FROM pg2kafka.backfills b WHERE b.id = $1),
       (SELECT format('%I.%I', n.nspname, p.proname)
          FROM pg2kafka.backfills b
          JOIN pg_proc p ON p.oid = b.reader
          JOIN pg_namespace n ON n.oid = p.pronamespace
          JOIN pg_roles r ON r.oid = p.proowner
          JOIN pg_class c ON c.oid = b.relid
         WHERE b.id = $1 AND r.rolname = b.requested_by AND p.prosecdef
           AND pg_has_role(p.proowner, c.relowner, 'USAGE'))
  FROM pg_current_snapshot() s)sql";

// The chunk, bounded here whatever the reader returns: at most $3 rows, with their data only
// until $4 bytes of JSON are reached (at least one row's); the rows past that come without it,
// flagged `over`, and end the chunk.
constexpr const char* kChunkSql = R"sql(
SELECT c.key::text, CASE WHEN c.before < $4 THEN c.data::text END, c.before >= $4
  FROM (SELECT r.key, r.data,
               sum(pg_column_size(r.data)) OVER (ROWS UNBOUNDED PRECEDING)
                 - pg_column_size(r.data) AS before
          FROM %READER%($1, $2, $3) r LIMIT $3) c)sql";

}  // namespace

BackfillReader::BackfillReader(const OutboxConfig& config, Interrupter* interrupter,
                               NoticeHandler notices, void* notice_ctx)
    : config_(config), interrupter_(interrupter), notices_(notices), notice_ctx_(notice_ctx) {}

BackfillReader::~BackfillReader() = default;

void BackfillReader::connect() {
  try {
    conn_ = std::make_unique<PgConnection>(config_.connection, config_.application_name, notices_,
                                           notice_ctx_, interrupter_);
  } catch (const PgConnectError& e) {
    throw BackfillError(std::string("cannot connect to read backfill chunks: ") + e.what(), false);
  }
  conn_->set_reply_timeout(config_.reply_timeout());
}

void BackfillReader::reset_session() {
  if (!conn_) return;
  try {
    conn_->exec("ROLLBACK");
    conn_->exec("DISCARD ALL");
  } catch (const PgInterrupted&) {
    conn_.reset();
    throw;
  } catch (const PgError&) {
    conn_.reset();  // a session that could not be reset is not used again
  }
}

BackfillChunk BackfillReader::read(const Backfill& b, size_t max_rows, size_t max_bytes) {
  if (!conn_ || conn_->broken()) connect();
  BackfillChunk chunk;
  try {
    conn_->exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL statement_timeout = " +
                std::to_string(config_.statement_timeout.count()) +
                "; SET LOCAL lock_timeout = " + std::to_string(config_.lock_timeout.count()));
    const std::string id = std::to_string(b.id);
    auto start = conn_->exec_params(kChunkStartSql, {kOidInt8}, {id});
    chunk.snapshot = std::string(start.text(0, 0));
    chunk.xmin = std::stoull(std::string(start.text(0, 1)));
    chunk.max_id = start.int64(0, 2);
    chunk.uuid = std::string(start.text(0, 3));
    auto state = start.optional_text(0, 4);
    if (!state || (*state != "pending" && *state != "running")) {
      chunk.ended = state ? *state : std::string("removed");
      reset_session();
      return chunk;
    }
    auto reader = start.optional_text(0, 5);
    if (!reader)
      throw BackfillError(
          "its reader function is gone, is not the one of the role that asked for the backfill, "
          "or that role no longer owns the table; ask for the backfill again as the table's "
          "owner (SELECT pg2kafka.backfill(...))",
          true);
    std::string sql = kChunkSql;
    sql.replace(sql.find("%READER%"), 8, *reader);
    auto rows =
        conn_->exec_params(sql, {kOidInt8, kOidTextArray, kOidInt4, kOidInt8},
                           {id, b.after_key, std::to_string(max_rows), std::to_string(max_bytes)});
    bool over = false;
    chunk.data = "[";
    for (int i = 0; i < rows.rows() && !over; ++i) {
      if ((over = rows.boolean(i, 2))) break;
      if (i) chunk.data += ',';
      chunk.data += rows.text(i, 1);
      ++chunk.rows;
    }
    chunk.data += ']';
    if (chunk.rows > 0)
      chunk.last_key = std::string(rows.text(static_cast<int>(chunk.rows) - 1, 0));
    // Fewer rows than asked for, none left out for their size: the reader has no more.
    chunk.last = !over && rows.rows() < static_cast<int>(max_rows);
  } catch (const PgInterrupted&) {
    conn_.reset();
    throw;
  } catch (const PgError& e) {
    bool lost = e.connection_lost() || conn_->broken();
    reset_session();
    if (lost) conn_.reset();
    // The reader runs the table owner's code (casts, the condition, row-level security): its
    // errors do not go away by themselves, unlike lost connections and timeouts. The first line
    // says what happened (the rest is where, inside the reader).
    std::string message = e.what();
    if (message.rfind("ERROR:  ", 0) == 0) message.erase(0, 8);
    if (auto end = message.find('\n'); end != std::string::npos) message.resize(end);
    throw BackfillError(message, !lost && !e.transient());
  } catch (const BackfillError&) {
    reset_session();
    throw;
  }
  reset_session();
  return chunk;
}

std::vector<size_t> rows_with_changed_members(std::string_view data, std::string_view old_data,
                                              const std::vector<std::string>& members) {
  std::vector<size_t> out;
  std::vector<std::string_view> rows, old_rows;
  if (members.empty() || !split_array(data, rows) || !split_array(old_data, old_rows)) return out;
  std::vector<std::pair<std::string_view, std::string_view>> now, before;
  for (size_t i = 0; i < rows.size() && i < old_rows.size(); ++i) {
    now.clear();
    before.clear();
    if (!split_members(rows[i], now) || !split_members(old_rows[i], before)) continue;
    auto value_of = [](const auto& list, std::string_view name) -> std::optional<std::string_view> {
      for (const auto& [n, v] : list)
        if (n == name) return v;
      return std::nullopt;
    };
    for (const std::string& m : members) {
      if (value_of(now, m) != value_of(before, m)) {
        out.push_back(i);
        break;
      }
    }
  }
  return out;
}

std::string backfill_progress(const Backfill& b, int64_t rows_in_period, double seconds) {
  std::string line = "backfill " + std::to_string(b.id) + " of " + b.schema + "." + b.table + ": " +
                     std::to_string(b.rows_done) + " rows sent";
  if (b.rows_estimated && *b.rows_estimated > 0) {
    char share[32];
    std::snprintf(share, sizeof share, "%.0f%%",
                  std::min(100.0, 100.0 * static_cast<double>(b.rows_done) /
                                      static_cast<double>(*b.rows_estimated)));
    line += " (" + std::string(share) + " of about " + std::to_string(*b.rows_estimated) + ")";
  }
  double rate = seconds > 0 ? static_cast<double>(rows_in_period) / seconds : 0;
  line += ", " + std::to_string(static_cast<int64_t>(std::llround(rate))) + " rows/s";
  if (rate > 0 && b.rows_estimated && *b.rows_estimated > b.rows_done)
    line += ", about " +
            std::to_string(static_cast<int64_t>(
                std::ceil(static_cast<double>(*b.rows_estimated - b.rows_done) / rate))) +
            " s left";
  return line;
}

}  // namespace pg2kafka::pg_outbox
