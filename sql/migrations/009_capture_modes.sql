-- pg2kafka migration 009: a capture mode per tracked table (sql/README.md, "Capture modes").
--
-- Why: statement-level triggers (the default) cost a fixed amount per statement, which a bulk
-- statement spreads over its rows but a one-row statement pays whole: on 2 cores a tracked
-- table took 0.55-0.65 of an untracked table's single-row UPDATE throughput at 4 clients, while
-- even a minimal statement-level trigger cannot do better than about 0.75 (bench/README.md,
-- "The one-row write path"). A row-level trigger costs less per row and more per bulk statement.
-- So each table now says which it uses: `statement` (bulk-friendly, the default for plain
-- tables) or `row` (for tables written a row at a time; partitioned tables always use it, as
-- before). The drainer reads both alike: a row-level trigger queues batches of one event.
--
-- Nothing changes for tables tracked before: plain tables keep `statement`, partitioned tables
-- are recorded as `row` (their capture has been row-level since function set 2).

SELECT pg_catalog.pg_advisory_xact_lock(1882352481, 1);  -- 1882352481 = 'p2ka', 1 = migrations

ALTER TABLE pg2kafka.tracked_tables
  ADD COLUMN IF NOT EXISTS capture text NOT NULL DEFAULT 'statement'
    CONSTRAINT tracked_tables_capture_check CHECK (capture IN ('statement', 'row'));

UPDATE pg2kafka.tracked_tables t
   SET capture = 'row'
  FROM pg_catalog.pg_class c
 WHERE c.oid OPERATOR(pg_catalog.=) t.relid AND c.relkind OPERATOR(pg_catalog.=) 'p'
   AND t.capture OPERATOR(pg_catalog.<>) 'row';

INSERT INTO pg2kafka.schema_migrations (version, name) VALUES (9, 'capture_modes')
ON CONFLICT (version) DO NOTHING;
