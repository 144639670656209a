-- The capture trigger functions. Called only by the triggers that pg2kafka.setup creates (see
-- 40_tracking.sql): on a plain table four statement-level triggers, each running a fixed number
-- of queries per statement, never per row; on a partitioned table a row-level trigger, which
-- PostgreSQL clones to every partition, present and future (capture_row), and TRUNCATE triggers.
--
-- Contract:
--   * Rights: the capture functions run with the rights of the role whose statement fired them,
--     like any trigger of the table (no SECURITY DEFINER): serialising a row (row_to_json) may
--     run user code, a cast to json of a user-defined type, which must never run with other
--     rights. That role queues the events itself; row-level security on the queue (migration
--     008) lets it queue events only for tables on which it holds the matching privilege, and
--     only in the columns that describe events. A fixed search_path keeps the caller's from
--     changing what they call; every object is schema-qualified and whole rows are written
--     alias.* (a bare alias could mean a column of that name).
--   * Statement-level triggers have transition tables named pg2kafka_new / pg2kafka_old.
--   * Trigger arguments (written by pg2kafka.create_triggers): the key column's name, its attnum
--     and the tracked table's OID when the trigger was created. The key column is followed by
--     its attnum, so renaming it keeps the keys. A dump restored into another database gives the
--     table a new OID and may shift attnums (dropped columns are not dumped): when the recorded
--     OID is not the table's, the column is looked up by its name instead, never by a position
--     that may now be another column's; the drainer reports such tables at start and
--     pg2kafka.setup re-attaches them (see sql/README.md, "pg_dump and pg_restore"). Triggers
--     created by migrations 004-006 pass the name and attnum only, those of 002-003 the name
--     only; applying this function set upgrades them where the installing role may.
--   * The key column's current name is NULL once it was dropped: events then have a NULL key
--     and DELETE keeps the whole old rows, so no deletion is lost.
--   * pg_notify('pg2kafka') when the setting pg2kafka.notify is on (ALTER DATABASE ... SET
--     pg2kafka.notify = on): it wakes the drainer at once, at the price of a cluster-wide lock
--     at commit; the drainer polls anyway.
--
-- The key column lookup is written out in each function on purpose: a helper function call costs
-- more than the lookup itself (+10 us per one-row UPDATE, bench/README.md). The same holds for
-- the batching query of capture_insert and capture_delete: transition tables are visible only
-- inside the trigger function itself, so a shared helper could only be handed the rows as a value
-- built for the purpose, a copy of them all.
--
-- Sizes: a statement of at most batch_max_rows() rows whose pg_column_size sum stays below
-- batch_max_bytes() (counted as rows * largest row; UPDATE: the larger of the old and new rows)
-- is written as one batch by a single row built from one json_agg per transition table, which is
-- cheap to plan (a query that reads a transition table is planned on every call). Larger INSERT
-- statements (and DELETEs of whole rows) are cut into batches by a running sum of the rows' JSON
-- sizes (a batch holds under batch_max_bytes() plus at most one row), queued in the order of
-- their first rows; inside a batch the rows of one statement have no order to keep. UPDATE
-- batches are sized by the largest old or new row as stored. Each batch records the size of its
-- JSON in data_bytes.

CREATE OR REPLACE FUNCTION pg2kafka.capture_insert() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  c_rows  CONSTANT integer := pg2kafka.batch_max_rows();
  c_bytes CONSTANT integer := pg2kafka.batch_max_bytes();
  v_key   text;
  v_rows  bigint;
  v_max   bigint;
  v_done  boolean := false;
BEGIN
  IF TG_NARGS = 2 OR TG_ARGV[2]::oid = TG_RELID THEN
    IF has_column_privilege(TG_RELID, TG_ARGV[1]::smallint, 'SELECT') IS NOT NULL THEN
      v_key := (pg_identify_object_as_address(1259, TG_RELID, TG_ARGV[1]::integer)).object_names[3];
    END IF;
  ELSE
    SELECT a.attname INTO v_key FROM pg_attribute a
     WHERE a.attrelid = TG_RELID AND a.attname = TG_ARGV[0] AND a.attnum > 0
       AND NOT a.attisdropped;
  END IF;
  -- v_rows: the number of rows, or c_rows + 1 for "more than c_rows".
  SELECT count(*), max(s.size) INTO v_rows, v_max
    FROM (SELECT pg_column_size(n.*) AS size FROM pg2kafka_new n LIMIT c_rows + 1) s;
  IF v_rows = 0 THEN
    RETURN NULL;
  END IF;
  IF v_rows <= c_rows AND v_rows * v_max < c_bytes THEN
    -- Values copied from another table (INSERT ... SELECT) are still compressed, so the stored
    -- size can be far below the JSON's: then the rows are cut into batches after all.
    INSERT INTO pg2kafka.event_batches
           (table_schema, table_name, statement, key_column, events, data, data_bytes)
    SELECT TG_TABLE_SCHEMA, TG_TABLE_NAME, 'INSERT', v_key, v_rows, b.j, pg_column_size(b.j)
      FROM (SELECT json_agg(row_to_json(n.*)) AS j FROM pg2kafka_new n) b
     WHERE v_rows = 1 OR pg_column_size(b.j) < c_bytes;
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
     GROUP BY (c.rn - 1) / c_rows + c.bytes / c_bytes
     ORDER BY (c.rn - 1) / c_rows + c.bytes / c_bytes;
  END IF;
  IF current_setting('pg2kafka.notify', true) = 'on' THEN
    PERFORM pg_notify('pg2kafka', NULL);
  END IF;
  RETURN NULL;
END
$$;

-- Old and new rows are paired by their position in the transition tables: PostgreSQL appends the
-- old and the new version of each updated row to the two tables together, and json_agg over a
-- scan of each keeps that order. The drainer sends the members of each new row that differ from
-- the old row, and nothing for rows whose JSON did not change.
CREATE OR REPLACE FUNCTION pg2kafka.capture_update() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  c_rows  CONSTANT integer := pg2kafka.batch_max_rows();
  c_bytes CONSTANT integer := pg2kafka.batch_max_bytes();
  v_key   text;
  v_rows  bigint;
  v_max   bigint;
  v_per   bigint;
