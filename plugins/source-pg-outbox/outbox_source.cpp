#include "outbox_source.hpp"

#include <algorithm>
#include <cstdio>

#include "batch.hpp"
#include "queue_sql.hpp"
#include "schema.hpp"

namespace pg2kafka::pg_outbox {

namespace {

using namespace queue_sql;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// pg_advisory_lock(kLockClass, kDrainLock) elects the active drainer (1882352481 is 'p2ka'; lock
// 1 of that class serialises installers, see schema.cpp).
constexpr const char* kLockClass = "1882352481";
constexpr const char* kDrainLock = "2";

constexpr milliseconds kPurgeInterval{60'000};
// After events were found, the queue is looked at every min_poll_interval for this long before
// the wait starts doubling towards poll_interval.
constexpr milliseconds kBusySpell{1'000};
constexpr int kPurgeBatch = 10'000;
// Reconnects wait 200 ms, doubling up to 10 s.
constexpr milliseconds kReconnectInitialBackoff{200};
constexpr milliseconds kMaxReconnectBackoff{10'000};
// Backfills: how long a chunk that could not be read for a passing reason (a lost connection, a
// lock or statement timeout) waits before the next try (doubling from the first), how often
// progress is logged, and how many chunks may be in the ledger at once.
constexpr milliseconds kChunkRetryWait{1'000};
constexpr milliseconds kMaxChunkRetryWait{30'000};
constexpr milliseconds kBackfillLogInterval{5'000};
constexpr size_t kMaxChunksInFlight = 2;
// Parking: how often the active instance looks for retry requests while keys are parked, and
// how often it reads the parked keys again (an operator may have skipped a key's last event).
constexpr milliseconds kRetryCheckInterval{1'000};
constexpr milliseconds kParkedKeysInterval{10'000};

// The scope a parked event holds back: its table and key (a null key is a key of its own).
std::string park_scope(std::string_view schema, std::string_view table,
                       const std::optional<std::string_view>& key) {
  std::string s;
  s.reserve(schema.size() + table.size() + (key ? key->size() : 0) + 3);
  s.append(schema).append(1, '\0').append(table).append(1, '\0');
  if (key)
    s.append(1, '1').append(*key);
  else
    s.append(1, '0');
  return s;
}

// Integers as an array's text, {1,4}: a parameter for `= ANY($1)`, or a literal.
std::string int_array(const std::vector<int64_t>& values) {
  std::string out = "{";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) out += ',';
    out += std::to_string(values[i]);
  }
  return out + '}';
}

// {1,4} (an integer array's text) as its elements.
std::vector<uint32_t> parse_index_array(std::string_view text) {
  std::vector<uint32_t> out;
  uint32_t v = 0;
  bool in = false;
  for (char c : text) {
    if (c >= '0' && c <= '9') {
      v = v * 10 + static_cast<uint32_t>(c - '0');
      in = true;
    } else {
      if (in) out.push_back(v);
      v = 0;
      in = false;
    }
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
// The source
// ---------------------------------------------------------------------------------------------

namespace {
// The metrics endpoint reads the drainers too: /readyz of a standby names the active instance.
MonitorSettings monitor_settings(const OutboxConfig& config) {
  MonitorSettings m;
  m.interval = config.monitor_interval;
  m.with_sessions = true;
  return m;
}
}  // namespace

OutboxSource::OutboxSource(sdk::Host host, const sdk::Options& options)
    : host_(host),
      config_(OutboxConfig::from(options)),
      target_(config_.connection.target),
      monitor_(
          config_, [host](p2k_log_level level, std::string message) { host.log(level, message); },
          monitor_settings(config_)),
      reconnect_backoff_(kReconnectInitialBackoff, kMaxReconnectBackoff) {}

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
    reconnect_backoff_.reset();
    target_ = conn_->target() + config_.connection.origins;
  } catch (const PgInterrupted&) {
    throw_interrupted("connecting to PostgreSQL at " + config_.connection.target);
  } catch (const PgConnectError& e) {
    if (e.permanent()) throw sdk::ConfigError(std::string(e.what()));
    next_connect_at_ = Clock::now() + reconnect_backoff_.next();
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
    conn_->set_reply_timeout(config_.reply_timeout());
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
    auto foreign = conn_->exec(kForeignTxidsSql);
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

    backfills_ = installed.migrations >= 10;
    conn_->prepare("p2k_snapshot", backfills_ ? kSnapshotBackfillsSql : kSnapshotSql, {});
    conn_->prepare("p2k_xid", kXidSql, {});
    conn_->prepare("p2k_max_id", kMaxIdSql, {});
    std::string bytes = installed.migrations >= 6
                            ? std::string("coalesce(b.data_bytes, ") + kStoredBytes + ")"
                            : std::string(kStoredBytes);
    std::string fetch = replace_all(kFetchSql, "%BYTES%", bytes);
    // Skipped events (migration 012) are left out whatever the role; parking needs its grants,
    // which a pipeline that never parks may do without (README, the drainer's grants).
    schema_parks_ = installed.migrations >= 12;
    // Each grant parking uses (has_table_privilege with a list is true for any one of them).
    parking_ = schema_parks_ &&
               conn_
                   ->exec(
                       "SELECT has_table_privilege('pg2kafka.parked_events', 'SELECT') "
                       "AND has_table_privilege('pg2kafka.parked_events', 'INSERT') "
                       "AND has_table_privilege('pg2kafka.parked_events', 'DELETE') "
                       "AND has_column_privilege('pg2kafka.parked_events', 'delivered_at', "
                       "'UPDATE') "
                       "AND has_column_privilege('pg2kafka.parked_events', 'retry_requested_at', "
                       "'UPDATE') "
                       "AND has_column_privilege('pg2kafka.queue_audit', 'event_uuid', 'INSERT')")
                   .boolean(0, 0);
    if (schema_parks_ && !parking_ && !parking_note_logged_) {
      parking_note_logged_ = true;
      host_.info(
          "this role may not read and write pg2kafka.parked_events: parking events that cannot "
          "be delivered (on_permanent_failure=park) is unavailable until it is granted (README, "
          "\"parking undeliverable events\")");
    }
    fetch = replace_all(fetch, "%SKIPPED%", schema_parks_ ? kSkippedColumn : kNoSkippedColumn);
    capture_options_ = installed.migrations >= 13;
    fetch = replace_all(fetch, "%OPTIONS%", capture_options_ ? kOptionsColumns : kNoOptionsColumns);
    if (parking_) {
      auto extra = [&](std::string sql, const char* values) {
        sql = replace_all(sql, "%EXTRA_COLUMNS%", capture_options_ ? kParkExtraColumns : "");
        return replace_all(sql, "%EXTRA_VALUES%", capture_options_ ? values : "");
      };
      conn_->prepare("p2k_park", extra(kParkSql, kParkExtraValues), {0, 0, 0, kOidInt8, 0});
      conn_->prepare("p2k_park_malformed", kParkMalformedSql, {kOidInt8, 0});
      conn_->prepare("p2k_repark", kReparkSql, {kOidInt8, 0});
      conn_->prepare("p2k_rehold", kReholdSql, {kOidInt8, 0});
      conn_->prepare("p2k_hold", extra(kHoldSql, kHoldExtraValues), {0, 0, 0, kOidInt8, 0, 16});
      conn_->prepare("p2k_parked_keys", kParkedKeysSql, {});
      conn_->prepare("p2k_retry_requested", kRetryRequestedSql, {});
      conn_->prepare("p2k_retry_events",
                     replace_all(kRetryEventsSql, "%EXTRA_COLUMNS%",
                                 capture_options_ ? kRetryExtraColumns : kRetryNoExtraColumns),
                     {});
    }
    parked_keys_loaded_ = false;
    conn_->prepare("p2k_fetch", fetch,
                   {kOidPgSnapshot, kOidPgSnapshot, kOidInt8, kOidInt8, kOidInt8, kOidInt8});
    std::string ack_keep = replace_all(kAckKeepSql, "%SKIPPED%", schema_parks_ ? ", skipped" : "");
    ack_keep = replace_all(ack_keep, "%OPTIONS%", capture_options_ ? ", options, headers" : "");
    conn_->prepare(
        "p2k_ack",
        config_.acknowledged == OutboxConfig::Acknowledged::kKeep ? ack_keep : kAckDeleteSql,
        {kOidInt8Array});
    conn_->prepare(
        "p2k_lock",
        std::string("SELECT pg_try_advisory_lock(") + kLockClass + ", " + kDrainLock + ")", {});
    if (config_.acknowledged == OutboxConfig::Acknowledged::kKeep) {
      std::string purge = kPurgeSql;
      purge.replace(purge.find("%MAX%"), 5, std::to_string(kMaxRetentionMs));
      conn_->prepare("p2k_purge", purge, {kOidInt8, kOidInt8});
    }
    if (backfills_) {
      conn_->prepare("p2k_backfill_next",
                     replace_all(kBackfillNextSql, "%BACKFILL_OPTIONS%",
                                 capture_options_ ? kCompositeKeyColumn : kNoCompositeKeyColumn),
                     {});
      conn_->prepare("p2k_backfill_progress", kBackfillProgressSql,
                     {kOidInt8, kOidInt8, 0, 0, 0, 0});
      conn_->prepare("p2k_backfill_fail", kBackfillFailSql, {kOidInt8, 0});
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
  connected_ = false;
  timeouts_set_ = false;
  if (active_ && warn)
    host_.warn(
        "the connection holding the drain lock is gone; another instance may "
        "take over");
  active_ = false;
  standby_logged_ = false;
  window_.reset();
  // A chunk read for a window that is gone is read again; the backfill resumes from what
  // pg2kafka.backfills says (chunks in the ledger still record their delivery).
  chunk_.reset();
  backfill_.reset();
  if (backfill_reader_) backfill_reader_->close();
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
  connected_ = true;
  reconnects_.add();
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
  connected_ = true;
  host_.info("connected to PostgreSQL at " + target_);
  try_become_active();
}

void OutboxSource::try_become_active() {
  if (active_) return;
  bool got = guarded("taking the drain lock",
                     [&] { return conn_->exec_prepared("p2k_lock", {}).boolean(0, 0); });
  if (got) {
    active_ = true;
    parked_keys_loaded_ = false;  // another instance may have parked events meanwhile
    for (auto& [scope, key] : parked_keys_) key.retrying = false;
    active_since_ms_ = std::chrono::duration_cast<milliseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
    standby_logged_ = false;
    window_.reset();
    chunk_.reset();
    backfill_.reset();
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

const TableNames& OutboxSource::names_for(const std::string& schema, const std::string& table) {
  auto key = std::make_pair(schema, table);
  auto it = tables_.find(key);
  if (it == tables_.end())
    it =
        tables_.emplace(key, TableNames{topic_for(key), schema + "." + table, schema, table}).first;
  return it->second;
}

std::string OutboxSource::topic_for(const std::pair<std::string, std::string>& table) const {
  auto route = routes_.find(table);
  if (route != routes_.end()) return route->second;
  return topic_name(config_.topic_namespace, database_, table.first, table.second);
}

// Capture options
// ---------------------------------------------------------------------------------------------

const BatchOptions* OutboxSource::batch_options(std::string_view text) {
  auto it = batch_options_.find(text);
  if (it != batch_options_.end()) return &it->second;
  BatchOptions parsed = parse_batch_options(text);  // throws for a malformed row
  if (parsed.key.empty() && !parsed.full_update && parsed.before == BatchOptions::Before::kNone &&
      !parsed.delete_rows && !parsed.key_change_delete && !parsed.tombstones)
    return nullptr;  // "{}" or only what the queue's triggers read: the original's shapes
  if (batch_options_.size() >= 1000) batch_options_.clear();  // rows forged by hand, at worst
  return &batch_options_.emplace(std::string(text), std::move(parsed)).first->second;
}

// Headers pg2kafka.<name> from the provenance object that the queue's trigger wrote (strings of
// at most 1024 bytes, at most 5 + 16 of them); bounded here too, as any input.
std::shared_ptr<const OutboxSource::HeaderList> OutboxSource::provenance_headers(
    std::string_view text) {
  constexpr size_t kMaxHeaders = 32, kMaxValue = 1024;
  // Names that pg2kafka's own headers use (the kafka sink's event id, dead letters' metadata):
  // never taken from the database, where a writer chose them.
  static const std::set<std::string, std::less<>> kReserved = {
      "id", "event_id", "error", "reason", "original_topic", "value_omitted", "value_size"};
  std::vector<std::pair<std::string_view, std::string_view>> members;
  if (!split_members(text, members)) throw std::invalid_argument("its headers are not an object");
  auto out = std::make_shared<HeaderList>();
  for (const auto& [name, value] : members) {
    if (out->size() == kMaxHeaders) break;
    auto n = json_scalar_text(name);
    auto v = json_scalar_text(value);
    if (!n || !v || n->empty() || n->size() > 63 || kReserved.count(*n)) continue;
    if (v->size() > kMaxValue) {
      size_t cut = kMaxValue;
      while (cut > 0 && (static_cast<unsigned char>((*v)[cut]) & 0xC0) == 0x80) --cut;
      v->resize(cut);  // at a character boundary
    }
    out->emplace_back("pg2kafka." + *n, std::move(*v));
  }
  return out;
}

namespace {
// The provenance headers (pg2kafka.<name>) of a record as parked_events.headers keeps them: an
// object of <name>: value, or nullopt when there are none.
std::optional<std::string> headers_object(
    const std::vector<std::pair<std::string_view, std::string_view>>& headers) {
  std::string out;
  for (const auto& [name, value] : headers) {
    if (name.rfind("pg2kafka.", 0) != 0) continue;
    out += out.empty() ? "{" : ",";
    sdk::append_json_string(out, name.substr(9));
    out += ':';
    sdk::append_json_string(out, value);
  }
  if (out.empty()) return std::nullopt;
  return out + "}";
}

// The arguments that p2k_park and p2k_hold take since migration 013: the record's provenance
// headers and whether it is a tombstone.
void add_capture_arguments(
    std::vector<std::optional<std::string>>& args,
    const std::vector<std::pair<std::string_view, std::string_view>>& headers, bool tombstone) {
  args.push_back(headers_object(headers));
  args.push_back(tombstone ? "true" : "false");
}

// A name from the database as a log line may show it: printable ASCII, at most 100 bytes.
std::string sanitize_log(std::string_view text) {
  std::string out(text.substr(0, 100));
  for (char& c : out)
    if (c < 0x20 || c > 0x7e) c = '?';
  return out;
}
}  // namespace

void OutboxSource::refresh_routes(bool now) {
  if (!capture_options_) return;
  auto at = Clock::now();
  if (!now && at < next_routes_at_) return;
  next_routes_at_ = at + std::chrono::seconds(1);
  auto rows = guarded("reading the tables' topics", [&] { return conn_->exec(kRoutesSql); });
  std::map<std::pair<std::string, std::string>, std::string> routes;
  for (int i = 0; i < rows.rows(); ++i) {
    std::string schema(rows.text(i, 0)), table(rows.text(i, 1)), topic(rows.text(i, 2));
    std::string fallback = topic_name(config_.topic_namespace, database_, schema, table);
    // The registry can be written around pg2kafka.configure: its rules are checked again.
    std::string why;
    std::string kafka_form = topic;  // Kafka takes '.' and '_' for the same in topic names
    std::replace(kafka_form.begin(), kafka_form.end(), '.', '_');
    if (rows.boolean(i, 3))
      why = "a table of another owner named it first";
    else if (kafka_form.rfind("pg2kafka_", 0) == 0 && topic != fallback)
      why = "topics named pg2kafka.* are those of other tables";
    else if (topic.empty() || topic.size() > 249 || topic == "." || topic == ".." ||
             topic.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                     "0123456789._-") != std::string::npos)
      why = "it is not a valid Kafka topic name";
    if (!why.empty()) {
      if (refused_routes_.insert(schema + "." + table + " " + topic).second)
        host_.warn("table " + schema + "." + table + " names topic \"" + sanitize_log(topic) +
                   "\", which is refused (" + why + "): its events go to " + fallback +
                   ". Set another with pg2kafka.configure(table, '{\"topic\": ...}').");
      continue;
    }
    routes.emplace(std::make_pair(std::move(schema), std::move(table)), std::move(topic));
  }
  if (routes == routes_) return;
  routes_ = std::move(routes);
  // Events not yet returned take the new topic (each record copies its topic when returned).
  for (auto& [key, names] : tables_) names.topic = topic_for(key);
}

// Horizons bound where a new window's scan starts (DrainWindow::start_id).
void OutboxSource::maybe_take_horizon() {
  if (!window_.horizon_due(Clock::now())) return;
  int64_t floor = conn_->exec_prepared("p2k_max_id", {}).int64(0, 0);
  uint64_t xid = std::stoull(std::string(conn_->exec_prepared("p2k_xid", {}).text(0, 0)));
  window_.add_horizon(xid, floor);
}

std::unique_ptr<sdk::RecordBatch> OutboxSource::fetch(size_t limit) {
  const std::string limit_text = std::to_string(limit);
  const std::string bytes_text = std::to_string(config_.batch_bytes);
  paced_ = false;
  while (true) {
    bool fresh = false;
    if (!window_.reading()) {
      auto now = Clock::now();
      if (now < next_window_at_) {
        paced_ = true;
        return std::make_unique<sdk::RecordBatch>();
      }
      window_began_at_ = now;
      maybe_log_backfill(now);
      if (parking_) maybe_retry_parked(now);
      refresh_routes(false);
      guarded("taking a horizon", [&] {
        maybe_take_horizon();
        return 0;
      });
      bool backfill_open = false;
      // A window ends at the largest id once its snapshot is taken, so a page never scans on
      // through events committed after it. A backfill's chunk is read in a snapshot of its own,
      // which then bounds this window.
      if (!(chunk_due(now) && read_chunk(now))) {
        guarded("taking a snapshot", [&] {
          auto snap = conn_->exec_prepared("p2k_snapshot", {});
          window_.start(std::string(snap.text(0, kSnapshot)),
                        std::stoull(std::string(snap.text(0, kSnapshotXmin))),
                        snap.int64(0, kSnapshotMaxId));
          backfill_open = snap.boolean(0, kSnapshotBackfill);
          return 0;
        });
        // Its chunks start with the next window (poll then does not report an empty queue).
        if (backfill_open) maybe_load_backfill();
      }
      fresh = true;
    }
    auto rows = guarded("reading the queue", [&] {
      return conn_->exec_prepared(
          "p2k_fetch", {window_.previous(), window_.current(), std::to_string(window_.after_id()),
                        limit_text, std::to_string(window_.max_id()), bytes_text});
    });
    // Fewer events than asked for, without reaching the byte budget, means the page did not
    // stop early, so the window is done (every batch holds at least one event).
    bool cut_by_bytes = false;
    int64_t events = add_pending(rows, cut_by_bytes);
    bool window_done = !cut_by_bytes && events < static_cast<int64_t>(limit);
    if (window_done) {
      window_.finish();
      if (chunk_) queue_chunk();
      next_window_at_ = window_began_at_ + config_.min_poll_interval;
    }
    if (ledger_.has_pending()) return take_records(limit);
    // Nothing new: stop when a fresh window was empty; otherwise the window ended (a new one
    // may hold more) or a whole page was our own in-flight events: keep reading.
    if (window_done && fresh) return std::make_unique<sdk::RecordBatch>();
  }
}

int64_t OutboxSource::add_pending(const PgResult& rows, bool& cut_by_bytes) {
  int64_t events = 0;
  std::vector<int64_t> empty_batches;
  for (int i = 0; i < rows.rows(); ++i) {
    if (rows.boolean(i, kOverBudget)) {
      cut_by_bytes = true;
      break;
    }
    int64_t id = rows.int64(i, kId);
    events += rows.int64(i, kEvents);
    window_.read(id);
    if (ledger_.holds(id)) continue;
    BatchRow row;
    row.uuid = rows.text(i, kUuid);
    if (!rows.is_null(i, kKeyColumn)) row.key_column = rows.text(i, kKeyColumn);
    if (!rows.is_null(i, kExternalId)) row.external_id = rows.text(i, kExternalId);
    std::string schema(rows.text(i, kTableSchema));
    std::string table(rows.text(i, kTableName));
    row.statement = rows.text(i, kStatement);
    row.events = rows.int64(i, kEvents);
    if (!rows.is_null(i, kData)) row.data = rows.text(i, kData);
    if (!rows.is_null(i, kOldData)) row.old_data = rows.text(i, kOldData);
    int64_t created_us = rows.int64(i, kCreatedAtMicros);
    std::vector<BatchEvent> batch_events;
    std::string mismatch;
    std::shared_ptr<const HeaderList> headers;
    try {
      if (!rows.is_null(i, kOptions)) row.options = batch_options(rows.text(i, kOptions));
      if (!rows.is_null(i, kHeaders)) headers = provenance_headers(rows.text(i, kHeaders));
      batch_events = expand_batch(row, &mismatch);
    } catch (const std::invalid_argument& e) {
      // Only a hand-made row can look like this. It goes to the host as one unusable record
      // (the row itself): parked with on_permanent_failure=park, else the pipeline stops.
      add_malformed(id, row, schema, table, rows.int64(i, kCreatedAtMicros), e.what());
      continue;
    }
    if (!rows.is_null(i, kSkipped)) {
      auto skipped = parse_index_array(rows.text(i, kSkipped));
      std::erase_if(batch_events, [&](const BatchEvent& e) {
        return std::find(skipped.begin(), skipped.end(), e.index) != skipped.end();
      });
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
    // During a backfill, an UPDATE that changed the key its chunks follow may have moved a row
    // from ahead of their cursor to behind it: its whole new row follows it, as a SNAPSHOT.
    std::vector<size_t> moved;
    std::vector<std::string_view> new_rows;
    if (backfill_ && row.statement == "UPDATE" && row.data && row.old_data &&
        schema == backfill_->schema && table == backfill_->table) {
      moved = rows_with_changed_members(*row.data, *row.old_data, backfill_->order_columns);
      if (!moved.empty()) split_array(*row.data, new_rows);
    }
    std::vector<EventLedger::Event> out;
    out.reserve(batch_events.size() + moved.size());
    for (BatchEvent& e : batch_events) {
      const uint32_t index = e.index;
      const bool whole = !moved.empty() && index < new_rows.size() && e.statement.empty() &&
                         std::find(moved.begin(), moved.end(), index) != moved.end();
      std::optional<std::string> key = whole ? e.key : std::nullopt;
      // An event of its own statement (capture options: the DELETE of a changed key, a
      // tombstone) names it; a tombstone keeps a message for parking, sent as a null value.
      const std::string* own =
          e.statement.empty() ? nullptr : &*statements_.emplace(std::string(e.statement)).first;
      std::string value =
          envelope_json(e.uuid, e.key, own ? *own : *statement,
                        e.tombstone ? std::nullopt : e.data(), created_at, e.before);
      out.push_back({std::move(e.key), std::move(value), created_us / 1000, std::move(e.uuid), own,
                     e.tombstone, headers});
      if (whole) {
        const std::string& snapshot = *statements_.emplace("SNAPSHOT").first;
        std::string uuid = event_uuid(row.uuid, static_cast<uint32_t>(row.events) + index);
        std::string image = envelope_json(uuid, key, snapshot, new_rows[index], created_at);
        out.push_back({std::move(key), std::move(image), created_us / 1000, std::move(uuid),
                       &snapshot, false, headers});
      }
    }
    ledger_.add_batch(id, names, *statement, std::move(out));
  }
  if (!empty_batches.empty()) remove_batches(empty_batches);
  return events;
}

void OutboxSource::add_malformed(int64_t id, const BatchRow& row, const std::string& schema,
                                 const std::string& table, int64_t created_us,
                                 const std::string& what) {
  std::string why = "pg2kafka.event_batches row " + std::to_string(id) + " (" + schema + "." +
                    table + ") is malformed: " + what +
                    ". Only a row queued by hand can look like this: fix or delete that row, "
                    "or park it (on_permanent_failure=park) and skip it (pg2kafka queue skip " +
                    std::string(row.uuid) + ")";
  // The row as far as it can be read (its JSON columns are valid JSON: their type checks it).
  std::string value = "{\"batch_id\":" + std::to_string(id) + ",\"uuid\":";
  sdk::append_json_string(value, row.uuid);
  value += ",\"table_schema\":";
  sdk::append_json_string(value, schema);
  value += ",\"table_name\":";
  sdk::append_json_string(value, table);
  value += ",\"statement\":";
  sdk::append_json_string(value, row.statement);
  value += ",\"events\":" + std::to_string(row.events) + ",\"data\":";
  value += row.data ? std::string(*row.data) : "null";
  value += ",\"old_data\":";
  value += row.old_data ? std::string(*row.old_data) : "null";
  value += "}";
  std::optional<std::string> key;
  if (row.external_id) key = std::string(*row.external_id);
  EventLedger::Event e{
      std::move(key), std::move(value), created_us / 1000, std::string(row.uuid), nullptr,
      false,          nullptr};
  auto statement = statements_.emplace(row.statement).first;
  ledger_.add_unusable(id, names_for(schema, table), *statement, std::move(e), std::move(why));
}

std::unique_ptr<sdk::RecordBatch> OutboxSource::take_records(size_t limit) {
  if (parked_keys_.empty() && reparked_this_round_.empty()) return ledger_.take(limit);
  std::vector<int64_t> completed;
  auto batch = ledger_.take(
      limit, [&](const EventLedger::PendingView& e) { return hold(e); }, &completed);
  std::vector<int64_t> batches, chunks;
  for (int64_t id : completed) (id < 0 ? chunks : batches).push_back(id);
  if (!batches.empty()) remove_batches(batches);
  if (!chunks.empty()) record_chunks(chunks);
  return batch;
}

bool OutboxSource::hold(const EventLedger::PendingView& e) {
  if (e.unusable) return false;  // a malformed row has no key to hold
  std::optional<std::string_view> key;
  if (e.key) key = *e.key;
  std::string scope = park_scope(e.names.schema, e.names.table, key);
  if (e.parked_id > 0) {
    // Retried: held again only behind an event of its key that failed again this round.
    if (!reparked_this_round_.count(scope)) return false;
    ensure_session();
    guarded("holding a retried event again", [&] {
      return conn_->exec_prepared(
          "p2k_rehold", {std::to_string(e.parked_id),
                         "held behind an event of the same key that failed again when retried"});
    });
    return true;
  }
  auto k = parked_keys_.find(scope);
  if (k == parked_keys_.end()) return false;
  // Its key has a parked event: it waits behind it, in the same place, in the order read.
  ensure_session();
  guarded("holding an event behind a parked one", [&] {
    std::vector<std::optional<std::string>> args = {
        e.names.schema,
        e.names.table,
        e.value,
        e.batch_id > 0 ? std::optional<std::string>(std::to_string(e.batch_id)) : std::nullopt,
        "held behind event " + k->second.head + ", parked on the same key",
        k->second.retrying ? "true" : "false"};
    if (capture_options_) {
      std::vector<std::pair<std::string_view, std::string_view>> headers;
      if (e.event.headers)
        for (const auto& [name, value] : *e.event.headers) headers.emplace_back(name, value);
      add_capture_arguments(args, headers, e.event.null_value);
    }
    return conn_->exec_prepared("p2k_hold", args);
  });
  held_.add();
  return true;
}

// ---------------------------------------------------------------------------------------------
// Parking (sql/README.md, "Parked events")
// ---------------------------------------------------------------------------------------------

void OutboxSource::load_parked_keys() {
  auto rows = guarded("reading the parked keys",
                      [&] { return conn_->exec_prepared("p2k_parked_keys", {}); });
  std::unordered_map<std::string, ParkedKey> keys;
  for (int i = 0; i < rows.rows(); ++i) {
    std::optional<std::string_view> key;
    if (!rows.is_null(i, kPkKey)) key = rows.text(i, kPkKey);
    std::string scope = park_scope(rows.text(i, kPkSchema), rows.text(i, kPkTable), key);
    ParkedKey k{std::string(rows.text(i, kPkHead)), false};
    if (auto old = parked_keys_.find(scope); old != parked_keys_.end())
      k.retrying = old->second.retrying;
    keys.emplace(std::move(scope), std::move(k));
  }
  parked_keys_ = std::move(keys);
  parked_keys_gauge_.store(static_cast<int64_t>(parked_keys_.size()));
  parked_keys_loaded_ = true;
}

void OutboxSource::maybe_retry_parked(Clock::time_point now) {
  if (!parked_keys_loaded_ || (!parked_keys_.empty() && now >= next_keys_reload_)) {
    load_parked_keys();
    next_keys_reload_ = now + kParkedKeysInterval;
  }
  // One round at a time: the next once every event of this one is acknowledged.
  if (parked_keys_.empty() || ledger_.parked_outstanding() > 0 || now < next_retry_check_) return;
  next_retry_check_ = now + kRetryCheckInterval;
  bool requested = guarded("looking for retry requests", [&] {
    return conn_->exec_prepared("p2k_retry_requested", {}).boolean(0, 0);
  });
  if (!requested) return;
  auto rows = guarded("reading the parked events to retry",
                      [&] { return conn_->exec_prepared("p2k_retry_events", {}); });
  // Per key, in park order: an event that failed goes alone (if it fails again, nothing of its
  // key is in flight behind it); events held behind it go together, up to the next failed one.
  size_t events = 0, keys = 0;
  std::string scope;
  bool taking = false;
  for (int i = 0; i < rows.rows(); ++i) {
    std::optional<std::string_view> key;
    if (!rows.is_null(i, kRtKey)) key = rows.text(i, kRtKey);
    std::string this_scope = park_scope(rows.text(i, kRtSchema), rows.text(i, kRtTable), key);
    bool first_of_key = this_scope != scope;
    scope = this_scope;
    bool failed = rows.text(i, kRtReason) == "failed";
    bool requested_row = rows.boolean(i, kRtRequested);
    if (first_of_key) {
      taking = requested_row;  // the oldest event must be asked for: nothing overtakes it
      if (taking) ++keys;
    } else if (taking) {
      taking = requested_row && !failed;
    }
    if (!taking) continue;
    const TableNames& names =
        names_for(std::string(rows.text(i, kRtSchema)), std::string(rows.text(i, kRtTable)));
    const std::string& statement = *statements_.emplace(rows.text(i, kRtStatement)).first;
    EventLedger::Event e{key ? std::optional<std::string>(std::string(*key)) : std::nullopt,
                         std::string(rows.text(i, kRtMessage)),
                         rows.int64(i, kRtCreatedMs),
                         std::string(rows.text(i, kRtUuid)),
                         nullptr,
                         rows.boolean(i, kRtTombstone),
                         nullptr};
    if (!rows.is_null(i, kRtHeaders)) {
      try {
        e.headers = provenance_headers(rows.text(i, kRtHeaders));
      } catch (const std::invalid_argument&) {
        // Only a row written by hand: the event goes without them.
      }
    }
    ledger_.add_parked(rows.int64(i, kRtId), names, statement, std::move(e));
    if (auto k = parked_keys_.find(scope); k != parked_keys_.end()) k->second.retrying = true;
    ++events;
    if (failed) taking = false;
  }
  if (events == 0) return;
  reparked_this_round_.clear();
  retried_.add(events);
  host_.info("retrying " + std::to_string(events) + " parked event" + (events == 1 ? "" : "s") +
             " of " + std::to_string(keys) + " key" + (keys == 1 ? "" : "s") +
             " (pg2kafka queue retry)");
}

void OutboxSource::park(const p2k_record& record, const std::string& error) {
  refuse_if_interrupted("park");
  if (!parking_ && !schema_parks_)
    throw sdk::FatalError(
        "cannot park event " + std::string(sdk::view(record.id)) + ": the pg2kafka schema of " +
        "database \"" + database_ +
        "\" has no pg2kafka.parked_events (migration 012). Upgrade it (perform_migrations=true, "
        "or psql --single-transaction -f sql/install.sql), or set on_permanent_failure=stop");
  if (!parking_)
    throw sdk::FatalError(
        "cannot park event " + std::string(sdk::view(record.id)) +
        ": this role may not read and write pg2kafka.parked_events. Grant it what the README "
        "lists under \"parking undeliverable events\" (SELECT, INSERT, DELETE and UPDATE of "
        "some columns on pg2kafka.parked_events, INSERT on pg2kafka.queue_audit and their "
        "sequences), or set on_permanent_failure=stop");
  EventLedger::InFlight* f = ledger_.in_flight(record.position);
  if (!f)
    throw sdk::FatalError("park: position " + std::to_string(record.position) +
                          " was not returned by poll or is acknowledged (a bug in the host)");
  std::optional<std::string_view> key;
  if (record.key.data) key = sdk::view(record.key);
  std::string scope = park_scope(f->names->schema, f->names->table, key);
  // The host parks the later records of the key behind a failed one (those it had in flight):
  // they are held, as if read after the park. For events of a retry round, those behind the one
  // of their key that failed again this round.
  auto earlier = parked_keys_.find(scope);
  bool held = !f->malformed && (f->parked_id == 0 ? earlier != parked_keys_.end()
                                                  : reparked_this_round_.count(scope) > 0);
  // A tombstone is parked as the message of a DELETE of its key without data, marked so that a
  // retry sends it as a null value again; provenance headers are kept with it (migration 013).
  std::string message(sdk::view(record.value));
  std::vector<std::pair<std::string_view, std::string_view>> headers;
  for (size_t i = 0; i < record.header_count; ++i)
    headers.emplace_back(sdk::view(record.headers[i].name), sdk::view(record.headers[i].value));
  bool tombstone = record.value.data == nullptr;
  if (tombstone) {
    std::optional<std::string> k;
    if (key) k = std::string(*key);
    message = envelope_json(sdk::view(record.id), k, "DELETE", std::nullopt,
                            rfc3339_utc(record.timestamp_ms * 1000));
  }
  auto with_extra = [&](std::vector<std::optional<std::string>> args) {
    if (capture_options_) add_capture_arguments(args, headers, tombstone);
    return args;
  };
  ensure_session();
  guarded("parking an event", [&] {
    if (f->parked_id > 0)
      return conn_->exec_prepared(held ? "p2k_rehold" : "p2k_repark",
                                  {std::to_string(f->parked_id), error});
    if (f->malformed)
      return conn_->exec_prepared("p2k_park_malformed", {std::to_string(f->batch_id), error});
    if (held)
      return conn_->exec_prepared(
          "p2k_hold",
          with_extra({f->names->schema, f->names->table, message, std::to_string(f->batch_id),
                      error, earlier->second.retrying ? "true" : "false"}));
    return conn_->exec_prepared("p2k_park", with_extra({f->names->schema, f->names->table, message,
                                                        std::to_string(f->batch_id), error}));
  });
  f->parked = true;
  (f->malformed ? parked_malformed_ : held ? held_ : parked_failed_).add();
  if (f->malformed || held) return;
  if (f->parked_id > 0) reparked_this_round_.insert(scope);
  auto it =
      parked_keys_.try_emplace(scope, ParkedKey{std::string(sdk::view(record.id)), false}).first;
  it->second.retrying = false;  // it failed again: the rest of its key waits for a new request
  parked_keys_gauge_.store(static_cast<int64_t>(parked_keys_.size()));
}

void OutboxSource::remove_retried(const std::vector<int64_t>& ids) {
  std::string ids_in = "id = ANY ('" + int_array(ids) + "'::int8[])";
  // One transaction: marked delivered (the audit trigger records a delivery, not a skip), then
  // removed. A crash in between delivers them again later, as any unacknowledged event.
  guarded("removing retried events", [&] {
    return conn_->exec("UPDATE pg2kafka.parked_events SET delivered_at = now() WHERE " + ids_in +
                       "; DELETE FROM pg2kafka.parked_events WHERE " + ids_in);
  });
  // Their keys flow again once nothing of theirs is parked: read the keys again.
  parked_keys_loaded_ = false;
}

void OutboxSource::remove_batches(const std::vector<int64_t>& ids) {
  std::string array = int_array(ids);
  // Acknowledging needs no drain lock: removing a delivered batch is right whoever drains.
  ensure_session();
  guarded("acknowledging events", [&] { return conn_->exec_prepared("p2k_ack", {array}); });
  batches_removed_.add(ids.size());
}

std::unique_ptr<sdk::RecordBatch> OutboxSource::poll(size_t max_records, milliseconds timeout) {
  refuse_if_interrupted("poll");
  if (!opened_) throw sdk::FatalError("poll before open");
  size_t limit = max_records == 0 ? config_.batch_size : std::min(max_records, config_.batch_size);
  auto deadline = Clock::now() + std::max(timeout, milliseconds(0));
  while (true) {
    if (ledger_.has_pending()) {
      last_events_at_ = Clock::now();
      return take_records(limit);
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
    if (active_ && backfill_unread() && ledger_.idle()) {
      // Rows are left to send (run --once ends on an empty poll): wait for the next chunk.
      auto wake = std::max(next_chunk_at_, next_window_at_);
      if (wake > now && !interrupter_.sleep(std::chrono::ceil<milliseconds>(wake - now)))
        throw_interrupted("waiting for the next backfill chunk");
      continue;
    }
    if (now >= deadline) return nullptr;
    // Busy queues are looked at again soon, idle ones ever less often (up to poll_interval); a
    // standby only retries the lock every poll_interval.
    auto interval =
        active_ ? std::max(idle_wait_, config_.min_poll_interval) : config_.poll_interval;
    if (active_ && paced_)  // wait for the next window only (it may be due already)
      interval = std::clamp(std::chrono::ceil<milliseconds>(next_window_at_ - now), milliseconds(0),
                            interval);
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
  // Removed from the queue (and backfill chunks recorded) first: if that fails, the ledger still
  // holds them for the retry.
  std::vector<int64_t> batches, chunks;
  for (int64_t id : ledger_.completed_through(through)) (id < 0 ? chunks : batches).push_back(id);
  if (!batches.empty()) remove_batches(batches);
  if (!chunks.empty()) record_chunks(chunks);
  if (ledger_.parked_outstanding() > 0) {
    auto retried = ledger_.parked_delivered_through(through);
    if (!retried.empty()) {
      ensure_session();
      remove_retried(retried);
    }
  }
  ledger_.forget_through(through);
}

// ---------------------------------------------------------------------------------------------
// Backfills
// ---------------------------------------------------------------------------------------------

std::string OutboxSource::backfill_name() const {
  return "backfill " + std::to_string(backfill_->id) + " of " + backfill_->schema + "." +
         backfill_->table;
}

void OutboxSource::maybe_load_backfill() {
  if (!backfills_ || backfill_) return;
  auto now = Clock::now();
  auto r = guarded("looking for backfills",
                   [&] { return conn_->exec_prepared("p2k_backfill_next", {}); });
  if (r.rows() == 0) return;
  Backfill b;
  b.id = r.int64(0, kBackfillId);
  if (!r.is_null(0, kBackfillProblem)) {
    b.schema = std::string(r.text(0, kBackfillSchemaThen));
    b.table = std::string(r.text(0, kBackfillTableThen));
    backfill_ = std::move(b);
    fail_backfill(std::string(r.text(0, kBackfillProblem)));
    return;
  }
  b.schema = std::string(r.text(0, kBackfillSchema));
  b.table = std::string(r.text(0, kBackfillTable));
  b.key_column = r.optional_text(0, kBackfillKeyColumn);
  if (!r.is_null(0, kBackfillKey)) {
    std::vector<std::string_view> key;
    split_array(r.text(0, kBackfillKey), key);
    if (key.size() >= 2) {
      b.options.emplace();
      for (std::string_view k : key) b.options->key.emplace_back(k);  // quoted, as members are
    }
  }
  std::vector<std::string_view> names;
  if (!r.is_null(0, kBackfillOrderColumns)) split_array(r.text(0, kBackfillOrderColumns), names);
  for (std::string_view n : names) b.order_columns.emplace_back(n);  // JSON strings, quoted
  b.after_key = r.optional_text(0, kBackfillLastKey);
  b.rows_done = r.int64(0, kBackfillRowsDone);
  if (!r.is_null(0, kBackfillRowsEstimated)) b.rows_estimated = r.int64(0, kBackfillRowsEstimated);
  rows_queued_ = b.rows_done;
  chunk_failures_ = 0;
  progress_since_ = backfill_taken_at_ = now;
  progress_rows_ = backfill_taken_rows_ = b.rows_done;
  backfill_ = std::move(b);
  host_.info(backfill_name() + ": sending its rows as SNAPSHOT events, in chunks of up to " +
             std::to_string(config_.backfill_chunk_rows) + " rows" +
             (backfill_->rows_estimated
                  ? " (about " + std::to_string(*backfill_->rows_estimated) + " rows)"
                  : std::string()) +
             (backfill_->after_key
                  ? ", resuming after " + std::to_string(backfill_->rows_done) + " rows sent before"
                  : std::string()));
}

bool OutboxSource::chunk_due(Clock::time_point now) const {
  return backfill_unread() && !chunk_ && chunks_.size() < kMaxChunksInFlight &&
         now >= next_chunk_at_;
}

bool OutboxSource::read_chunk(Clock::time_point now) {
  if (!backfill_reader_)
    backfill_reader_ =
        std::make_unique<BackfillReader>(config_, &interrupter_, &route_notice, &host_);
  BackfillChunk chunk;
  try {
    chunk = backfill_reader_->read(*backfill_, config_.backfill_chunk_rows, config_.batch_bytes);
  } catch (const PgInterrupted&) {
    throw_interrupted("reading a backfill chunk");
  } catch (const BackfillError& e) {
    if (e.permanent()) {
      fail_backfill(e.what());
    } else {
      // Retried as the drain's own queries are, however long it takes (a long lock on the
      // table, a server restarting): pg2kafka.cancel_backfill stops it.
      auto wait =
          std::min(kChunkRetryWait * (1 << std::min(chunk_failures_, 5)), kMaxChunkRetryWait);
      ++chunk_failures_;
      host_.warn(backfill_name() + ": could not read a chunk: " + e.what() + " (retrying in " +
                 std::to_string(wait.count()) + " ms; the changes of every table flow on)");
      next_chunk_at_ = now + wait;
    }
    return false;
  }
  chunk_failures_ = 0;
  if (chunk.ended) {
    host_.info(backfill_name() + " stopped: it was " + *chunk.ended + " (" +
               std::to_string(rows_queued_) + " rows sent)");
    end_backfill();
    return false;
  }
  next_chunk_at_ = now + config_.backfill_pause;
  window_.start(chunk.snapshot, chunk.xmin, chunk.max_id);
  chunk_ = std::move(chunk);
  return true;
}

void OutboxSource::queue_chunk() {
  BackfillChunk chunk = std::move(*chunk_);
  chunk_.reset();
  if (!backfill_) return;
  backfill_->all_read = chunk.last;
  if (chunk.rows == 0) {
    if (!chunk.last) return;
    // Read to its end: done once the chunks before are delivered (now, when none is in flight).
    for (auto it = chunks_.rbegin(); it != chunks_.rend(); ++it) {
      if (it->second.backfill == backfill_->id) {
        it->second.last = true;
        return;
      }
    }
    record_progress({backfill_->id, rows_queued_, std::nullopt, true});
    return;
  }
  BatchRow row;
  row.uuid = chunk.uuid;
  row.statement = "SNAPSHOT";
  if (backfill_->key_column) row.key_column = *backfill_->key_column;
  if (backfill_->options) row.options = &*backfill_->options;
  row.events = chunk.rows;
  row.data = chunk.data;
  std::vector<BatchEvent> events;
  try {
    events = expand_batch(row);
  } catch (const std::invalid_argument& e) {
    fail_backfill(std::string("its reader returned rows that are not JSON objects: ") + e.what());
    return;
  }
  const std::string& statement = *statements_.emplace("SNAPSHOT").first;
  const int64_t created_us = std::chrono::duration_cast<std::chrono::microseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count();
  const std::string created_at = rfc3339_utc(created_us);
  const int64_t created_ms = created_us / 1000;
  std::vector<EventLedger::Event> out;
  out.reserve(events.size());
  for (BatchEvent& e : events) {
    std::string value = envelope_json(e.uuid, e.key, statement, e.data(), created_at);
    out.push_back({std::move(e.key), std::move(value), created_ms, std::move(e.uuid), nullptr,
                   false, nullptr});
  }
  rows_queued_ += chunk.rows;
  backfill_->after_key = chunk.last_key;
  int64_t id = next_chunk_id_--;
  chunks_[id] = {backfill_->id, rows_queued_, chunk.last_key, chunk.last};
  ledger_.add_batch(id, names_for(backfill_->schema, backfill_->table), statement, std::move(out));
}

void OutboxSource::record_chunks(const std::vector<int64_t>& ids) {
  ensure_session();
  for (int64_t id : ids) {
    auto it = chunks_.find(id);
    if (it == chunks_.end()) continue;
    record_progress(it->second);
    chunks_.erase(it);
  }
}

void OutboxSource::record_progress(const ChunkInFlight& c) {
  const bool current = backfill_ && backfill_->id == c.backfill;
  // The rate since this instance took the backfill up, and the time left at it.
  std::optional<std::string> rate, left;
  if (current) {
    double seconds = std::chrono::duration<double>(Clock::now() - backfill_taken_at_).count();
    double per_second =
        seconds > 0
            ? std::max(0.0, static_cast<double>(c.rows_done - backfill_taken_rows_) / seconds)
            : 0;
    rate = std::to_string(per_second);
    if (per_second > 0 && backfill_->rows_estimated && *backfill_->rows_estimated > c.rows_done)
      left = std::to_string(static_cast<double>(*backfill_->rows_estimated - c.rows_done) /
                            per_second);
  }
  auto recorded = guarded("recording a backfill's progress", [&] {
    return conn_
        ->exec_prepared("p2k_backfill_progress",
                        {std::to_string(c.backfill), std::to_string(c.rows_done), c.last_key,
                         std::string(c.last ? "true" : "false"), rate, left})
        .affected();
  });
  if (!current) return;
  backfill_->rows_done = c.rows_done;
  if (recorded == 0) {
    host_.info(backfill_name() + " stopped: it was cancelled or removed (" +
               std::to_string(c.rows_done) + " rows sent)");
    end_backfill();
  } else if (c.last) {
    host_.info(backfill_name() + " done: " + std::to_string(c.rows_done) + " rows sent");
    end_backfill();
  }
}

void OutboxSource::fail_backfill(const std::string& why) {
  host_.warn(backfill_name() + " failed: " + why +
             ". The rows sent before stay sent (pg2kafka.backfills has the last key sent); once "
             "the cause is fixed, ask again with SELECT pg2kafka.backfill(...) as the table's "
             "owner (it starts from the first row; a condition on the key sends only the rest). "
             "The table's changes are captured and sent meanwhile.");
  std::string id = std::to_string(backfill_->id);
  end_backfill();
  guarded("recording a backfill's failure", [&] {
    return conn_->exec_prepared("p2k_backfill_fail", {id, why});
  });
}

void OutboxSource::end_backfill() {
  backfill_.reset();
  chunk_.reset();
}

void OutboxSource::maybe_log_backfill(Clock::time_point now) {
  if (!backfill_ || now - progress_since_ < kBackfillLogInterval) return;
  double seconds = std::chrono::duration<double>(now - progress_since_).count();
  host_.info(backfill_progress(*backfill_, backfill_->rows_done - progress_rows_, seconds));
  progress_since_ = now;
  progress_rows_ = backfill_->rows_done;
}

std::vector<std::string> OutboxSource::list_topics() {
  refuse_if_interrupted("list_topics");
  ensure_session();
  refresh_routes(true);
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
  connected_ = false;
  timeouts_set_ = false;
  active_ = false;
  opened_ = false;
}

}  // namespace pg2kafka::pg_outbox

namespace pg2kafka::pg_outbox {

void OutboxSource::metrics(sdk::MetricWriter& out) {
  bool active = active_;
  out.gauge("drain_lock_held",
            "1 while this instance holds the drain lock of its database (it drains), 0 while it "
            "stands by.",
            active ? 1 : 0);
  if (active)
    out.gauge("drain_lock_acquired_timestamp_seconds",
              "When this instance took the drain lock, in seconds since the Unix epoch.",
              static_cast<double>(active_since_ms_.load()) / 1e3);
  out.gauge("connected", "1 while the drain connection to PostgreSQL is up.", connected_ ? 1 : 0);
  out.counter("reconnects_total", "Drain connections made again after one was lost.",
              static_cast<double>(reconnects_.value()));
  out.counter("batches_removed_total",
              "Queue rows (batches of events) removed once all their events were acknowledged.",
              static_cast<double>(batches_removed_.value()));
  out.counter("events_parked_total",
              "Events this instance parked in pg2kafka.parked_events, by reason: failed (the sink "
              "refused them for good), malformed (a queue row that cannot be read), held (behind "
              "a parked event of the same key).",
              static_cast<double>(parked_failed_.value()), {{"reason", "failed"}});
  out.counter("events_parked_total", "", static_cast<double>(parked_malformed_.value()),
              {{"reason", "malformed"}});
  out.counter("events_parked_total", "", static_cast<double>(held_.value()), {{"reason", "held"}});
  out.counter("events_retried_total",
              "Parked events sent again after a retry request (pg2kafka queue retry).",
              static_cast<double>(retried_.value()));
  out.gauge("parked_keys",
            "Keys (table and key) this instance holds back because they have parked events.",
            static_cast<double>(parked_keys_gauge_.load()));
  // The first scrape waits up to a second for the monitor's first reading; later ones get the
  // latest (at most MonitorSettings::interval old) without waiting.
  auto state = monitor_.latest(std::chrono::seconds(1));
  out.counter("monitor_errors_total",
              "Failed readings of the queue's state by the monitor connection (its log says why).",
              static_cast<double>(monitor_.errors()));
  if (!state) return;
  out.gauge("state_collected_timestamp_seconds",
            "When the figures of the queue, its tables, drainers and backfills were read, in "
            "seconds since the Unix epoch.",
            state->collected_at_unix);
  for (const auto& c : state->parked)
    out.gauge("parked_events",
              "Events waiting in pg2kafka.parked_events, by table and reason (failed, held, "
              "malformed): an operator retries or skips them (pg2kafka queue).",
              static_cast<double>(c.events),
              {{"table", c.table_schema + "." + c.table_name}, {"reason", c.reason}});
  out.gauge("queue_table_bytes",
            "Disk space of the queue table pg2kafka.event_batches: heap, indexes and TOAST.",
            static_cast<double>(state->queue_table_bytes));
  out.gauge("queue_index_bytes", "Disk space of the queue table's indexes.",
            static_cast<double>(state->queue_index_bytes));
  out.gauge("queue_dead_rows",
            "Deleted queue rows that VACUUM has not removed yet (statistics estimate).",
            static_cast<double>(state->queue_dead_rows));
  out.gauge("queue_counted",
            "1 when the queue was counted per table at the last reading; 0 when counting took "
            "longer than the monitor's statement_timeout (the per-table figures are then absent).",
            state->counted ? 1 : 0);
  if (state->queue_oldest_age_seconds || state->counted)
    out.gauge("queue_oldest_event_age_seconds",
              "Age of the oldest queued event of any table, in seconds (0: none queued).",
              state->queue_oldest_age_seconds.value_or(0));
  for (const auto& t : state->tables) {
    std::vector<sdk::Label> table{{"table", t.table_schema + "." + t.table_name}};
    if (state->counted) {
      out.gauge("queued_events", "Events queued for a table and not yet acknowledged.",
                static_cast<double>(t.queued_events), table);
      out.gauge("queued_bytes", "Bytes of the events queued for a table (their JSON data).",
                static_cast<double>(t.queued_bytes), table);
      out.gauge("oldest_event_age_seconds",
                "Age of the oldest event queued for a table, in seconds (0: none queued).",
                t.oldest_event_age_seconds.value_or(0), table);
    }
    if (t.tracked)
      out.gauge("capture_enabled",
                "1 when every capture trigger of a tracked table fires; 0 when one is disabled "
                "or missing (its changes are not captured: see pg2kafka status).",
                t.triggers == std::optional<std::string>("enabled") ? 1 : 0, table);
  }
  if (state->sessions_read) {
    int active_sessions = 0, standbys = 0;
    for (const auto& d : state->drainers) (d.role == "active" ? active_sessions : standbys)++;
    out.gauge("drain_sessions",
              "Sessions of this database that hold the drain lock (role active: 0 means nothing "
              "drains) or stand by to take it.",
              active_sessions, {{"role", "active"}});
    out.gauge("drain_sessions", "", standbys, {{"role", "standby"}});
  }
  for (const auto& b : state->backfills) {
    if (b.state != "pending" && b.state != "running") continue;
    std::vector<sdk::Label> table{{"table", b.table_schema + "." + b.table_name}};
    out.gauge("backfill_rows_done", "Rows of an open backfill delivered so far.",
              static_cast<double>(b.rows_done), table);
    if (b.rows_estimated)
      out.gauge("backfill_rows_estimated", "The planner's estimate of an open backfill's rows.",
                static_cast<double>(*b.rows_estimated), table);
    if (b.rows_per_second)
      out.gauge("backfill_rows_per_second", "The recent rate of an open backfill.",
                *b.rows_per_second, table);
  }
}

sdk::Health OutboxSource::health() {
  if (interrupter_.interrupted()) return {false, "interrupted: the source is stopping"};
  if (!opened_) return {false, "not connected to PostgreSQL yet"};
  if (!connected_)
    return {false, "the connection to PostgreSQL (" + config_.connection.target +
                       ") is lost; reconnecting"};
  if (active_) return {true, "active: this instance holds the drain lock and drains the queue"};
  std::string holder = "another session";
  if (auto state = monitor_.latest(std::chrono::milliseconds(0))) {
    if (const DrainerSession* d = state->active()) {
      holder = "session " + std::to_string(d->pid) + " (" + d->usename;
      if (d->details_visible)
        holder += ", application_name '" + d->application_name + "'" +
                  (d->client_addr ? ", client " + *d->client_addr : std::string(", local")) +
                  (d->backend_start ? ", connected " + *d->backend_start : std::string());
      holder += ")";
    }
  }
  return {true, "standby: " + holder +
                    " holds the drain lock; this instance takes over when that session ends"};
}

std::string OutboxSource::status() {
  try {
    PgConnection conn(config_.connection, config_.application_name + "/status", nullptr, nullptr,
                      &interrupter_);
    conn.set_reply_timeout(config_.reply_timeout());
    if (config_.statement_timeout.count() > 0)
      conn.exec("SET statement_timeout = " + std::to_string(config_.statement_timeout.count()));
    return status_json(read_state(conn));
  } catch (const PgConnectError& e) {
    if (e.permanent()) throw sdk::ConfigError(std::string(e.what()));
    throw sdk::RetryError(std::string(e.what()));
  } catch (const MonitorError& e) {
    throw sdk::FatalError(e.what());
  } catch (const PgInterrupted&) {
    throw sdk::RetryError("interrupted while reading the state of the queue");
  } catch (const PgError& e) {
    if (e.transient() || e.connection_lost())
      throw sdk::RetryError(std::string("reading the state of the queue: ") + e.what());
    throw sdk::FatalError(std::string("reading the state of the queue: ") + e.what());
  }
}

}  // namespace pg2kafka::pg_outbox
