-- pg2kafka migration 005: cheaper capture of small statements (one-row OLTP writes).
--
-- Why: with migration 004 a one-row UPDATE paid about 110 us of trigger time and a one-row
-- DELETE about 150 us, against 5-10 us for the statement itself (measured on 2 cores, see
-- bench/README.md): single-row UPDATE throughput fell to 0.77 of an untracked table (target:
-- 0.85). Where the time went:
--   * Every query that reads a transition table is planned anew on each call, and the batching
--     queries (window functions, grouping, a join of old and new rows) are costly to plan.
--   * The key column lookup was a CASE on the trigger's arguments, which no index can serve
--     (~28 us); as two plain queries, one per form of the arguments, it costs ~5 us.
--   * DELETE built its query text with EXECUTE, parsed and planned on every call.
-- Now each capture function first counts the statement's rows (and, for INSERT and UPDATE, the
-- largest row's size), which costs ~5 us, and when everything fits in one batch writes it with a
-- query that is cheap to plan: one json_agg per transition table. Larger statements take the
-- batching queries of 004, unchanged. Measured per one-row statement (trigger included):
-- UPDATE 120 -> 48 us, INSERT 45 -> 39 us, DELETE 150 -> ~45 us.
--
-- Nothing changes for users: the queue rows have the same layout and the same batch bounds
-- (at most 1000 rows and about 1 MB of row data; DELETE: 10000 keys). Only function bodies are
-- replaced, so existing triggers use the new code at once. Applying this file needs nothing
-- stopped.

SELECT pg_catalog.pg_advisory_xact_lock(1882352481, 1);  -- 1882352481 = 'p2ka', 1 = migrations

-- The capture functions keep the contract of migration 004 (statement-level AFTER triggers with
-- transition tables named pg2kafka_new / pg2kafka_old, SECURITY DEFINER with a fixed
-- search_path, arguments: the key column's name and, for triggers created by 004 or later, its
-- attnum; pg_notify('pg2kafka') when pg2kafka.notify is on). The key column lookup is written
-- out in each function on purpose: a helper function call costs more than the lookup itself.
--
-- One batch is written by a single VALUES row when the statement has at most 1000 rows and their
-- pg_column_size sum stays below 1 MB (counted as rows * largest row; UPDATE: the larger of the
-- old and new rows). Old and new rows of an
-- UPDATE are paired by position (see migration 002), which json_agg over each transition table
-- keeps: a plain aggregate over a scan of the tuplestore sees the rows in the order they were
-- stored, as the row_number() of the batching query does.

CREATE OR REPLACE FUNCTION pg2kafka.capture_insert() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_key  text;
  v_rows bigint;
  v_max  bigint;
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
  SELECT count(*), max(pg_column_size(n.*)) INTO v_rows, v_max FROM pg2kafka_new n;
  IF v_rows = 0 THEN
    RETURN NULL;
  ELSIF v_rows <= 1000 AND v_rows * v_max < 1048576 THEN
    INSERT INTO pg2kafka.event_batches
           (table_schema, table_name, statement, key_column, events, data)
    VALUES (TG_TABLE_SCHEMA, TG_TABLE_NAME, 'INSERT', v_key, v_rows,
            (SELECT json_agg(row_to_json(n.*)) FROM pg2kafka_new n));
  ELSE
    INSERT INTO pg2kafka.event_batches
           (table_schema, table_name, statement, key_column, events, data)
    SELECT TG_TABLE_SCHEMA, TG_TABLE_NAME, 'INSERT', v_key, count(*), json_agg(c.j)
      FROM (SELECT row_to_json(n.*) AS j, row_number() OVER w AS rn,
                   sum(pg_column_size(n.*)) OVER w AS bytes
              FROM pg2kafka_new n WINDOW w AS (ROWS UNBOUNDED PRECEDING)) c
     GROUP BY (c.rn - 1) / 1000 + c.bytes / 1048576
     ORDER BY (c.rn - 1) / 1000 + c.bytes / 1048576;
  END IF;
  IF current_setting('pg2kafka.notify', true) = 'on' THEN
    PERFORM pg_notify('pg2kafka', NULL);
  END IF;
  RETURN NULL;
