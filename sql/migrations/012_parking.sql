-- pg2kafka migration 012: parking failed events, and queue administration (sql/README.md,
-- "Parked events", "Queue administration").
--
-- 1. Events skipped in place. pg2kafka.event_batches.skipped (and the same column of
--    acknowledged_batches) lists the 0-based indexes of a batch's events that were skipped:
--    the drainer leaves them out, and removes a batch all of whose events are skipped or
--    delivered. NULL, as nearly every batch has it, costs nothing: the capture triggers never
--    write it, and no default, index or trigger is added that would run on their INSERT or on
--    the drainer's DELETE. An operator skips by updating this one column (UPDATE (skipped) is
--    granted to the operator's role only; the policy queue_skip lets a role do what that grant
--    allows), through pg2kafka.skip_event or DELETE FROM pg2kafka.outbound_event_queue. The
--    row trigger audit_skip (BEFORE UPDATE OF skipped) keeps the list growing only, refuses
--    while a pg2kafka drains the queue (it may have read the event already), and writes one
--    pg2kafka.queue_audit row per event skipped, so a direct UPDATE skips nothing unrecorded.
-- 2. pg2kafka.parked_events: an event that cannot be delivered (on_permanent_failure: park), and
--    every later event of the same key held behind it, until an operator retries or skips it.
--    Written by the drainer (its own grants); an operator deletes (skips) or asks for a retry,
--    which the drainer performs. Deleting a row writes a queue_audit row: 'delivered' when the
--    drainer had set delivered_at, which only it may, else 'skip'.
-- 3. pg2kafka.queue_audit: the append-only record of skips, retry requests and deliveries of
--    parked events. Who and when are column defaults that no role but the schema's owner can
--    set (INSERT is granted on the other columns only), and no one else may change or remove
--    a row.
--
-- The trigger functions' live definitions are in sql/functions/80_queue_admin.sql (function set
-- 7), applied right after the migrations in the same transaction; until then the stubs below
-- refuse every change they guard.

SELECT pg_catalog.pg_advisory_xact_lock(1882352481, 1);  -- 1882352481 = 'p2ka', 1 = migrations

-- Stubs, replaced by the function set (see above). Created only when missing: running this
-- file again must not put them back over the live definitions.
DO $do$
BEGIN
  IF to_regprocedure('pg2kafka.event_batches_skip()') IS NULL THEN
    CREATE FUNCTION pg2kafka.event_batches_skip() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
    BEGIN
      RAISE EXCEPTION 'pg2kafka: skipping queued events needs function set 7'
        USING ERRCODE = 'object_not_in_prerequisite_state';
    END
    $$;
  END IF;
  IF to_regprocedure('pg2kafka.parked_events_deleted()') IS NULL THEN
    CREATE FUNCTION pg2kafka.parked_events_deleted() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
    BEGIN
      RAISE EXCEPTION 'pg2kafka: removing parked events needs function set 7'
        USING ERRCODE = 'object_not_in_prerequisite_state';
    END
    $$;
  END IF;
  IF to_regprocedure('pg2kafka.parked_events_retry()') IS NULL THEN
    CREATE FUNCTION pg2kafka.parked_events_retry() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
    BEGIN
      RAISE EXCEPTION 'pg2kafka: retrying parked events needs function set 7'
        USING ERRCODE = 'object_not_in_prerequisite_state';
    END
    $$;
  END IF;
END
$do$;

