-- pg2kafka migration 011: monitoring (sql/README.md, "Monitoring").
--
-- 1. The queue gives its space back after a backlog. pg2kafka.event_batches is a queue: rows are
--    inserted by the capture triggers and deleted by the drainer once delivered, so everything
--    it ever held becomes dead rows that only VACUUM turns into free space. PostgreSQL's default
--    autovacuum runs on a table once its dead rows exceed 50 + 20% of its row count as last
--    measured (autovacuum_vacuum_scale_factor 0.2). After a backlog (the sink down for an hour,
--    say) that count is the backlog's: a queue that held 10 million rows waits for 2 million
--    dead ones before its first vacuum. Meanwhile the freed rows' space is not reusable, so
--    while a long backlog drains the table keeps growing with the writes that go on, and its
--    trailing pages hold live rows, which keeps VACUUM from truncating the file.
--    With the scale factor at 0, a vacuum is due after a fixed number of dead rows whatever the
--    table held before: within one autovacuum_naptime (default 1 min) of any 1000 deleted rows.
--    The space freed at the front of the table is reused by new rows, the tail empties as the
--    backlog drains, and VACUUM truncates the empty tail (it needs the table's ACCESS EXCLUSIVE
--    lock for a moment: it only takes it when no session holds any lock on the queue, waits for
--    it at most 5 s, and gives it up as soon as someone else waits, so no writer queues behind
--    it). 1000 rather than the default 50: every vacuum scans the whole primary key index, which
--    keeps its peak size (PostgreSQL recycles emptied index pages but never shrinks the file),
--    so a vacuum should free at least a few pages of rows for that cost. vacuum_index_cleanup on:
--    PostgreSQL 14+ skips the index pass when few pages hold dead rows, and leaves their line
--    pointers behind; a page holding one is never truncated, and a queue's dead rows are in its
--    newest pages, exactly those truncation needs (measured: without it the emptied end stayed
--    until 2% of the table's pages had dead rows). The TOAST table, where batches of more than
--    about 2 kB of compressed JSON are stored, gets the same settings (its rows are 2 kB chunks:
--    1000 of them are 2 MB). Rows are never updated: fillfactor stays 100.
--    pg2kafka.acknowledged_batches (acknowledged=keep) keeps the defaults: its size is set by the
--    retention and it is purged in order; a vacuum every minute of a large archive would cost
--    more than the 20% of slack it saves.
--    Verified by bench/soak.sh (writers with nothing draining for minutes, then a drain while
--    they go on): the heap and TOAST shrink back to a few pages, the index stops at its peak.
-- 2. pg2kafka.schema_migrations becomes readable by every role, like schema_functions (007):
--    `pg2kafka status` and the monitoring views' readers may be roles other than the drainer,
--    and versions are no secret.
--
-- The views themselves (pg2kafka.lag, pg2kafka.drainers) are in the function set
-- (sql/functions/70_monitoring.sql, function set 6), like every view since 007.

SELECT pg_catalog.pg_advisory_xact_lock(1882352481, 1);  -- 1882352481 = 'p2ka', 1 = migrations

-- Setting autovacuum storage parameters takes the queue's SHARE UPDATE EXCLUSIVE lock, which
-- writers (ROW EXCLUSIVE) and the drainer do not conflict with; only a running VACUUM or another
-- ALTER TABLE does. As in 006 and 008, wait at most 2 s for it: then the migration fails, changes
-- nothing, and the plugin retries it (lock_not_available is transient); by hand, run it again.
SET LOCAL lock_timeout = '2s';
ALTER TABLE pg2kafka.event_batches SET (
  autovacuum_vacuum_scale_factor = 0,
  autovacuum_vacuum_threshold = 1000,
  vacuum_index_cleanup = on,
  toast.autovacuum_vacuum_scale_factor = 0,
  toast.autovacuum_vacuum_threshold = 1000,
  toast.vacuum_index_cleanup = on
);
RESET lock_timeout;

GRANT SELECT ON pg2kafka.schema_migrations TO PUBLIC;

INSERT INTO pg2kafka.schema_migrations (version, name) VALUES (11, 'monitoring')
ON CONFLICT (version) DO NOTHING;
