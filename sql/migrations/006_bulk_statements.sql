-- pg2kafka migration 006: cheaper capture of large INSERT and DELETE statements, and queue rows
-- that say how large they are.
--
-- Why: on a 100k-row bulk INSERT the trigger of migration 005 took about as long as the INSERT
-- itself (target: at most that), and a bulk DELETE's trigger twice the DELETE. Where the time
-- went (EXPLAIN ANALYZE of the trigger's queries, auto_explain; 2 cores, see bench/README.md):
--   * The first pass, which decides whether the statement fits in one batch, read every row
--     (count(*), max(pg_column_size(row))): 24 ms for 100k INSERTed rows, 11 ms for 100k
--     DELETEd ones. Whether a statement has more than 1000 (DELETE: 100) rows is known after
--     reading 1001 (101) of them, so the pass now stops there: 0.3 ms.
--   * The batching query computed pg_column_size(row), which builds a copy of every row, for a
--     running size sum. It now sums the size of the row's JSON, which it builds anyway (a
--     subquery fence, OFFSET 0, keeps the planner from building the JSON twice).
-- Measured in one run, medians of 7 (bench/results/20261126T0345Z-bulk-capture-ab.txt): bulk
-- INSERT of 100k rows 558 -> 513 ms (untracked 275 ms), bulk DELETE 104 -> 95 ms (untracked
-- 32 ms); UPDATE and one-row statements unchanged.
--
-- Sizes. Batches were bounded by pg_column_size of the rows, which counts large values as
-- stored, i.e. compressed when the rows were read back from the table (a snapshot's rows,
-- DELETE's and UPDATE's old rows): a batch of rows whose values compress well held far more
-- than 1 MB of JSON (1000 rows of 20 kB: 20 MB in one batch). Snapshot, INSERT and DELETE
-- batches are now cut by the size of their JSON. And each queue row records that size in the
-- new column data_bytes, so that the drainer can bound a read of the queue by what it will hold
-- in memory: the stored JSON is compressed, and its uncompressed size can otherwise only be had
-- by decompressing it.
--
-- Nothing else changes for users: the queue rows have the same layout (plus data_bytes, NULL in
-- rows queued before). Only function bodies are replaced, so existing triggers use the new code
-- at once. Applying this file needs nothing stopped (adding the column needs the queue table's
-- lock for a moment, see below; the table is not rewritten).

SELECT pg_catalog.pg_advisory_xact_lock(1882352481, 1);  -- 1882352481 = 'p2ka', 1 = migrations

-- The size of a batch's data and old_data as JSON text, uncompressed: pg_column_size of the
-- freshly built JSON, i.e. its length plus a 4-byte header per array (one batch) or per row
-- (summed over rows). Written by the capture functions and setup from this migration on; NULL in
-- rows queued before, and for TRUNCATE.
-- Adding it needs the queue table's ACCESS EXCLUSIVE lock (no rewrite): the ALTER waits for
-- transactions that wrote to tracked tables, and every tracked write queues behind it meanwhile.
-- So it waits at most 2 s; then the migration fails and changes nothing. The plugin retries it
-- (lock_not_available is transient); by hand, run it again.
SET LOCAL lock_timeout = '2s';
ALTER TABLE pg2kafka.event_batches ADD COLUMN IF NOT EXISTS data_bytes bigint;
RESET lock_timeout;

-- The capture functions keep the contract of migrations 004 and 005 (statement-level AFTER
-- triggers with transition tables named pg2kafka_new / pg2kafka_old, SECURITY DEFINER with a
-- fixed search_path, arguments: the key column's name and, for triggers created by 004 or later,
-- its attnum; pg_notify('pg2kafka') when pg2kafka.notify is on). The key column lookup is written
-- out in each function on purpose: a helper function call costs more than the lookup itself.
--
-- A statement of at most 1000 rows whose pg_column_size sum stays below 1 MB (counted as rows *
-- largest row; UPDATE: the larger of the old and new rows) is written by a single row built from
-- one json_agg per transition table, which is cheap to plan (a query that reads a transition
-- table is planned on every call); INSERT checks the JSON's size too. Larger INSERT statements
-- (and DELETEs of whole rows) are cut into batches of at most 1000 rows and about 1 MB of JSON
-- (by a running sum of the rows' JSON sizes: a batch holds under 1 MB plus at most one row),
-- queued in the order of their first rows (inside a batch, the rows of one statement have no
-- order to keep: each row appears once). UPDATE batches keep 005's sizing (by the largest old or
-- new row as stored). The batching query is written out in capture_insert and capture_delete
-- alike: transition tables are visible only inside the trigger function itself, so a shared
-- helper could only be handed the rows as a value built for the purpose, a copy of them all.

