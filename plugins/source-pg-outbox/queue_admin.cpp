// `pg2kafka queue` for pg-outbox (plugin ABI 1.4, p2k_source_ops.queue): list, show, retry and
// skip events, on a connection made for the call. The answers are built by PostgreSQL
// (json_build_object) from the queue, pg2kafka.parked_events and the SQL functions of
// sql/functions/80_queue_admin.sql, which also decide what is allowed: a retry is a request the
// active instance carries out in order; a skip of a queued event is refused while an instance
// drains (it may have read the event already). Errors of the operator's making (an unknown id, a
// refused skip, a missing grant) are configuration errors (exit 2) that say what to do.
#include <string>

#include "outbox_source.hpp"
#include "queue_sql.hpp"
#include "schema.hpp"

namespace pg2kafka::pg_outbox {
namespace {

// The request's members, read by PostgreSQL's JSON parser.
constexpr const char* kRequestSql = R"sql(
SELECT r ->> 'command', r ->> 'event', r ->> 'table', coalesce((r ->> 'parked')::boolean, false),
       coalesce((r ->> 'limit')::integer, 100), coalesce((r ->> 'all')::boolean, false)
  FROM (SELECT $1::json AS r) x)sql";

// Whether `$1` ("schema.table" or "table", NULL: any) names the event's table.
constexpr const char* kTableMatch =
    "($1::text IS NULL OR %S || '.' || %T = $1 OR (strpos($1, '.') = 0 AND %T = $1))";

std::string table_match(const std::string& schema, const std::string& table) {
  return queue_sql::replace_all(queue_sql::replace_all(kTableMatch, "%S", schema), "%T", table);
}

// list: $1 table or NULL, $2 parked only, $3 limit.
std::string list_sql() {
  return R"sql(
SELECT json_build_object(
  'database', current_database(),
  'queued_events', CASE WHEN NOT $2 THEN (SELECT coalesce(sum(b.events), 0)
                     FROM pg2kafka.event_batches b WHERE )sql" +
         table_match("b.table_schema", "b.table_name") + R"sql() END,
  'queued', CASE WHEN NOT $2 THEN (SELECT coalesce(json_agg(q ORDER BY q.id), '[]')
     FROM (SELECT e.id, e.uuid AS event_id, e.table_schema || '.' || e.table_name AS "table",
                  e.statement, e.external_id AS key, e.created_at,
                  octet_length(e.data::text) AS data_bytes
             FROM pg2kafka.outbound_event_queue e
            WHERE e.batch_id IN (SELECT b.id FROM pg2kafka.event_batches b WHERE )sql" +
         table_match("b.table_schema", "b.table_name") + R"sql(
                                  ORDER BY b.id LIMIT $3)
              AND )sql" +
         table_match("e.table_schema", "e.table_name") + R"sql(
            ORDER BY e.id LIMIT $3) q) END,
  'parked_events', (SELECT count(*) FROM pg2kafka.parked_events p WHERE )sql" +
         table_match("p.table_schema", "p.table_name") + R"sql(),
  'parked', (SELECT coalesce(json_agg(q ORDER BY q.park_order), '[]')
     FROM (SELECT p.id AS park_order, p.uuid AS event_id,
                  p.table_schema || '.' || p.table_name AS "table", p.statement,
                  p.external_id AS key, p.reason, p.attempts, p.parked_at,
                  p.retry_requested_at IS NOT NULL AS retry_requested,
                  left(p.error, 160) AS error
             FROM pg2kafka.parked_events p
            WHERE )sql" +
         table_match("p.table_schema", "p.table_name") + R"sql(
            ORDER BY p.id LIMIT $3) q))::text)sql";
}

// show: $1 the event id. A parked event, else a queued one (found through its batch's uuid: an
// event's uuid shares its first 96 bits with its batch's), else NULL.
constexpr const char* kShowSql = R"sql(
SELECT coalesce(
  (SELECT json_build_object(
            'event_id', p.uuid, 'state', 'parked', 'table', p.table_schema || '.' || p.table_name,
            'statement', p.statement, 'key', p.external_id, 'created_at', p.created_at,
            'reason', p.reason, 'error', p.error, 'attempts', p.attempts,
            'parked_at', p.parked_at, 'last_error_at', p.last_error_at,
            'retry_requested_at', p.retry_requested_at,
            'retry_requested_by', p.retry_requested_by, 'batch_id', p.batch_id,
            'message', p.message, 'malformed_row', p.malformed_row)
     FROM pg2kafka.parked_events p WHERE p.uuid = $1::uuid),
  (SELECT json_build_object(
            'event_id', e.uuid, 'state', 'queued', 'id', e.id,
            'table', e.table_schema || '.' || e.table_name, 'statement', e.statement,
            'key', e.external_id, 'created_at', e.created_at, 'batch_id', e.batch_id,
            'batch_index', e.batch_index, 'data', e.data)
     FROM pg2kafka.outbound_event_queue e
    WHERE e.batch_id IN (SELECT b.id FROM pg2kafka.event_batches b
                          WHERE substr(uuid_send(b.uuid), 1, 12) = substr(uuid_send($1::uuid), 1, 12))
      AND e.uuid = $1::uuid))::text)sql";

// Who drains now: the session holding the drain lock (pg2kafka.drain_lock_holder()).
constexpr const char* kDrainerSql = R"sql(
SELECT (SELECT a.pid::text || coalesce(' (' || nullif(a.application_name, '') || ')', '')
          FROM pg_stat_activity a WHERE a.pid = h.pid), h.pid IS NOT NULL
  FROM (SELECT pg2kafka.drain_lock_holder() AS pid) h)sql";

