// The SQL the drain runs against the queue, each statement beside what its result columns are.
#pragma once

#include <libpq-fe.h>

#include <string>

namespace pg2kafka::pg_outbox::queue_sql {

// `text` with every `what` replaced by `with`: fills the %PLACEHOLDERS% of the statements below.
inline std::string replace_all(std::string text, const std::string& what, const std::string& with) {
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + with.size()))
    text.replace(at, what.size(), with);
  return text;
}

constexpr Oid kOidInt4 = 23;
constexpr Oid kOidInt8 = 20;
constexpr Oid kOidInt8Array = 1016;
constexpr Oid kOidTextArray = 1009;
constexpr Oid kOidPgSnapshot = 5038;

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
       NOT w.within AS over,
       %SKIPPED%,
       %OPTIONS%
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
// %SKIPPED%: the batch's skipped events (migration 012), or NULL before it.
constexpr const char* kSkippedColumn = "w.skipped::text";
constexpr const char* kNoSkippedColumn = "NULL::text";
// %OPTIONS%: the batch's capture options and provenance headers (migration 013), or NULLs.
constexpr const char* kOptionsColumns = "w.options::text, w.headers::text";
constexpr const char* kNoOptionsColumns = "NULL::text, NULL::text";
constexpr const char* kStoredBytes =
    "(coalesce(pg_column_size(b.data), 0) + coalesce(pg_column_size(b.old_data), 0))";

constexpr const char* kAckDeleteSql = "DELETE FROM pg2kafka.event_batches WHERE id = ANY($1)";

// %SKIPPED%: ", skipped" since migration 012 (the archive keeps which events were skipped);
// %OPTIONS%: ", options, headers" since migration 013.
constexpr const char* kAckKeepSql = R"sql(
WITH done AS (DELETE FROM pg2kafka.event_batches WHERE id = ANY($1) RETURNING *)
INSERT INTO pg2kafka.acknowledged_batches
       (id, uuid, table_schema, table_name, statement, key_column, external_id, events, data,
        old_data, created_at, txid%SKIPPED%%OPTIONS%)
SELECT id, uuid, table_schema, table_name, statement, key_column, external_id, events, data,
       old_data, created_at, txid%SKIPPED%%OPTIONS%
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

// The result columns of kFetchSql, in order.
enum FetchColumn : int {
  kId = 0,
  kUuid,
  kKeyColumn,
  kExternalId,
  kTableSchema,
  kTableName,
  kStatement,
  kEvents,
  kData,
  kOldData,
  kCreatedAtMicros,
  kOverBudget,  // past the page's byte budget: the page ends before this row
  kSkipped,     // the indexes of the batch's skipped events, as an array's text ("{1,4}"), or NULL
  kOptions,     // capture options (jsonb text), or NULL
  kHeaders,     // provenance headers (jsonb text: an object of strings), or NULL
};

// The topics of tracked tables that name their own (capture option "topic", migration 013), and
// whether the topic belongs to another owner: the owner of the oldest table (lowest OID) naming
// it keeps it, so that no owner can put events into a stream that another's consumers read as
// theirs, nor take a topic away from its owner.
constexpr const char* kRoutesSql = R"sql(
SELECT n.nspname::text, c.relname::text, t.options ->> 'topic',
       c.relowner <> (SELECT c2.relowner
                        FROM pg2kafka.tracked_tables t2 JOIN pg_class c2 ON c2.oid = t2.relid
                       WHERE t2.options ->> 'topic' = t.options ->> 'topic'
                       ORDER BY t2.relid LIMIT 1)
  FROM pg2kafka.tracked_tables t
  JOIN pg_class c ON c.oid = t.relid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE t.options ? 'topic')sql";

// Parking (migration 012; sql/README.md "Parked events"). The message is stored as sent, and
// its uuid, key, statement and created_at are read from it, so a parked event is sent again
// byte for byte.
//   $1 schema, $2 table, $3 message (json), $4 batch id, $5 error
// A record parked before (its batch was read again after a crash) keeps its row.
constexpr const char* kParkSql = R"sql(
INSERT INTO pg2kafka.parked_events
       (uuid, table_schema, table_name, statement, external_id, message, created_at, batch_id,
        reason, error, attempts%EXTRA_COLUMNS%)
