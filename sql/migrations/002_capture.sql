-- pg2kafka migration 002: the capture triggers and pg2kafka.setup / pg2kafka.teardown.
-- See sql/README.md for the full contract of each function.

SELECT pg_catalog.pg_advisory_xact_lock(1882352481, 1);  -- 1882352481 = 'p2ka', 1 = migrations

-- Capture functions --------------------------------------------------------------------------
--
-- Statement-level AFTER triggers with transition tables: a statement that changes N rows runs
-- one INSERT ... SELECT into the queue, with no dynamic SQL and no catalog lookup. The key
-- column's name is the trigger's only argument; the key is to_jsonb(row) ->> key_column, the same
-- expression the snapshot in setup() uses. They run as the migration's owner (SECURITY DEFINER)
-- so that application roles need no privilege on the queue, with a fixed search_path so that
-- nothing the application's search_path contains can change what they do.
--
-- Whole rows are written alias.* (to_jsonb(n.*)): a bare to_jsonb(n) would mean the table's
-- column `n` if it had one. Every other reference is qualified for the same reason.
--
-- When the setting pg2kafka.notify is 'on' (ALTER DATABASE shop SET pg2kafka.notify = on), each
-- also notifies channel 'pg2kafka' when it queued something (PostgreSQL folds the notifications
-- of one transaction into one), which wakes the drainer at once. It is off by default: every
-- notifying transaction takes a cluster-wide lock at commit, held while the commit is flushed,
-- which serialises the commits of concurrent writers. The drainer polls anyway.

CREATE OR REPLACE FUNCTION pg2kafka.capture_insert() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_key text := TG_ARGV[0];
BEGIN
  INSERT INTO pg2kafka.outbound_event_queue (external_id, table_schema, table_name, statement, data)
  SELECT r.j ->> v_key, TG_TABLE_SCHEMA, TG_TABLE_NAME, 'INSERT', r.j
    FROM (SELECT to_jsonb(n.*) AS j FROM pg2kafka_new n) r;
  IF FOUND AND current_setting('pg2kafka.notify', true) = 'on' THEN
    PERFORM pg_notify('pg2kafka', NULL);
  END IF;
  RETURN NULL;
END
$$;

-- Old and new rows are paired by their position in the transition tables: PostgreSQL appends
-- the old and the new version of each updated row to the two tables together, so the n-th old
-- row belongs to the n-th new row. (Pairing by key would break when the key changes or is not
-- unique; transition tables have no ctid.) Only changed columns are carried; rows whose JSON form
-- did not change queue nothing.
CREATE OR REPLACE FUNCTION pg2kafka.capture_update() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_key text := TG_ARGV[0];
BEGIN
  INSERT INTO pg2kafka.outbound_event_queue (external_id, table_schema, table_name, statement, data)
  SELECT n.j ->> v_key, TG_TABLE_SCHEMA, TG_TABLE_NAME, 'UPDATE',
         (SELECT jsonb_object_agg(e.key, e.value)
            FROM jsonb_each(n.j) e
           WHERE (o.j -> e.key) IS DISTINCT FROM e.value)
    FROM (SELECT row_number() OVER () AS rn, to_jsonb(r.*) AS j FROM pg2kafka_old r) o
    JOIN (SELECT row_number() OVER () AS rn, to_jsonb(r.*) AS j FROM pg2kafka_new r) n
      ON n.rn = o.rn
   WHERE o.j <> n.j
   ORDER BY n.rn;
  IF FOUND AND current_setting('pg2kafka.notify', true) = 'on' THEN
    PERFORM pg_notify('pg2kafka', NULL);
  END IF;
  RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION pg2kafka.capture_delete() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_key text := TG_ARGV[0];
BEGIN
  INSERT INTO pg2kafka.outbound_event_queue (external_id, table_schema, table_name, statement, data)
  SELECT r.j ->> v_key, TG_TABLE_SCHEMA, TG_TABLE_NAME, 'DELETE',
         jsonb_build_object(v_key, r.j -> v_key)
    FROM (SELECT to_jsonb(o.*) AS j FROM pg2kafka_old o) r;
  IF FOUND AND current_setting('pg2kafka.notify', true) = 'on' THEN
    PERFORM pg_notify('pg2kafka', NULL);
  END IF;
  RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION pg2kafka.capture_truncate() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  INSERT INTO pg2kafka.outbound_event_queue (external_id, table_schema, table_name, statement, data)
  VALUES (NULL, TG_TABLE_SCHEMA, TG_TABLE_NAME, 'TRUNCATE', NULL);
  IF current_setting('pg2kafka.notify', true) = 'on' THEN
    PERFORM pg_notify('pg2kafka', NULL);
  END IF;
  RETURN NULL;
