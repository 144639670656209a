-- pg2kafka migration 004: the triggers queue one row per statement (a *batch* of up to 1000 rows
-- or about 1 MB of row data, whichever comes first) instead of one row per changed row.
--
-- Why: writing a queue row (heap tuple, primary key entry, sequence value, uuid) for every
-- changed row cost more than the application's own statement: a 100k-row bulk INSERT took 3.5
-- times as long on a tracked table, a bulk DELETE 21 times. A batch row holds the statement's
-- rows as one JSON array (json_agg over the transition table), which PostgreSQL builds without
-- any per-row query, index entry or uuid. Messages do not change: the pg-outbox plugin splits a
-- batch into one message per row, with the same envelope, key and topic as before.
--
-- What changes for users:
--   * pg2kafka.event_batches is the queue table. pg2kafka.outbound_event_queue is now a view
--     over it with one row per event (for inspection and monitoring; it is not updatable).
--   * pg2kafka.acknowledged_batches holds delivered batches (acknowledged=keep);
--     pg2kafka.acknowledged_events is a view over it with one row per event.
--   * The key column is followed by its position (attnum), so renaming it no longer breaks keys.
--   * Event uuids: a batch has one random uuid; the event at (0-based) index i of the batch has
--     that uuid with its last 32 bits XORed with i (pg2kafka.event_uuid). A batch of one event
--     keeps the batch's uuid. Ids stay stable across redeliveries, so consumers de-duplicate on
--     them as before.
-- Events queued before this migration are moved into batches of one (keeping their uuid), and
-- the tables' old contents are kept.
--
-- Stop pg2kafka before applying this migration by hand: an older pg-outbox plugin cannot read
-- the new queue. (The plugin applies it itself when perform_migrations is true.)

SELECT pg_catalog.pg_advisory_xact_lock(1882352481, 1);  -- 1882352481 = 'p2ka', 1 = migrations

-- The queue ------------------------------------------------------------------------------------

CREATE TABLE IF NOT EXISTS pg2kafka.event_batches (
  -- Queue order. As for the old table, the sequence keeps CACHE 1: ids then follow the global
  -- order in which the triggers ran, so for one row (whose writers are serialised by the row
  -- lock) id order is commit order.
  id           bigserial PRIMARY KEY,
  -- The batch's random id; pg2kafka.event_uuid derives each event's id from it.
  uuid         uuid NOT NULL DEFAULT gen_random_uuid(),
  table_schema text NOT NULL,
  table_name   text NOT NULL,
  -- SNAPSHOT, INSERT, UPDATE, DELETE or TRUNCATE.
  statement    text NOT NULL,
  -- The key column's name when the statement ran. NULL when the table had no such column any
  -- more (dropped), and for events queued before this migration: then `external_id` is the key
  -- of the (single) event and `data` holds each event's message data as it is.
  key_column   text,
  external_id  text,
  -- Number of events in the batch (>= 1).
  events       integer NOT NULL CHECK (events > 0),
  -- SNAPSHOT, INSERT: a JSON array of the rows (row_to_json). UPDATE: the new rows.
  -- DELETE: the key values (JSON, as row_to_json prints them); with key_column NULL the whole
  -- old rows. TRUNCATE: NULL.
  data         json,
  -- UPDATE: the old rows, paired with `data` by position. The plugin sends the members of each
  -- new row that differ from the old row, and nothing for rows whose JSON did not change.
  old_data     json,
  created_at   timestamptz NOT NULL DEFAULT statement_timestamp(),
  -- The writing transaction: what draining is based on (see the pg-outbox plugin).
  txid         xid8 NOT NULL DEFAULT pg_current_xact_id()
);
ALTER SEQUENCE pg2kafka.event_batches_id_seq CACHE 1;

CREATE TABLE IF NOT EXISTS pg2kafka.acknowledged_batches (
  LIKE pg2kafka.event_batches,
  acked_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (id)
);
CREATE INDEX IF NOT EXISTS acknowledged_batches_acked_at_idx
  ON pg2kafka.acknowledged_batches (acked_at);

-- Batches are written once and read once, whole: lz4 (PostgreSQL 14+, when built with it) costs
-- little CPU and halves what is written; without it the arrays are stored uncompressed (pglz
-- would cost the writing statement more than the bytes it saves).
DO $$
DECLARE
  v_table text;