SELECT (m ->> 'uuid')::uuid, $1, $2, m ->> 'statement', m ->> 'external_id', m,
       (m ->> 'created_at')::timestamptz, $4, 'failed', $5, 1%EXTRA_VALUES%
  FROM (SELECT $3::json AS m) x
ON CONFLICT (uuid) DO UPDATE
   SET reason = 'failed', error = EXCLUDED.error, last_error_at = now(),
       attempts = pg2kafka.parked_events.attempts + 1)sql";

// A malformed queue row: the row itself. $1 batch id, $2 error.
constexpr const char* kParkMalformedSql = R"sql(
INSERT INTO pg2kafka.parked_events
       (uuid, table_schema, table_name, statement, external_id, malformed_row, created_at,
        batch_id, reason, error, attempts)
SELECT b.uuid, b.table_schema, b.table_name, b.statement, b.external_id, row_to_json(b),
       b.created_at, b.id, 'malformed', $2, 1
  FROM pg2kafka.event_batches b
 WHERE b.id = $1
ON CONFLICT (uuid) DO NOTHING)sql";

// A retried parked event failed again: $1 its row, $2 error. The requests of its key end with it
// (the events behind it wait for a new one).
constexpr const char* kReparkSql = R"sql(
WITH failed AS (
  UPDATE pg2kafka.parked_events
     SET reason = 'failed', error = $2, attempts = attempts + 1, last_error_at = now(),
         retry_requested_at = NULL, retry_requested_by = NULL
   WHERE id = $1
  RETURNING table_schema, table_name, external_id)
UPDATE pg2kafka.parked_events p
   SET retry_requested_at = NULL, retry_requested_by = NULL
  FROM failed f
 WHERE p.table_schema = f.table_schema AND p.table_name = f.table_name
   AND p.external_id IS NOT DISTINCT FROM f.external_id AND p.id <> $1
   AND p.retry_requested_at IS NOT NULL)sql";

// A retried event behind one of its key that failed again in the same round: held again, not
// requested any more. $1 its row, $2 why.
constexpr const char* kReholdSql = R"sql(
UPDATE pg2kafka.parked_events
   SET reason = 'held', error = $2, retry_requested_at = NULL, retry_requested_by = NULL
 WHERE id = $1)sql";

// An event of a parked key, held behind it: $1 schema, $2 table, $3 message, $4 batch id, $5
// why, $6 whether its key is being retried. It joins the key's retry when one is under way or
// asked for (a request recorded before the round took the key), so the key is not left stuck
// behind an event nobody asked for.
constexpr const char* kHoldSql = R"sql(
INSERT INTO pg2kafka.parked_events
       (uuid, table_schema, table_name, statement, external_id, message, created_at, batch_id,
        reason, error, attempts, retry_requested_at, retry_requested_by%EXTRA_COLUMNS%)
SELECT (m ->> 'uuid')::uuid, $1, $2, m ->> 'statement', m ->> 'external_id', m,
       (m ->> 'created_at')::timestamptz, $4, 'held', $5, 0,
       CASE WHEN q.joins THEN now() END,
       CASE WHEN q.joins THEN 'pg2kafka (held while its key was retried)' END%EXTRA_VALUES%
  FROM (SELECT $3::json AS m) x,
       LATERAL (SELECT $6 OR EXISTS (
                  SELECT FROM pg2kafka.parked_events r
                   WHERE r.table_schema = $1 AND r.table_name = $2
                     AND r.external_id IS NOT DISTINCT FROM x.m ->> 'external_id'
                     AND r.retry_requested_at IS NOT NULL) AS joins) q
ON CONFLICT (uuid) DO NOTHING)sql";

// The keys with parked events (a malformed row holds nothing back), each with its oldest
// event's uuid, and whether any of its events is to be retried.
constexpr const char* kParkedKeysSql = R"sql(
SELECT DISTINCT ON (table_schema, table_name, external_id)
       table_schema, table_name, external_id, uuid::text
  FROM pg2kafka.parked_events
 WHERE reason <> 'malformed'
 ORDER BY table_schema, table_name, external_id, id)sql";
