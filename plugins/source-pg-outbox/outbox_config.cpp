#include "outbox_config.hpp"

#include <string_view>
#include <utility>

#include <pg2kafka/sdk/errors.hpp>

namespace pg2kafka::pg_outbox {

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
  if (options.has("backfill_chunk_rows")) {
    int64_t n = options.integer("backfill_chunk_rows");
    if (n < 1 || n > kMaxBackfillChunkRows)
      problems.push_back({"backfill_chunk_rows", "must be between 1 and 1000000"});
    else
      c.backfill_chunk_rows = static_cast<size_t>(n);
  }
  if (options.has("backfill_pause")) c.backfill_pause = options.duration("backfill_pause");
  if (c.backfill_pause.count() < 0 || c.backfill_pause.count() > kMaxBackfillPauseMs)
    problems.push_back({"backfill_pause", "must be between 0 and 1h"});
  if (options.has("monitor_interval")) c.monitor_interval = options.duration("monitor_interval");
  if (c.monitor_interval.count() < kMinMonitorIntervalMs ||
      c.monitor_interval.count() > kMaxMonitorIntervalMs)
    problems.push_back({"monitor_interval", "must be between 1s and 1h"});
  if (!problems.empty()) throw sdk::ConfigError(std::move(problems));
  return c;
}

std::chrono::milliseconds OutboxConfig::reply_timeout() const {
  int64_t statement_ms = statement_timeout.count();
  return std::chrono::milliseconds(
      statement_ms == 0 ? 0 : statement_ms + std::min(statement_ms, kReplyGraceMs));
}

}  // namespace pg2kafka::pg_outbox
