-- Queue administration (sql/README.md, "Parked events" and "Queue administration"): skipping
-- queued and parked events, asking for parked events to be retried, and the triggers that
-- record every such change in pg2kafka.queue_audit (migration 012).
--
-- Every function here runs as its caller, who needs the grants of the operator's role (or the
-- drainer's, for what the drainer does): a role without them gets "permission denied" from the
-- statement that needs them. No user code runs: the events are JSON copied as it is, expanded
-- by pg2kafka.batch_events (built-in functions only).
--
-- The audit note. Each queue_audit row carries a note saying how the change was made. The
-- triggers take it from the setting pg2kafka.audit_note when a caller set it (skip_event sets
-- its `note` argument for the length of its statement, as do the retry functions and DELETE on
-- the view), else they name the statement that fired them. It is free text, as the operator
-- could write anyway; who and when are the audit table's defaults, which only the schema's owner
-- can override.

-- pg2kafka.drain_lock_holder(): the server process of another session of this database holding
-- the drain lock, pg_advisory_lock(1882352481, 2), i.e. the pg2kafka instance draining the
-- queue; NULL when there is none. (pg_locks is readable by every role.)
CREATE OR REPLACE FUNCTION pg2kafka.drain_lock_holder() RETURNS integer
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
  SELECT l.pid
    FROM pg_locks l
   WHERE l.locktype = 'advisory'
     AND l.classid = '1882352481'::oid
     AND l.objid = '2'::oid
     AND l.objsubid = 2
     AND l.granted
     AND l.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())
     AND l.pid <> pg_backend_pid()
   LIMIT 1
$$;

-- pg2kafka.audit_note(fallback): the note for a queue_audit row (see above).
CREATE OR REPLACE FUNCTION pg2kafka.audit_note(fallback text) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT coalesce(nullif(current_setting('pg2kafka.audit_note', true), ''), $1)
$$;

-- Trigger audit_skip (BEFORE UPDATE OF skipped ON pg2kafka.event_batches, FOR EACH ROW): an
-- event skipped in place. `skipped` may only grow (NULL to an array is growing), each new index
-- must be an event of the batch, and nothing is skipped while another session drains the queue:
-- the drainer may have read the event already, and would deliver it all the same. Writes one
-- queue_audit row per event skipped, with its message data, so the skip can be undone by hand.
-- Normalises the list (sorted, without duplicates). Fires on nothing but an UPDATE naming
-- `skipped`: never on the capture triggers' INSERT nor on the drainer's DELETE.
CREATE OR REPLACE FUNCTION pg2kafka.event_batches_skip() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_old      integer[] := coalesce(OLD.skipped, '{}');
  v_new      integer[];
  v_added    integer[];
  v_holder   integer;
  v_index    integer;
  v_data     json;
  v_old_data json;
  v_rows     integer;