enum ParkedKeyColumn : int { kPkSchema = 0, kPkTable, kPkKey, kPkHead };

// Keys whose oldest parked event (a malformed row holds nothing) is to be sent: one asked for,
// or one held behind an event that is gone (skipped), which nothing holds back any more.
#define P2K_RETRY_HEADS_SQL                                                                  \
  "WITH heads AS (SELECT DISTINCT ON (table_schema, table_name, external_id) table_schema, " \
  "table_name, external_id, (retry_requested_at IS NOT NULL OR reason = 'held') AS due "     \
  "FROM pg2kafka.parked_events WHERE reason <> 'malformed' "                                 \
  "ORDER BY table_schema, table_name, external_id, id) "
constexpr const char* kRetryRequestedSql =
    P2K_RETRY_HEADS_SQL "SELECT EXISTS (SELECT FROM heads WHERE due)";

// The parked events of those keys, each key's in park order.
constexpr const char* kRetryEventsSql = P2K_RETRY_HEADS_SQL R"sql(
SELECT p.id, p.table_schema, p.table_name, p.external_id, p.message::text, p.reason,
       p.retry_requested_at IS NOT NULL OR p.reason = 'held',
       floor(extract(epoch FROM p.created_at) * 1000)::int8, p.statement, p.uuid::text,
       %EXTRA_COLUMNS%
  FROM pg2kafka.parked_events p
  JOIN heads h ON h.due AND h.table_schema = p.table_schema AND h.table_name = p.table_name
              AND h.external_id IS NOT DISTINCT FROM p.external_id
 WHERE p.reason <> 'malformed'
 ORDER BY p.table_schema, p.table_name, p.external_id, p.id
 LIMIT 100000)sql";
#undef P2K_RETRY_HEADS_SQL
enum RetryColumn : int {
  kRtId = 0,
  kRtSchema,
  kRtTable,
  kRtKey,
  kRtMessage,
  kRtReason,
  kRtRequested,
  kRtCreatedMs,
  kRtStatement,
  kRtUuid,
  kRtHeaders,    // the record's provenance headers (migration 013), or NULL
  kRtTombstone,  // a tombstone: sent with a null value
};
// Parking records of tables with capture options (migration 013): their provenance headers
// (NULLIF(..., '')) and whether they are tombstones, given after the statement's own arguments
// ($6, $7 for kParkSql; $7, $8 for kHoldSql).
constexpr const char* kParkExtraColumns = ", headers, tombstone";
constexpr const char* kParkExtraValues = ", NULLIF($6, '')::jsonb, $7::bool";
constexpr const char* kHoldExtraValues = ", NULLIF($7, '')::jsonb, $8::bool";
constexpr const char* kRetryExtraColumns = "p.headers::text, p.tombstone";
constexpr const char* kRetryNoExtraColumns = "NULL::text, false";

// A window's snapshot and, read in that same snapshot, the largest id: every event visible in
// the snapshot is at or below it. (One statement: one round trip per window.)
// With backfills (migration 010), whether one is open too (a probe of a partial index that is
// empty but while one is).
constexpr const char* kSnapshotSql =
    "SELECT s::text, pg_snapshot_xmin(s)::text, "
    "(SELECT coalesce(max(id), 0) FROM pg2kafka.event_batches), false "
    "FROM pg_current_snapshot() s";
constexpr const char* kSnapshotBackfillsSql =
    "SELECT s::text, pg_snapshot_xmin(s)::text, "
    "(SELECT coalesce(max(id), 0) FROM pg2kafka.event_batches), "
    "EXISTS (SELECT FROM pg2kafka.backfills b WHERE b.state IN ('pending', 'running')) "
    "FROM pg_current_snapshot() s";
enum SnapshotColumn : int { kSnapshot = 0, kSnapshotXmin, kSnapshotMaxId, kSnapshotBackfill };

// Assigns (and at once commits) one transaction id: a horizon's transaction id.
constexpr const char* kXidSql = "SELECT pg_current_xact_id()::text";
// The largest id now (a horizon's floor).
constexpr const char* kMaxIdSql = "SELECT coalesce(max(id), 0) FROM pg2kafka.event_batches";