CREATE OR REPLACE FUNCTION pg2kafka.capture_insert() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_key  text;
  v_rows bigint;
  v_max  bigint;
  v_done boolean := false;
BEGIN
  IF TG_NARGS > 1 THEN
    SELECT a.attname INTO v_key FROM pg_attribute a
     WHERE a.attrelid = TG_RELID AND a.attnum = TG_ARGV[1]::smallint AND a.attnum > 0
       AND NOT a.attisdropped;
  ELSE
    SELECT a.attname INTO v_key FROM pg_attribute a
     WHERE a.attrelid = TG_RELID AND a.attname = TG_ARGV[0] AND a.attnum > 0
       AND NOT a.attisdropped;
  END IF;
  -- v_rows: the number of rows, or 1001 for "more than 1000".
  SELECT count(*), max(s.size) INTO v_rows, v_max
    FROM (SELECT pg_column_size(n.*) AS size FROM pg2kafka_new n LIMIT 1001) s;
  IF v_rows = 0 THEN
    RETURN NULL;
  END IF;
  IF v_rows <= 1000 AND v_rows * v_max < 1048576 THEN
    -- Values copied from another table (INSERT ... SELECT) are still compressed, so the stored
    -- size can be far below the JSON's: then the rows are cut into batches after all.
    INSERT INTO pg2kafka.event_batches
           (table_schema, table_name, statement, key_column, events, data, data_bytes)
    SELECT TG_TABLE_SCHEMA, TG_TABLE_NAME, 'INSERT', v_key, v_rows, b.j, pg_column_size(b.j)
      FROM (SELECT json_agg(row_to_json(n.*)) AS j FROM pg2kafka_new n) b
     WHERE v_rows = 1 OR pg_column_size(b.j) < 1048576;
    v_done := FOUND;
  END IF;
  IF NOT v_done THEN
    INSERT INTO pg2kafka.event_batches
           (table_schema, table_name, statement, key_column, events, data, data_bytes)
    SELECT TG_TABLE_SCHEMA, TG_TABLE_NAME, 'INSERT', v_key, count(*), json_agg(c.j), sum(c.size)
      FROM (SELECT r.j, r.size, row_number() OVER w AS rn, sum(r.size) OVER w AS bytes
              FROM (SELECT j, pg_column_size(j) AS size
                      FROM (SELECT row_to_json(n.*) AS j FROM pg2kafka_new n OFFSET 0) s) r
            WINDOW w AS (ROWS UNBOUNDED PRECEDING)) c
     GROUP BY (c.rn - 1) / 1000 + c.bytes / 1048576
     ORDER BY (c.rn - 1) / 1000 + c.bytes / 1048576;
  END IF;
  IF current_setting('pg2kafka.notify', true) = 'on' THEN
    PERFORM pg_notify('pg2kafka', NULL);
  END IF;
  RETURN NULL;
END
$$;

-- As in 005, and recording data_bytes.
CREATE OR REPLACE FUNCTION pg2kafka.capture_update() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_key  text;
  v_rows bigint;
  v_max  bigint;
  v_per  bigint;