BEGIN
  FOREACH v_table IN ARRAY ARRAY['pg2kafka.event_batches', 'pg2kafka.acknowledged_batches'] LOOP
    BEGIN
      EXECUTE format('ALTER TABLE %s ALTER COLUMN data SET COMPRESSION lz4, '
                     'ALTER COLUMN old_data SET COMPRESSION lz4', v_table);
    EXCEPTION WHEN OTHERS THEN
      EXECUTE format('ALTER TABLE %s ALTER COLUMN data SET STORAGE EXTERNAL, '
                     'ALTER COLUMN old_data SET STORAGE EXTERNAL', v_table);
    END;
  END LOOP;
END
$$;

-- The key column by position: a rename keeps it, a drop is detected (NULL for rows tracked
-- before this migration whose key column no longer exists).
ALTER TABLE pg2kafka.tracked_tables ADD COLUMN IF NOT EXISTS key_attnum smallint;
UPDATE pg2kafka.tracked_tables t
   SET key_attnum = a.attnum
  FROM pg_attribute a
 WHERE a.attrelid = t.relid AND a.attname = t.key_column AND a.attnum > 0
   AND NOT a.attisdropped AND t.key_attnum IS NULL;

-- Move what the old tables hold (in queue order), then replace them by views.
DO $$
BEGIN
  IF to_regclass('pg2kafka.outbound_event_queue') IS NOT NULL
     AND (SELECT relkind FROM pg_class
           WHERE oid = 'pg2kafka.outbound_event_queue'::regclass) = 'r' THEN
    LOCK TABLE pg2kafka.outbound_event_queue IN ACCESS EXCLUSIVE MODE;
    INSERT INTO pg2kafka.event_batches
           (uuid, table_schema, table_name, statement, external_id, events, data, old_data,
            created_at, txid)
    SELECT q.uuid, q.table_schema, q.table_name, q.statement, q.external_id, 1,
           CASE WHEN q.data IS NOT NULL THEN json_build_array(q.data) END,
           CASE WHEN q.old_data IS NOT NULL THEN json_build_array(q.old_data) END,
           q.created_at, q.txid
      FROM pg2kafka.outbound_event_queue q
     ORDER BY q.id;
    DROP TABLE pg2kafka.outbound_event_queue;
  END IF;
  IF to_regclass('pg2kafka.acknowledged_events') IS NOT NULL
     AND (SELECT relkind FROM pg_class
           WHERE oid = 'pg2kafka.acknowledged_events'::regclass) = 'r' THEN
    INSERT INTO pg2kafka.acknowledged_batches
           (id, uuid, table_schema, table_name, statement, external_id, events, data, old_data,
            created_at, txid, acked_at)
    -- Negated ids: they cannot collide with the ids of batches archived from now on.
    SELECT -a.id, a.uuid, a.table_schema, a.table_name, a.statement, a.external_id, 1,
           CASE WHEN a.data IS NOT NULL THEN json_build_array(a.data) END,
           CASE WHEN a.old_data IS NOT NULL THEN json_build_array(a.old_data) END,
           a.created_at, a.txid, a.acked_at
      FROM pg2kafka.acknowledged_events a;
    DROP TABLE pg2kafka.acknowledged_events;
  END IF;
END
$$;