// The batches restored from another cluster's dump among the oldest 1000 (see prepare_session).
constexpr const char* kForeignTxidsSql =
    "SELECT count(*) FROM (SELECT txid FROM pg2kafka.event_batches ORDER BY id LIMIT 1000) b "
    "WHERE b.txid >= pg_snapshot_xmax(pg_current_snapshot())";

// Backfills (backfill.hpp; migration 010). The oldest open backfill, with its table's names as
// they are now, the key column's current name (the one its capture triggers key events by: by
// position, or by name when they were restored from a dump), the names of the columns its chunks
// follow (a JSON array), and why it cannot go on (NULL when it can).
constexpr const char* kBackfillNextSql = R"sql(
SELECT b.id, n.nspname::text, c.relname::text, ka.attname::text,
       (SELECT json_agg(a.attname ORDER BY k.n)
          FROM unnest(b.order_attnums) WITH ORDINALITY AS k(attnum, n)
          JOIN pg_attribute a ON a.attrelid = b.relid AND a.attnum = k.attnum
                             AND NOT a.attisdropped)::text,
       b.last_key::text, b.rows_done, b.rows_estimated,
       CASE WHEN c.oid IS NULL THEN 'its table was dropped'
            WHEN t.relid IS NULL THEN 'its table is no longer tracked' END,
       b.table_schema, b.table_name, %BACKFILL_OPTIONS%
  FROM pg2kafka.backfills b
  LEFT JOIN pg_class c ON c.oid = b.relid
  LEFT JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg2kafka.tracked_tables t ON t.relid = b.relid
  LEFT JOIN LATERAL (SELECT pg2kafka.trigger_arguments(g.tgargs, g.tgnargs) AS args
                      FROM pg_trigger g
                     WHERE g.tgrelid = b.relid AND g.tgname IN ('pg2kafka_insert', 'pg2kafka_row')
                     LIMIT 1) tr ON true
  LEFT JOIN pg_attribute ka
         ON ka.attrelid = b.relid AND ka.attnum > 0 AND NOT ka.attisdropped
        AND CASE WHEN tr.args[3]::oid = b.relid::oid THEN ka.attnum = tr.args[2]::smallint
                 ELSE ka.attname = tr.args[1] END
 WHERE b.state IN ('pending', 'running')
 ORDER BY b.id
 LIMIT 1)sql";
enum BackfillColumn : int {
  kBackfillId = 0,
  kBackfillSchema,
  kBackfillTable,
  kBackfillKeyColumn,
  kBackfillOrderColumns,
  kBackfillLastKey,
  kBackfillRowsDone,
  kBackfillRowsEstimated,
  kBackfillProblem,
  kBackfillSchemaThen,  // the names when it was asked for (the table may be gone)
  kBackfillTableThen,
  kBackfillKey,  // a composite key's column names (capture option "key", a JSON array), or NULL
};
// %BACKFILL_OPTIONS%: the table's composite key since migration 013.
constexpr const char* kCompositeKeyColumn = "(pg2kafka.current_options(t.relid) -> 'key')::text";
constexpr const char* kNoCompositeKeyColumn = "NULL::text";

// A chunk was delivered: the backfill's progress, absolute (so that a retried acknowledgement
// records the same), the rate ($5 rows/s) and the seconds left at it ($6), and its end with the
// last chunk. No row when it was cancelled or removed.
constexpr const char* kBackfillProgressSql = R"sql(
UPDATE pg2kafka.backfills
   SET state = CASE WHEN $4 THEN 'done' ELSE 'running' END, rows_done = $2,
       last_key = coalesce($3::text[], last_key), finished_at = CASE WHEN $4 THEN now() END,
       rows_per_second = $5::real,
       eta = CASE WHEN $4 THEN now() ELSE now() + make_interval(secs => $6::float8) END
 WHERE id = $1 AND state IN ('pending', 'running'))sql";

constexpr const char* kBackfillFailSql = R"sql(
UPDATE pg2kafka.backfills SET state = 'failed', error = $2, finished_at = now()
 WHERE id = $1 AND state IN ('pending', 'running'))sql";

}  // namespace pg2kafka::pg_outbox::queue_sql
