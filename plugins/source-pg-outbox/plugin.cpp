// pg-outbox: identity, options and the exported entry point. The logic is in outbox_source.cpp.
#include <pg2kafka/sdk/plugin.hpp>

#include "outbox_source.hpp"

namespace {

using pg2kafka::sdk::option;

constexpr const char* kAcknowledgedChoices[] = {"delete", "keep", nullptr};

constexpr p2k_option kOptions[] = {
    option("connection", P2K_OPT_SECRET, nullptr,
           "How to reach the PostgreSQL database whose tables are tracked: a libpq URL "
           "(postgresql://user:password@host:5432/dbname?sslmode=require) or a key=value "
           "connection string (host=... dbname=...). All libpq parameters work (sslmode, "
           "sslrootcert, connect_timeout, target_session_attrs...), and so do libpq's "
           "environment variables (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGSSLMODE...) for what "
           "the string leaves out; messages name the host, port, database and user libpq uses, "
           "and which came from the environment. It must not be empty (libpq would connect "
           "with its defaults to a database nobody chose). connect_timeout defaults to 10 "
           "seconds (or PGCONNECT_TIMEOUT) and must be at least 1: a connection attempt cannot "
           "be interrupted. Values libpq would refuse when connecting (sslmode, ports, whole "
           "numbers...) and a startup packet over PostgreSQL's 10000 bytes are refused at "
           "`check`. An unreachable or unresolvable host is retried; a wrong password, an "
           "unknown role or database stop the pipeline. The value is a secret: it is never "
           "logged, and the password (and PGPASSWORD) is removed from every error message.",
           P2K_OPT_REQUIRED),
    option("perform_migrations", P2K_OPT_BOOL, "false",
           "Install or upgrade the pg2kafka schema (queue table, triggers, pg2kafka.setup and "
           "pg2kafka.teardown) when the source opens: the migrations the database lacks, then "
           "the function set when it is newer than the installed one, in one transaction under "
           "an advisory lock, so several processes may start at once. When false, the schema "
           "must already exist (psql --single-transaction -v ON_ERROR_STOP=1 -f "
           "sql/install.sql) or the source refuses to start. Either way the source refuses a "
           "schema newer than it knows (see sql/README.md)."),
    option("topic_namespace", P2K_OPT_STRING, "",
           "Optional namespace inserted into every topic name: empty gives "
           "pg2kafka.<database>.<table>, `ns` gives pg2kafka.ns.<database>.<table>. Letters, "
           "digits, '.', '_' and '-' only; at most 236 characters (longer, no topic name would fit "
           "into Kafka's 249)."),
    option("batch_size", P2K_OPT_INT, "1000",
           "The most events read from the queue in one query, and so the most records one poll "
           "returns (the host's own batch limit applies too: the smaller wins).",
           0, nullptr, 1, 1000000),
    option("batch_bytes", P2K_OPT_SIZE, "4MiB",
           "The most bytes of event data (the queue's JSON, uncompressed) read from the queue in "
           "one query: a read stops before the queue batch that would take it past this, but "
           "always reads at least one. With batch_size it bounds the source's memory when rows "
           "are large (1000 events of 1 MB rows would otherwise be read at once).",
           0, nullptr, 1024, INT64_C(1) << 30),
    option("poll_interval", P2K_OPT_DURATION, "1s",
           "The longest wait between two looks at an empty queue. For a second after events "
           "were found the source looks every min_poll_interval; then the wait doubles while "
           "the queue stays empty, up to this interval. So a busy queue is read within "
           "milliseconds and an idle one costs one query per interval. Notifications (see "
           "`notify`) only shorten the "
           "wait; polling alone guarantees progress. A standby instance retries the drain lock "
           "this often.",
           0, nullptr, 10, 3600000),
    option("min_poll_interval", P2K_OPT_DURATION, "5ms",
           "The shortest time between the starts of two looks at a queue that was read to its "
           "end, however often the host polls (a backlog is read look after look without "
           "waiting). It trades latency for database load while writes flow: each look costs "
           "the database two queries, so a lower value delivers a commit to Kafka sooner and "
           "queries more often, a higher one batches more events per look (bench/README.md, "
           "\"The one-row write path\"). See also poll_interval.",
           0, nullptr, 1, 3600000),
    option("notify", P2K_OPT_BOOL, "true",
           "LISTEN on the channel `pg2kafka` and read the queue as soon as a notification "
           "arrives instead of waiting for the poll interval. The capture triggers notify (once "
           "per transaction) only in databases where `ALTER DATABASE <db> SET pg2kafka.notify = "
           "on` was run: notifying costs every writing transaction a cluster-wide lock at "
           "commit. A wake-up hint only: a lost notification delays, never loses, events."),
    option("acknowledged", P2K_OPT_ENUM, "delete",
           "What happens to a queue batch once the sink has delivered all its events: `delete` "
           "removes it from the queue; `keep` moves it to pg2kafka.acknowledged_batches (for "
           "audit; the view pg2kafka.acknowledged_events lists one row per event), where it "
           "stays for `retention`.",
           0, kAcknowledgedChoices),
    option("retention", P2K_OPT_DURATION, "7d",
           "With acknowledged=keep: how long delivered batches stay in "
           "pg2kafka.acknowledged_batches. The active source deletes older ones about once a "
           "minute, at most 10000 rows per query. Ignored with acknowledged=delete. 1s to "
           "36500d (100 years).",
           0, nullptr, 1000, pg2kafka::pg_outbox::kMaxRetentionMs),
    option("application_name", P2K_OPT_STRING, "pg2kafka",
           "The application_name of the source's PostgreSQL session (shown in "
           "pg_stat_activity), unless the connection string sets one. At most 63 bytes of "
           "printable ASCII (PostgreSQL cuts longer names and shows other bytes as '?'); the "
           "same holds for one set in the connection string."),
    option("lock_timeout", P2K_OPT_DURATION, "5s",
           "The longest a query of the drain (snapshot, read, acknowledgement, purge) waits for "
           "a lock, e.g. behind LOCK TABLE, ALTER TABLE or VACUUM FULL of the queue table "
           "(PostgreSQL's lock_timeout, set on the source's session). When it runs out the call "
           "fails as transient (the host retries it; nothing is lost and the next poll goes on "
           "where this one stopped) and the error names this option. 0 waits as long as the "
           "lock is held. Not applied to the schema's installation (perform_migrations), whose "
           "migrations bound their own lock waits (2s). 0 to 24h.",
           0, nullptr, 0, pg2kafka::pg_outbox::kMaxQueryTimeoutMs),
    option("statement_timeout", P2K_OPT_DURATION, "60s",
           "The longest a query of the drain may run, lock waits included (PostgreSQL's "
           "statement_timeout, set on the source's session). When it runs out the call fails as "
           "transient (retried; nothing is lost) and the error names this option. If the server "
           "does not even answer within this time plus as much again (at most 5s more), the "
           "source gives the connection up as stuck and reconnects. 0 (no limit, and no such "
           "check) or 1s to 24h. Not applied to the schema's installation.",
           0, nullptr, 0, pg2kafka::pg_outbox::kMaxQueryTimeoutMs),
    option("backfill_chunk_rows", P2K_OPT_INT, "5000",
           "Backfills (pg2kafka.setup's snapshot of a table with a primary key, and "
           "pg2kafka.backfill): the most rows read and sent in one chunk; batch_bytes bounds a "
           "chunk's JSON too. Each chunk is one short read-only transaction, read in the snapshot "
           "of a drain window and sent right after that window's events, so a larger chunk costs "
           "fewer queries per row and holds more rows in memory (see sql/README.md, "
           "\"Backfills\"). Keep it below the pipeline's max_in_flight (10000 by default): a "
           "chunk larger than that cannot be in flight at once, and the next is read only once "
           "it is delivered.",
           0, nullptr, 1, pg2kafka::pg_outbox::kMaxBackfillChunkRows),
    option("backfill_pause", P2K_OPT_DURATION, "0ms",
           "Backfills: the least time between the starts of two chunks, to spare a busy "
           "database (0: chunks follow each other as fast as they are sent; changes of every "
           "table are still read between any two chunks). While a backfill waits for it, the "
           "source's poll waits too. 0 to 1h.",
           0, nullptr, 0, pg2kafka::pg_outbox::kMaxBackfillPauseMs),
    option("monitor_interval", P2K_OPT_DURATION, "10s",
           "Metrics endpoint (pipeline setting http.listen): how often, at most, the figures of "
           "the queue are read again: events, bytes and the oldest event's age per table, the "
           "queue table's size, the drainers, the backfills. They are read on a connection of "
           "their own, only while /metrics or /readyz is asked for, each query bounded by a 5 s "
           "statement_timeout; counting the queue scans it once, and a reading that takes over a "
           "second is repeated less often (at most a twentieth of the time is spent reading). "
           "Shorter gives fresher figures "
           "for more load on the database. 1s to 1h.",
           0, nullptr, pg2kafka::pg_outbox::kMinMonitorIntervalMs,
           pg2kafka::pg_outbox::kMaxMonitorIntervalMs),
};

}  // namespace

P2K_SOURCE_PLUGIN(pg2kafka::pg_outbox::OutboxSource, "pg-outbox", "0.1.0",
                  "Streams changes of PostgreSQL tables, captured by triggers into an outbox "
                  "queue table, without WAL access.",
                  kOptions)