BEGIN
  IF TG_NARGS > 1 THEN
    SELECT a.attname INTO v_key FROM pg_attribute a
     WHERE a.attrelid = TG_RELID AND a.attnum = TG_ARGV[1]::smallint AND a.attnum > 0
       AND NOT a.attisdropped;
  ELSE
    SELECT a.attname INTO v_key FROM pg_attribute a
     WHERE a.attrelid = TG_RELID AND a.attname = TG_ARGV[0] AND a.attnum > 0
       AND NOT a.attisdropped;
  END IF;
  -- Sized by the larger of the old and new rows: both are kept (an UPDATE that empties a large
  -- column must not put all the large old values into one batch).
  SELECT count(*), greatest(max(pg_column_size(n.*)),
                            (SELECT max(pg_column_size(o.*)) FROM pg2kafka_old o))
    INTO v_rows, v_max
    FROM pg2kafka_new n;
  IF v_rows = 0 THEN
    RETURN NULL;
  ELSIF v_rows <= 1000 AND v_rows * v_max < 1048576 THEN
    INSERT INTO pg2kafka.event_batches
           (table_schema, table_name, statement, key_column, events, data, old_data, data_bytes)
    SELECT TG_TABLE_SCHEMA, TG_TABLE_NAME, 'UPDATE', v_key, v_rows, n.j, o.j,
           pg_column_size(n.j) + pg_column_size(o.j)
      FROM (SELECT json_agg(row_to_json(r.*)) AS j FROM pg2kafka_new r) n,
           (SELECT json_agg(row_to_json(r.*)) AS j FROM pg2kafka_old r) o;
  ELSE
    -- Both sides are cut into batches of the same number of rows and joined batch by batch.
    v_per := greatest(1, least(1000, 1048576 / greatest(v_max, 1)));
    INSERT INTO pg2kafka.event_batches
           (table_schema, table_name, statement, key_column, events, data, old_data, data_bytes)
    SELECT TG_TABLE_SCHEMA, TG_TABLE_NAME, 'UPDATE', v_key, n.events, n.rows, o.rows,
           n.bytes + o.bytes
      FROM (SELECT (c.rn - 1) / v_per AS batch, count(*) AS events,
                   json_agg(c.j ORDER BY c.rn) AS rows, sum(pg_column_size(c.j)) AS bytes
              FROM (SELECT row_to_json(r.*) AS j, row_number() OVER () AS rn
                      FROM pg2kafka_new r) c
             GROUP BY 1) n
      JOIN (SELECT (c.rn - 1) / v_per AS batch, json_agg(c.j ORDER BY c.rn) AS rows,
                   sum(pg_column_size(c.j)) AS bytes
              FROM (SELECT row_to_json(r.*) AS j, row_number() OVER () AS rn
                      FROM pg2kafka_old r) c
             GROUP BY 1) o ON o.batch = n.batch
     ORDER BY n.batch;
  END IF;
  IF current_setting('pg2kafka.notify', true) = 'on' THEN
    PERFORM pg_notify('pg2kafka', NULL);
  END IF;
  RETURN NULL;
END
$$;