BEGIN
  IF TG_NARGS = 2 OR TG_ARGV[2]::oid = TG_RELID THEN
    IF has_column_privilege(TG_RELID, TG_ARGV[1]::smallint, 'SELECT') IS NOT NULL THEN
      v_key := (pg_identify_object_as_address(1259, TG_RELID, TG_ARGV[1]::integer)).object_names[3];
    END IF;
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
  ELSIF v_rows <= c_rows AND v_rows * v_max < c_bytes THEN
    INSERT INTO pg2kafka.event_batches
           (table_schema, table_name, statement, key_column, events, data, old_data, data_bytes)
    SELECT TG_TABLE_SCHEMA, TG_TABLE_NAME, 'UPDATE', v_key, v_rows, n.j, o.j,
           pg_column_size(n.j) + pg_column_size(o.j)
      FROM (SELECT json_agg(row_to_json(r.*)) AS j FROM pg2kafka_new r) n,
           (SELECT json_agg(row_to_json(r.*)) AS j FROM pg2kafka_old r) o;
  ELSE
    -- Both sides are cut into batches of the same number of rows and joined batch by batch.
    v_per := greatest(1, least(c_rows, c_bytes / greatest(v_max, 1)));
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

-- DELETE events carry only the key. Up to delete_inline_max_rows() rows of a table that keeps
-- nothing out of line (its TOAST table is empty) it is read as a member of row_to_json (no query
-- text to parse and plan per call); beyond that, or when rows may hold large values, the key
-- column is read directly with EXECUTE, delete_batch_max_keys() keys to a batch. When the key
-- column is gone the whole old rows are kept instead (batched like capture_insert's rows), so
-- that no deletion is lost.
CREATE OR REPLACE FUNCTION pg2kafka.capture_delete() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  c_rows   CONSTANT integer := pg2kafka.batch_max_rows();
  c_bytes  CONSTANT integer := pg2kafka.batch_max_bytes();
  c_inline CONSTANT integer := pg2kafka.delete_inline_max_rows();
  v_key    text;
  v_rows   bigint;
BEGIN
  IF TG_NARGS = 2 OR TG_ARGV[2]::oid = TG_RELID THEN
    IF has_column_privilege(TG_RELID, TG_ARGV[1]::smallint, 'SELECT') IS NOT NULL THEN
      v_key := (pg_identify_object_as_address(1259, TG_RELID, TG_ARGV[1]::integer)).object_names[3];
    END IF;
  ELSE
    SELECT a.attname INTO v_key FROM pg_attribute a
     WHERE a.attrelid = TG_RELID AND a.attname = TG_ARGV[0] AND a.attnum > 0
       AND NOT a.attisdropped;
  END IF;
  -- v_rows: the number of rows, or c_inline + 1 for "more than c_inline".
  SELECT count(*) INTO v_rows FROM (SELECT FROM pg2kafka_old o LIMIT c_inline + 1) s;
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
     GROUP BY (c.rn - 1) / c_rows + c.bytes / c_bytes
     ORDER BY (c.rn - 1) / c_rows + c.bytes / c_bytes;
  ELSIF v_rows <= c_inline
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
      '  FROM (SELECT (c.rn - 1) / $4 AS batch, count(*) AS events, json_agg(c.k) AS j '
      '          FROM (SELECT o.%I AS k, row_number() OVER () AS rn FROM pg2kafka_old o) c '
      '         GROUP BY 1) b '
      ' ORDER BY b.batch', v_key)
      USING TG_TABLE_SCHEMA, TG_TABLE_NAME, v_key, pg2kafka.delete_batch_max_keys();
  END IF;
  IF current_setting('pg2kafka.notify', true) = 'on' THEN
    PERFORM pg_notify('pg2kafka', NULL);
  END IF;
  RETURN NULL;
END
$$;

-- TRUNCATE fires no DELETE triggers: one event with a NULL key and NULL data stands for "every
-- row of the table is gone". Its trigger's arguments are those of the others. On a partition of a
-- tracked partitioned table the event names the tracked table (see tracked_partition_root); a
-- partition detached since keeps its TRUNCATE trigger (nothing runs on DETACH) but is no longer
-- tracked, so it queues nothing.
CREATE OR REPLACE FUNCTION pg2kafka.capture_truncate() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_schema name := TG_TABLE_SCHEMA;
  v_table  name := TG_TABLE_NAME;
  v_root   record;
BEGIN
  IF TG_NARGS > 2 AND TG_ARGV[2]::oid <> TG_RELID THEN
    IF EXISTS (SELECT FROM pg_inherits i WHERE i.inhrelid = TG_RELID) THEN
      SELECT r.table_schema, r.table_name INTO v_root
        FROM pg2kafka.tracked_partition_root(TG_RELID, TG_ARGV[2]::oid) r;
      IF FOUND THEN
        v_schema := v_root.table_schema;
        v_table := v_root.table_name;
      END IF;
    ELSIF NOT EXISTS (SELECT FROM pg2kafka.tracked_tables t WHERE t.relid = TG_RELID) THEN
      RETURN NULL;  -- a detached partition (a tracked table restored from a dump is tracked)
    END IF;
  END IF;
  IF TG_NARGS > 3 THEN
    -- A table with capture options (sql/README.md, "Capture options"): their batch options and
    -- the provenance headers asked for.
    INSERT INTO pg2kafka.event_batches
           (table_schema, table_name, statement, events, options, headers)
    VALUES (v_schema, v_table, 'TRUNCATE', 1, TG_ARGV[3]::jsonb -> 'options',
            TG_ARGV[3]::jsonb -> 'provenance');
  ELSE
    INSERT INTO pg2kafka.event_batches (table_schema, table_name, statement, events)
    VALUES (v_schema, v_table, 'TRUNCATE', 1);
  END IF;
  IF current_setting('pg2kafka.notify', true) = 'on' THEN
    PERFORM pg_notify('pg2kafka', NULL);
  END IF;
  RETURN NULL;
