-- pg2kafka migration 010: online, resumable backfills (sql/README.md, "Backfills").
--
-- Why: setup used to copy a whole table into the queue in one INSERT ... SELECT while holding
-- the table's SHARE ROW EXCLUSIVE lock, so every writer waited for the whole copy (2.6 s for 1M
-- rows), the copy was one huge transaction, and a crash started it over. From function set 5 on,
-- setup only creates the triggers (a lock held for milliseconds) and records a backfill here; the
-- draining pg2kafka sends the existing rows in chunks, each read in the snapshot that bounds one
-- of its drain windows, and records its progress here so that it resumes where it stopped.
--
-- pg2kafka.backfills: one row per backfill (setup's snapshot, or pg2kafka.backfill on demand).
-- Written by the table's owner (request, cancel) and by the drainer (progress), under row-level
-- security; readable by all, like pg2kafka.tracked_tables.
--
-- pg2kafka_backfill: the schema of the backfill readers. Rows are serialised with the rights of
-- the role that asked for the backfill, never the drainer's: each such role gets one
-- SECURITY DEFINER function here, owned by it, which the drainer calls (sandboxed: a read-only
-- transaction on a connection of its own, rolled back and discarded after each chunk). Every
-- role may create its reader here; the schema is never on anyone's search_path.

SELECT pg_catalog.pg_advisory_xact_lock(1882352481, 1);  -- 1882352481 = 'p2ka', 1 = migrations

CREATE SCHEMA IF NOT EXISTS pg2kafka_backfill;
GRANT USAGE, CREATE ON SCHEMA pg2kafka_backfill TO PUBLIC;

CREATE TABLE IF NOT EXISTS pg2kafka.backfills (
  id             bigserial PRIMARY KEY,
  relid          regclass NOT NULL,
  -- The table's names when the backfill was asked for (the log's names once it is dropped).
  table_schema   text NOT NULL,
  table_name     text NOT NULL,
  -- The columns (attnums) of the primary key or unique index whose order the chunks follow.
  order_attnums  smallint[] NOT NULL,
  -- A boolean expression over the table's columns (NULL: every row), evaluated by the reader.
  condition      text,
  -- The function that reads the chunks, owned by requested_by (pg2kafka_backfill.reader_*).
  reader         regprocedure NOT NULL,
  requested_by   name NOT NULL DEFAULT current_user,
  state          text NOT NULL DEFAULT 'pending'
                 CONSTRAINT backfills_state_check
                 CHECK (state IN ('pending', 'running', 'done', 'cancelled', 'failed')),
  rows_done      bigint NOT NULL DEFAULT 0,
  rows_estimated bigint,
  -- rows_done of rows_estimated (100 once done; estimates can be off).
  percent        numeric GENERATED ALWAYS AS (
                   CASE WHEN state = 'done' THEN 100
                        WHEN rows_estimated > 0
                        THEN least(100, round(100.0 * rows_done / rows_estimated, 1)) END) STORED,
  -- The drainer's rate since it took the backfill up, and when it expects to be done at it.
  rows_per_second real,
  eta            timestamptz,
  -- The order key of the last row of the last chunk delivered (each column's text form).
  last_key       text[],
  started_at     timestamptz NOT NULL DEFAULT now(),
  finished_at    timestamptz,
  error          text
);
CREATE INDEX IF NOT EXISTS backfills_open ON pg2kafka.backfills (id)
 WHERE state IN ('pending', 'running');

ALTER TABLE pg2kafka.backfills ENABLE ROW LEVEL SECURITY;
-- Table owners ask for backfills of their own tables (the columns that describe the request; the
-- id, requester, state and progress are always the defaults), cancel them, and remove them.
-- The drainer records progress. Both by these column grants and the policies below.
GRANT SELECT ON pg2kafka.backfills TO PUBLIC;
GRANT INSERT (relid, table_schema, table_name, order_attnums, condition, reader, rows_estimated)
   ON pg2kafka.backfills TO PUBLIC;
GRANT UPDATE (state, rows_done, rows_per_second, eta, last_key, finished_at, error)
   ON pg2kafka.backfills TO PUBLIC;
GRANT DELETE ON pg2kafka.backfills TO PUBLIC;
GRANT USAGE ON SEQUENCE pg2kafka.backfills_id_seq TO PUBLIC;

DROP POLICY IF EXISTS backfills_read ON pg2kafka.backfills;
CREATE POLICY backfills_read ON pg2kafka.backfills FOR SELECT TO PUBLIC USING (true);
-- A request names a table the role owns (membership in the owning role) and a reader it owns.
DROP POLICY IF EXISTS backfills_request ON pg2kafka.backfills;
CREATE POLICY backfills_request ON pg2kafka.backfills FOR INSERT TO PUBLIC
WITH CHECK (EXISTS (SELECT FROM pg_catalog.pg_class c
                     WHERE c.oid OPERATOR(pg_catalog.=) relid
                       AND pg_catalog.pg_has_role(c.relowner, 'USAGE'))
            AND EXISTS (SELECT FROM pg_catalog.pg_proc p
                         WHERE p.oid OPERATOR(pg_catalog.=) reader
                           AND p.proowner OPERATOR(pg_catalog.=)
                               (SELECT r.oid FROM pg_catalog.pg_roles r
                                 WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER)));
-- The owner may only cancel (or leave as it is) a backfill of its table.
DROP POLICY IF EXISTS backfills_cancel ON pg2kafka.backfills;
CREATE POLICY backfills_cancel ON pg2kafka.backfills FOR UPDATE TO PUBLIC
USING (EXISTS (SELECT FROM pg_catalog.pg_class c
                WHERE c.oid OPERATOR(pg_catalog.=) relid
                  AND pg_catalog.pg_has_role(c.relowner, 'USAGE')))
WITH CHECK (state OPERATOR(pg_catalog.=) 'cancelled');
-- A role that may remove queued events (the drainer) records the progress of every backfill.
DROP POLICY IF EXISTS backfills_progress ON pg2kafka.backfills;
CREATE POLICY backfills_progress ON pg2kafka.backfills FOR UPDATE TO PUBLIC
USING (pg_catalog.has_table_privilege('pg2kafka.event_batches'::pg_catalog.regclass, 'DELETE'))
WITH CHECK (pg_catalog.has_table_privilege('pg2kafka.event_batches'::pg_catalog.regclass,
                                           'DELETE'));
DROP POLICY IF EXISTS backfills_remove ON pg2kafka.backfills;
CREATE POLICY backfills_remove ON pg2kafka.backfills FOR DELETE TO PUBLIC
USING (EXISTS (SELECT FROM pg_catalog.pg_class c
                WHERE c.oid OPERATOR(pg_catalog.=) relid
                  AND pg_catalog.pg_has_role(c.relowner, 'USAGE')));

INSERT INTO pg2kafka.schema_migrations (version, name) VALUES (10, 'backfills')
ON CONFLICT (version) DO NOTHING;
