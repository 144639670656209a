-- pg2kafka migration 006: cheaper capture of large INSERT and DELETE statements.
--
-- Why: on a 100k-row bulk INSERT the trigger of migration 005 took about as long as the INSERT
-- itself (target: at most that), and a bulk DELETE's trigger twice the DELETE. Where the time
-- went (EXPLAIN ANALYZE of the trigger's queries, auto_explain; 2 cores, see bench/README.md):
--   * The first pass, which decides whether the statement fits in one batch, read every row
--     (count(*), max(pg_column_size(row))): 24 ms for 100k INSERTed rows, 11 ms for 100k
--     DELETEd ones. Whether a statement has more than 1000 (DELETE: 100) rows is known after
--     reading 1001 (101) of them, so the pass now stops there: 0.3 ms.
--   * The batching query computed pg_column_size(row), which builds a copy of every row, for a
--     running size sum. It now sums the length of the row's JSON text, which it builds anyway.
--     (A subquery fence, OFFSET 0, keeps the planner from building the JSON twice.) Batches are
--     now bounded by what they actually hold: rows read back from the table (DELETE's old rows)
--     counted with their values compressed, so a batch of rows with large values that compress
--     well held far more than 1 MB of JSON (1000 rows of 20 kB: 20 MB in one batch).
-- Measured in one run, medians of 7 (bench/results/20261126T0345Z-bulk-capture-ab.txt): bulk
-- INSERT of 100k rows 581 -> 556 ms (untracked 312 ms), bulk DELETE 111 -> 104 ms (untracked
-- 34 ms); one-row statements unchanged.
--
-- Nothing changes for users: the queue rows have the same layout and order, and batches the
-- same bounds (now counted in bytes of JSON). Only function bodies are replaced (capture_update
-- is unchanged), so existing triggers use the new code at once. Applying this file needs nothing
-- stopped.

SELECT pg_catalog.pg_advisory_xact_lock(1882352481, 1);  -- 1882352481 = 'p2ka', 1 = migrations

-- The capture functions keep the contract of migrations 004 and 005 (statement-level AFTER
-- triggers with transition tables named pg2kafka_new / pg2kafka_old, SECURITY DEFINER with a
-- fixed search_path, arguments: the key column's name and, for triggers created by 004 or later,
-- its attnum; pg_notify('pg2kafka') when pg2kafka.notify is on). The key column lookup is written
-- out in each function on purpose: a helper function call costs more than the lookup itself.
--
-- A statement of at most 1000 rows whose pg_column_size sum stays below 1 MB (counted as rows *
-- largest row) is written by a single VALUES row, which is cheap to plan (a query that reads a
-- transition table is planned on every call). Larger statements are cut into batches of at most
-- 1000 rows and about 1 MB of JSON text (by a running sum of the rows' JSON lengths: a batch holds
-- under 1 MB plus at most one row), queued in the order the rows were stored.

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
  -- v_rows: the number of rows, or 1001 for "more than 1000".
  SELECT count(*), max(s.size) INTO v_rows, v_max
    FROM (SELECT pg_column_size(n.*) AS size FROM pg2kafka_new n LIMIT 1001) s;
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
      FROM (SELECT r.j, row_number() OVER w AS rn, sum(octet_length(r.j::text)) OVER w AS bytes
              FROM (SELECT row_to_json(n.*) AS j FROM pg2kafka_new n OFFSET 0) r
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
    INSERT INTO pg2kafka.event_batches (table_schema, table_name, statement, events, data)
    SELECT TG_TABLE_SCHEMA, TG_TABLE_NAME, 'DELETE', count(*), json_agg(c.j)
      FROM (SELECT r.j, row_number() OVER w AS rn, sum(octet_length(r.j::text)) OVER w AS bytes
              FROM (SELECT row_to_json(o.*) AS j FROM pg2kafka_old o OFFSET 0) r
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

INSERT INTO pg2kafka.schema_migrations (version, name) VALUES (6, 'bulk_statements')
ON CONFLICT (version) DO NOTHING;