// The schemas of parked events of a table named without its schema.
constexpr const char* kTableSchemasSql =
    "SELECT DISTINCT table_schema FROM pg2kafka.parked_events WHERE table_name = $1 ORDER BY 1";

}  // namespace

std::string OutboxSource::queue(const std::string& request) {
  try {
    PgConnection conn(config_.connection, config_.application_name + "/queue", nullptr, nullptr,
                      &interrupter_);
    conn.set_reply_timeout(config_.reply_timeout());
    if (config_.statement_timeout.count() > 0)
      conn.exec("SET statement_timeout = " + std::to_string(config_.statement_timeout.count()));
    SchemaVersion installed = installed_schema(conn);
    if (installed.migrations < 12 || installed.functions < 7)
      throw sdk::ConfigError(
          "the pg2kafka schema of this database is too old for queue administration (it needs "
          "migration 012 and function set 7; it has " +
          std::to_string(installed.migrations) + " and " + std::to_string(installed.functions) +
          "): upgrade it (perform_migrations=true, or psql --single-transaction -v "
          "ON_ERROR_STOP=1 -f sql/install.sql)");
    auto r = conn.exec_params(kRequestSql, {0}, {request});
    std::string command(r.text(0, 0));
    std::optional<std::string> event = r.optional_text(0, 1), table = r.optional_text(0, 2);
    bool parked = r.boolean(0, 3), all = r.boolean(0, 5);
    std::string limit(r.text(0, 4));

    if (command == "list")
      return std::string(
          conn.exec_params(list_sql(), {0, 16, 23}, {table, parked ? "true" : "false", limit})
              .text(0, 0));
    if (command == "show") {
      auto shown = conn.exec_params(kShowSql, {0}, {event});
      if (shown.is_null(0, 0))
        throw sdk::ConfigError("no queued or parked event has id " + event.value_or("") +
                               " (pg2kafka queue list shows the events waiting)");
      return std::string(shown.text(0, 0));
    }
    auto drainer = conn.exec(kDrainerSql);
    std::optional<std::string> drained_by = drainer.optional_text(0, 0);
    if (command == "skip") {
      auto was = conn.exec_params("SELECT pg2kafka.skip_event($1::uuid, 'pg2kafka queue skip')",
                                  {0}, {event});
      std::string out = "{\"skipped\":";
      sdk::append_json_string(out, event.value_or(""));
      out += ",\"was\":";
      sdk::append_json_string(out, was.text(0, 0));
      out += ",\"recorded_in\":\"pg2kafka.queue_audit\"}";
      return out;
    }
    if (command == "retry") {
      PgResult done(nullptr);
      if (event) {
        done = conn.exec_params("SELECT pg2kafka.retry_event($1::uuid)", {0}, {event});
      } else if (all) {
        done = conn.exec("SELECT pg2kafka.retry_all()");
      } else {
        std::string schema, name = table.value_or("");
        if (auto dot = name.find('.'); dot != std::string::npos) {
          schema = name.substr(0, dot);
          name = name.substr(dot + 1);
        } else {
          auto schemas = conn.exec_params(kTableSchemasSql, {0}, {name});
          if (schemas.rows() > 1)
            throw sdk::ConfigError("tables named '" + name +
                                   "' of several schemas have parked events: name one as "
                                   "schema.table");
          if (schemas.rows() == 1) schema = std::string(schemas.text(0, 0));
        }
        done = conn.exec_params("SELECT pg2kafka.retry_table($1, $2)", {0, 0}, {schema, name});
      }
      int64_t n = done.int64(0, 0);
      if (n == 0 && !event)
        throw sdk::ConfigError(all ? "no parked event to retry (pg2kafka queue list --parked)"
                                   : "table " + table.value_or("") +
                                         " has no parked event to retry (pg2kafka queue list "
                                         "--parked)");
      std::string out = "{\"retry_requested\":" + std::to_string(n) + ",\"delivered_by\":";
      if (drained_by) {
        sdk::append_json_string(
            out, "the running pg2kafka, session " + *drained_by + ", within a second or so");
      } else {
        out += "\"the next pg2kafka to drain this database (none does now)\"";
      }
      out +=
          ",\"order\":\"each key's parked events go in the order they were parked, before any "
          "later event of the key; an event that fails again is parked again and stops its "
          "key\"}";
      return out;
    }
    throw sdk::FatalError("unknown queue command '" + command + "': use list, show, retry or skip");
  } catch (const PgConnectError& e) {
    if (e.permanent()) throw sdk::ConfigError(std::string(e.what()));
    throw sdk::RetryError(std::string(e.what()));
  } catch (const PgInterrupted&) {
    throw sdk::RetryError("interrupted while administering the queue");
  } catch (const PgError& e) {
    const std::string& state = e.sqlstate();
    // The operator's to fix: a wrong id, a refusal of the SQL functions, a missing grant.
    if (state == "P0002" || state == "55P03" || state == "22P02" || state == "P0001" ||
        state == "55000")
      throw sdk::ConfigError(std::string(e.what()));
    if (state == "42501")
      throw sdk::ConfigError(std::string(e.what()) +
                             " (the pipeline's role needs the operator grants of sql/README.md, "
                             "\"Security model\", to administer the queue)");
    if (e.transient() || e.connection_lost())
      throw sdk::RetryError(std::string("administering the queue: ") + e.what());
    throw sdk::FatalError(std::string("administering the queue: ") + e.what());
  }
}

}  // namespace pg2kafka::pg_outbox