BEGIN
  IF TG_RELID <> 'pg2kafka.event_batches'::regclass OR TG_WHEN <> 'BEFORE' OR TG_LEVEL <> 'ROW'
     OR TG_OP <> 'UPDATE' THEN
    RAISE EXCEPTION 'pg2kafka.event_batches_skip() is the trigger audit_skip of '
                    'pg2kafka.event_batches only'
      USING ERRCODE = 'prohibited_sql_statement_attempted';
  END IF;
  IF array_position(NEW.skipped, NULL) IS NOT NULL THEN
    RAISE EXCEPTION 'pg2kafka: event_batches.skipped holds event indexes, not NULL (batch %)',
      OLD.id USING ERRCODE = 'not_null_violation';
  END IF;
  SELECT array_agg(DISTINCT i ORDER BY i) INTO v_new FROM unnest(NEW.skipped) i;
  IF NOT coalesce(v_new, '{}') @> v_old THEN
    RAISE EXCEPTION 'pg2kafka: a skipped event cannot be put back in the queue (batch %: '
                    'skipped % would become %)', OLD.id, OLD.skipped, NEW.skipped
      USING ERRCODE = 'check_violation',
            HINT = 'pg2kafka.queue_audit holds the skipped event''s data: queue it again by '
                   'writing the row again (or the change it stood for).';
  END IF;
  SELECT array_agg(i ORDER BY i) INTO v_added FROM unnest(v_new) i WHERE i <> ALL (v_old);
  IF v_added IS NULL THEN
    NEW.skipped := OLD.skipped;
    RETURN NEW;
  END IF;
  -- Taken, not only looked at: held until this transaction ends, the drain lock cannot be taken
  -- by an instance that would read the batch before the skip commits (the lock spaces of session
  -- and transaction advisory locks are one).
  IF NOT pg_try_advisory_xact_lock(1882352481, 2) THEN
    v_holder := pg2kafka.drain_lock_holder();
    RAISE EXCEPTION 'pg2kafka: cannot skip queued events while pg2kafka drains the queue '
                    '(process % holds the drain lock, and may have read them already)', v_holder
      USING ERRCODE = 'lock_not_available',
            HINT = 'Stop pg2kafka first, or let the event fail (on_permanent_failure: park) and '
                   'skip it once it is parked: pg2kafka queue skip <uuid>.';
  END IF;
  -- Each skipped event by the rules of batch_events, applied to its own elements only (one
  -- parse of the batch's JSON, two for UPDATE): expanding the whole batch for each would make
  -- deleting all events of a large batch through the view (one trigger call per event) cost the
  -- square of its size.
  FOREACH v_index IN ARRAY v_added LOOP
    v_data := CASE WHEN v_index >= 0 THEN NEW.data -> v_index END;
    v_old_data := CASE WHEN v_index >= 0 THEN NEW.old_data -> v_index END;
    v_rows := 0;
    IF (CASE WHEN NEW.data IS NULL THEN v_index >= 0 AND v_index < NEW.events
             ELSE v_data IS NOT NULL END) THEN
      INSERT INTO pg2kafka.queue_audit (action, source, event_uuid, table_schema, table_name,
                                        statement, external_id, data, created_at, note)
      SELECT 'skip', 'queue', pg2kafka.event_uuid(NEW.uuid, v_index), NEW.table_schema,
             NEW.table_name, NEW.statement, e.external_id, e.data::json, NEW.created_at,
             pg2kafka.audit_note('UPDATE pg2kafka.event_batches SET skipped')
        FROM pg2kafka.batch_events(NEW.uuid, NEW.statement, NEW.key_column, NEW.external_id, 1,
                                   CASE WHEN NEW.data IS NOT NULL THEN json_build_array(v_data)
                                   END,
                                   CASE WHEN v_old_data IS NOT NULL
                                        THEN json_build_array(v_old_data) END) e;
      GET DIAGNOSTICS v_rows = ROW_COUNT;
    END IF;
    IF v_rows = 0 THEN
      RAISE EXCEPTION 'pg2kafka: batch % has no event at index %', OLD.id, v_index
        USING ERRCODE = 'check_violation',
              HINT = 'SELECT batch_index FROM pg2kafka.outbound_event_queue WHERE batch_id = '
                     || OLD.id || ' lists its events (an UPDATE of a row that did not change '
                     'is no event).';
    END IF;
  END LOOP;
  NEW.skipped := v_new;
  RETURN NEW;
END
$$;

-- Trigger audit_parked_delete (AFTER DELETE ON pg2kafka.parked_events, FOR EACH ROW): a
-- parked event leaves the table, skipped ('skip') or, when the drainer set delivered_at just
-- before (a grant only the drainer has), delivered ('delivered'). The audit row keeps its
-- message (or the malformed queue row).
CREATE OR REPLACE FUNCTION pg2kafka.parked_events_deleted() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF TG_RELID <> 'pg2kafka.parked_events'::regclass OR TG_WHEN <> 'AFTER' OR TG_LEVEL <> 'ROW'
     OR TG_OP <> 'DELETE' THEN
    RAISE EXCEPTION 'pg2kafka.parked_events_deleted() is the trigger audit_parked_delete '
                    'of pg2kafka.parked_events only'
      USING ERRCODE = 'prohibited_sql_statement_attempted';
  END IF;
  INSERT INTO pg2kafka.queue_audit (action, source, event_uuid, table_schema, table_name,
                                    statement, external_id, data, created_at, note)
  VALUES (CASE WHEN OLD.delivered_at IS NULL THEN 'skip' ELSE 'delivered' END, 'parked',
          OLD.uuid, OLD.table_schema, OLD.table_name, OLD.statement, OLD.external_id,
          coalesce(OLD.message, OLD.malformed_row), OLD.created_at,
          pg2kafka.audit_note('DELETE FROM pg2kafka.parked_events'));
  RETURN NULL;
END
$$;

-- Trigger audit_retry_request (BEFORE UPDATE ON pg2kafka.parked_events, FOR EACH ROW, when
-- retry_requested_at or retry_requested_by changes): a retry request, however made, records its
-- true requester and time (current_user, now()) and one queue_audit row ('retry'); asking again
-- changes nothing. A malformed event cannot be retried (it has no message). Clearing the request
-- (the drainer, when the event fails again) clears both columns.
CREATE OR REPLACE FUNCTION pg2kafka.parked_events_retry() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF TG_RELID <> 'pg2kafka.parked_events'::regclass OR TG_WHEN <> 'BEFORE' OR TG_LEVEL <> 'ROW'
     OR TG_OP <> 'UPDATE' THEN
    RAISE EXCEPTION 'pg2kafka.parked_events_retry() is the trigger audit_retry_request of '
                    'pg2kafka.parked_events only'
      USING ERRCODE = 'prohibited_sql_statement_attempted';
  END IF;
  IF NEW.retry_requested_at IS NULL THEN
    NEW.retry_requested_by := NULL;
  ELSIF OLD.retry_requested_at IS NOT NULL THEN
    NEW.retry_requested_at := OLD.retry_requested_at;
    NEW.retry_requested_by := OLD.retry_requested_by;
  ELSIF NEW.reason = 'malformed' THEN
    RAISE EXCEPTION 'pg2kafka: event % cannot be retried: it is malformed (%)', NEW.uuid,
      NEW.error
      USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = 'It has no message to send. Fix the row (malformed_row) and queue it again, '
                   'or skip it: pg2kafka queue skip <uuid>.';
  ELSE
    NEW.retry_requested_at := now();
    NEW.retry_requested_by := current_user;
    INSERT INTO pg2kafka.queue_audit (action, source, event_uuid, table_schema, table_name,
                                      statement, external_id, data, created_at, note)
    VALUES ('retry', 'parked', NEW.uuid, NEW.table_schema, NEW.table_name, NEW.statement,
            NEW.external_id, NEW.message, NEW.created_at,
            pg2kafka.audit_note('UPDATE pg2kafka.parked_events SET retry_requested_at'));
  END IF;
  RETURN NEW;
END
$$;

-- Trigger skip_on_delete (INSTEAD OF DELETE ON pg2kafka.outbound_event_queue, FOR EACH ROW):
-- the original tool's `DELETE FROM pg2kafka.outbound_event_queue WHERE ...` skips those events
-- in place (the other events of their batches keep their ids and uuids); the row count is the
-- number of events skipped. Refused while another session drains the queue (see
-- event_batches_skip). Needs the operator's grants: DELETE on the view, UPDATE (skipped) on
-- event_batches, INSERT on queue_audit.
CREATE OR REPLACE FUNCTION pg2kafka.outbound_event_queue_delete() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_note text := current_setting('pg2kafka.audit_note', true);
  v_rows integer;
BEGIN
  IF TG_RELID <> 'pg2kafka.outbound_event_queue'::regclass OR TG_WHEN <> 'INSTEAD OF'
     OR TG_OP <> 'DELETE' THEN
    RAISE EXCEPTION 'pg2kafka.outbound_event_queue_delete() is the trigger skip_on_delete of '
                    'pg2kafka.outbound_event_queue only'
      USING ERRCODE = 'prohibited_sql_statement_attempted';
  END IF;
  PERFORM set_config('pg2kafka.audit_note',
                     pg2kafka.audit_note('DELETE FROM pg2kafka.outbound_event_queue'), true);
  UPDATE pg2kafka.event_batches b
     SET skipped = coalesce(b.skipped, '{}') || OLD.batch_index
   WHERE b.id = OLD.batch_id;
  GET DIAGNOSTICS v_rows = ROW_COUNT;
  PERFORM set_config('pg2kafka.audit_note', coalesce(v_note, ''), true);
  IF v_rows = 0 THEN
    RETURN NULL;  -- delivered meanwhile
  END IF;
  RETURN OLD;
END
$$;

DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_trigger t
                  WHERE t.tgrelid = 'pg2kafka.outbound_event_queue'::regclass
                    AND t.tgname = 'skip_on_delete') THEN
    CREATE TRIGGER skip_on_delete INSTEAD OF DELETE ON pg2kafka.outbound_event_queue
    FOR EACH ROW EXECUTE FUNCTION pg2kafka.outbound_event_queue_delete();
  END IF;