END
$$;

-- setup / teardown -----------------------------------------------------------------------------

-- pg2kafka.setup(table, key_column): snapshot the table's current rows as SNAPSHOT events, then
-- track it. Returns true when tracking started, false when the table was already tracked with
-- this key column (nothing changes). Runs with the caller's rights: call it as the table's owner.
CREATE OR REPLACE FUNCTION pg2kafka.setup(table_name regclass, key_column text) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
  v_schema  text;
  v_table   text;
  v_kind    "char";
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
  IF NOT EXISTS (SELECT 1 FROM pg_attribute
                  WHERE attrelid = table_name AND attname = key_column
                    AND attnum > 0 AND NOT attisdropped) THEN
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

  EXECUTE format('CREATE TRIGGER pg2kafka_insert AFTER INSERT ON %s '
                 'REFERENCING NEW TABLE AS pg2kafka_new '
                 'FOR EACH STATEMENT EXECUTE FUNCTION pg2kafka.capture_insert(%L)',
                 table_name, key_column);
  EXECUTE format('CREATE TRIGGER pg2kafka_update AFTER UPDATE ON %s '
                 'REFERENCING OLD TABLE AS pg2kafka_old NEW TABLE AS pg2kafka_new '
                 'FOR EACH STATEMENT EXECUTE FUNCTION pg2kafka.capture_update(%L)',
                 table_name, key_column);
  EXECUTE format('CREATE TRIGGER pg2kafka_delete AFTER DELETE ON %s '
                 'REFERENCING OLD TABLE AS pg2kafka_old '
                 'FOR EACH STATEMENT EXECUTE FUNCTION pg2kafka.capture_delete(%L)',
                 table_name, key_column);
  EXECUTE format('CREATE TRIGGER pg2kafka_truncate AFTER TRUNCATE ON %s '
                 'FOR EACH STATEMENT EXECUTE FUNCTION pg2kafka.capture_truncate()',
                 table_name);

  EXECUTE format('INSERT INTO pg2kafka.outbound_event_queue '
                 '(external_id, table_schema, table_name, statement, data) '
                 'SELECT r.j ->> $1, $2, $3, ''SNAPSHOT'', r.j '
                 'FROM (SELECT to_jsonb(t.*) AS j FROM %s t) r', table_name)
    USING key_column, v_schema, v_table;

  INSERT INTO pg2kafka.tracked_tables (relid, table_schema, table_name, key_column)
  VALUES (table_name, v_schema, v_table, key_column);
  RETURN true;
END
$$;

-- The same, taking the table's name as text, parsed like an SQL name with the caller's
-- search_path: 'products', 'shop.products', '"Mixed Case"'. Anything else is an error.
CREATE OR REPLACE FUNCTION pg2kafka.setup(table_name text, key_column text) RETURNS boolean
LANGUAGE sql AS $$ SELECT pg2kafka.setup($1::pg_catalog.regclass, $2) $$;

-- Drops pg2kafka's four triggers from a table, if present (internal helper).
CREATE OR REPLACE FUNCTION pg2kafka.drop_triggers(table_name regclass) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_trigger text;
BEGIN
  FOR v_trigger IN
    SELECT tgname FROM pg_trigger
     WHERE tgrelid = table_name
       AND tgname IN ('pg2kafka_insert', 'pg2kafka_update', 'pg2kafka_delete', 'pg2kafka_truncate')
  LOOP
    EXECUTE format('DROP TRIGGER %I ON %s', v_trigger, table_name);
  END LOOP;
END
$$;

-- pg2kafka.teardown(table): stop tracking. Returns true when the table was tracked. Events
-- already queued stay queued and are still delivered.
CREATE OR REPLACE FUNCTION pg2kafka.teardown(table_name regclass) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
  v_was_tracked boolean;
BEGIN
  IF table_name IS NULL THEN
    RAISE EXCEPTION 'pg2kafka.teardown: table must not be NULL'
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  v_was_tracked := EXISTS (SELECT 1 FROM pg_trigger
                            WHERE tgrelid = table_name AND tgname LIKE 'pg2kafka\_%');
  PERFORM pg2kafka.drop_triggers(table_name);
  DELETE FROM pg2kafka.tracked_tables t WHERE t.relid = table_name;
  RETURN v_was_tracked OR FOUND;
END
$$;

CREATE OR REPLACE FUNCTION pg2kafka.teardown(table_name text) RETURNS boolean
LANGUAGE sql AS $$ SELECT pg2kafka.teardown($1::pg_catalog.regclass) $$;

INSERT INTO pg2kafka.schema_migrations (version, name) VALUES (2, 'capture')
ON CONFLICT (version) DO NOTHING;