-- 1. The queue. Adding a column without a default only changes the catalog, but it needs the
-- queue's ACCESS EXCLUSIVE lock for a moment, as do the policy and the trigger: as in 006, 008
-- and 011, wait at most 2 s for it (the plugin retries a lock timeout; by hand, run it again).
-- Each step is taken only when missing, so running this again takes no lock on the queue.
SET LOCAL lock_timeout = '2s';
ALTER TABLE pg2kafka.event_batches ADD COLUMN IF NOT EXISTS skipped integer[];
ALTER TABLE pg2kafka.acknowledged_batches ADD COLUMN IF NOT EXISTS skipped integer[];
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_policy p
                  WHERE p.polrelid = 'pg2kafka.event_batches'::regclass
                    AND p.polname = 'queue_skip') THEN
    -- Only roles granted UPDATE (skipped) can use it: the operator's.
    CREATE POLICY queue_skip ON pg2kafka.event_batches FOR UPDATE TO PUBLIC
    USING (true) WITH CHECK (true);
  END IF;
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_trigger t
                  WHERE t.tgrelid = 'pg2kafka.event_batches'::regclass
                    AND t.tgname = 'audit_skip') THEN
    -- UPDATE OF skipped: fires for nothing else (the capture triggers' INSERT, the drainer's
    -- DELETE, adopt_restored_events' UPDATE of txid).
    CREATE TRIGGER audit_skip BEFORE UPDATE OF skipped ON pg2kafka.event_batches
    FOR EACH ROW EXECUTE FUNCTION pg2kafka.event_batches_skip();
  END IF;
END
$$;
RESET lock_timeout;

-- 2. Parked events.
CREATE TABLE IF NOT EXISTS pg2kafka.parked_events (
  -- Park order: a key's parked events are retried in id order.
  id                 bigserial PRIMARY KEY,
  -- The event's id (the message's uuid).
  uuid               uuid NOT NULL UNIQUE,
  table_schema       text NOT NULL,
  table_name         text NOT NULL,
  -- SNAPSHOT, INSERT, UPDATE, DELETE, TRUNCATE.
  statement          text NOT NULL,
  -- The message key; NULL: a null key.
  external_id        text,
  -- The message exactly as it would be sent (NULL for reason 'malformed').
  message            json,
  -- Reason 'malformed': row_to_json of the event_batches row.
  malformed_row      json,
  -- The event's created_at.
  created_at         timestamptz NOT NULL,
  -- The queue batch it came from (informational; NULL when unknown).
  batch_id           bigint,
  reason             text NOT NULL CHECK (reason IN ('failed', 'held', 'malformed')),
  -- Why: the sink's error, 'held behind event <uuid> of the same key', or what is malformed.
  error              text NOT NULL,
  -- Delivery attempts that failed permanently (0 for held).
  attempts           integer NOT NULL DEFAULT 0,
  parked_at          timestamptz NOT NULL DEFAULT now(),
  last_error_at      timestamptz NOT NULL DEFAULT now(),
  -- Set by a retry request, cleared when the event fails again.
  retry_requested_at timestamptz,
  retry_requested_by text,
  -- Set by the drainer just before it deletes a retried event that was delivered.
  delivered_at       timestamptz
);
CREATE INDEX IF NOT EXISTS parked_events_key_idx
  ON pg2kafka.parked_events (table_schema, table_name, external_id, id);
CREATE INDEX IF NOT EXISTS parked_events_retry_idx
  ON pg2kafka.parked_events (id) WHERE retry_requested_at IS NOT NULL;

-- 3. The audit record.
CREATE TABLE IF NOT EXISTS pg2kafka.queue_audit (
  id               bigserial PRIMARY KEY,
  action           text NOT NULL CHECK (action IN ('skip', 'retry', 'delivered')),
  -- 'queue': an event skipped in place in event_batches; 'parked': a parked event.
  source           text NOT NULL CHECK (source IN ('queue', 'parked')),
  event_uuid       uuid NOT NULL,
  table_schema     text,
  table_name       text,
  statement        text,
  external_id      text,
  -- The event's message data (source 'queue') or message (source 'parked'): a skip can be
  -- undone by hand.
  data             json,
  -- The event's created_at.
  created_at       timestamptz,
  -- How: 'pg2kafka queue skip', 'DELETE FROM pg2kafka.outbound_event_queue', ...
  note             text,
  -- Who and when: defaults only the schema's owner could override.
  at               timestamptz NOT NULL DEFAULT now(),
  by_role          text NOT NULL DEFAULT current_user,
  session_role     text NOT NULL DEFAULT session_user,
  application_name text DEFAULT current_setting('application_name'),
  client_addr      inet DEFAULT inet_client_addr()
);

DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_trigger t
                  WHERE t.tgrelid = 'pg2kafka.parked_events'::regclass
                    AND t.tgname = 'audit_parked_delete') THEN
    CREATE TRIGGER audit_parked_delete AFTER DELETE ON pg2kafka.parked_events
    FOR EACH ROW EXECUTE FUNCTION pg2kafka.parked_events_deleted();
  END IF;
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_trigger t
                  WHERE t.tgrelid = 'pg2kafka.parked_events'::regclass
                    AND t.tgname = 'audit_retry_request') THEN
    -- A retry request, however made (pg2kafka.retry_event or a direct UPDATE), is recorded
    -- with its true requester and time.
    CREATE TRIGGER audit_retry_request BEFORE UPDATE ON pg2kafka.parked_events
    FOR EACH ROW
    WHEN (NEW.retry_requested_at IS DISTINCT FROM OLD.retry_requested_at
          OR NEW.retry_requested_by IS DISTINCT FROM OLD.retry_requested_by)
    EXECUTE FUNCTION pg2kafka.parked_events_retry();
  END IF;
END
$$;

-- No grant to PUBLIC (default privileges may have given some): the drainer's and the
-- operator's are the DBA's to give (sql/README.md, "Security model").
REVOKE ALL ON pg2kafka.parked_events, pg2kafka.queue_audit FROM PUBLIC;
REVOKE ALL ON SEQUENCE pg2kafka.parked_events_id_seq, pg2kafka.queue_audit_id_seq FROM PUBLIC;

INSERT INTO pg2kafka.schema_migrations (version, name) VALUES (12, 'parking')
ON CONFLICT (version) DO NOTHING;
