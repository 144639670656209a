// Helpers for the pg-outbox tests: a database of one's own on the `postgres` fixture cluster, a
// plain libpq session for the test's own SQL, and a source instance built like the host would.
#pragma once

#include <libpq-fe.h>

#include <boost/json.hpp>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "outbox_source.hpp"

namespace p2k_pg_test {

// The fixture's base URL without the database: postgresql://postgres@127.0.0.1:<port>
std::string server_url();
std::string url_for(const std::string& database);

// A program of the fixture's PostgreSQL installation (psql, pg_dump, pg_restore).
std::string pg_tool(const std::string& name);
// pg_dump -Fc of the database at `from`, restored with pg_restore --exit-on-error into the one at
// `to`: "" when both succeeded, else the failing program's standard error.
std::string dump_and_restore(const std::string& from, const std::string& to);

// Crash-restarts the fixture's cluster (pg_ctl restart -m immediate); throws std::runtime_error
// when pg_ctl fails. Tests that call it must run alone (RUN_SERIAL): every session is cut.
void restart_cluster();

// A raw libpq session (tests need asynchronous queries, which the plugin's wrapper lacks).
class Session {
 public:
  explicit Session(const std::string& url);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Runs SQL; fails the test (throws std::runtime_error) on error.
  void exec(const std::string& sql);
  // Runs SQL and returns the error message, or "" when it succeeded.
  std::string try_exec(const std::string& sql);
  // First column of the first row (std::nullopt for NULL or no row).
  std::optional<std::string> scalar(const std::string& sql);
  std::string value(const std::string& sql);  // like scalar, throws on NULL
  std::vector<std::vector<std::optional<std::string>>> rows(const std::string& sql);

  // Asynchronous: send, then wait for completion (returns the error message, "" on success).
  void send(const std::string& sql);
  bool busy();  // true while the sent query still runs
  std::string finish();
  int pid() const { return PQbackendPID(conn_); }

 private:
  PGconn* conn_;
};

// CREATE DATABASE with a unique name (from the running test's name); DROP ... WITH (FORCE) at the
// end. Optionally installs the schema (install_schema_sql).
class TestDatabase {
 public:
  explicit TestDatabase(bool install_schema = true);
  ~TestDatabase();
  const std::string& name() const { return name_; }
  std::string url() const { return url_for(name_); }
  Session& sql() { return *session_; }

 private:
  std::string name_;
  std::unique_ptr<Session> session_;
};

// A LOGIN role of the test cluster with no grant of its own (roles are cluster-wide: the name is
// unique per run), dropped with everything it owns at the end.
class TestRole {
 public:
  TestRole(const TestDatabase& db, const std::string& purpose);
  ~TestRole();
  TestRole(const TestRole&) = delete;
  TestRole& operator=(const TestRole&) = delete;
  const std::string& name() const { return name_; }
  std::string url() const;  // the test database, as this role

 private:
  const TestDatabase& db_;
  std::string name_;
};

// The embedded SQL, each file in a transaction of its own as psql --single-transaction would:
// the migrations up to `version`; the function set; both (the whole schema).
void apply_migrations_up_to(Session& sql, int version);
void apply_function_set(Session& sql);
void install_schema_sql(Session& sql);

// The seed README's table: products (id bigserial, sku, name) with CM01-R and CM01-B.
void seed_products(Session& sql);

// CREATE TABLE <name> (k text, v int), tracked with key column k (what insert_one_by_one fills).
void tracked_table(Session& sql, const std::string& name = "t");

// Pending events: the sum of pg2kafka.event_batches.events, as text.
std::string queued_events(Session& sql);

// INSERT INTO t (k, v) VALUES ('k<i>', i) for i in [from, to], one statement (so one batch)
// each.
void insert_one_by_one(Session& sql, int from, int to, const std::string& table = "t");

// Collects log lines from a source.
struct LogSink {
  std::mutex mutex;
  std::vector<std::string> lines;
  p2k_host host{};
  LogSink();
  std::string all();
};

// A source with the plugin's defaults (normalised as the host passes them) and overrides.
std::unique_ptr<pg2kafka::pg_outbox::OutboxSource> make_source(
    const std::string& url, const std::map<std::string, std::string>& overrides = {},
    LogSink* logs = nullptr);

struct Event {
  uint64_t position;
  std::string topic;
  std::optional<std::string> key;
  std::string value;
  std::string id;
  int64_t timestamp_ms;
  std::map<std::string, std::string> headers;
  bool null_value = false;   // a tombstone (ABI 1.5): `value` is empty and `json` too
  boost::json::object json;  // the parsed value
  std::string statement() const { return std::string(json.at("statement").as_string()); }
  const boost::json::value& data() const { return json.at("data"); }
};

std::vector<Event> to_events(pg2kafka::sdk::RecordBatch& batch);

// The keys of the events that have one.
std::set<std::string> keys_of(const std::vector<Event>& events);

// One line per event, for comparing whole streams: "<table> <statement> <key or null> <data>",
// the table being the topic's last part.
std::vector<std::string> describe(const std::vector<Event>& events);

// Polls (retrying RetryError for up to `patience`) until a poll comes back empty; acks everything
// returned when `ack` is true.
std::vector<Event> drain(pg2kafka::pg_outbox::OutboxSource& source, bool ack = true,
                         std::chrono::seconds patience = std::chrono::seconds(30));
// Polls until at least `count` events arrived (retrying RetryError) or `patience` ran out.
std::vector<Event> poll_until(pg2kafka::pg_outbox::OutboxSource& source, size_t count,
                              bool ack = true,
                              std::chrono::seconds patience = std::chrono::seconds(30));

}  // namespace p2k_pg_test