END
$$;

-- pg2kafka.skip_event(event_id, note): skips one event, parked or queued, and returns where it
-- was ('parked' or 'queued'). A parked event is deleted from parked_events; a queued one is
-- skipped in place (event_batches.skipped; refused while another session drains the queue). The
-- audit row carries `note`. An event that is neither (delivered, skipped already, or never
-- there): no_data_found.
CREATE OR REPLACE FUNCTION pg2kafka.skip_event(event_id uuid,
                                               note text DEFAULT 'pg2kafka queue skip')
RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_prev  text := current_setting('pg2kafka.audit_note', true);
  v_batch bigint;
  v_index integer;
  v_rows  integer;
BEGIN
  PERFORM set_config('pg2kafka.audit_note', coalesce(note, ''), true);
  DELETE FROM pg2kafka.parked_events p WHERE p.uuid = event_id;
  GET DIAGNOSTICS v_rows = ROW_COUNT;
  IF v_rows > 0 THEN
    PERFORM set_config('pg2kafka.audit_note', coalesce(v_prev, ''), true);
    RETURN 'parked';
  END IF;
  -- The first 96 bits of an event's uuid are its batch's; the last 32 are the batch's XORed
  -- with the event's index (pg2kafka.event_uuid). A sequential read of the queue's uuids (no
  -- JSON, no TOAST), then the batch's events.
  FOR v_batch, v_index IN
    SELECT b.id,
           ('x' || right(replace(b.uuid::text, '-', ''), 8))::bit(32)::integer
           # ('x' || right(replace(event_id::text, '-', ''), 8))::bit(32)::integer
      FROM pg2kafka.event_batches b
     WHERE substr(uuid_send(b.uuid), 1, 12) = substr(uuid_send(event_id), 1, 12)
     ORDER BY b.id
  LOOP
    IF EXISTS (SELECT FROM pg2kafka.event_batches b,
                      pg2kafka.batch_events(b.uuid, b.statement, b.key_column, b.external_id,
                                            b.events, b.data, b.old_data) e
                WHERE b.id = v_batch AND e.batch_index = v_index
                  AND (b.skipped IS NULL OR v_index <> ALL (b.skipped))) THEN
      UPDATE pg2kafka.event_batches b
         SET skipped = coalesce(b.skipped, '{}') || v_index
       WHERE b.id = v_batch;
      GET DIAGNOSTICS v_rows = ROW_COUNT;
      IF v_rows > 0 THEN
        PERFORM set_config('pg2kafka.audit_note', coalesce(v_prev, ''), true);
        RETURN 'queued';
      END IF;
    END IF;
  END LOOP;
  RAISE EXCEPTION 'pg2kafka: no event % is queued or parked', event_id
    USING ERRCODE = 'no_data_found',
          DETAIL = 'It was delivered or skipped already (pg2kafka.queue_audit records skips), '
                   'or the id is wrong.',
          HINT = 'pg2kafka queue list shows the queued and parked events.';