END
$$;

-- pg2kafka.tracked_partition_root(partition, recorded): the tracked partitioned table that a
-- partition's capture trigger works for: the ancestor whose OID the trigger recorded or, in a
-- database restored from a dump (other OIDs), the nearest ancestor holding the original
-- pg2kafka_row trigger (the partitions hold its clones). Also returns the key column's current
-- name, found as the capture functions find it (by attnum, or by name after a restore).
CREATE OR REPLACE FUNCTION pg2kafka.tracked_partition_root(partition oid, recorded oid,
                                                           key_name text DEFAULT NULL,
                                                           key_attnum smallint DEFAULT NULL)
RETURNS TABLE (relid oid, table_schema name, table_name name, key_column name)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT c.oid, n.nspname, c.relname,
         (SELECT a.attname FROM pg_attribute a
           WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
             AND CASE WHEN c.oid = $2 THEN a.attnum = $4 ELSE a.attname = $3 END)
    FROM pg_partition_ancestors($1) WITH ORDINALITY p(relid, depth)
    JOIN pg_class c ON c.oid = p.relid
    JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE c.oid = $2
      OR NOT EXISTS (SELECT FROM pg_partition_ancestors($1) q WHERE q.relid = $2)
         AND EXISTS (SELECT FROM pg_trigger g
                      WHERE g.tgrelid = c.oid AND g.tgname = 'pg2kafka_row' AND g.tgparentid = 0)
   ORDER BY p.depth
   LIMIT 1
$$;

-- Row-level capture: the capture mode `row` of a plain table, and every partitioned table.
-- PostgreSQL clones a row-level trigger of a partitioned table to each of its partitions,
-- present, created later or attached later (and removes it on DETACH), so writes made straight
-- to a partition are captured as well as those made through the partitioned table (statement-
-- level triggers are not cloned); events name the tracked (partitioned) table and its key column.
-- One queue row (a batch of one event) per changed row, queued as the statement ends, in the
-- order of its rows: a one-row statement costs far less than with the statement-level triggers
-- (nothing is planned or counted per statement), a bulk statement far more (sql/README.md,
-- "Capture modes"). An UPDATE that leaves the row's JSON unchanged queues nothing. An UPDATE
-- that moves a row to another partition fires DELETE on the old and INSERT on the new
-- partition: a consumer sees the key's row deleted, then inserted whole.
--
-- It runs once per row, so it does without SET search_path (which costs every call a
-- configuration change): every function, operator and type it names is qualified with
-- pg_catalog or pg2kafka, so the search_path of the role writing the table cannot redirect them
-- (Security.RowCaptureCannotBeRedirectedBySearchPath). Keep it so when changing it. The key
-- column's name is read from the catalog caches by attnum (has_column_privilege is NULL for a
-- dropped column; pg_identify_object_as_address names it), which costs a third of a query.
CREATE OR REPLACE FUNCTION pg2kafka.capture_row() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  v_schema pg_catalog.text;
  v_table  pg_catalog.text;
  v_key    pg_catalog.text;
  v_new    pg_catalog.json;
  v_old    pg_catalog.json;