END
$$;

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
           (table_schema, table_name, statement, key_column, events, data, old_data)
    VALUES (TG_TABLE_SCHEMA, TG_TABLE_NAME, 'UPDATE', v_key, v_rows,
            (SELECT json_agg(row_to_json(n.*)) FROM pg2kafka_new n),
            (SELECT json_agg(row_to_json(o.*)) FROM pg2kafka_old o));
  ELSE
    -- Both sides are cut into batches of the same number of rows and joined batch by batch.
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
  END IF;
  IF current_setting('pg2kafka.notify', true) = 'on' THEN
    PERFORM pg_notify('pg2kafka', NULL);
  END IF;
  RETURN NULL;
END
$$;

-- DELETE events carry only the key. Up to 100 rows of a table that keeps nothing out of line
-- (its TOAST table is empty; checking costs ~10 us) it is read as a member of row_to_json (no
-- query text to parse and plan per call); beyond that, or when rows may hold large values
-- (serialising a 9 MB value to read a key took 120 ms), the key column is read directly with
-- EXECUTE, 10000 keys to a batch.
-- When the key column is gone the whole old rows are kept instead, so that no deletion is lost.
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
  SELECT count(*) INTO v_rows FROM pg2kafka_old o;
  IF v_rows = 0 THEN
    RETURN NULL;
  ELSIF v_key IS NULL THEN
    -- Batched like capture_insert's rows.
    INSERT INTO pg2kafka.event_batches (table_schema, table_name, statement, events, data)
    SELECT TG_TABLE_SCHEMA, TG_TABLE_NAME, 'DELETE', count(*), json_agg(c.j)
      FROM (SELECT row_to_json(o.*) AS j, row_number() OVER w AS rn,
                   sum(pg_column_size(o.*)) OVER w AS bytes
              FROM pg2kafka_old o WINDOW w AS (ROWS UNBOUNDED PRECEDING)) c
     GROUP BY (c.rn - 1) / 1000 + c.bytes / 1048576
     ORDER BY (c.rn - 1) / 1000 + c.bytes / 1048576;
  ELSIF v_rows <= 100
        AND NOT EXISTS (SELECT FROM pg_class c
                         WHERE c.oid = TG_RELID
                           AND (c.relkind = 'p'  -- its partitions may hold anything
                                OR c.reltoastrelid <> 0
                                   AND pg_relation_size(c.reltoastrelid) > 0)) THEN
    INSERT INTO pg2kafka.event_batches
           (table_schema, table_name, statement, key_column, events, data)
    VALUES (TG_TABLE_SCHEMA, TG_TABLE_NAME, 'DELETE', v_key, v_rows,
            (SELECT json_agg(row_to_json(o.*) -> v_key) FROM pg2kafka_old o));
  ELSE
    EXECUTE format(
      'INSERT INTO pg2kafka.event_batches (table_schema, table_name, statement, key_column, '
      '                                    events, data) '
      'SELECT $1, $2, ''DELETE'', $3, count(*), json_agg(c.k) '
      '  FROM (SELECT o.%I AS k, row_number() OVER () AS rn FROM pg2kafka_old o) c '
      ' GROUP BY (c.rn - 1) / 10000 '
      ' ORDER BY (c.rn - 1) / 10000', v_key)
      USING TG_TABLE_SCHEMA, TG_TABLE_NAME, v_key;
  END IF;
  IF current_setting('pg2kafka.notify', true) = 'on' THEN
    PERFORM pg_notify('pg2kafka', NULL);
  END IF;
  RETURN NULL;
END
$$;

INSERT INTO pg2kafka.schema_migrations (version, name) VALUES (5, 'small_statements')
ON CONFLICT (version) DO NOTHING;
