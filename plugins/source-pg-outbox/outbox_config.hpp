// The pg-outbox source's options, parsed and checked without I/O (their documentation is the
// option table in plugin.cpp).
#pragma once

#include <pg2kafka/sdk/options.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

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
  // Backfills (backfill.hpp): rows per chunk (batch_bytes bounds a chunk's JSON too), and the
  // pause between the starts of two chunks.
  size_t backfill_chunk_rows = 5000;
  std::chrono::milliseconds backfill_pause{0};
  // How often, at most, the metrics endpoint's figures of the queue are read again (monitor.hpp).
  std::chrono::milliseconds monitor_interval{10'000};

  // Throws sdk::ConfigError naming the option at fault.
  static OutboxConfig from(const sdk::Options& options);

  // How long a connection of the source waits for the server's answer to a query before giving
  // the connection up as stuck: statement_timeout and a grace (kReplyGraceMs); 0 with none.
  std::chrono::milliseconds reply_timeout() const;
};

// Bounds of the options (plugin.cpp's table gives them to the host; OutboxConfig::from checks
// them again for callers that skip the host).
// retention: 36500 days (100 years); now() minus that never leaves PostgreSQL's timestamp range.
constexpr int64_t kMaxRetentionMs = 36500LL * 24 * 3600 * 1000;
// lock_timeout and statement_timeout: one day (PostgreSQL takes up to about 24.8 days).
constexpr int64_t kMaxQueryTimeoutMs = 24LL * 3600 * 1000;
// statement_timeout: 0 (none) or at least this; shorter would cancel ordinary drain queries.
constexpr int64_t kMinStatementTimeoutMs = 1000;
// backfill_chunk_rows and backfill_pause.
constexpr int64_t kMaxBackfillChunkRows = 1'000'000;
constexpr int64_t kMaxBackfillPauseMs = 3600LL * 1000;
// monitor_interval.
constexpr int64_t kMinMonitorIntervalMs = 1000;
constexpr int64_t kMaxMonitorIntervalMs = 3600LL * 1000;
// How long past statement_timeout the source waits for the server's answer to a drain query (at
// most as long again as statement_timeout) before it gives the connection up as stuck.
constexpr int64_t kReplyGraceMs = 5000;

}  // namespace pg2kafka::pg_outbox
