-- Tracking tables: pg2kafka.setup and pg2kafka.teardown, their helpers, and the check that a
-- tracked table's capture triggers are in place and current. These run with the caller's rights
-- (no SECURITY DEFINER): setup is called by a table's owner. See sql/README.md for the contract of
-- each function.

-- The arguments of a trigger, decoded from pg_trigger.tgargs (each is NUL-terminated).
CREATE OR REPLACE FUNCTION pg2kafka.trigger_arguments(tgargs bytea, tgnargs smallint)
RETURNS text[]
LANGUAGE plpgsql IMMUTABLE STRICT SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_args text[] := '{}';
  v_rest bytea := tgargs;
  v_end  integer;
BEGIN
  FOR i IN 1..tgnargs LOOP
    v_end := position('\x00'::bytea IN v_rest);
    v_args := v_args || convert_from(substring(v_rest FROM 1 FOR v_end - 1),
                                     current_setting('server_encoding'));
    v_rest := substring(v_rest FROM v_end + 1);
  END LOOP;
  RETURN v_args;
END
$$;

-- The names of the capture triggers of a mode: row-level (mode `row`, and partitioned tables)
-- or statement-level (mode `statement`). pg2kafka_truncate belongs to both. Named once, here,
-- for create_triggers, drop_triggers and tracking_problem.
CREATE OR REPLACE FUNCTION pg2kafka.mode_triggers(row_level boolean) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
  SELECT CASE WHEN row_level THEN ARRAY['pg2kafka_row', 'pg2kafka_truncate']
              ELSE ARRAY['pg2kafka_insert', 'pg2kafka_update', 'pg2kafka_delete',
                         'pg2kafka_truncate'] END
$$;

-- Takes a `mode` lock on the table for the rest of the transaction without making its users
-- queue for long: PostgreSQL queues every later conflicting request behind a waiting one, so a
-- request that waited for a long transaction would hold up every writer meanwhile. Each attempt
-- waits at most 50 ms, then steps aside for 100-300 ms (the sessions queued behind it go on) and
-- tries again, until it gets the lock or, when the caller set lock_timeout, that much time has
-- passed in all (then lock_not_available). A NOTICE every 5 s names the sessions holding locks on
-- the table. `caller` names the function in messages.
CREATE OR REPLACE FUNCTION pg2kafka.lock_table(table_name regclass, mode text, caller text)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_old     text := current_setting('lock_timeout');
  v_budget  interval := current_setting('lock_timeout')::interval;
  v_start   timestamptz := clock_timestamp();
  v_notice  timestamptz := clock_timestamp() + interval '5 s';
  v_now     timestamptz;
  v_holders text;
BEGIN
  IF mode NOT IN ('SHARE ROW EXCLUSIVE', 'ACCESS EXCLUSIVE') THEN
    RAISE EXCEPTION 'pg2kafka.lock_table: unexpected lock mode %', mode;
  END IF;
  LOOP
    BEGIN
      PERFORM set_config('lock_timeout', '50ms', true);
      EXECUTE format('LOCK TABLE %s IN %s MODE', table_name, mode);
      PERFORM set_config('lock_timeout', v_old, true);
      RETURN;
    EXCEPTION WHEN lock_not_available THEN
      NULL;  -- the subtransaction's end dropped the request (and restored lock_timeout)
    END;
    v_now := clock_timestamp();
    -- Who holds the table, only when it is said (pg_locks takes every lock manager partition).
    IF v_budget > interval '0' AND v_now - v_start >= v_budget OR v_now >= v_notice THEN
      SELECT string_agg(DISTINCT l.pid::text, ', ') INTO v_holders FROM pg_locks l
       WHERE l.locktype = 'relation' AND l.relation = table_name AND l.granted
         AND l.pid <> pg_backend_pid();
    END IF;
    IF v_budget > interval '0' AND v_now - v_start >= v_budget THEN
      RAISE EXCEPTION '%: could not lock table % within lock_timeout (%)', caller, table_name,
        v_old
        USING ERRCODE = 'lock_not_available',
              HINT = format('Sessions holding locks on it: %s (see pg_stat_activity). Try again '
                            'once they end, or raise lock_timeout.', coalesce(v_holders, 'none'));
    ELSIF v_now >= v_notice THEN
      RAISE NOTICE '%: still waiting for a moment when table % is free (sessions holding locks '
                   'on it: %); its writers are not held up meanwhile', caller, table_name,
        coalesce(v_holders, 'none');
      v_notice := v_now + interval '5 s';
    END IF;
    PERFORM pg_sleep(0.1 + random() * 0.2);
  END LOOP;
END
$$;

-- Creates (or replaces) the capture triggers of a table, enabled ALWAYS: they fire whatever
-- session_replication_role says (pg_restore, logical replication's apply and some migration tools
-- set it to replica, which silences ordinary triggers), since a change that is not captured is
-- lost. In capture mode `statement`, a plain table gets four statement-level triggers
-- (pg2kafka_insert, _update, _delete, _truncate). In mode `row` it gets a row-level trigger
-- pg2kafka_row and pg2kafka_truncate; a partitioned table always does, and PostgreSQL clones
-- pg2kafka_row to every partition, present and future, while pg2kafka_truncate is created on
-- each of its partitions too (TRUNCATE triggers are not cloned). The other mode's triggers are
-- dropped. Their arguments, read by the capture functions (30_capture.sql): the key column's
-- name, its attnum, and the table's OID, by which a trigger restored from a dump into another
-- database is recognised; for a table with capture options (spec: options_spec's, else NULL) a
-- 4th, the compiled options, and the capture functions for options (capture_row_options, and
-- capture_changes for INSERT, UPDATE and DELETE). A table without options gets exactly the
-- triggers it always had.
-- CREATE OR REPLACE TRIGGER (PostgreSQL 14+) keeps the table's SHARE ROW EXCLUSIVE lock, which
-- readers pass; dropping the other mode's triggers (and on 13 the old triggers) takes ACCESS
-- EXCLUSIVE until the transaction ends. Needs the rights to alter the table and its partitions
-- (their owner). The caller holds the table's SHARE ROW EXCLUSIVE lock, so that no write runs
-- while the triggers change: each statement is captured by the old triggers or the new ones.
DROP FUNCTION IF EXISTS pg2kafka.create_triggers(regclass, text, smallint);
DROP FUNCTION IF EXISTS pg2kafka.create_triggers(regclass, text, smallint, text);
CREATE OR REPLACE FUNCTION pg2kafka.create_triggers(table_name regclass, key_column text,
                                                    key_attnum smallint, capture text,
                                                    spec text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_create  text := 'CREATE OR REPLACE TRIGGER';
  v_args    text := format('%L, %L, %L', key_column, key_attnum, table_name::oid)
                    || CASE WHEN spec IS NOT NULL THEN format(', %L', spec) ELSE '' END;
  v_row     text := CASE WHEN spec IS NULL THEN 'capture_row' ELSE 'capture_row_options' END;
  v_trigger record;
  v_part    regclass;
  v_rows    boolean := capture = 'row'
                       OR (SELECT c.relkind FROM pg_class c WHERE c.oid = table_name) = 'p';
BEGIN
  IF current_setting('server_version_num')::integer < 140000 THEN
    v_create := 'CREATE TRIGGER';
    PERFORM pg2kafka.drop_triggers(table_name);
  END IF;
  -- The other mode's triggers (or an older pg2kafka's) make way.
  FOR v_trigger IN
    SELECT g.tgname FROM pg_trigger g
     WHERE g.tgrelid = table_name AND g.tgparentid = 0
       AND g.tgname = ANY (pg2kafka.mode_triggers(NOT v_rows))
       AND g.tgname <> ALL (pg2kafka.mode_triggers(v_rows))
  LOOP
    EXECUTE format('DROP TRIGGER %I ON %s', v_trigger.tgname, table_name);
  END LOOP;
  IF v_rows THEN
    EXECUTE format('%s pg2kafka_row AFTER INSERT OR UPDATE OR DELETE ON %s '
                   'FOR EACH ROW EXECUTE FUNCTION pg2kafka.%s(%s)',
                   v_create, table_name, v_row, v_args);
    FOR v_part IN SELECT table_name
                  UNION
                  SELECT p.relid FROM pg_partition_tree(table_name) p LOOP
      EXECUTE format('%s pg2kafka_truncate AFTER TRUNCATE ON %s '
                     'FOR EACH STATEMENT EXECUTE FUNCTION pg2kafka.capture_truncate(%s)',
                     v_create, v_part, v_args);
      -- Each clone too: PostgreSQL before 15 does not pass ENABLE ALWAYS on to them.
      EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER pg2kafka_row, '
                     'ENABLE ALWAYS TRIGGER pg2kafka_truncate', v_part);
    END LOOP;
  ELSE
    EXECUTE format('%s pg2kafka_insert AFTER INSERT ON %s '
                   'REFERENCING NEW TABLE AS pg2kafka_new '
                   'FOR EACH STATEMENT EXECUTE FUNCTION pg2kafka.%s(%s)',
                   v_create, table_name,
                   CASE WHEN spec IS NULL THEN 'capture_insert' ELSE 'capture_changes' END,
                   v_args);
    EXECUTE format('%s pg2kafka_update AFTER UPDATE ON %s '
                   'REFERENCING OLD TABLE AS pg2kafka_old NEW TABLE AS pg2kafka_new '
                   'FOR EACH STATEMENT EXECUTE FUNCTION pg2kafka.%s(%s)',
                   v_create, table_name,
                   CASE WHEN spec IS NULL THEN 'capture_update' ELSE 'capture_changes' END,
                   v_args);
    EXECUTE format('%s pg2kafka_delete AFTER DELETE ON %s '
                   'REFERENCING OLD TABLE AS pg2kafka_old '
                   'FOR EACH STATEMENT EXECUTE FUNCTION pg2kafka.%s(%s)',
                   v_create, table_name,
                   CASE WHEN spec IS NULL THEN 'capture_delete' ELSE 'capture_changes' END,
                   v_args);
    EXECUTE format('%s pg2kafka_truncate AFTER TRUNCATE ON %s '
                   'FOR EACH STATEMENT EXECUTE FUNCTION pg2kafka.capture_truncate(%s)',
                   v_create, table_name, v_args);
    EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER pg2kafka_insert, '
                   'ENABLE ALWAYS TRIGGER pg2kafka_update, ENABLE ALWAYS TRIGGER pg2kafka_delete, '
                   'ENABLE ALWAYS TRIGGER pg2kafka_truncate', table_name);
  END IF;