-- DELETE events carry only the key. Up to 100 rows of a table that keeps nothing out of line
-- (its TOAST table is empty) it is read as a member of row_to_json (no query text to parse and
-- plan per call); beyond that, or when rows may hold large values, the key column is read
-- directly with EXECUTE, 10000 keys to a batch. When the key column is gone the whole old rows
-- are kept instead (batched like capture_insert's rows), so that no deletion is lost.
CREATE OR REPLACE FUNCTION pg2kafka.capture_delete() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_key  text;
  v_rows bigint;
BEGIN
  IF TG_NARGS > 1 THEN
    SELECT a.attname INTO v_key FROM pg_attribute a
     WHERE a.attrelid = TG_RELID AND a.attnum = TG_ARGV[1]::smallint AND a.attnum > 0
       AND NOT a.attisdropped;
  ELSE
    SELECT a.attname INTO v_key FROM pg_attribute a
     WHERE a.attrelid = TG_RELID AND a.attname = TG_ARGV[0] AND a.attnum > 0
       AND NOT a.attisdropped;
  END IF;
  -- v_rows: the number of rows, or 101 for "more than 100".
  SELECT count(*) INTO v_rows FROM (SELECT FROM pg2kafka_old o LIMIT 101) s;
  IF v_rows = 0 THEN
    RETURN NULL;
  ELSIF v_key IS NULL THEN
    INSERT INTO pg2kafka.event_batches
           (table_schema, table_name, statement, events, data, data_bytes)
    SELECT TG_TABLE_SCHEMA, TG_TABLE_NAME, 'DELETE', count(*), json_agg(c.j), sum(c.size)
      FROM (SELECT r.j, r.size, row_number() OVER w AS rn, sum(r.size) OVER w AS bytes
              FROM (SELECT j, pg_column_size(j) AS size
                      FROM (SELECT row_to_json(o.*) AS j FROM pg2kafka_old o OFFSET 0) s) r
            WINDOW w AS (ROWS UNBOUNDED PRECEDING)) c
     GROUP BY (c.rn - 1) / 1000 + c.bytes / 1048576
     ORDER BY (c.rn - 1) / 1000 + c.bytes / 1048576;
  ELSIF v_rows <= 100
        AND NOT EXISTS (SELECT FROM pg_class c
                         WHERE c.oid = TG_RELID
                           AND (c.relkind = 'p'  -- its partitions may hold anything
                                OR c.reltoastrelid <> 0
                                   AND pg_relation_size(c.reltoastrelid) > 0)) THEN
    INSERT INTO pg2kafka.event_batches
           (table_schema, table_name, statement, key_column, events, data, data_bytes)
    SELECT TG_TABLE_SCHEMA, TG_TABLE_NAME, 'DELETE', v_key, v_rows, b.j, pg_column_size(b.j)
      FROM (SELECT json_agg(row_to_json(o.*) -> v_key) AS j FROM pg2kafka_old o) b;
  ELSE
    EXECUTE format(
      'INSERT INTO pg2kafka.event_batches (table_schema, table_name, statement, key_column, '
      '                                    events, data, data_bytes) '
      'SELECT $1, $2, ''DELETE'', $3, b.events, b.j, pg_column_size(b.j) '
      '  FROM (SELECT (c.rn - 1) / 10000 AS batch, count(*) AS events, json_agg(c.k) AS j '
      '          FROM (SELECT o.%I AS k, row_number() OVER () AS rn FROM pg2kafka_old o) c '
      '         GROUP BY 1) b '
      ' ORDER BY b.batch', v_key)
      USING TG_TABLE_SCHEMA, TG_TABLE_NAME, v_key;
  END IF;
  IF current_setting('pg2kafka.notify', true) = 'on' THEN
    PERFORM pg_notify('pg2kafka', NULL);
  END IF;
  RETURN NULL;
END
$$;

-- pg2kafka.setup(table, key_column): as in migration 004 (see sql/README.md), the snapshot's
-- batches cut by the size of their JSON and recording data_bytes.
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

  -- The snapshot: batches cut by the size of the rows' JSON (rows read from the table hold large
  -- values compressed, so their stored size says little about the JSON they make).
  EXECUTE format(
    'INSERT INTO pg2kafka.event_batches '
    '       (table_schema, table_name, statement, key_column, events, data, data_bytes) '
    'SELECT $1, $2, ''SNAPSHOT'', $3, count(*), json_agg(c.j), sum(c.size) '
    '  FROM (SELECT r.j, r.size, row_number() OVER w AS rn, sum(r.size) OVER w AS bytes '
    '          FROM (SELECT j, pg_column_size(j) AS size '
    '                  FROM (SELECT row_to_json(t.*) AS j FROM %s t OFFSET 0) s) r '
    '        WINDOW w AS (ROWS UNBOUNDED PRECEDING)) c '
    ' GROUP BY (c.rn - 1) / 1000 + c.bytes / 1048576 '
    ' ORDER BY (c.rn - 1) / 1000 + c.bytes / 1048576', table_name)
    USING v_schema, v_table, key_column;

  INSERT INTO pg2kafka.tracked_tables (relid, table_schema, table_name, key_column, key_attnum)
  VALUES (table_name, v_schema, v_table, key_column, v_attnum);
  RETURN true;
END
$$;

INSERT INTO pg2kafka.schema_migrations (version, name) VALUES (6, 'bulk_statements')
ON CONFLICT (version) DO NOTHING;
