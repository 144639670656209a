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
  INSERT INTO pg2kafka.event_batches (table_schema, table_name, statement, events)
  VALUES (v_schema, v_table, 'TRUNCATE', 1);
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