END
$$;

-- Drops pg2kafka's triggers from a table and, for a partitioned table, from its partitions.
CREATE OR REPLACE FUNCTION pg2kafka.drop_triggers(table_name regclass) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_trigger record;
BEGIN
  FOR v_trigger IN
    SELECT g.tgname, g.tgrelid::regclass AS rel FROM pg_trigger g
     WHERE (g.tgrelid = table_name
            OR g.tgrelid IN (SELECT p.relid FROM pg_partition_tree(table_name) p))
       AND g.tgparentid = 0
       AND g.tgname = ANY (pg2kafka.mode_triggers(true) || pg2kafka.mode_triggers(false))
  LOOP
    EXECUTE format('DROP TRIGGER %I ON %s', v_trigger.tgname, v_trigger.rel);
  END LOOP;
END
$$;

-- pg2kafka.tracking_problem(table): what keeps a table's capture from being complete and current,
-- or NULL when nothing does. Judged on its capture triggers, as the capture functions read them:
--   'no triggers'       none of its triggers exists (dropped by hand, or the table was
--                       replaced): nothing is captured;
--   'triggers missing'  some of them are gone: those statements are not captured;
--   'disabled'          some are disabled (ALTER TABLE ... DISABLE TRIGGER, or ENABLE REPLICA
--                       TRIGGER): the changes they would capture are lost;
--   'outdated'          in an older form: created before function set 1 (no table OID among the
--                       arguments) or 2 (statement-level triggers on a partitioned table, which
--                       miss writes made straight to a partition), not enabled ALWAYS (they
--                       miss changes made with session_replication_role = replica), those of
--                       the other capture mode than the registry's (tracked_tables.capture), or
--                       with other capture options than the registry's (tracked_tables.options:
--                       their 4th argument is not what those compile to);
--   'restored'          created for another table OID: the database was restored from a dump,
--                       so they find the key column by its name at setup, not by position;
--   'partition without truncate trigger'
--                       a partition created or attached after setup: a TRUNCATE of that
--                       partition alone is not captured (its other writes are);
--   'key column gone'   the key column they follow no longer exists: null keys, and DELETE
--                       events carry the whole old row.
CREATE OR REPLACE FUNCTION pg2kafka.tracking_problem(table_name regclass) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
  v_partitioned boolean;
  v_rows        boolean;
  v_expected    text[];
  v_present     integer;
  v_args        text[];
  v_spec        text;
  v_same        boolean;
BEGIN
  v_partitioned := (SELECT c.relkind FROM pg_class c WHERE c.oid = table_name) = 'p';
  v_rows := v_partitioned OR EXISTS (SELECT FROM pg2kafka.tracked_tables t
                                      WHERE t.relid = table_name AND t.capture = 'row');
  v_expected := pg2kafka.mode_triggers(v_rows);
  SELECT count(*) INTO v_present FROM pg_trigger g
   WHERE g.tgrelid = table_name AND g.tgname = ANY (v_expected);
  -- Triggers of the other capture mode (an older pg2kafka's, or a mode changed by hand in the
  -- registry): setup puts the registered mode's in place.
  IF EXISTS (SELECT FROM pg_trigger g
              WHERE g.tgrelid = table_name AND g.tgparentid = 0
                AND g.tgname = ANY (pg2kafka.mode_triggers(NOT v_rows))
                AND g.tgname <> ALL (v_expected)) THEN
    RETURN 'outdated';
  ELSIF v_present = 0 THEN
    RETURN 'no triggers';
  ELSIF v_present < cardinality(v_expected) THEN
    RETURN 'triggers missing';
  END IF;
  -- The table's triggers and, for a partitioned table, those on its partitions: the clones of
  -- the row trigger and each partition's own TRUNCATE trigger.
  IF EXISTS (SELECT FROM pg_trigger g
              WHERE (g.tgrelid = table_name
                     OR v_partitioned AND g.tgname IN ('pg2kafka_row', 'pg2kafka_truncate')
                        AND g.tgrelid IN (SELECT p.relid FROM pg_partition_tree(table_name) p))
                AND g.tgname = ANY (v_expected) AND g.tgenabled IN ('D', 'R')) THEN
    RETURN 'disabled';
  END IF;
  SELECT pg2kafka.trigger_arguments(g.tgargs, g.tgnargs) INTO v_args FROM pg_trigger g
   WHERE g.tgrelid = table_name AND g.tgname = v_expected[1];
  IF cardinality(v_args) < 3
     OR EXISTS (SELECT FROM pg_trigger g
                 WHERE g.tgrelid = table_name AND g.tgname = ANY (v_expected)
                   AND g.tgenabled <> 'A') THEN
    RETURN 'outdated';
  ELSIF v_args[3]::oid <> table_name::oid THEN
    RETURN 'restored';
  END IF;
  -- The capture options: the 4th argument, compared without the column names it keeps for a
  -- restore (a renamed column is followed by attnum, as it should be).
  SELECT pg2kafka.options_spec(t.relid, t.options, t.option_columns) INTO v_spec
    FROM pg2kafka.tracked_tables t WHERE t.relid = table_name;
  BEGIN
    v_same := CASE WHEN v_spec IS NULL THEN cardinality(v_args) = 3
                   ELSE cardinality(v_args) = 4
                        AND v_args[4]::jsonb - 'names' = v_spec::jsonb - 'names' END;
  EXCEPTION WHEN invalid_text_representation THEN
    v_same := false;  -- not JSON: altered by hand
  END;
  IF NOT v_same THEN
    RETURN 'outdated';
  END IF;
  IF v_partitioned
     AND EXISTS (SELECT FROM pg_partition_tree(table_name) p
                  WHERE NOT EXISTS (SELECT FROM pg_trigger g
                                     WHERE g.tgrelid = p.relid
                                       AND g.tgname = 'pg2kafka_truncate')) THEN
    RETURN 'partition without truncate trigger';
  END IF;
  IF NOT EXISTS (SELECT FROM pg_attribute a
                  WHERE a.attrelid = table_name AND a.attnum = v_args[2]::smallint
                    AND a.attnum > 0 AND NOT a.attisdropped)
     OR EXISTS (SELECT FROM pg2kafka.tracked_tables t,
                            jsonb_array_elements_text(t.option_columns -> 'key') k(attnum)
                 WHERE t.relid = table_name
                   AND NOT EXISTS (SELECT FROM pg_attribute a
                                    WHERE a.attrelid = table_name
                                      AND a.attnum = k.attnum::smallint
                                      AND NOT a.attisdropped)) THEN
    RETURN 'key column gone';  -- the key column, or a column of a composite key
  END IF;
  RETURN NULL;
