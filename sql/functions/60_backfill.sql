-- Backfills: sending a tracked table's existing rows as SNAPSHOT events, in chunks, while its
-- changes stream on (sql/README.md, "Backfills", has the contract and why it loses nothing).
-- setup asks for one when it starts tracking a table; pg2kafka.backfill asks for one on demand.
-- A request is a row of pg2kafka.backfills; the draining pg2kafka reads the chunks through the
-- requesting role's reader (pg2kafka_backfill.reader_*, created here) and records the progress.
-- These functions run with the caller's rights (no SECURITY DEFINER); only the readers they create
-- run as their owner, the role that asked for the backfill.

-- The columns (attnums) whose order a backfill of the table follows, or NULL when it has none:
-- its primary key, or else the unique index with the fewest columns, all of them NOT NULL. Only
-- plain indexes whose every column uses its type's default operator class and its own collation
-- qualify: their uniqueness is then that of ORDER BY and >, so a cursor "after this key" neither
-- skips nor repeats a row (a partial, expression or other-collation index could).
CREATE OR REPLACE FUNCTION pg2kafka.backfill_order_key(table_name regclass) RETURNS smallint[]
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT ARRAY(SELECT unnest(i.indkey::smallint[]))
    FROM pg_index i
   WHERE i.indrelid = table_name AND i.indisunique AND i.indisvalid AND i.indimmediate
     AND i.indpred IS NULL AND i.indexprs IS NULL AND i.indnkeyatts = i.indnatts
     AND NOT EXISTS (
           SELECT FROM unnest(i.indkey::smallint[], i.indclass::oid[], i.indcollation::oid[])
                         AS k(attnum, opclass, coll)
             JOIN pg_attribute a ON a.attrelid = table_name AND a.attnum = k.attnum
             LEFT JOIN pg_opclass o ON o.oid = k.opclass
            WHERE NOT a.attnotnull OR a.attnum <= 0
               OR o.opcdefault IS NOT TRUE
               OR k.coll <> a.attcollation)
   ORDER BY i.indisprimary DESC, i.indnatts, i.indexrelid
   LIMIT 1
$$;

-- Refuses a backfill condition that is not confined to one expression: the reader pastes it into
-- its query as `WHERE (<condition>)`, so its parentheses must balance and it must not end the
-- statement (a ';' outside quotes). Quotes, dollar quotes and comments are skipped as the SQL
-- lexer skips them. Whatever else it holds is an error of the expression itself, reported when
-- backfill checks it against the table.
CREATE OR REPLACE FUNCTION pg2kafka.check_condition(condition text, caller text) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_len   integer := length(condition);
  v_i     integer := 1;
  v_depth integer := 0;
  v_c     text;
  v_end   integer;
  v_tag   text;
  v_nest  integer;
  v_why   text;