END
$$;

-- pg2kafka.retry_parked(table_schema, table_name, all_tables, first_id): asks for the parked
-- events of one key from first_id on, of a table, or of the database to be retried, and
-- returns how many are now asked for (those asked for earlier included). Malformed events are
-- left out: they cannot be retried, and hold nothing back. Internal: the work of retry_event,
-- retry_table and retry_all.
CREATE OR REPLACE FUNCTION pg2kafka.retry_parked(first_id bigint, table_schema text,
                                                 table_name text, note text) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_prev    text := current_setting('pg2kafka.audit_note', true);
  v_key     pg2kafka.parked_events;
  v_count   integer;
BEGIN
  IF first_id IS NOT NULL THEN
    SELECT * INTO v_key FROM pg2kafka.parked_events p WHERE p.id = first_id;
  END IF;
  PERFORM set_config('pg2kafka.audit_note', pg2kafka.audit_note(note), true);
  WITH chosen AS (
    SELECT p.id, p.reason, p.retry_requested_at
      FROM pg2kafka.parked_events p
     WHERE CASE
             WHEN first_id IS NOT NULL THEN
               p.table_schema = v_key.table_schema AND p.table_name = v_key.table_name
               AND p.external_id IS NOT DISTINCT FROM v_key.external_id AND p.id >= first_id
             WHEN retry_parked.table_name IS NOT NULL THEN
               p.table_schema = retry_parked.table_schema
               AND p.table_name = retry_parked.table_name
             ELSE true
           END
       AND p.reason <> 'malformed'
  ), requested AS (
    UPDATE pg2kafka.parked_events p
       SET retry_requested_at = now(), retry_requested_by = current_user
      FROM chosen c
     WHERE p.id = c.id AND c.retry_requested_at IS NULL
  )
  SELECT count(*) INTO v_count FROM chosen c;
  PERFORM set_config('pg2kafka.audit_note', coalesce(v_prev, ''), true);
  RETURN v_count;