BEGIN
  IF TG_ARGV[2]::pg_catalog.oid OPERATOR(pg_catalog.=) TG_RELID THEN
    -- A plain table, tracked itself (the clones on partitions carry the partitioned table's OID).
    v_schema := TG_TABLE_SCHEMA;
    v_table := TG_TABLE_NAME;
    IF pg_catalog.has_column_privilege(TG_RELID, TG_ARGV[1]::pg_catalog.int2, 'SELECT')
       IS NOT NULL THEN
      -- 1259: pg_catalog.pg_class, the catalog that tables are objects of.
      v_key := (pg_catalog.pg_identify_object_as_address(1259, TG_RELID,
                                                         TG_ARGV[1]::pg_catalog.int4)).object_names[3];
    END IF;
  ELSE
    SELECT r.table_schema, r.table_name, r.key_column INTO v_schema, v_table, v_key
      FROM pg2kafka.tracked_partition_root(TG_RELID, TG_ARGV[2]::pg_catalog.oid, TG_ARGV[0],
                                           TG_ARGV[1]::pg_catalog.int2) r;
    IF NOT FOUND THEN
      -- A plain table restored from a dump (another OID): the key column by its name at setup.
      v_schema := TG_TABLE_SCHEMA;
      v_table := TG_TABLE_NAME;
      SELECT a.attname INTO v_key FROM pg_catalog.pg_attribute a
       WHERE a.attrelid OPERATOR(pg_catalog.=) TG_RELID
         AND a.attname OPERATOR(pg_catalog.=) TG_ARGV[0]
         AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped;
    END IF;
  END IF;
  IF TG_OP OPERATOR(pg_catalog.=) 'INSERT' THEN
    v_new := pg_catalog.json_build_array(pg_catalog.row_to_json(NEW.*));
    INSERT INTO pg2kafka.event_batches
           (table_schema, table_name, statement, key_column, events, data, data_bytes)
    VALUES (v_schema, v_table, 'INSERT', v_key, 1, v_new, pg_catalog.pg_column_size(v_new));
  ELSIF TG_OP OPERATOR(pg_catalog.=) 'UPDATE' THEN
    v_new := pg_catalog.json_build_array(pg_catalog.row_to_json(NEW.*));
    v_old := pg_catalog.json_build_array(pg_catalog.row_to_json(OLD.*));
    -- Compared as text: comparing the rows themselves would call the columns' equality
    -- operators, user code for user-defined types.
    IF v_new::pg_catalog.text OPERATOR(pg_catalog.=) v_old::pg_catalog.text THEN
      RETURN NULL;
    END IF;
    INSERT INTO pg2kafka.event_batches
           (table_schema, table_name, statement, key_column, events, data, old_data, data_bytes)
    VALUES (v_schema, v_table, 'UPDATE', v_key, 1, v_new, v_old,
            pg_catalog.pg_column_size(v_new) OPERATOR(pg_catalog.+)
              pg_catalog.pg_column_size(v_old));
  ELSIF v_key IS NULL THEN
    v_old := pg_catalog.json_build_array(pg_catalog.row_to_json(OLD.*));
    INSERT INTO pg2kafka.event_batches
           (table_schema, table_name, statement, events, data, data_bytes)
    VALUES (v_schema, v_table, 'DELETE', 1, v_old, pg_catalog.pg_column_size(v_old));
  ELSE
    v_old := pg_catalog.json_build_array(pg_catalog.row_to_json(OLD.*) OPERATOR(pg_catalog.->)
                                         v_key);
    INSERT INTO pg2kafka.event_batches
           (table_schema, table_name, statement, key_column, events, data, data_bytes)
    VALUES (v_schema, v_table, 'DELETE', v_key, 1, v_old, pg_catalog.pg_column_size(v_old));
  END IF;
  IF pg_catalog.current_setting('pg2kafka.notify', true) OPERATOR(pg_catalog.=) 'on' THEN
    PERFORM pg_catalog.pg_notify('pg2kafka', NULL);
  END IF;
  RETURN NULL;
END
$$;

-- Capture options (sql/README.md, "Capture options"; function set 8). A table with options gets
-- other trigger functions than the ones above, which stay exactly as they are (tables without
-- options pay nothing for them): capture_changes (statement-level, INSERT, UPDATE and DELETE by
-- TG_OP) and capture_row_options (row-level: mode `row`, and partitioned tables). Their
-- triggers have a 4th argument, written by create_triggers (40_tracking.sql, options_spec): the
-- options compiled into a JSON object:
--   include, exclude, redact  attnums (of the tracked table) of the columns to send only, to
--                             leave out, to send as null;
--   key                       attnums of a composite key, in its order;
--   delete                    "row" when DELETE events keep the whole old rows;
--   provenance                the setting names whose values go into the provenance headers
--                             (an array, [] for the standard headers only), absent when off;
--   options                   the batch's `options` (the drainer's shape: update, before,
--                             delete, key_changes, tombstones, mask), written with each batch
--                             (plus `key`: the key columns' names at the time);
--   names                     the name of each column above when the options were set: the
--                             columns are followed by attnum, and by these names only in a
--                             database restored from a dump (other OIDs, maybe other attnums).
-- Columns are followed by attnum, so a rename never turns an excluded column into a sent one;
-- a partition's own attnums may differ from the tracked table's, so names are resolved on the
-- tracked table, and its rows' members are picked by those names (a partition's columns have
-- its parent's names). Masked columns are sent as they are by these functions: the trigger
-- event_batches_mask replaces them as the batch is queued (see below).

-- The names (now) of the columns that the options of a table send (NULL: all), send as null,
-- and of its composite key (in key order, NULL: none). `relid` is the tracked table;
-- `by_attnum` false when the spec's attnums cannot be trusted (restored from a dump).
CREATE OR REPLACE FUNCTION pg2kafka.capture_columns(relid oid, spec jsonb, by_attnum boolean,
                                                    OUT sent text[], OUT redacted text[],
                                                    OUT keys text[], OUT masked text[])
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  WITH c AS (
    SELECT a.attnum, a.attname::text AS name,
           to_jsonb(CASE WHEN $3 THEN a.attnum
                         ELSE (SELECT n.key::smallint FROM jsonb_each_text($2 -> 'names') n
                                WHERE n.value = a.attname LIMIT 1) END) AS known
      FROM pg_attribute a
     WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped)
  SELECT CASE WHEN $2 ? 'include' THEN
                ARRAY(SELECT c.name FROM c
                       WHERE ($2 -> 'include') @> c.known OR ($2 -> 'key') @> c.known
                       ORDER BY c.attnum)
              WHEN $2 ? 'exclude' THEN
                ARRAY(SELECT c.name FROM c
                       WHERE NOT coalesce(($2 -> 'exclude') @> c.known, false)
                       ORDER BY c.attnum) END,
         ARRAY(SELECT c.name FROM c WHERE ($2 -> 'redact') @> c.known),
         CASE WHEN $2 ? 'key' THEN
                ARRAY(SELECT (SELECT c.name FROM c WHERE c.known = k.attnum)
                        FROM jsonb_array_elements($2 -> 'key') WITH ORDINALITY k(attnum, n)
                       ORDER BY k.n) END,
         ARRAY(SELECT c.name FROM c WHERE ($2 -> 'mask') @> c.known)
$$;

-- A row's JSON (row_to_json) with only the members named in `sent` (NULL: all), those in
-- `redacted` as null: same member order and formatting as row_to_json's.
CREATE OR REPLACE FUNCTION pg2kafka.filter_row(row_json json, sent text[], redacted text[])
RETURNS json
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
  SELECT ('{' || coalesce(string_agg(to_json(e.key)::text || ':'
                                     || CASE WHEN e.key = ANY ($3) THEN 'null'
                                             ELSE e.value::text END, ',' ORDER BY e.n), '')
          || '}')::json
    FROM json_each($1) WITH ORDINALITY e(key, value, n)
   WHERE $2 IS NULL OR e.key = ANY ($2)
$$;

-- The values of a composite key, a JSON array in key order (null for a member that is absent).
CREATE OR REPLACE FUNCTION pg2kafka.key_values(row_json json, keys text[]) RETURNS json
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
  SELECT ('[' || array_to_string(ARRAY(SELECT coalesce(($1 -> k.name)::text, 'null')
                                         FROM unnest($2) WITH ORDINALITY k(name, n)
                                        ORDER BY k.n), ',') || ']')::json
$$;

-- Statement-level capture of a table with options (trigger arguments: those of capture_insert,
-- then the spec). INSERT: the rows after selection and redaction; UPDATE: the pairs of new and
-- old rows, each after selection and redaction, without the pairs that are then equal (an
-- UPDATE of excluded columns only queues nothing); DELETE: the key (a JSON array of the key's
-- values for a composite key), or the whole old rows after selection and redaction with
-- `"delete": "row"` or when a key column is gone. Batches hold at most batch_max_rows() rows,
-- cut by the running size of their JSON as capture_insert cuts (UPDATE: of both rows).
CREATE OR REPLACE FUNCTION pg2kafka.capture_changes() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  c_rows    CONSTANT integer := pg2kafka.batch_max_rows();
  c_bytes   CONSTANT integer := pg2kafka.batch_max_bytes();
  v_spec    CONSTANT jsonb := TG_ARGV[3]::jsonb;
  v_attnum  CONSTANT boolean := TG_ARGV[2]::oid = TG_RELID;
  v_headers CONSTANT jsonb := v_spec -> 'provenance';
  v_options jsonb := v_spec -> 'options';
  v_key     text;
  v_cols    record;
  v_filter  boolean;
  v_whole   boolean;
BEGIN
  IF v_attnum THEN
    IF has_column_privilege(TG_RELID, TG_ARGV[1]::smallint, 'SELECT') IS NOT NULL THEN
      v_key := (pg_identify_object_as_address(1259, TG_RELID, TG_ARGV[1]::integer)).object_names[3];
    END IF;
  ELSE
    SELECT a.attname INTO v_key FROM pg_attribute a
     WHERE a.attrelid = TG_RELID AND a.attname = TG_ARGV[0] AND a.attnum > 0
       AND NOT a.attisdropped;
  END IF;
  SELECT c.sent, c.redacted, c.keys, c.masked INTO v_cols
    FROM pg2kafka.capture_columns(TG_RELID, v_spec, v_attnum) c;
  v_filter := v_cols.sent IS NOT NULL OR cardinality(v_cols.redacted) > 0;
  -- The masked columns, by name: the mask trigger masks them whatever the registry it reads
  -- says (a REPEATABLE READ writer reads an older registry than its triggers').
  IF cardinality(v_cols.masked) > 0 THEN
    v_options := v_options || jsonb_build_object('mask', to_jsonb(v_cols.masked));
  END IF;
  IF v_cols.keys IS NOT NULL THEN
    v_options := v_options || jsonb_build_object('key', to_jsonb(v_cols.keys));
    IF array_position(v_cols.keys, NULL) IS NOT NULL THEN
      v_key := NULL;  -- a key column is gone: DELETE keeps the whole rows
    END IF;
  END IF;
  IF TG_OP = 'INSERT' THEN
    INSERT INTO pg2kafka.event_batches
           (table_schema, table_name, statement, key_column, events, data, data_bytes, options,
            headers)
    SELECT TG_TABLE_SCHEMA, TG_TABLE_NAME, 'INSERT', v_key, count(*), json_agg(c.j ORDER BY c.rn),
           sum(c.size), v_options, v_headers
      FROM (SELECT r.j, r.size, r.rn, sum(r.size) OVER (ORDER BY r.rn) AS bytes
              FROM (SELECT s.j, pg_column_size(s.j) AS size, row_number() OVER () AS rn
                      FROM (SELECT CASE WHEN v_filter
                                        THEN pg2kafka.filter_row(row_to_json(n.*), v_cols.sent,
                                                                 v_cols.redacted)
                                        ELSE row_to_json(n.*) END AS j
                              FROM pg2kafka_new n OFFSET 0) s) r) c
     GROUP BY (c.rn - 1) / c_rows + c.bytes / c_bytes
     ORDER BY (c.rn - 1) / c_rows + c.bytes / c_bytes;
  ELSIF TG_OP = 'UPDATE' THEN
    INSERT INTO pg2kafka.event_batches
           (table_schema, table_name, statement, key_column, events, data, old_data, data_bytes,
            options, headers)
    SELECT TG_TABLE_SCHEMA, TG_TABLE_NAME, 'UPDATE', v_key, count(*),
           json_agg(p.n ORDER BY p.k), json_agg(p.o ORDER BY p.k), sum(p.size), v_options,
           v_headers
      FROM (SELECT q.n, q.o, q.size, row_number() OVER (ORDER BY q.rn) AS k,
                   sum(q.size) OVER (ORDER BY q.rn) AS bytes
              FROM (SELECT n.j AS n, o.j AS o, n.rn,
                           pg_column_size(n.j) + pg_column_size(o.j) AS size
                      FROM (SELECT s.j, row_number() OVER () AS rn
                              FROM (SELECT CASE WHEN v_filter
                                                THEN pg2kafka.filter_row(row_to_json(r.*),
                                                                         v_cols.sent,
                                                                         v_cols.redacted)
                                                ELSE row_to_json(r.*) END AS j
                                      FROM pg2kafka_new r OFFSET 0) s) n
                      JOIN (SELECT s.j, row_number() OVER () AS rn
                              FROM (SELECT CASE WHEN v_filter
                                                THEN pg2kafka.filter_row(row_to_json(r.*),
                                                                         v_cols.sent,
                                                                         v_cols.redacted)
                                                ELSE row_to_json(r.*) END AS j
                                      FROM pg2kafka_old r OFFSET 0) s) o ON o.rn = n.rn
                     WHERE n.j::text <> o.j::text) q) p
     GROUP BY (p.k - 1) / c_rows + p.bytes / c_bytes
     ORDER BY (p.k - 1) / c_rows + p.bytes / c_bytes;
  ELSE
    v_whole := v_key IS NULL OR v_spec ->> 'delete' = 'row';
    INSERT INTO pg2kafka.event_batches
           (table_schema, table_name, statement, key_column, events, data, data_bytes, options,
            headers)
    SELECT TG_TABLE_SCHEMA, TG_TABLE_NAME, 'DELETE', v_key, count(*), json_agg(c.j ORDER BY c.rn),
           sum(c.size), v_options, v_headers
      FROM (SELECT r.j, r.size, r.rn, sum(r.size) OVER (ORDER BY r.rn) AS bytes
              FROM (SELECT s.j, pg_column_size(s.j) AS size, row_number() OVER () AS rn
                      FROM (SELECT CASE WHEN v_whole AND v_filter
                                          THEN pg2kafka.filter_row(row_to_json(o.*), v_cols.sent,
                                                                   v_cols.redacted)
                                        WHEN v_whole THEN row_to_json(o.*)
                                        WHEN v_cols.keys IS NOT NULL
                                          THEN pg2kafka.key_values(row_to_json(o.*), v_cols.keys)
                                        ELSE row_to_json(o.*) -> v_key END AS j
                              FROM pg2kafka_old o OFFSET 0) s) r) c
     GROUP BY (c.rn - 1) / c_rows + c.bytes / c_bytes
     ORDER BY (c.rn - 1) / c_rows + c.bytes / c_bytes;
  END IF;
  IF current_setting('pg2kafka.notify', true) = 'on' THEN
    PERFORM pg_notify('pg2kafka', NULL);
  END IF;
  RETURN NULL;
END
$$;

-- Row-level capture of a table with options (mode `row`, and partitioned tables; trigger
-- arguments: those of capture_row, then the spec). The shapes of capture_changes, one batch per
-- row, as capture_row; an UPDATE whose row is the same after selection and redaction queues
-- nothing. On a partition, names are resolved on the tracked table, as capture_row does.
CREATE OR REPLACE FUNCTION pg2kafka.capture_row_options() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_spec    CONSTANT jsonb := TG_ARGV[3]::jsonb;
  v_headers CONSTANT jsonb := v_spec -> 'provenance';
  v_options jsonb := v_spec -> 'options';
  v_root    oid;
  v_attnum  boolean;
  v_schema  text;
  v_table   text;
  v_key     text;
  v_cols    record;
  v_filter  boolean;
  v_new     json;
  v_old     json;
BEGIN
  IF TG_ARGV[2]::oid = TG_RELID THEN
    v_root := TG_RELID;
    v_attnum := true;
    v_schema := TG_TABLE_SCHEMA;
    v_table := TG_TABLE_NAME;
    IF has_column_privilege(TG_RELID, TG_ARGV[1]::smallint, 'SELECT') IS NOT NULL THEN
      v_key := (pg_identify_object_as_address(1259, TG_RELID, TG_ARGV[1]::integer)).object_names[3];
    END IF;
  ELSE
    SELECT r.relid, r.table_schema, r.table_name, r.key_column
      INTO v_root, v_schema, v_table, v_key
      FROM pg2kafka.tracked_partition_root(TG_RELID, TG_ARGV[2]::oid, TG_ARGV[0],
                                           TG_ARGV[1]::smallint) r;
    IF FOUND THEN
      v_attnum := v_root = TG_ARGV[2]::oid;
    ELSE
      v_root := TG_RELID;
      v_attnum := false;
      v_schema := TG_TABLE_SCHEMA;
      v_table := TG_TABLE_NAME;
      SELECT a.attname INTO v_key FROM pg_attribute a
       WHERE a.attrelid = TG_RELID AND a.attname = TG_ARGV[0] AND a.attnum > 0
         AND NOT a.attisdropped;
    END IF;
  END IF;
  SELECT c.sent, c.redacted, c.keys, c.masked INTO v_cols
    FROM pg2kafka.capture_columns(v_root, v_spec, v_attnum) c;
  v_filter := v_cols.sent IS NOT NULL OR cardinality(v_cols.redacted) > 0;
  IF cardinality(v_cols.masked) > 0 THEN  -- as capture_changes
    v_options := v_options || jsonb_build_object('mask', to_jsonb(v_cols.masked));
  END IF;
  IF v_cols.keys IS NOT NULL THEN
    v_options := v_options || jsonb_build_object('key', to_jsonb(v_cols.keys));
    IF array_position(v_cols.keys, NULL) IS NOT NULL THEN
      v_key := NULL;
    END IF;
  END IF;
  IF TG_OP = 'INSERT' OR TG_OP = 'UPDATE' THEN
    v_new := row_to_json(NEW.*);
    IF v_filter THEN
      v_new := pg2kafka.filter_row(v_new, v_cols.sent, v_cols.redacted);
    END IF;
    v_new := json_build_array(v_new);
  END IF;
  IF TG_OP = 'UPDATE' OR v_key IS NULL OR v_spec ->> 'delete' = 'row' THEN
    IF TG_OP <> 'INSERT' THEN
      v_old := row_to_json(OLD.*);
      IF v_filter THEN
        v_old := pg2kafka.filter_row(v_old, v_cols.sent, v_cols.redacted);
      END IF;
      v_old := json_build_array(v_old);
    END IF;
  ELSIF TG_OP = 'DELETE' THEN
    IF v_cols.keys IS NOT NULL THEN
      v_old := json_build_array(pg2kafka.key_values(row_to_json(OLD.*), v_cols.keys));
    ELSE
      v_old := json_build_array(row_to_json(OLD.*) -> v_key);
    END IF;
  END IF;
  IF TG_OP = 'INSERT' THEN
    INSERT INTO pg2kafka.event_batches
           (table_schema, table_name, statement, key_column, events, data, data_bytes, options,
            headers)
    VALUES (v_schema, v_table, 'INSERT', v_key, 1, v_new, pg_column_size(v_new), v_options,
            v_headers);
  ELSIF TG_OP = 'UPDATE' THEN
    -- Compared as text, as capture_row does: an UPDATE of excluded columns only queues nothing.
    IF v_new::text = v_old::text THEN
      RETURN NULL;
    END IF;
    INSERT INTO pg2kafka.event_batches
           (table_schema, table_name, statement, key_column, events, data, old_data, data_bytes,
            options, headers)
    VALUES (v_schema, v_table, 'UPDATE', v_key, 1, v_new, v_old,
            pg_column_size(v_new) + pg_column_size(v_old), v_options, v_headers);
  ELSE
    INSERT INTO pg2kafka.event_batches
           (table_schema, table_name, statement, key_column, events, data, data_bytes, options,
            headers)
    VALUES (v_schema, v_table, 'DELETE', v_key, 1, v_old, pg_column_size(v_old), v_options,
            v_headers);
  END IF;
  IF current_setting('pg2kafka.notify', true) = 'on' THEN
    PERFORM pg_notify('pg2kafka', NULL);
  END IF;
  RETURN NULL;
END
$$;

-- A text cut to at most `max_bytes` bytes (in the server's encoding), on a character boundary.
CREATE OR REPLACE FUNCTION pg2kafka.cut_bytes(value text, max_bytes integer) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v text := left(value, max_bytes);
BEGIN
  -- A character is at most 4 bytes: dropping a quarter of the excess never drops too much.
  WHILE octet_length(v) > max_bytes LOOP
    v := left(v, length(v) - greatest(1, (octet_length(v) - max_bytes) / 4));
  END LOOP;
  RETURN v;
END
$$;

-- Trigger event_batches_provenance (BEFORE INSERT ON pg2kafka.event_batches FOR EACH ROW WHEN
-- (NEW.headers IS NOT NULL), migration 013): replaces the headers of a queued batch by the
-- truth, whatever the inserting statement put there but the setting names it asks for (a JSON
-- array; names not matching ^[a-z][a-z0-9_]{0,62}$ or standard ones are ignored, and all after
-- the 16th): {"current_user", "session_user", "application_name", "client_addr" (absent for a
-- Unix socket), "txid", and "<name>": current_setting('pg2kafka.<name>') when set and not
-- empty}, each value cut to 1024 bytes. Runs as the inserting role (invoker rights), which is
-- what it reports: a role queueing directly cannot forge another's provenance.
CREATE OR REPLACE FUNCTION pg2kafka.event_batches_provenance() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_headers jsonb;
  v_name    text;
  v_value   text;
BEGIN
  IF TG_RELID <> 'pg2kafka.event_batches'::regclass OR TG_NAME <> 'event_batches_provenance'
     OR TG_WHEN <> 'BEFORE' OR TG_LEVEL <> 'ROW' OR TG_OP <> 'INSERT' THEN
    RAISE EXCEPTION 'pg2kafka.event_batches_provenance() is the trigger '
                    'event_batches_provenance of pg2kafka.event_batches only'
      USING ERRCODE = 'prohibited_sql_statement_attempted';
  END IF;
  v_headers := jsonb_build_object(
    'current_user', pg2kafka.cut_bytes(current_user::text, 1024),
    'session_user', pg2kafka.cut_bytes(session_user::text, 1024),
    'application_name', pg2kafka.cut_bytes(current_setting('application_name'), 1024),
    'txid', pg_current_xact_id()::text);
  IF inet_client_addr() IS NOT NULL THEN
    v_headers := v_headers || jsonb_build_object('client_addr', host(inet_client_addr()));
  END IF;
  IF jsonb_typeof(NEW.headers) = 'array' THEN
    FOR v_name IN
      SELECT n.name
        FROM (SELECT e #>> '{}' AS name, min(i) AS first
                FROM jsonb_array_elements(NEW.headers) WITH ORDINALITY a(e, i)
               WHERE jsonb_typeof(e) = 'string'
               GROUP BY 1) n
       WHERE n.name ~ '^[a-z][a-z0-9_]{0,62}$'
         AND n.name NOT IN ('current_user', 'session_user', 'application_name', 'client_addr',
                            'txid', 'notify', 'id', 'event_id', 'error', 'reason',
                            'original_topic', 'value_omitted', 'value_size')
       ORDER BY n.first
       LIMIT 16
    LOOP
      v_value := current_setting('pg2kafka.' || v_name, true);
      IF v_value <> '' THEN
        v_headers := v_headers || jsonb_build_object(v_name, pg2kafka.cut_bytes(v_value, 1024));
      END IF;
    END LOOP;
  END IF;
  NEW.headers := v_headers;
  RETURN NEW;
END
$$;

-- Trigger mask_secret_keys (BEFORE INSERT OR UPDATE ON pg2kafka.mask_secret FOR EACH ROW): the
-- HMAC key blocks of the secret (RFC 2104: a key longer than 64 bytes is hashed first, then
-- padded with zeros to 64 bytes; inner_key = K XOR 0x36.., outer_key = K XOR 0x5c..).
CREATE OR REPLACE FUNCTION pg2kafka.mask_secret_keys() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_key   bytea := NEW.secret;
  v_inner bytea;
  v_outer bytea;
BEGIN
  IF TG_RELID <> 'pg2kafka.mask_secret'::regclass OR TG_NAME <> 'mask_secret_keys'
     OR TG_WHEN <> 'BEFORE' OR TG_LEVEL <> 'ROW' THEN
    RAISE EXCEPTION 'pg2kafka.mask_secret_keys() is the trigger mask_secret_keys of '
                    'pg2kafka.mask_secret only'
      USING ERRCODE = 'prohibited_sql_statement_attempted';
  END IF;
  IF v_key IS NULL THEN
    RAISE EXCEPTION 'pg2kafka: the masking secret must not be NULL'
      USING ERRCODE = 'not_null_violation';
  END IF;
  IF length(v_key) > 64 THEN
    v_key := sha256(v_key);
  END IF;
  v_key := v_key || decode(repeat('00', 64 - length(v_key)), 'hex');
  v_inner := v_key;
  v_outer := v_key;
  FOR i IN 0..63 LOOP
    v_inner := set_byte(v_inner, i, get_byte(v_key, i) # 54);   -- 0x36
    v_outer := set_byte(v_outer, i, get_byte(v_key, i) # 92);   -- 0x5c
  END LOOP;
  NEW.inner_key := v_inner;
  NEW.outer_key := v_outer;
  NEW.rotated_at := now();
  RETURN NEW;
END
$$;

-- The secret exists from the start (its trigger is live from here on).
INSERT INTO pg2kafka.mask_secret (one)
SELECT true WHERE NOT EXISTS (SELECT FROM pg2kafka.mask_secret);

-- pg2kafka.mask_rows(rows, masked, inner_key, outer_key): a JSON array of rows with the members
-- named in `masked` replaced by the lower-case hex HMAC-SHA-256 of their text (RFC 2104, with
-- the key blocks given), as JSON strings; null stays null, members keep their order. For the
-- trigger event_batches_mask, which passes the secret's key blocks: the function itself knows no
-- secret (EXECUTE is withheld from PUBLIC all the same). Built-in functions on json, text and
-- bytea only.
CREATE OR REPLACE FUNCTION pg2kafka.mask_rows(rows json, masked text[], inner_key bytea,
                                              outer_key bytea) RETURNS json
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT json_agg(CASE WHEN json_typeof(e.v) = 'object' THEN
           (SELECT ('{' || coalesce(string_agg(
                      to_json(m.key)::text || ':'
                      || CASE WHEN m.key = ANY ($2) AND json_typeof(m.value) <> 'null'
                              THEN to_json(encode(sha256($4 || sha256(
                                     $3 || convert_to(m.value #>> '{}', 'UTF8'))),
                                     'hex'))::text
                              ELSE m.value::text END, ',' ORDER BY m.n), '') || '}')::json
              FROM json_each(e.v) WITH ORDINALITY m(key, value, n))
           ELSE e.v END ORDER BY e.i)
    FROM json_array_elements($1) WITH ORDINALITY e(v, i)
$$;

-- Trigger event_batches_mask (BEFORE INSERT ON pg2kafka.event_batches FOR EACH ROW WHEN
-- (NEW.options ? 'mask'), migration 013). SECURITY DEFINER: it runs as the schema's owner, the
-- only role that can read pg2kafka.mask_secret. It replaces, in each row of `data` and
-- `old_data` (DELETE: only when they hold whole rows), the value of every column that the
-- registry (pg2kafka.tracked_tables, by attnum) says is masked for the batch's table by the
-- lower-case hex HMAC-SHA-256 of the value's text (a JSON string's content, or else its JSON
-- text), as a JSON string; null stays null. Which columns is never read from the inserted row.
-- Nothing but built-in functions on json, text and bytea runs: no value is cast to or from any
-- type of a user's, no user operator or function is reachable (search_path pinned). It refuses
-- to run as any other trigger, and EXECUTE is revoked from PUBLIC (90_grants.sql), so no one
-- attaches it elsewhere. What it writes goes only into the queue, which writers cannot read.
CREATE OR REPLACE FUNCTION pg2kafka.event_batches_mask() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_relid  oid;
  v_masked text[];
  v_inner  bytea;
  v_outer  bytea;
  v_rows   boolean;
BEGIN
  IF TG_RELID <> 'pg2kafka.event_batches'::regclass OR TG_NAME <> 'event_batches_mask'
     OR TG_TABLE_SCHEMA <> 'pg2kafka' OR TG_TABLE_NAME <> 'event_batches'
     OR TG_WHEN <> 'BEFORE' OR TG_LEVEL <> 'ROW' OR TG_OP <> 'INSERT' THEN
    RAISE EXCEPTION 'pg2kafka.event_batches_mask() is the trigger event_batches_mask of '
                    'pg2kafka.event_batches only'
      USING ERRCODE = 'prohibited_sql_statement_attempted';
  END IF;
  -- The table by its names, without the privilege checks of a regclass lookup (this runs as the
  -- schema's owner, who need not be able to use the table's schema).
  SELECT c.oid INTO v_relid
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname = NEW.table_schema AND c.relname = NEW.table_name;
  -- What the registry masks, and what the capture function says it masks (the columns by
  -- name, as its triggers resolved them): both. A row can only add masking, never take the
  -- registry's away.
  SELECT ARRAY(SELECT a.attname::text
                 FROM jsonb_array_elements_text(t.option_columns -> 'mask') m(attnum)
                 JOIN pg_attribute a ON a.attrelid = t.relid AND a.attnum = m.attnum::smallint
                                    AND NOT a.attisdropped)
    INTO v_masked
    FROM pg2kafka.tracked_tables t WHERE t.relid = v_relid;
  IF jsonb_typeof(NEW.options -> 'mask') = 'array' THEN
    v_masked := coalesce(v_masked, '{}')
                || ARRAY(SELECT m FROM jsonb_array_elements_text(NEW.options -> 'mask') m
                          WHERE m IS NOT NULL);
  END IF;
  IF coalesce(cardinality(v_masked), 0) = 0 THEN
    RETURN NEW;
  END IF;
  SELECT s.inner_key, s.outer_key INTO v_inner, v_outer FROM pg2kafka.mask_secret s;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'pg2kafka: no masking secret (pg2kafka.mask_secret is empty)'
      USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = 'The schema''s owner creates it: INSERT INTO pg2kafka.mask_secret DEFAULT '
                   'VALUES.';
  END IF;
  -- DELETE batches hold whole rows only with "delete": "row", or when the key column is gone.
  v_rows := NEW.statement <> 'DELETE' OR NEW.key_column IS NULL
            OR NEW.options ->> 'delete' = 'row';
  IF v_rows AND NEW.data IS NOT NULL THEN
    NEW.data := pg2kafka.mask_rows(NEW.data, v_masked, v_inner, v_outer);
    NEW.data_bytes := pg_column_size(NEW.data);
  END IF;
  IF v_rows AND NEW.old_data IS NOT NULL THEN
    NEW.old_data := pg2kafka.mask_rows(NEW.old_data, v_masked, v_inner, v_outer);
    NEW.data_bytes := pg_column_size(NEW.data) + pg_column_size(NEW.old_data);
  END IF;
  RETURN NEW;
END
$$;