BEGIN
  WHILE v_i <= v_len AND v_why IS NULL LOOP
    v_c := substr(condition, v_i, 1);
    IF v_c IN ('''', '"') THEN  -- a literal or a quoted name; a doubled quote stays inside
      v_end := v_i;
      LOOP
        v_end := strpos(substr(condition, v_end + 1), v_c) + v_end;
        EXIT WHEN v_end = v_i OR substr(condition, v_end + 1, 1) <> v_c;
        v_end := v_end + 1;
      END LOOP;
      IF v_end = v_i THEN
        v_why := format('an unterminated %s', CASE v_c WHEN '''' THEN 'string' ELSE 'name' END);
      END IF;
      -- E'...' may hide a quote behind a backslash.
      IF v_c = '''' AND v_i > 1 AND upper(substr(condition, v_i - 1, 1)) = 'E'
         AND strpos(substr(condition, v_i, v_end - v_i), '\') > 0 THEN
        v_why := 'a backslash in an E''...'' string (write the value without escapes)';
      END IF;
      v_i := v_end + 1;
    ELSIF v_c = '$' AND substr(condition, v_i) ~ '^\$([A-Za-z_][A-Za-z_0-9]*)?\$' THEN
      v_tag := substring(substr(condition, v_i) FROM '^(\$([A-Za-z_][A-Za-z_0-9]*)?\$)');
      v_end := strpos(substr(condition, v_i + length(v_tag)), v_tag);
      IF v_end = 0 THEN
        v_why := 'an unterminated dollar-quoted string';
      END IF;
      v_i := v_i + length(v_tag) + v_end - 1 + length(v_tag);
    ELSIF substr(condition, v_i, 2) = '--' THEN
      v_end := strpos(substr(condition, v_i), E'\n');
      v_i := CASE WHEN v_end = 0 THEN v_len + 1 ELSE v_i + v_end END;
    ELSIF substr(condition, v_i, 2) = '/*' THEN  -- comments nest
      v_nest := 1;
      v_i := v_i + 2;
      WHILE v_nest > 0 AND v_i <= v_len LOOP
        IF substr(condition, v_i, 2) = '/*' THEN
          v_nest := v_nest + 1;
          v_i := v_i + 2;
        ELSIF substr(condition, v_i, 2) = '*/' THEN
          v_nest := v_nest - 1;
          v_i := v_i + 2;
        ELSE
          v_i := v_i + 1;
        END IF;
      END LOOP;
      IF v_nest > 0 THEN
        v_why := 'an unterminated comment';
      END IF;
    ELSE
      IF v_c = '(' THEN
        v_depth := v_depth + 1;
      ELSIF v_c = ')' THEN
        v_depth := v_depth - 1;
        IF v_depth < 0 THEN
          v_why := 'a '')'' without its ''(''';
        END IF;
      ELSIF v_c = ';' THEN
        v_why := 'a '';'' (one expression only, not statements)';
      END IF;
      v_i := v_i + 1;
    END IF;
  END LOOP;
  IF v_why IS NULL AND v_depth > 0 THEN
    v_why := 'a ''('' without its '')''';
  END IF;
  IF v_why IS NOT NULL THEN
    RAISE EXCEPTION '%: the condition must be one boolean expression over the table''s columns, '
                    'and this one has %', caller, v_why
      USING ERRCODE = 'syntax_error',
            HINT = 'For example: ''created_at >= now() - interval ''''1 day'''''' or '
                   '''region = ''''eu'''' AND id > 1000''.';
  END IF;
END
$$;

-- The body of every reader (see backfill_reader): the rows of backfill `backfill` after
-- `after_key` in the order of its key, at most `max_rows`, each with its key (each column's text
-- form, which the next call passes back as `after_key`). Runs as its owner, the role that asked
-- for the backfill: the table is read, the condition evaluated and the rows serialised with that
-- role's rights. It reads only the backfills that role asked for, and serves only a role that may
-- remove queued events (the drainer, which sees every event anyway). Plain tables are read without
-- their inheritance children, as the capture triggers see them.
CREATE OR REPLACE FUNCTION pg2kafka.reader_body() RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $reader$
  SELECT $body$
DECLARE
  v_b       record;
  v_kind    "char";
  v_columns text;
  v_after   text;
  v_keys    text;
  v_found   integer;
  v_opts    record;
  v_sent    text[];
  v_redact  text[];
BEGIN
  IF NOT has_table_privilege(session_user, 'pg2kafka.event_batches', 'DELETE') THEN
    RAISE EXCEPTION 'pg2kafka backfill reader: only the drainer (a role that may remove queued '
                    'events) reads backfill chunks'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  SELECT b.relid, b.order_attnums, b.condition INTO v_b FROM pg2kafka.backfills b
   WHERE b.id = backfill AND b.requested_by = current_user;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'pg2kafka backfill reader: backfill % was not asked for by %', backfill,
      current_user
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  SELECT c.relkind INTO v_kind FROM pg_class c WHERE c.oid = v_b.relid;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'the table of backfill % no longer exists', backfill
      USING ERRCODE = 'undefined_table';
  END IF;
  SELECT string_agg(format('t.%I', a.attname), ', ' ORDER BY k.n),
         string_agg(format('$2[%s]::%s', k.n, format_type(a.atttypid, a.atttypmod)), ', '
                    ORDER BY k.n),
         string_agg(format('t.%I::text', a.attname), ', ' ORDER BY k.n),
         count(*)
    INTO v_columns, v_after, v_keys, v_found
    FROM unnest(v_b.order_attnums) WITH ORDINALITY AS k(attnum, n)
    JOIN pg_attribute a ON a.attrelid = v_b.relid AND a.attnum = k.attnum AND NOT a.attisdropped;
  IF v_found < cardinality(v_b.order_attnums) THEN
    RAISE EXCEPTION 'a column of the key that backfill % follows was dropped', backfill
      USING ERRCODE = 'undefined_column';
  END IF;
  -- Capture options: the columns sent and redacted, as capture sends them. A masked table is
  -- never read in chunks (masking happens as batches are queued): pg2kafka.backfill copies it.
  SELECT t.options, t.option_columns INTO v_opts
    FROM pg2kafka.tracked_tables t WHERE t.relid = v_b.relid;
  IF v_opts.options ? 'mask' THEN
    RAISE EXCEPTION 'pg2kafka backfill reader: table % has masked columns, which are not read '
                    'in chunks', v_b.relid::regclass
      USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = 'pg2kafka.backfill copies a masked table into the queue under its lock.';
  ELSIF v_opts.options IS NOT NULL
        AND pg2kafka.tracking_problem(v_b.relid) IS NOT DISTINCT FROM 'restored' THEN
    -- Its options follow columns by attnum, which a restore may have moved.
    RAISE EXCEPTION 'pg2kafka backfill reader: table % was restored from a dump, so its capture '
                    'options may name other columns than they did', v_b.relid::regclass
      USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = 'Run pg2kafka.setup on it first (sql/README.md, "pg_dump and pg_restore").';
  ELSIF v_opts.options IS NOT NULL THEN
    SELECT c.sent, c.redacted INTO v_sent, v_redact
      FROM pg2kafka.capture_columns(
             v_b.relid,
             pg2kafka.options_spec(v_b.relid, v_opts.options, v_opts.option_columns)::jsonb,
             true) c;
  END IF;
  RETURN QUERY EXECUTE
    format('SELECT ARRAY[%s], CASE WHEN $4 THEN pg2kafka.filter_row(row_to_json(t.*), $5, $6) '
           'ELSE row_to_json(t.*) END FROM %s %s t WHERE ', v_keys,
           CASE WHEN v_kind = 'r' THEN 'ONLY' ELSE '' END, v_b.relid::regclass)
    || CASE WHEN after_key IS NULL THEN 'true'
            ELSE format('(%s) > (%s)', v_columns, v_after) END
    || CASE WHEN v_b.condition IS NULL THEN ''
            ELSE E' AND (\n' || v_b.condition || E'\n)' END
    || format(' ORDER BY %s LIMIT $3', v_columns)
    USING backfill, after_key, max_rows, v_sent IS NOT NULL OR cardinality(v_redact) > 0,
          v_sent, v_redact;
END
$body$
$reader$;

-- The calling role's backfill reader, created or brought up to date: a function
-- pg2kafka_backfill.reader_<random>(backfill bigint, after_key text[], max_rows integer) RETURNS
-- TABLE (key text[], data json), SECURITY DEFINER, owned by the caller (the schema
-- pg2kafka_backfill is open to every role for this; see sql/README.md, "Security model"). One per
-- role, whatever the number of its backfills; its name is random so that no other role can take
-- it first. A reader that is current is left alone (no DDL: setup calls this).
CREATE OR REPLACE FUNCTION pg2kafka.backfill_reader() RETURNS regprocedure
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_name    text;
  v_current boolean;
BEGIN
  SELECT p.proname,
         p.prosrc = pg2kafka.reader_body() AND p.prosecdef AND p.provolatile = 's'
           AND p.proconfig = ARRAY['search_path=pg_catalog, pg_temp']
           AND has_function_privilege('public', p.oid, 'EXECUTE')
    INTO v_name, v_current
    FROM pg_proc p
   WHERE p.pronamespace = 'pg2kafka_backfill'::regnamespace
     AND p.proowner = (SELECT r.oid FROM pg_roles r WHERE r.rolname = current_user)
     AND p.proname LIKE 'reader\_%'
     AND p.proargtypes = '20 1009 23'::oidvector
   ORDER BY p.oid LIMIT 1;
  IF v_current THEN
    RETURN format('pg2kafka_backfill.%I(bigint, text[], integer)', v_name)::regprocedure;
  END IF;
  IF v_name IS NULL THEN
    v_name := 'reader_' || replace(gen_random_uuid()::text, '-', '');
  END IF;
  BEGIN
    EXECUTE format('CREATE OR REPLACE FUNCTION pg2kafka_backfill.%I(backfill bigint, '
                   'after_key text[], max_rows integer) RETURNS TABLE (key text[], data json) '
                   'LANGUAGE plpgsql STABLE SECURITY DEFINER '
                   'SET search_path = pg_catalog, pg_temp AS %L', v_name, pg2kafka.reader_body());
  EXCEPTION WHEN insufficient_privilege THEN
    RAISE EXCEPTION 'pg2kafka: % may not create its backfill reader in schema pg2kafka_backfill',
      current_user
      USING ERRCODE = 'insufficient_privilege',
            HINT = 'Grant it CREATE on the schema: GRANT CREATE ON SCHEMA pg2kafka_backfill TO '
                   || quote_ident(current_user) || ' (migration 010 grants it to PUBLIC).';
  END;
  -- Callable by the drainer even where default privileges withhold EXECUTE from PUBLIC; the
  -- reader itself refuses every role but a drainer.
  EXECUTE format('GRANT EXECUTE ON FUNCTION pg2kafka_backfill.%I(bigint, text[], integer) '
                 'TO PUBLIC', v_name);
  RETURN format('pg2kafka_backfill.%I(bigint, text[], integer)', v_name)::regprocedure;
END
$$;

-- What a backfill of `table_name` needs before it is recorded, prepared without the table's
-- lock (setup takes it only to create the triggers and record the backfill): checks that the
-- caller owns the table and the condition (one boolean expression over the table's columns,
-- parsed and planned now with the caller's rights so that mistakes show at once), estimates the
-- rows, and brings the caller's reader up to date. `caller` names the function in messages.
CREATE OR REPLACE FUNCTION pg2kafka.backfill_request(table_name regclass, condition text,
                                                     caller text, OUT reader regprocedure,
                                                     OUT estimate bigint)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
  v_kind  "char";
  v_owner boolean;
  v_plan  json;
BEGIN
  SELECT c.relkind, pg_has_role(c.relowner, 'USAGE') INTO v_kind, v_owner
    FROM pg_class c WHERE c.oid = table_name;
  IF NOT v_owner THEN
    RAISE EXCEPTION '%: must be owner of table %', caller, table_name
      USING ERRCODE = 'insufficient_privilege',
            HINT = 'A backfill sends the table''s rows as SNAPSHOT events, which only its owner '
                   'may queue.';
  END IF;
  IF condition IS NOT NULL THEN
    PERFORM pg2kafka.check_condition(condition, caller);
  END IF;
  BEGIN
    EXECUTE format('EXPLAIN (FORMAT JSON) SELECT FROM %s %s t WHERE ',
                   CASE WHEN v_kind = 'r' THEN 'ONLY' ELSE '' END, table_name)
            || CASE WHEN condition IS NULL THEN 'true'
                    ELSE E'(\n' || condition || E'\n)' END
      INTO v_plan;
  EXCEPTION WHEN syntax_error OR undefined_column OR undefined_function OR undefined_table
                 OR datatype_mismatch OR undefined_object OR ambiguous_column
                 OR ambiguous_function OR invalid_text_representation OR cannot_coerce THEN
    RAISE EXCEPTION '%: the condition is not a boolean expression over the columns of %: %',
      caller, table_name, SQLERRM
      USING ERRCODE = SQLSTATE,
            HINT = 'Name the table''s columns as they are; qualify every other name with its '
                   'schema (the condition is evaluated with search_path = pg_catalog).';
  END;
  estimate := round((v_plan -> 0 -> 'Plan' ->> 'Plan Rows')::numeric);
  reader := pg2kafka.backfill_reader();
END
$$;

DROP FUNCTION IF EXISTS pg2kafka.start_backfill(regclass, smallint[], text, text);
-- Records a backfill of `table_name` following the key `order_attnums`, with what
-- backfill_request prepared, and wakes the drainer. Returns the backfill's id. The registry's
-- row-level security refuses a caller that does not own the table or the reader.
CREATE OR REPLACE FUNCTION pg2kafka.start_backfill(table_name regclass, order_attnums smallint[],
                                                   condition text, reader regprocedure,
                                                   estimate bigint) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
  v_id bigint;
BEGIN
  INSERT INTO pg2kafka.backfills
         (relid, table_schema, table_name, order_attnums, condition, reader, rows_estimated)
  SELECT table_name, n.nspname, c.relname, order_attnums, condition, reader, estimate
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = table_name
  RETURNING id INTO v_id;
  PERFORM pg_notify('pg2kafka', NULL);
  RETURN v_id;
END
$$;

-- pg2kafka.backfill(table [, condition]): sends the current rows of a tracked table again as
-- SNAPSHOT events (all of them, or those for which `condition`, a boolean expression over its
-- columns, is true), in chunks, while its changes stream on; the draining pg2kafka sends them.
-- Returns the backfill's id (a row of pg2kafka.backfills, which shows its progress). The
-- condition is evaluated with the rights of the caller, never with others'. Backfills of a
-- table run one after the other, in the order asked for. Call it as the table's owner.
CREATE OR REPLACE FUNCTION pg2kafka.backfill(table_name regclass, condition text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
  v_key     smallint[];
  v_request record;
  v_tracked record;
  v_mask    boolean;
BEGIN
  IF table_name IS NULL THEN
    RAISE EXCEPTION 'pg2kafka.backfill: table must not be NULL'
      USING ERRCODE = 'invalid_parameter_value';
  ELSIF NOT EXISTS (SELECT FROM pg2kafka.tracked_tables t WHERE t.relid = table_name) THEN
    RAISE EXCEPTION 'pg2kafka.backfill: % is not tracked', table_name
      USING ERRCODE = 'undefined_object',
            HINT = 'pg2kafka.setup(table, key_column) starts tracking it, and sends its rows.';
  END IF;
  v_mask := EXISTS (SELECT FROM pg2kafka.tracked_tables t
                     WHERE t.relid = table_name AND t.options ? 'mask');
  v_key := pg2kafka.backfill_order_key(table_name);
  IF v_key IS NULL AND NOT v_mask THEN
    RAISE EXCEPTION 'pg2kafka.backfill: % has no primary key (nor a unique index on NOT NULL '
                    'columns) to read it by in chunks', table_name
      USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = 'Add a primary key (ALTER TABLE ... ADD PRIMARY KEY (...)), or send the '
                   'whole table at once with pg2kafka.teardown and pg2kafka.setup (which block '
                   'its writers while they copy it).';
  END IF;
  SELECT r.reader, r.estimate INTO v_request
    FROM pg2kafka.backfill_request(table_name, condition, 'pg2kafka.backfill') r;
  IF v_mask THEN
    -- A masked table: its rows are copied into the queue now, under its lock (no write runs
    -- meanwhile, so no change of a row is queued before its older snapshot), masked as they are
    -- queued. Its writers wait for the copy.
    IF current_setting('transaction_isolation') <> 'read committed' THEN
      RAISE EXCEPTION 'pg2kafka.backfill must run in a READ COMMITTED transaction (this one is '
                      '%) for table %, which has masked columns',
        upper(current_setting('transaction_isolation')), table_name
        USING ERRCODE = 'invalid_transaction_state';
    END IF;
    PERFORM pg2kafka.lock_table(table_name, 'SHARE ROW EXCLUSIVE', 'pg2kafka.backfill');
    SELECT t.key_column, pg2kafka.options_spec(t.relid, t.options, t.option_columns)
      INTO v_tracked
      FROM pg2kafka.tracked_tables t WHERE t.relid = table_name;
    PERFORM pg2kafka.copy_snapshot(table_name, v_tracked.key_column, v_tracked.options_spec::jsonb,
                                   condition);
    RAISE NOTICE 'pg2kafka.backfill: % has masked columns, so its rows were copied into the '
                 'queue now, under its lock, rather than read in chunks', table_name;
    RETURN NULL;
  END IF;
  RETURN pg2kafka.start_backfill(table_name, v_key, condition, v_request.reader,
                                 v_request.estimate);
END
$$;

CREATE OR REPLACE FUNCTION pg2kafka.backfill(table_name text, condition text DEFAULT NULL)
RETURNS bigint
LANGUAGE sql AS $$ SELECT pg2kafka.backfill($1::pg_catalog.regclass, $2) $$;

-- pg2kafka.cancel_backfill(table): cancels the table's pending and running backfills; returns
-- how many. Rows already sent stay sent; the drainer stops after the chunk it is sending. Call
-- it as the table's owner.
CREATE OR REPLACE FUNCTION pg2kafka.cancel_backfill(table_name regclass) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
  v_count integer;
BEGIN
  IF table_name IS NULL THEN
    RAISE EXCEPTION 'pg2kafka.cancel_backfill: table must not be NULL'
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF NOT pg_has_role((SELECT c.relowner FROM pg_class c WHERE c.oid = table_name), 'USAGE') THEN
    RAISE EXCEPTION 'pg2kafka.cancel_backfill: must be owner of table %', table_name
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  UPDATE pg2kafka.backfills b SET state = 'cancelled', finished_at = now()
   WHERE b.relid = table_name AND b.state IN ('pending', 'running');
  GET DIAGNOSTICS v_count = ROW_COUNT;
  RETURN v_count;
END
$$;

CREATE OR REPLACE FUNCTION pg2kafka.cancel_backfill(table_name text) RETURNS integer
LANGUAGE sql AS $$ SELECT pg2kafka.cancel_backfill($1::pg_catalog.regclass) $$;