END
$$;

-- pg2kafka.retry_event(event_id): asks for the parked event and every later parked event of its
-- key (table and external_id; a null key is a key of its own) to be retried by the draining
-- pg2kafka, in park order; returns how many are asked for. Refused when an earlier parked event
-- of the key is not asked for (the key's events are delivered in order), when the event is
-- malformed, or not parked.
CREATE OR REPLACE FUNCTION pg2kafka.retry_event(event_id uuid) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_event   pg2kafka.parked_events;
  v_earlier uuid;
BEGIN
  SELECT * INTO v_event FROM pg2kafka.parked_events p WHERE p.uuid = event_id;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'pg2kafka: event % is not parked', event_id
      USING ERRCODE = 'no_data_found',
            DETAIL = 'Only parked events can be retried: it is queued, delivered, skipped, or '
                     'the id is wrong.',
            HINT = 'pg2kafka queue list shows the parked events.';
  END IF;
  IF v_event.reason = 'malformed' THEN
    RAISE EXCEPTION 'pg2kafka: event % cannot be retried: it is malformed (%)', event_id,
      v_event.error
      USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = 'It has no message to send. Fix the row (malformed_row) and queue it again, '
                   'or skip it: pg2kafka queue skip ' || event_id || '.';
  END IF;
  SELECT p.uuid INTO v_earlier
    FROM pg2kafka.parked_events p
   WHERE p.table_schema = v_event.table_schema AND p.table_name = v_event.table_name
     AND p.external_id IS NOT DISTINCT FROM v_event.external_id
     AND p.id < v_event.id AND p.retry_requested_at IS NULL AND p.reason <> 'malformed'
   ORDER BY p.id
   LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'pg2kafka: event % is held behind event % of the same key, which is not to '
                    'be retried', event_id, v_earlier
      USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = 'The events of a key are delivered in order: retry or skip event ' ||
                   v_earlier || ' first (retrying it retries this one too).';
  END IF;
  RETURN pg2kafka.retry_parked(v_event.id, NULL, NULL, 'SELECT pg2kafka.retry_event(...)');
END
$$;

-- pg2kafka.retry_table(table_schema, table_name): asks for every parked event of a table (as
-- the events name it) to be retried; returns how many are asked for. Malformed events stay parked
-- (they cannot be retried, and hold nothing back).
CREATE OR REPLACE FUNCTION pg2kafka.retry_table(table_schema text, table_name text)
RETURNS integer
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
  SELECT pg2kafka.retry_parked(NULL, coalesce($1, ''), coalesce($2, ''),
                               'SELECT pg2kafka.retry_table(...)')
$$;

-- pg2kafka.retry_all(): the same for every parked event of the database.
CREATE OR REPLACE FUNCTION pg2kafka.retry_all() RETURNS integer
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
  SELECT pg2kafka.retry_parked(NULL, NULL, NULL, 'SELECT pg2kafka.retry_all()')
$$;