END
$$;

-- pg2kafka.tracking_problems(): every tracked table with a problem (see tracking_problem), with
-- a message that says what it means and how to fix it. The drainer logs these at start.
CREATE OR REPLACE FUNCTION pg2kafka.tracking_problems()
RETURNS TABLE (table_name regclass, key_column text, problem text, message text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT p.relid, p.key_column, p.problem,
         format('tracked table %s: ', p.relid) || CASE p.problem
           WHEN 'no triggers' THEN
             'its capture triggers are gone, so none of its changes are captured. Run '
             || format('SELECT pg2kafka.setup(%L, %L)', p.relid, p.key_column)
             || ' as its owner (it takes a new snapshot), or pg2kafka.teardown to stop tracking it.'
           WHEN 'triggers missing' THEN
             'some of its capture triggers are gone, so those statements are not captured. Run '
             || format('SELECT pg2kafka.teardown(%L); SELECT pg2kafka.setup(%L, %L%s)', p.relid,
                       p.relid, p.key_column,
                       CASE WHEN p.capture = 'row' AND p.relkind <> 'p'
                            THEN ', ''{"capture": "row"}''' ELSE '' END)
             || ' as its owner (setup takes a new snapshot).'
           WHEN 'disabled' THEN
             'some of its capture triggers are disabled (ALTER TABLE ... DISABLE TRIGGER), so the '
             || 'changes they would capture are lost. Run '
             || format('SELECT pg2kafka.setup(%L, %L)', p.relid, p.key_column)
             || ' as its owner: it enables them again and takes a new snapshot.'
           WHEN 'outdated' THEN
             'its capture triggers are in an older form (from an older pg2kafka that the role '
             || 'upgrading the schema could not replace, or altered by hand): they may miss '
             || 'changes made with session_replication_role = replica, writes made straight to '
             || 'a partition, or be confused by a pg_dump restore. Run '
             || format('SELECT pg2kafka.setup(%L, %L)', p.relid, p.key_column)
             || ' as its owner (no new snapshot).'
           WHEN 'partition without truncate trigger' THEN
             'a partition created or attached after setup has no TRUNCATE trigger: a TRUNCATE '
             || 'of that partition alone would not be captured (its other writes are). Run '
             || format('SELECT pg2kafka.setup(%L, %L)', p.relid, p.key_column)
             || ' as its owner (no new snapshot).'
           WHEN 'restored' THEN
             'its capture triggers were restored from a dump, so they find the key column by '
             || 'the name it had at setup ("' || p.key_column || '"): events have null keys if no '
             || 'column has that name any more. Run '
             || format('SELECT pg2kafka.setup(%L, %L)', p.relid, p.key_column)
             || ' as its owner, naming the key column (no new snapshot).'
           ELSE
             'its key column "' || p.key_column || '" no longer exists: its events have a null '
             || 'key (external_id), and its DELETE events carry the whole deleted row. Run '
             || 'pg2kafka.teardown and pg2kafka.setup with the new key column.'
         END
    FROM (SELECT t.relid, t.key_column, t.capture, c.relkind,
                 pg2kafka.tracking_problem(t.relid) AS problem
            FROM pg2kafka.tracked_tables t
            JOIN pg_class c ON c.oid = t.relid) p
   WHERE p.problem IS NOT NULL
   ORDER BY p.relid::text
$$;

DROP FUNCTION IF EXISTS pg2kafka.setup(regclass, text);
DROP FUNCTION IF EXISTS pg2kafka.setup(text, text);

-- pg2kafka.capture_mode(table, options, current): the capture mode that the options given to
-- setup or configure ask for (see setup), checked: `current` when they do not say. Raises an
-- error that names the problem for anything else: options that are not a JSON object, an
-- unknown option, a mode that is not 'statement' or 'row', 'statement' for a partitioned table.
CREATE OR REPLACE FUNCTION pg2kafka.capture_mode(table_name regclass, options jsonb,
                                                 current text, caller text) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_unknown text;
  v_mode    jsonb;
BEGIN
  IF options IS NULL OR options = 'null' THEN
    RETURN current;
  ELSIF jsonb_typeof(options) <> 'object' THEN
    RAISE EXCEPTION '%: options must be a JSON object, not %', caller, jsonb_typeof(options)
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'For example: ''{"capture": "row"}''.';
  END IF;
  SELECT k INTO v_unknown FROM jsonb_object_keys(options) k
   WHERE k <> ALL (ARRAY['capture', 'include', 'exclude', 'mask', 'redact', 'provenance',
                         'update', 'before', 'delete', 'key', 'key_changes', 'tombstones',
                         'topic'])
   ORDER BY k LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION '%: unknown option "%"', caller, left(v_unknown, 100)
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'The options of a tracked table are: capture, include, exclude, mask, redact, '
                   'provenance, update, before, delete, key, key_changes, tombstones, topic '
                   '(sql/README.md, "Capture options").';
  END IF;
  v_mode := options -> 'capture';
  IF v_mode IS NULL OR v_mode = 'null' THEN
    RETURN current;
  ELSIF v_mode NOT IN ('"statement"', '"row"') THEN
    RAISE EXCEPTION '%: option "capture" must be "statement" or "row", not %', caller,
      left(v_mode::text, 100)
      USING ERRCODE = 'invalid_parameter_value',
            HINT = '"row" for tables written a row at a time, "statement" (the default) for '
                   'tables written in bulk: see "Capture modes" in sql/README.md.';
  ELSIF v_mode = '"statement"'
        AND (SELECT c.relkind FROM pg_class c WHERE c.oid = table_name) = 'p' THEN
    RAISE EXCEPTION '%: % is partitioned, and partitioned tables are always captured row by '
                    'row', caller, table_name
      USING ERRCODE = 'feature_not_supported',
            HINT = 'Statement-level triggers are not cloned to partitions, so writes made '
                   'straight to a partition would be missed. Leave "capture" out, or give "row".';
  END IF;
  RETURN v_mode ->> 0;
END
$$;

-- pg2kafka.check_options(table, options, key_column, caller): the capture options of a table
-- (sql/README.md, "Capture options"; all but `capture`, which capture_mode checks) checked and
-- normalised: defaults and `capture` left out, `"provenance": []` written true; NULL when none
-- is left. `options` is the whole set (configure merges first), with no member null. Raises an
-- error naming the problem for anything wrong (a string of the caller's is quoted at most 100
-- characters long): a value of the wrong type, a column that does not exist, both include and
-- exclude, a key column excluded, not included, masked or redacted, a column both masked and
-- redacted, a bad topic, bad setting names, a composite key of fewer than 2 columns or with
-- duplicates, or whose first column is not key_column.
CREATE OR REPLACE FUNCTION pg2kafka.check_options(table_name regclass, options jsonb,
                                                  key_column text, caller text) RETURNS jsonb
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_opts    jsonb := coalesce(options, '{}') - 'capture';
  v_name    text;
  v_value   jsonb;
  v_col     text;
  v_keys    text[];
  v_allowed text[];
  v_list    text;
BEGIN
  FOR v_name, v_value IN SELECT o.key, o.value FROM jsonb_each(v_opts) o ORDER BY o.key LOOP
    IF v_name IN ('include', 'exclude', 'mask', 'redact', 'key') THEN
      IF jsonb_typeof(v_value) <> 'array'
         OR EXISTS (SELECT FROM jsonb_array_elements(v_value) e WHERE jsonb_typeof(e) <> 'string')
      THEN
        RAISE EXCEPTION '%: option "%" must be an array of column names (strings), not %',
          caller, v_name, left(v_value::text, 100)
          USING ERRCODE = 'invalid_parameter_value',
                HINT = format('For example: {"%s": ["a", "b"]}.', v_name);
      END IF;
      SELECT e INTO v_col FROM jsonb_array_elements_text(v_value) e GROUP BY e
      HAVING count(*) > 1 LIMIT 1;
      IF FOUND THEN
        RAISE EXCEPTION '%: option "%" names column "%" twice', caller, v_name, left(v_col, 100)
          USING ERRCODE = 'invalid_parameter_value';
      END IF;
      SELECT e INTO v_col FROM jsonb_array_elements_text(v_value) WITH ORDINALITY x(e, i)
       WHERE NOT EXISTS (SELECT FROM pg_attribute a
                          WHERE a.attrelid = table_name AND a.attname = x.e AND a.attnum > 0
                            AND NOT a.attisdropped)
       ORDER BY x.i LIMIT 1;
      IF FOUND THEN
        RAISE EXCEPTION '%: option "%": table % has no column "%"', caller, v_name, table_name,
          left(v_col, 100)
          USING ERRCODE = 'undefined_column',
                HINT = 'Columns are given by their exact names, without quotes.';
      END IF;
    ELSIF v_name = 'provenance' THEN
      IF jsonb_typeof(v_value) = 'boolean' THEN
        CONTINUE;
      ELSIF jsonb_typeof(v_value) <> 'array'
            OR EXISTS (SELECT FROM jsonb_array_elements(v_value) e
                        WHERE jsonb_typeof(e) <> 'string') THEN
        RAISE EXCEPTION '%: option "provenance" must be true, false or an array of setting '
                        'names, not %', caller, left(v_value::text, 100)
          USING ERRCODE = 'invalid_parameter_value',
                HINT = 'For example: {"provenance": ["actor"]} sends the setting pg2kafka.actor '
                       'as the header pg2kafka.actor.';
      ELSIF jsonb_array_length(v_value) > 16 THEN
        RAISE EXCEPTION '%: option "provenance" names % settings; at most 16', caller,
          jsonb_array_length(v_value)
          USING ERRCODE = 'invalid_parameter_value';
      END IF;
      SELECT e INTO v_col FROM jsonb_array_elements_text(v_value) WITH ORDINALITY x(e, i)
       WHERE x.e !~ '^[a-z][a-z0-9_]{0,62}$'
          OR x.e IN ('current_user', 'session_user', 'application_name', 'client_addr', 'txid',
                     'notify', 'id', 'event_id', 'error', 'reason', 'original_topic',
                     'value_omitted', 'value_size')
       ORDER BY x.i LIMIT 1;
      IF FOUND THEN
        RAISE EXCEPTION '%: option "provenance": "%" is not a setting name of its own (one to '
                        '63 of a-z, 0-9 and _, starting with a letter, and none of the standard '
                        'headers current_user, session_user, application_name, client_addr, '
                        'txid, nor notify or a header name pg2kafka gives records: id, '
                        'event_id, error, reason, original_topic, value_omitted, value_size)',
          caller, left(v_col, 100)
          USING ERRCODE = 'invalid_parameter_value';
      END IF;
      SELECT e INTO v_col FROM jsonb_array_elements_text(v_value) e GROUP BY e
      HAVING count(*) > 1 LIMIT 1;
      IF FOUND THEN
        RAISE EXCEPTION '%: option "provenance" names setting "%" twice', caller, v_col
          USING ERRCODE = 'invalid_parameter_value';
      END IF;
    ELSIF v_name = 'tombstones' THEN
      IF jsonb_typeof(v_value) <> 'boolean' THEN
        RAISE EXCEPTION '%: option "tombstones" must be true or false, not %', caller,
          left(v_value::text, 100)
          USING ERRCODE = 'invalid_parameter_value';
      END IF;
    ELSIF v_name = 'topic' THEN
      IF jsonb_typeof(v_value) <> 'string' OR length(v_value ->> 0) NOT BETWEEN 1 AND 249
         OR v_value ->> 0 !~ '^[A-Za-z0-9._-]+$' OR v_value ->> 0 IN ('.', '..') THEN
        RAISE EXCEPTION '%: option "topic" must be a Kafka topic name (1 to 249 of A-Z, a-z, '
                        '0-9, ".", "_" and "-", not "." or ".."), not %', caller,
          left(v_value::text, 100)
          USING ERRCODE = 'invalid_parameter_value';
      END IF;
      -- One owner's events must never reach a stream that another's consumers read as theirs:
      -- the default names are the tables' own, and a topic is shared by one owner's tables only
      -- (the drainer checks both again: the registry can be written around this function).
      IF translate(v_value ->> 0, '.', '_') LIKE 'pg2kafka\_%' THEN
        RAISE EXCEPTION '%: option "topic" must not start with "pg2kafka." (or "pg2kafka_", '
                        'which Kafka takes for the same), the prefix of the default topic '
                        'names, not %', caller, left(v_value::text, 100)
          USING ERRCODE = 'invalid_parameter_value',
                HINT = 'Leave "topic" out for the default name.';
      END IF;
      IF EXISTS (SELECT FROM pg2kafka.tracked_tables t JOIN pg_class c ON c.oid = t.relid
                  WHERE t.options ->> 'topic' = v_value ->> 0
                    AND t.relid <> check_options.table_name
                    AND c.relowner <> (SELECT o.relowner FROM pg_class o
                                        WHERE o.oid = check_options.table_name)) THEN
        RAISE EXCEPTION '%: topic % is the topic of a table of another owner', caller,
          left(v_value::text, 100)
          USING ERRCODE = 'invalid_parameter_value',
                HINT = 'Tables share a topic only when one role owns them all.';
      END IF;
    ELSE
      v_allowed := CASE v_name
                     WHEN 'update' THEN ARRAY['changed', 'full']
                     WHEN 'before' THEN ARRAY['none', 'changed', 'full']
                     WHEN 'delete' THEN ARRAY['key', 'row']
                     WHEN 'key_changes' THEN ARRAY['update', 'delete'] END;
      IF v_allowed IS NULL THEN  -- capture_mode names unknown options first
        RAISE EXCEPTION '%: unknown option "%"', caller, left(v_name, 100)
          USING ERRCODE = 'invalid_parameter_value';
      ELSIF jsonb_typeof(v_value) <> 'string' OR v_value ->> 0 <> ALL (v_allowed) THEN
        RAISE EXCEPTION '%: option "%" must be one of "%", not %', caller, v_name,
          array_to_string(v_allowed, '", "'), left(v_value::text, 100)
          USING ERRCODE = 'invalid_parameter_value';
      END IF;
    END IF;
  END LOOP;

  IF v_opts ? 'include' AND v_opts ? 'exclude' THEN
    RAISE EXCEPTION '%: options "include" and "exclude" exclude each other: give one', caller
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF v_opts ? 'key' THEN
    v_keys := ARRAY(SELECT jsonb_array_elements_text(v_opts -> 'key'));
    IF cardinality(v_keys) < 2 THEN
      RAISE EXCEPTION '%: option "key" names a composite key: at least 2 columns (a key of one '
                      'column is the key column)', caller
        USING ERRCODE = 'invalid_parameter_value';
    ELSIF v_keys[1] IS DISTINCT FROM key_column THEN
      RAISE EXCEPTION '%: the key column "%" must be the first column of option "key" (%)',
        caller, left(key_column, 100), left((v_opts -> 'key')::text, 100)
        USING ERRCODE = 'invalid_parameter_value',
              HINT = 'Give the key column as NULL: setup then takes the first of "key".';
    END IF;
  ELSE
    v_keys := ARRAY[key_column];
  END IF;
  FOREACH v_col IN ARRAY v_keys LOOP
    SELECT string_agg(format('"%s"', o.name), ', ' ORDER BY o.name) INTO v_list
      FROM unnest(ARRAY['exclude', 'mask', 'redact']) o(name)
     WHERE (v_opts -> o.name) ? v_col;
    IF v_list IS NOT NULL THEN
      RAISE EXCEPTION '%: key column "%" cannot be in option %: the key is sent as it is', caller,
        left(v_col, 100), v_list
        USING ERRCODE = 'invalid_parameter_value';
    ELSIF v_opts ? 'include' AND NOT (v_opts -> 'include') ? v_col THEN
      RAISE EXCEPTION '%: option "include" must list key column "%"', caller, left(v_col, 100)
        USING ERRCODE = 'invalid_parameter_value';
    END IF;
  END LOOP;
  SELECT e INTO v_col FROM jsonb_array_elements_text(coalesce(v_opts -> 'mask', '[]')) e
   WHERE (v_opts -> 'redact') ? e LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION '%: column "%" is both masked and redacted: give it in one of the two', caller,
      left(v_col, 100)
      USING ERRCODE = 'invalid_parameter_value';
  END IF;

  -- Normalised: what is the default is left out.
  IF v_opts -> 'provenance' = '[]' THEN
    v_opts := jsonb_set(v_opts, '{provenance}', 'true');
  END IF;
  SELECT coalesce(jsonb_object_agg(o.key, o.value), '{}') INTO v_opts
    FROM jsonb_each(v_opts) o
   WHERE NOT EXISTS (SELECT FROM (VALUES ('update', '"changed"'::jsonb), ('before', '"none"'),
                                          ('delete', '"key"'), ('key_changes', '"update"'),
                                          ('tombstones', 'false'), ('provenance', 'false'),
                                          ('exclude', '[]'), ('mask', '[]'),
                                          ('redact', '[]')) d(k, v)
                      WHERE d.k = o.key AND d.v = o.value);
  RETURN nullif(v_opts, '{}');
END
$$;

-- pg2kafka.option_columns(table, options): the attnums of the columns that the (checked)
-- options name, by option: {"include": [..], "exclude": [..], "mask": [..], "redact": [..],
-- "key": [..]}, or NULL. Stored in tracked_tables.option_columns: what capture follows.
CREATE OR REPLACE FUNCTION pg2kafka.option_columns(table_name regclass, options jsonb)
RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT jsonb_object_agg(o.key,
           (SELECT coalesce(jsonb_agg(a.attnum ORDER BY n.i), '[]')
              FROM jsonb_array_elements_text(o.value) WITH ORDINALITY n(name, i)
              JOIN pg_attribute a ON a.attrelid = $1 AND a.attname = n.name AND a.attnum > 0
                                 AND NOT a.attisdropped))
    FROM jsonb_each($2) o
   WHERE o.key IN ('include', 'exclude', 'mask', 'redact', 'key')
$$;

-- pg2kafka.current_options(table): a tracked table's options as in the registry, with the
-- columns named as they are now (the registry follows them by attnum; a column dropped since is
-- left out). NULL when it has none.
CREATE OR REPLACE FUNCTION pg2kafka.current_options(table_name regclass) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT t.options
         || coalesce((SELECT jsonb_object_agg(c.key,
                               (SELECT coalesce(jsonb_agg(a.attname ORDER BY n.i), '[]')
                                  FROM jsonb_array_elements_text(c.value) WITH ORDINALITY n(attnum, i)
                                  JOIN pg_attribute a ON a.attrelid = t.relid
                                                     AND a.attnum = n.attnum::smallint
                                                     AND NOT a.attisdropped))
                        FROM jsonb_each(t.option_columns) c), '{}')
    FROM pg2kafka.tracked_tables t WHERE t.relid = $1
$$;

-- pg2kafka.options_spec(table, options, option_columns): the 4th argument of the capture
-- triggers of a table with options (see 30_capture.sql, "Capture options"), as text; NULL for a
-- table without options (its triggers keep their 3 arguments and the plain capture functions).
CREATE OR REPLACE FUNCTION pg2kafka.options_spec(table_name regclass, options jsonb,
                                                 option_columns jsonb) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT jsonb_strip_nulls(jsonb_build_object(
           'include', $3 -> 'include', 'exclude', $3 -> 'exclude', 'redact', $3 -> 'redact',
           'mask', $3 -> 'mask',
           'key', $3 -> 'key', 'delete', $2 -> 'delete',
           'provenance', CASE WHEN $2 -> 'provenance' = 'true' THEN '[]'::jsonb
                              WHEN jsonb_typeof($2 -> 'provenance') = 'array'
                              THEN $2 -> 'provenance' END,
           'options', (SELECT coalesce(jsonb_object_agg(o.key, o.value), '{}')
                         FROM jsonb_each($2) o
                        WHERE o.key IN ('update', 'before', 'delete', 'key_changes',
                                        'tombstones'))
                      || CASE WHEN $2 ? 'mask' THEN '{"mask": true}'::jsonb ELSE '{}' END,
           'names', (SELECT jsonb_object_agg(a.attnum::text, a.attname)
                       FROM pg_attribute a
                      WHERE a.attrelid = $1 AND NOT a.attisdropped
                        AND a.attnum IN (SELECT n::smallint
                                           FROM jsonb_each($3) c,
                                                jsonb_array_elements_text(c.value) n))))::text
   WHERE $2 IS NOT NULL
$$;

-- Copies the rows of a table (those for which `condition` holds, when given) into the queue as
-- SNAPSHOT events, in batches cut by the size of the rows' JSON, with the table's options
-- applied (`spec`, options_spec's; NULL for none): selection and redaction here, masking by the
-- trigger event_batches_mask. The caller holds the table's lock.
CREATE OR REPLACE FUNCTION pg2kafka.copy_snapshot(table_name regclass, key_column text,
                                                  spec jsonb, condition text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
  c_rows    CONSTANT integer := pg2kafka.batch_max_rows();
  c_bytes   CONSTANT integer := pg2kafka.batch_max_bytes();
  v_schema  text;
  v_table   text;
  v_sent    text[];
  v_redact  text[];
  v_keys    text[];
  v_filter  boolean := false;
  v_options jsonb := spec -> 'options';
BEGIN
  SELECT n.nspname, c.relname INTO v_schema, v_table
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = table_name;
  IF spec IS NOT NULL THEN
    SELECT c.sent, c.redacted, c.keys INTO v_sent, v_redact, v_keys
      FROM pg2kafka.capture_columns(table_name, spec, true) c;
    v_filter := v_sent IS NOT NULL OR cardinality(v_redact) > 0;
    IF v_keys IS NOT NULL THEN
      v_options := v_options || jsonb_build_object('key', to_jsonb(v_keys));
    END IF;
  END IF;
  EXECUTE format(
    'INSERT INTO pg2kafka.event_batches '
    '       (table_schema, table_name, statement, key_column, events, data, data_bytes, '
    '        options, headers) '
    'SELECT $1, $2, ''SNAPSHOT'', $3, count(*), json_agg(c.j), sum(c.size), $6, $7 '
    '  FROM (SELECT r.j, r.size, row_number() OVER w AS rn, sum(r.size) OVER w AS bytes '
    '          FROM (SELECT j, pg_column_size(j) AS size '
    '                  FROM (SELECT CASE WHEN $8 THEN pg2kafka.filter_row(row_to_json(t.*), $9, '
    '                                                                    $10) '
    '                                    ELSE row_to_json(t.*) END AS j '
    '                          FROM %s t WHERE %s OFFSET 0) s) r '
    '        WINDOW w AS (ROWS UNBOUNDED PRECEDING)) c '
    ' GROUP BY (c.rn - 1) / $4 + c.bytes / $5 '
    ' ORDER BY (c.rn - 1) / $4 + c.bytes / $5', table_name,
    CASE WHEN condition IS NULL THEN 'true' ELSE E'(\n' || condition || E'\n)' END)
    USING v_schema, v_table, key_column, c_rows, c_bytes, v_options, spec -> 'provenance',
          v_filter, v_sent, v_redact;
END
$$;

-- pg2kafka.setup(table, key_column [, options]): start capturing every change of a table and
-- send its current rows as SNAPSHOT events. Returns true when tracking started, false when the
-- table was already tracked with this key column (then nothing happens, except that capture
-- triggers created by an older pg2kafka or restored from a dump are re-attached, and a capture
-- mode given in the options is put in place, as configure does: see below). Runs with the
-- caller's rights: call it as the table's owner, in a transaction of its own (it holds the
-- table's lock until its transaction ends).
-- The rows: a table with a primary key (or a unique index on NOT NULL columns) is backfilled
-- online: setup locks the table only to create the triggers (SHARE ROW EXCLUSIVE, taken in short
-- attempts: pg2kafka.lock_table) and records a backfill, whose chunks the draining pg2kafka sends
-- (60_backfill.sql). A table without one is copied into the queue by setup itself, under that
-- lock, as before function set 5: its writers wait for the copy.
-- options: a JSON object, or NULL for none (the original's two-argument call):
--   "capture": "statement" | "row"   the capture mode (sql/README.md, "Capture modes").
--        "statement" (the default for plain tables): one queue row per statement, whatever its
--        number of rows; the cheapest for statements of many rows. "row": one per changed row;
--        the cheapest for statements of one row. Partitioned tables are always "row". A table
--        tracked before keeps its mode when the options do not say.
-- Unknown options, or values of the wrong kind, are errors.
CREATE OR REPLACE FUNCTION pg2kafka.setup(table_name regclass, key_column text,
                                          options jsonb DEFAULT NULL) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
  c_rows     CONSTANT integer := pg2kafka.batch_max_rows();
  c_bytes    CONSTANT integer := pg2kafka.batch_max_bytes();
  v_schema   text;
  v_table    text;
  v_kind     "char";
  v_attnum   smallint;
  v_tracked  text;
  v_was      text;
  v_capture  text;
  v_problem  text;
  v_order    smallint[];
  v_backfill bigint;
  v_empty    boolean;
  v_reader   regprocedure;
  v_estimate bigint;
  v_given    jsonb := CASE WHEN jsonb_typeof(options) = 'object' THEN options END;
  v_registry record;
  v_options  jsonb;
  v_columns  jsonb;
  v_spec     text;
  v_changed  boolean := false;
BEGIN
  -- A composite key (option "key") gives the key column: its first column.
  IF key_column IS NULL AND jsonb_typeof(v_given -> 'key') = 'array'
     AND jsonb_typeof(v_given -> 'key' -> 0) = 'string' THEN
    key_column := v_given -> 'key' ->> 0;
  END IF;
  IF table_name IS NULL OR key_column IS NULL THEN
    RAISE EXCEPTION 'pg2kafka.setup: table and key column must not be NULL'
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'The key column may be NULL only when the option "key" (a composite key) '
                   'is given: its first column is then the key column.';
  END IF;

  -- SHARE ROW EXCLUSIVE: waits for running writers to commit and blocks new writers until this
  -- transaction ends; readers (ACCESS SHARE) are never blocked. It is the lock CREATE TRIGGER
  -- takes anyway, and it conflicts with itself, so two setups of one table run one after the
  -- other. Every write committed before the lock is in the rows sent (by the backfill, whose
  -- chunks are read after this transaction commits, or by the copy below); every later write
  -- fires the triggers: nothing is lost.
  -- For a table not tracked yet, what a backfill needs is prepared before the lock, which is
  -- then held only for the triggers (and rechecked under it: an index may have changed).
  IF NOT EXISTS (SELECT FROM pg2kafka.tracked_tables t WHERE t.relid = table_name) THEN
    v_order := pg2kafka.backfill_order_key(table_name);
    IF v_order IS NOT NULL THEN
      SELECT r.reader, r.estimate INTO v_reader, v_estimate
        FROM pg2kafka.backfill_request(table_name, NULL, 'pg2kafka.setup') r;
    END IF;
  END IF;
  PERFORM pg2kafka.lock_table(table_name, 'SHARE ROW EXCLUSIVE', 'pg2kafka.setup');

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

  -- After a restore the attnums may name other columns (dropped columns are not dumped): the
  -- options are then taken by the names they were last set with (a column renamed since is an
  -- error to fix, never a column sent by mistake).
  SELECT t.key_column, t.capture, t.options, t.option_columns,
         CASE WHEN pg2kafka.tracking_problem(t.relid) = 'restored' THEN t.options
              ELSE pg2kafka.current_options(t.relid) END AS current
    INTO v_registry
    FROM pg2kafka.tracked_tables t WHERE t.relid = table_name;
  v_tracked := v_registry.key_column;
  v_was := v_registry.capture;
  v_capture := pg2kafka.capture_mode(table_name, options,
                                     coalesce(v_was, CASE v_kind WHEN 'p' THEN 'row'
                                                                 ELSE 'statement' END),
                                     'pg2kafka.setup');
  IF v_kind = 'p' THEN
    v_capture := 'row';
  END IF;
  -- The other options: those given replace the registry's (as configure merges); a composite
  -- key is changed only by teardown and setup.
  IF v_tracked IS NOT NULL AND v_tracked = key_column AND v_given ? 'key'
     AND nullif(v_given -> 'key', 'null') IS DISTINCT FROM v_registry.current -> 'key' THEN
    RAISE EXCEPTION 'pg2kafka.setup: % is already tracked with key %', table_name,
      coalesce((v_registry.current -> 'key')::text, format('column "%s"', v_tracked))
      USING ERRCODE = 'duplicate_object',
            HINT = 'Call pg2kafka.teardown first to change the key.';
  END IF;
  v_options := pg2kafka.check_options(
                 table_name,
                 jsonb_strip_nulls(coalesce(v_registry.current, '{}')
                                   || coalesce(v_given - 'capture', '{}')),
                 key_column, 'pg2kafka.setup');
  v_columns := pg2kafka.option_columns(table_name, v_options);
  v_spec := pg2kafka.options_spec(table_name, v_options, v_columns);
  v_changed := v_columns IS DISTINCT FROM v_registry.option_columns
               OR v_options - ARRAY['include', 'exclude', 'mask', 'redact', 'key']
                  IS DISTINCT FROM v_registry.options
                                   - ARRAY['include', 'exclude', 'mask', 'redact', 'key'];
  IF v_tracked IS NOT NULL THEN
    v_problem := pg2kafka.tracking_problem(table_name);
    -- Capture never stopped: re-attach the triggers to the key column, without a snapshot.
    -- Restored triggers followed the key column by its name at setup, which the caller now
    -- names again (it may have been renamed before the dump).
    IF v_problem = 'restored'
       OR v_problem IN ('outdated', 'partition without truncate trigger')
          AND v_tracked = key_column
       OR v_problem IS NULL AND v_tracked = key_column AND (v_capture <> v_was OR v_changed) THEN
      -- Replacing triggers may drop some, which takes ACCESS EXCLUSIVE: in short attempts too.
      PERFORM pg2kafka.lock_table(table_name, 'ACCESS EXCLUSIVE', 'pg2kafka.setup');
      PERFORM pg2kafka.create_triggers(table_name, key_column, v_attnum, v_capture, v_spec);
      UPDATE pg2kafka.tracked_tables t
         SET key_column = key_column, key_attnum = v_attnum, table_schema = v_schema,
             table_name = v_table, capture = v_capture, options = v_options,
             option_columns = v_columns
       WHERE t.relid = table_name;
      IF v_problem IS NULL AND v_capture = v_was THEN
        RAISE NOTICE 'pg2kafka.setup: the capture options of % are now %', table_name,
          coalesce(v_options::text, 'none');
      ELSIF v_problem IS NULL THEN
        RAISE NOTICE 'pg2kafka.setup: % is now captured in mode "%" (was "%")', table_name,
          v_capture, v_was;
      ELSE
        RAISE NOTICE 'pg2kafka.setup: re-attached the capture triggers of % (% triggers) to key '
                     'column "%"', table_name, v_problem, key_column;
      END IF;
      RETURN false;
    END IF;
    -- Missing or disabled triggers have lost changes: those start over, with a new snapshot.
    IF v_problem IS NULL OR v_problem = 'key column gone' THEN
      IF v_tracked = key_column THEN
        RETURN false;
      END IF;
      RAISE EXCEPTION 'pg2kafka.setup: % is already tracked with key column "%"', table_name,
        v_tracked
        USING ERRCODE = 'duplicate_object',
              HINT = 'Call pg2kafka.teardown first to change the key column.';
    END IF;
  END IF;

  -- Not tracked, or a registry row whose triggers are gone or disabled (by hand, or the table was
  -- dropped and its OID reused): start over, with a snapshot.
  DELETE FROM pg2kafka.tracked_tables t WHERE t.relid = table_name;
  IF EXISTS (SELECT FROM pg_trigger g
              WHERE g.tgrelid = table_name
                AND g.tgname = ANY (pg2kafka.mode_triggers(true)
                                    || pg2kafka.mode_triggers(false))) THEN
    PERFORM pg2kafka.lock_table(table_name, 'ACCESS EXCLUSIVE', 'pg2kafka.setup');
    PERFORM pg2kafka.drop_triggers(table_name);
  END IF;
  PERFORM pg2kafka.create_triggers(table_name, key_column, v_attnum, v_capture, v_spec);
  INSERT INTO pg2kafka.tracked_tables
         (relid, table_schema, table_name, key_column, key_attnum, capture, options,
          option_columns)
  VALUES (table_name, v_schema, v_table, key_column, v_attnum, v_capture, v_options, v_columns);

  -- An empty table needs no snapshot: every row it gets from now on is captured. (Only in READ
  -- COMMITTED: a REPEATABLE READ snapshot may predate rows committed before the lock.)
  IF current_setting('transaction_isolation') = 'read committed' THEN
    EXECUTE format('SELECT NOT EXISTS (SELECT FROM %s %s t)',
                   CASE WHEN v_kind = 'r' THEN 'ONLY' ELSE '' END, table_name) INTO v_empty;
    IF v_empty THEN
      RETURN true;
    END IF;
  END IF;

  v_order := pg2kafka.backfill_order_key(table_name);
  -- A masked table is copied here, under the lock: a backfill's chunks would hand its values to
  -- the drainer in clear (masking happens as batches are queued).
  IF v_options ? 'mask' THEN
    v_order := NULL;
  END IF;
  IF v_order IS NOT NULL AND v_reader IS NULL THEN
    SELECT r.reader, r.estimate INTO v_reader, v_estimate
      FROM pg2kafka.backfill_request(table_name, NULL, 'pg2kafka.setup') r;
  END IF;
  IF v_order IS NOT NULL THEN
    -- A backfill asked for before the table stopped being tracked starts over with this one.
    UPDATE pg2kafka.backfills b SET state = 'cancelled', finished_at = now()
     WHERE b.relid = table_name AND b.state IN ('pending', 'running');
    v_backfill := pg2kafka.start_backfill(table_name, v_order, NULL, v_reader, v_estimate);
    RAISE NOTICE 'pg2kafka.setup: the rows of % are sent as SNAPSHOT events by the draining '
                 'pg2kafka, in chunks (backfill %: see pg2kafka.backfills)', table_name,
      v_backfill;
    RETURN true;
  END IF;

  -- No key to read the table by in chunks: the snapshot is copied here, under the lock. A
  -- snapshot taken by a REPEATABLE READ or SERIALIZABLE transaction may predate writes that
  -- committed before the lock: those would be neither in the copy nor captured.
  IF current_setting('transaction_isolation') <> 'read committed' THEN
    RAISE EXCEPTION 'pg2kafka.setup must run in a READ COMMITTED transaction (this one is %) for '
                    'table %, which %', upper(current_setting('transaction_isolation')),
      table_name, CASE WHEN v_options ? 'mask' THEN 'has masked columns'
                       ELSE 'has no primary key' END
      USING ERRCODE = 'invalid_transaction_state',
            HINT = CASE WHEN v_options ? 'mask'
                        THEN 'A masked table''s rows are copied into the queue under its lock.'
                        ELSE 'Or give the table a primary key: its rows are then sent online, '
                             'in chunks.' END;
  END IF;
  IF v_options ? 'mask' THEN
    RAISE NOTICE 'pg2kafka.setup: % has masked columns, so its rows are copied into the queue '
                 'now (masked as they are queued), and its writers wait for the copy', table_name;
    PERFORM pg2kafka.copy_snapshot(table_name, key_column, v_spec::jsonb, NULL);
    RETURN true;
  END IF;
  RAISE NOTICE 'pg2kafka.setup: % has no primary key (nor a unique index on NOT NULL columns), so '
               'its rows are copied into the queue now, and its writers wait for the copy',
    table_name
    USING HINT = 'With a primary key, setup blocks writers only for a moment and the rows are '
                 'sent in chunks.';
  -- The snapshot: batches cut by the size of the rows' JSON (rows read from the table hold large
  -- values compressed, so their stored size says little about the JSON they make).
  PERFORM pg2kafka.copy_snapshot(table_name, key_column, v_spec::jsonb, NULL);
  RETURN true;
END
$$;

-- The same, taking the table's name as text, parsed like an SQL name with the caller's
-- search_path: 'products', 'shop.products', '"Mixed Case"'. Anything else is an error.
CREATE OR REPLACE FUNCTION pg2kafka.setup(table_name text, key_column text,
                                          options jsonb DEFAULT NULL) RETURNS boolean
LANGUAGE sql AS $$ SELECT pg2kafka.setup($1::pg_catalog.regclass, $2, $3) $$;

-- pg2kafka.configure(table, options): changes the options of a tracked table (see setup), for
-- the statements that start after this transaction commits; takes no snapshot. Returns true when
-- something changed. It takes the table's ACCESS EXCLUSIVE lock (dropping the old mode's
-- triggers needs it) in short attempts (pg2kafka.lock_table: its readers and writers never queue
-- behind it for more than 50 ms at a time) and holds it until the transaction ends: every
-- statement is captured by the old triggers or by the new ones, never by both or neither. It
-- gives up after the caller's lock_timeout, when set. Runs with the caller's rights: call it as
-- the table's owner.
CREATE OR REPLACE FUNCTION pg2kafka.configure(table_name regclass, options jsonb)
RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
  v_tracked record;
  v_capture text;
  v_options jsonb;
  v_columns jsonb;
BEGIN
  IF table_name IS NULL OR options IS NULL THEN
    RAISE EXCEPTION 'pg2kafka.configure: table and options must not be NULL'
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  SELECT t.key_column, t.key_attnum, t.capture, t.options, t.option_columns,
         pg2kafka.current_options(t.relid) AS current
    INTO v_tracked
    FROM pg2kafka.tracked_tables t WHERE t.relid = table_name;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'pg2kafka.configure: % is not tracked', table_name
      USING ERRCODE = 'undefined_object',
            HINT = 'Start tracking it with pg2kafka.setup(table, key_column, options).';
  END IF;
  IF NOT pg_has_role((SELECT c.relowner FROM pg_class c WHERE c.oid = table_name), 'USAGE') THEN
    RAISE EXCEPTION 'pg2kafka.configure: must be owner of table %', table_name
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  v_capture := pg2kafka.capture_mode(table_name, options, v_tracked.capture,
                                     'pg2kafka.configure');
  IF options ? 'key'
     AND nullif(options -> 'key', 'null') IS DISTINCT FROM v_tracked.current -> 'key' THEN
    RAISE EXCEPTION 'pg2kafka.configure: the key of % cannot be changed by configure', table_name
      USING ERRCODE = 'feature_not_supported',
            HINT = 'Call pg2kafka.teardown, then pg2kafka.setup with the new key (a new '
                   'snapshot is sent).';
  END IF;
  -- Merged: the options given replace the registry's; one given as null is reset.
  v_options := pg2kafka.check_options(
                 table_name,
                 jsonb_strip_nulls(coalesce(v_tracked.current, '{}') || (options - 'capture')),
                 v_tracked.key_column, 'pg2kafka.configure');
  v_columns := pg2kafka.option_columns(table_name, v_options);
  IF v_capture = v_tracked.capture
     AND v_columns IS NOT DISTINCT FROM v_tracked.option_columns
     AND v_options - ARRAY['include', 'exclude', 'mask', 'redact', 'key']
         IS NOT DISTINCT FROM v_tracked.options
                              - ARRAY['include', 'exclude', 'mask', 'redact', 'key'] THEN
    RETURN false;
  END IF;
  PERFORM pg2kafka.lock_table(table_name, 'ACCESS EXCLUSIVE', 'pg2kafka.configure');
  PERFORM pg2kafka.create_triggers(table_name, v_tracked.key_column, v_tracked.key_attnum,
                                   v_capture,
                                   pg2kafka.options_spec(table_name, v_options, v_columns));
  UPDATE pg2kafka.tracked_tables t
     SET capture = v_capture, options = v_options, option_columns = v_columns
   WHERE t.relid = table_name;
  IF NOT FOUND THEN  -- the registry's row-level security: only the table's owner may
    RAISE EXCEPTION 'pg2kafka.configure: must be owner of table %', table_name
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN true;
END
$$;

CREATE OR REPLACE FUNCTION pg2kafka.configure(table_name text, options jsonb) RETURNS boolean
LANGUAGE sql AS $$ SELECT pg2kafka.configure($1::pg_catalog.regclass, $2) $$;

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
  v_was_tracked := v_was_tracked OR FOUND;
  -- Its backfills stop: the drainer would find the table untracked anyway.
  UPDATE pg2kafka.backfills b SET state = 'cancelled', finished_at = now()
   WHERE b.relid = table_name AND b.state IN ('pending', 'running');
  RETURN v_was_tracked;
END
$$;

CREATE OR REPLACE FUNCTION pg2kafka.teardown(table_name text) RETURNS boolean
LANGUAGE sql AS $$ SELECT pg2kafka.teardown($1::pg_catalog.regclass) $$;

-- Tables tracked before this function set get triggers in its form, where the installing role
-- may (it must own the table, or be a superuser) and the table's lock is free within 200 ms (the
-- upgrade blocks the table's writers while it waits); elsewhere the old triggers stay, keep
-- working, and the drainer reports them ('outdated') until setup is run again as the owner.
DO $$
DECLARE
  t         record;
  v_attnum  smallint;
  v_key     name;
  v_timeout text := current_setting('lock_timeout');
BEGIN
  PERFORM set_config('lock_timeout', '200ms', true);
  FOR t IN SELECT p.table_name, p.key_column, g.tgnargs, r.capture,
                  pg2kafka.options_spec(r.relid, r.options, r.option_columns) AS spec,
                  pg2kafka.trigger_arguments(g.tgargs, g.tgnargs) AS args
             FROM pg2kafka.tracking_problems() p
             JOIN pg2kafka.tracked_tables r ON r.relid = p.table_name
             JOIN pg_trigger g ON g.tgrelid = p.table_name
                              AND g.tgname IN ('pg2kafka_insert', 'pg2kafka_row')
            WHERE p.problem = 'outdated' LOOP
    -- Triggers of 004-006 follow the key column by attnum, those of 002-003 by name.
    SELECT a.attnum, a.attname INTO v_attnum, v_key FROM pg_attribute a
     WHERE a.attrelid = t.table_name AND a.attnum > 0 AND NOT a.attisdropped
       AND CASE WHEN t.tgnargs >= 2 THEN a.attnum = t.args[2]::smallint
                ELSE a.attname = t.args[1] END;
    CONTINUE WHEN v_attnum IS NULL;  -- the key column is gone: nothing to follow
    BEGIN
      PERFORM pg2kafka.create_triggers(t.table_name, v_key, v_attnum, t.capture, t.spec);
    EXCEPTION WHEN insufficient_privilege OR lock_not_available THEN
      RAISE WARNING 'pg2kafka: could not upgrade the capture triggers of %: %', t.table_name,
        SQLERRM
        USING HINT = format('They keep working. To upgrade them, run SELECT pg2kafka.setup(%L, '
                            '%L) as the table''s owner (no new snapshot).', t.table_name,
                            t.key_column);
    END;
  END LOOP;
  PERFORM set_config('lock_timeout', v_timeout, true);
END
$$;