-- pg2kafka.event_uuid(batch_uuid, batch_index): the id of the event at batch_index (0-based) of
-- a batch: the batch's uuid with its last 32 bits XORed with the index (version and variant bits
-- untouched, so it is still a valid version 4 uuid). Index 0 gives the batch's uuid itself.
CREATE OR REPLACE FUNCTION pg2kafka.event_uuid(batch_uuid uuid, batch_index integer) RETURNS uuid
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
  SELECT encode(substr(uuid_send($1), 1, 12)
                || int4send(('x' || right(replace($1::text, '-', ''), 8))::bit(32)::integer # $2),
                'hex')::uuid
$$;

-- pg2kafka.batch_events(...): the events of one batch, as the pg-outbox plugin sends them
-- (data is the message's `data`: whole row, changed columns, or {key_column: key}). For the
-- views below; the plugin does the same in C++.
CREATE OR REPLACE FUNCTION pg2kafka.batch_events(
    batch_uuid uuid, statement text, key_column text, external_id text, events integer,
    data json, old_data json)
RETURNS TABLE (batch_index integer, uuid uuid, external_id text, data jsonb)
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT e.i::integer - 1,
         pg2kafka.event_uuid($1, e.i::integer - 1),
         CASE WHEN $3 IS NULL THEN $4
              WHEN $2 = 'DELETE' THEN e.v #>> '{}'
              ELSE e.v ->> $3 END,
         CASE WHEN $2 = 'DELETE' AND $3 IS NOT NULL THEN jsonb_build_object($3, e.v)
              WHEN o.v IS NOT NULL THEN
                (SELECT coalesce(jsonb_object_agg(n.key, n.value), '{}')
                   FROM jsonb_each(e.v) n
                  WHERE (o.v -> n.key) IS DISTINCT FROM n.value)
              ELSE e.v END
    FROM jsonb_array_elements($6::jsonb) WITH ORDINALITY e(v, i)
    LEFT JOIN jsonb_array_elements($7::jsonb) WITH ORDINALITY o(v, i) ON o.i = e.i
   WHERE o.v IS NULL OR o.v <> e.v
  UNION ALL
  SELECT g - 1, pg2kafka.event_uuid($1, g - 1), $4, NULL
    FROM generate_series(1, $5) g
   WHERE $6 IS NULL
$$;

-- One row per queued event, in queue order (batch_id, batch_index). Expanding JSON costs time on
-- a large queue: to count pending events, SELECT sum(events) FROM pg2kafka.event_batches.
CREATE OR REPLACE VIEW pg2kafka.outbound_event_queue AS
SELECT b.id AS batch_id, e.batch_index, e.uuid, e.external_id, b.table_name, b.statement,
       e.data, b.created_at, b.table_schema, b.txid
  FROM pg2kafka.event_batches b,
       LATERAL pg2kafka.batch_events(b.uuid, b.statement, b.key_column, b.external_id, b.events,
                                     b.data, b.old_data) e;

CREATE OR REPLACE VIEW pg2kafka.acknowledged_events AS
SELECT b.id AS batch_id, e.batch_index, e.uuid, e.external_id, b.table_name, b.statement,
       e.data, b.created_at, b.table_schema, b.txid, b.acked_at
  FROM pg2kafka.acknowledged_batches b,
       LATERAL pg2kafka.batch_events(b.uuid, b.statement, b.key_column, b.external_id, b.events,
                                     b.data, b.old_data) e;

-- Capture functions ----------------------------------------------------------------------------
--
-- As in migration 002: statement-level AFTER triggers with transition tables, SECURITY DEFINER
-- with a fixed search_path, whole rows written alias.* (a bare alias could mean a column of that
-- name), pg_notify('pg2kafka') when pg2kafka.notify is on. New: the trigger's arguments are the
-- key column's name and its attnum (triggers created before this migration pass only the name);
-- each statement looks the current name up (one index probe of pg_attribute: NULL when the
-- column was dropped), and writes its rows in batches of at most 1000 rows and about 1 MB of row
-- data as pg_column_size counts it (INSERT and whole-row DELETE: a running sum; UPDATE: fewer rows
-- per batch when the statement's largest row is over 1 KB; DELETE keys: 10000), so a batch stays
-- far below PostgreSQL's 1 GB value limit and the plugin never holds much in memory. Inside a
-- statement rows are independent (each appears once), so only UPDATE, which pairs old and new
-- rows by position, pays for ordering its arrays.

-- One query, so that a single-row INSERT pays for one plan: a query that reads a transition table
-- is planned anew on every call (a separate sizing pass doubled the cost of a one-row INSERT).
-- The key column lookup is written out in each capture function rather than called as a helper
-- function: a SQL function is not inlined here and made a one-row INSERT's trigger 2.5x slower.
CREATE OR REPLACE FUNCTION pg2kafka.capture_insert() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  INSERT INTO pg2kafka.event_batches (table_schema, table_name, statement, key_column, events, data)
  SELECT TG_TABLE_SCHEMA, TG_TABLE_NAME, 'INSERT',
         (SELECT a.attname FROM pg_attribute a
           WHERE a.attrelid = TG_RELID AND a.attnum > 0 AND NOT a.attisdropped
             AND CASE WHEN TG_NARGS > 1 THEN a.attnum = TG_ARGV[1]::smallint
                      ELSE a.attname = TG_ARGV[0] END),
         count(*), json_agg(c.j)
    FROM (SELECT row_to_json(n.*) AS j, row_number() OVER w AS rn,
                 sum(pg_column_size(n.*)) OVER w AS bytes
            FROM pg2kafka_new n WINDOW w AS (ROWS UNBOUNDED PRECEDING)) c
   GROUP BY (c.rn - 1) / 1000 + c.bytes / 1048576
   ORDER BY (c.rn - 1) / 1000 + c.bytes / 1048576;
  IF FOUND AND current_setting('pg2kafka.notify', true) = 'on' THEN
    PERFORM pg_notify('pg2kafka', NULL);
  END IF;
  RETURN NULL;
END
$$;

-- Old and new rows are paired by their position in the transition tables (see migration 002):
-- both sides are cut into batches of the same number of rows and joined batch by batch.
CREATE OR REPLACE FUNCTION pg2kafka.capture_update() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_key  text;
  v_rows bigint;
  v_max  bigint;
  v_per  bigint;
BEGIN
  SELECT count(*), max(pg_column_size(n.*)),
         (SELECT a.attname FROM pg_attribute a
           WHERE a.attrelid = TG_RELID AND a.attnum > 0 AND NOT a.attisdropped
             AND CASE WHEN TG_NARGS > 1 THEN a.attnum = TG_ARGV[1]::smallint
                      ELSE a.attname = TG_ARGV[0] END)
    INTO v_rows, v_max, v_key
    FROM pg2kafka_new n;
  IF v_rows = 0 THEN
    RETURN NULL;
  END IF;
  v_per := greatest(1, least(1000, 1048576 / greatest(v_max, 1)));
  INSERT INTO pg2kafka.event_batches
         (table_schema, table_name, statement, key_column, events, data, old_data)
  SELECT TG_TABLE_SCHEMA, TG_TABLE_NAME, 'UPDATE', v_key, n.events, n.rows, o.rows
    FROM (SELECT (c.rn - 1) / v_per AS batch, count(*) AS events,
                 json_agg(c.j ORDER BY c.rn) AS rows
            FROM (SELECT row_to_json(r.*) AS j, row_number() OVER () AS rn
                    FROM pg2kafka_new r) c
           GROUP BY 1) n
    JOIN (SELECT (c.rn - 1) / v_per AS batch, json_agg(c.j ORDER BY c.rn) AS rows
            FROM (SELECT row_to_json(r.*) AS j, row_number() OVER () AS rn
                    FROM pg2kafka_old r) c
           GROUP BY 1) o ON o.batch = n.batch
   ORDER BY n.batch;
  IF current_setting('pg2kafka.notify', true) = 'on' THEN
    PERFORM pg_notify('pg2kafka', NULL);
  END IF;
  RETURN NULL;
END
$$;

-- DELETE events carry only the key, read straight from the column (its name is only known at
-- run time, hence EXECUTE: one plan per statement, never per row), 10000 keys to a batch. When
-- the key column is gone the whole old rows are kept instead, so that no deletion is lost.
CREATE OR REPLACE FUNCTION pg2kafka.capture_delete() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_key  text;
  v_rows bigint;
BEGIN
  SELECT a.attname INTO v_key FROM pg_attribute a
   WHERE a.attrelid = TG_RELID AND a.attnum > 0 AND NOT a.attisdropped
     AND CASE WHEN TG_NARGS > 1 THEN a.attnum = TG_ARGV[1]::smallint ELSE a.attname = TG_ARGV[0] END;
  IF v_key IS NOT NULL THEN
    EXECUTE format(
      'INSERT INTO pg2kafka.event_batches (table_schema, table_name, statement, key_column, '
      '                                    events, data) '
      'SELECT $1, $2, ''DELETE'', $3, count(*), json_agg(c.k) '
      '  FROM (SELECT o.%I AS k, row_number() OVER () AS rn FROM pg2kafka_old o) c '
      ' GROUP BY (c.rn - 1) / 10000 '
      ' ORDER BY (c.rn - 1) / 10000', v_key)
      USING TG_TABLE_SCHEMA, TG_TABLE_NAME, v_key;
  ELSE
    -- Batched like capture_insert's rows.
    INSERT INTO pg2kafka.event_batches (table_schema, table_name, statement, events, data)
    SELECT TG_TABLE_SCHEMA, TG_TABLE_NAME, 'DELETE', count(*), json_agg(c.j)
      FROM (SELECT row_to_json(o.*) AS j, row_number() OVER w AS rn,
                   sum(pg_column_size(o.*)) OVER w AS bytes
              FROM pg2kafka_old o WINDOW w AS (ROWS UNBOUNDED PRECEDING)) c
     GROUP BY (c.rn - 1) / 1000 + c.bytes / 1048576
     ORDER BY (c.rn - 1) / 1000 + c.bytes / 1048576;
  END IF;
  GET DIAGNOSTICS v_rows = ROW_COUNT;
  IF v_rows > 0 AND current_setting('pg2kafka.notify', true) = 'on' THEN
    PERFORM pg_notify('pg2kafka', NULL);
  END IF;
  RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION pg2kafka.capture_truncate() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  INSERT INTO pg2kafka.event_batches (table_schema, table_name, statement, events)
  VALUES (TG_TABLE_SCHEMA, TG_TABLE_NAME, 'TRUNCATE', 1);
  IF current_setting('pg2kafka.notify', true) = 'on' THEN
    PERFORM pg_notify('pg2kafka', NULL);
  END IF;
  RETURN NULL;
END
$$;

-- setup ----------------------------------------------------------------------------------------

-- Creates the four capture triggers of a table (internal helper of setup and of this
-- migration). The caller has dropped any old ones.
CREATE OR REPLACE FUNCTION pg2kafka.create_triggers(table_name regclass, key_column text,
                                                    key_attnum smallint) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  EXECUTE format('CREATE TRIGGER pg2kafka_insert AFTER INSERT ON %s '
                 'REFERENCING NEW TABLE AS pg2kafka_new '
                 'FOR EACH STATEMENT EXECUTE FUNCTION pg2kafka.capture_insert(%L, %L)',
                 table_name, key_column, key_attnum);
  EXECUTE format('CREATE TRIGGER pg2kafka_update AFTER UPDATE ON %s '
                 'REFERENCING OLD TABLE AS pg2kafka_old NEW TABLE AS pg2kafka_new '
                 'FOR EACH STATEMENT EXECUTE FUNCTION pg2kafka.capture_update(%L, %L)',
                 table_name, key_column, key_attnum);
  EXECUTE format('CREATE TRIGGER pg2kafka_delete AFTER DELETE ON %s '
                 'REFERENCING OLD TABLE AS pg2kafka_old '
                 'FOR EACH STATEMENT EXECUTE FUNCTION pg2kafka.capture_delete(%L, %L)',
                 table_name, key_column, key_attnum);
  EXECUTE format('CREATE TRIGGER pg2kafka_truncate AFTER TRUNCATE ON %s '
                 'FOR EACH STATEMENT EXECUTE FUNCTION pg2kafka.capture_truncate()',
                 table_name);
END
$$;

-- pg2kafka.setup(table, key_column): as in migration 002 (see sql/README.md), writing the
-- snapshot in batches (1000 rows or 1 MB, counted in the one pass over the table) and tracking
-- the key column by position.
CREATE OR REPLACE FUNCTION pg2kafka.setup(table_name regclass, key_column text) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
  v_schema  text;
  v_table   text;
  v_kind    "char";
  v_attnum  smallint;
  v_tracked text;
BEGIN
  IF table_name IS NULL OR key_column IS NULL THEN
    RAISE EXCEPTION 'pg2kafka.setup: table and key column must not be NULL'
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  -- A snapshot taken by a REPEATABLE READ or SERIALIZABLE transaction may predate writes that
  -- commit before the lock below: those would be neither in the snapshot nor captured.
  IF current_setting('transaction_isolation') <> 'read committed' THEN
    RAISE EXCEPTION 'pg2kafka.setup must run in a READ COMMITTED transaction (this one is %)',
      upper(current_setting('transaction_isolation'))
      USING ERRCODE = 'invalid_transaction_state';
  END IF;

  -- SHARE ROW EXCLUSIVE: waits for running writers to commit and blocks new writers until this
  -- transaction ends; readers (ACCESS SHARE) are never blocked. It is the lock CREATE TRIGGER
  -- takes anyway, and it conflicts with itself, so two setups of one table run one after the
  -- other. Every write committed before the lock is in the snapshot below (a READ COMMITTED
  -- statement sees it); every later write fires the triggers: nothing is lost or doubled.
  EXECUTE format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', table_name);

  SELECT n.nspname, c.relname, c.relkind INTO v_schema, v_table, v_kind
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE c.oid = table_name;
  IF v_kind NOT IN ('r', 'p') THEN
    RAISE EXCEPTION 'pg2kafka.setup: % is not a table', table_name
      USING ERRCODE = 'wrong_object_type';
  END IF;
  SELECT a.attnum INTO v_attnum FROM pg_attribute a
   WHERE a.attrelid = table_name AND a.attname = key_column AND a.attnum > 0
     AND NOT a.attisdropped;
  IF v_attnum IS NULL THEN
    RAISE EXCEPTION 'pg2kafka.setup: table % has no column "%"', table_name, key_column
      USING ERRCODE = 'undefined_column',
            HINT = 'The key column is given by its exact name, without quotes.';
  END IF;

  SELECT t.key_column INTO v_tracked FROM pg2kafka.tracked_tables t WHERE t.relid = table_name;
  IF FOUND AND EXISTS (SELECT 1 FROM pg_trigger
                        WHERE tgrelid = table_name AND tgname = 'pg2kafka_insert') THEN
    IF v_tracked = key_column THEN
      RETURN false;
    END IF;
    RAISE EXCEPTION 'pg2kafka.setup: % is already tracked with key column "%"', table_name, v_tracked
      USING ERRCODE = 'duplicate_object',
            HINT = 'Call pg2kafka.teardown first to change the key column.';
  END IF;

  -- A registry row without triggers is stale (the table was dropped and its OID reused, or the
  -- triggers were dropped by hand): start over.
  DELETE FROM pg2kafka.tracked_tables t WHERE t.relid = table_name;
  PERFORM pg2kafka.drop_triggers(table_name);
  PERFORM pg2kafka.create_triggers(table_name, key_column, v_attnum);

  EXECUTE format(
    'INSERT INTO pg2kafka.event_batches '
    '       (table_schema, table_name, statement, key_column, events, data) '
    'SELECT $1, $2, ''SNAPSHOT'', $3, count(*), json_agg(c.j) '
    '  FROM (SELECT row_to_json(t.*) AS j, row_number() OVER w AS rn, '
    '               sum(pg_column_size(t.*)) OVER w AS bytes '
    '          FROM %s t WINDOW w AS (ROWS UNBOUNDED PRECEDING)) c '
    ' GROUP BY (c.rn - 1) / 1000 + c.bytes / 1048576 '
    ' ORDER BY (c.rn - 1) / 1000 + c.bytes / 1048576', table_name)
    USING v_schema, v_table, key_column;

  INSERT INTO pg2kafka.tracked_tables (relid, table_schema, table_name, key_column, key_attnum)
  VALUES (table_name, v_schema, v_table, key_column, v_attnum);
  RETURN true;
END
$$;

-- Tables tracked before this migration get triggers that follow the key column by position.
-- That needs the right to create triggers on them; where the migrating role lacks it, the old
-- triggers stay (they keep working, following the key column by name) and a warning says how to
-- upgrade them.
DO $$
DECLARE
  t record;
BEGIN
  FOR t IN SELECT relid, key_column, key_attnum FROM pg2kafka.tracked_tables
            WHERE key_attnum IS NOT NULL
              AND EXISTS (SELECT 1 FROM pg_trigger g
                           WHERE g.tgrelid = relid AND g.tgname = 'pg2kafka_insert'
                             AND g.tgnargs = 1) LOOP
    BEGIN
      PERFORM pg2kafka.drop_triggers(t.relid::regclass);
      PERFORM pg2kafka.create_triggers(t.relid::regclass, t.key_column, t.key_attnum);
    EXCEPTION WHEN insufficient_privilege THEN
      RAISE WARNING 'pg2kafka: could not upgrade the capture triggers of %: %', t.relid::regclass,
        SQLERRM
        USING HINT = 'They keep working. To upgrade them, run SELECT pg2kafka.teardown(...) and '
                     'pg2kafka.setup(...) as the table''s owner (setup takes a new snapshot).';
    END;
  END LOOP;
END
$$;

INSERT INTO pg2kafka.schema_migrations (version, name) VALUES (4, 'event_batches')
ON CONFLICT (version) DO NOTHING;
