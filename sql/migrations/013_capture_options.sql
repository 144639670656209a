-- pg2kafka migration 013: per-table capture options (sql/README.md, "Capture options").
--
-- 1. pg2kafka.tracked_tables.options: a table's options as given to setup/configure (normalised:
--    defaults and `capture` left out; NULL when none), readable by every role as the registry
--    is; option_columns: the columns they name, by attnum, which is what is followed (a rename
--    never turns an excluded column into a sent one).
-- 2. The queue (event_batches, and acknowledged_batches alike) gains `options` (the drain-side
--    shape of a batch: NULL for tables without options, so they pay nothing) and `headers`
--    (provenance: NULL unless asked for). Both are written by the capture functions, which run
--    as the writer: INSERT on them is granted to PUBLIC like the other event columns.
-- 3. Two BEFORE INSERT row triggers on the queue, each firing only for the rows that need it
--    (their WHEN clauses cost nothing to rows without options):
--      event_batches_provenance  WHEN (NEW.headers IS NOT NULL): invoker rights; replaces the
--                                headers with the truth (who, from where, which transaction):
--                                no role queues forged provenance;
--      event_batches_mask        WHEN (NEW.options ? 'mask'): SECURITY DEFINER (the schema's
--                                owner, the only role that can read the secret): replaces the
--                                values of the columns the registry says are masked by their
--                                HMAC-SHA-256. Only built-in functions on json/text/bytea run.
-- 4. pg2kafka.mask_secret: the masking secret (one row), readable by the schema's owner only.
-- 5. parked_events gains `headers` (a parked record's provenance headers) and `tombstone` (a
--    parked tombstone). The drainer's documented grant is INSERT on the whole table, which
--    covers them.
--
-- The trigger functions' live definitions are in sql/functions/30_capture.sql (function set 8),
-- applied right after the migrations in the same transaction; until then the stubs below refuse
-- every row they would change (no table has options before function set 8).

SELECT pg_catalog.pg_advisory_xact_lock(1882352481, 1);  -- 1882352481 = 'p2ka', 1 = migrations

DO $do$
BEGIN
  IF to_regprocedure('pg2kafka.event_batches_provenance()') IS NULL THEN
    CREATE FUNCTION pg2kafka.event_batches_provenance() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
    BEGIN
      RAISE EXCEPTION 'pg2kafka: provenance headers need function set 8'
        USING ERRCODE = 'object_not_in_prerequisite_state';
    END
    $$;
  END IF;
  IF to_regprocedure('pg2kafka.event_batches_mask()') IS NULL THEN
    CREATE FUNCTION pg2kafka.event_batches_mask() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
    BEGIN
      RAISE EXCEPTION 'pg2kafka: masking needs function set 8'
        USING ERRCODE = 'object_not_in_prerequisite_state';
    END
    $$;
  END IF;
  IF to_regprocedure('pg2kafka.mask_secret_keys()') IS NULL THEN
    CREATE FUNCTION pg2kafka.mask_secret_keys() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
    BEGIN
      RAISE EXCEPTION 'pg2kafka: setting the masking secret needs function set 8'
        USING ERRCODE = 'object_not_in_prerequisite_state';
    END
    $$;
  END IF;
END
$do$;

-- 1. The registry.
ALTER TABLE pg2kafka.tracked_tables ADD COLUMN IF NOT EXISTS options jsonb;
ALTER TABLE pg2kafka.tracked_tables ADD COLUMN IF NOT EXISTS option_columns jsonb;
-- Table owners may write their rows of the registry directly: whatever they write must keep the
-- shape every reader of the registry (tracking_problems, the drainer's start, installs) relies
-- on, so that one owner's row cannot break them for all.
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_constraint
                  WHERE conrelid = 'pg2kafka.tracked_tables'::regclass
                    AND conname = 'tracked_tables_options_shape') THEN
    ALTER TABLE pg2kafka.tracked_tables ADD CONSTRAINT tracked_tables_options_shape CHECK (
      (options IS NULL OR jsonb_typeof(options) = 'object')
      AND (option_columns IS NULL
           OR jsonb_typeof(option_columns) = 'object'
              AND NOT jsonb_path_exists(option_columns, 'strict $.* ? (@.type() != "array")')
              AND NOT jsonb_path_exists(option_columns,
                                        'strict $.*[*] ? (@.type() != "number")')));
  END IF;
END
$$;

-- 2, 3. The queue: as in 012, wait at most 2 s for its lock (the plugin retries a lock
-- timeout; by hand, run it again). Each step is taken only when missing.
SET LOCAL lock_timeout = '2s';
ALTER TABLE pg2kafka.event_batches ADD COLUMN IF NOT EXISTS options jsonb;
ALTER TABLE pg2kafka.event_batches ADD COLUMN IF NOT EXISTS headers jsonb;
ALTER TABLE pg2kafka.acknowledged_batches ADD COLUMN IF NOT EXISTS options jsonb;
ALTER TABLE pg2kafka.acknowledged_batches ADD COLUMN IF NOT EXISTS headers jsonb;
GRANT INSERT (options, headers) ON pg2kafka.event_batches TO PUBLIC;
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_trigger t
                  WHERE t.tgrelid = 'pg2kafka.event_batches'::regclass
                    AND t.tgname = 'event_batches_provenance') THEN
    CREATE TRIGGER event_batches_provenance BEFORE INSERT ON pg2kafka.event_batches
    FOR EACH ROW WHEN (NEW.headers IS NOT NULL)
    EXECUTE FUNCTION pg2kafka.event_batches_provenance();
  END IF;
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_trigger t
                  WHERE t.tgrelid = 'pg2kafka.event_batches'::regclass
                    AND t.tgname = 'event_batches_mask') THEN
    CREATE TRIGGER event_batches_mask BEFORE INSERT ON pg2kafka.event_batches
    FOR EACH ROW WHEN (NEW.options OPERATOR(pg_catalog.?) 'mask')
    EXECUTE FUNCTION pg2kafka.event_batches_mask();
  END IF;
END
$$;
RESET lock_timeout;

-- 4. The masking secret: 32 random bytes (two random uuids: 244 random bits), and the HMAC
-- key blocks derived from it (RFC 2104: the key padded with zeros to 64 bytes, XOR 0x36 and
-- 0x5c), kept up to date by the trigger mask_secret_keys, so that a mask costs two sha256 calls.
-- The schema's owner rotates it: UPDATE pg2kafka.mask_secret SET secret = DEFAULT.
CREATE TABLE IF NOT EXISTS pg2kafka.mask_secret (
  one        boolean PRIMARY KEY DEFAULT true CHECK (one),
  secret     bytea NOT NULL
             DEFAULT (pg_catalog.uuid_send(pg_catalog.gen_random_uuid())
                      OPERATOR(pg_catalog.||)
                      pg_catalog.uuid_send(pg_catalog.gen_random_uuid())),
  inner_key  bytea NOT NULL,
  outer_key  bytea NOT NULL,
  rotated_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
REVOKE ALL ON pg2kafka.mask_secret FROM PUBLIC;
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_trigger t
                  WHERE t.tgrelid = 'pg2kafka.mask_secret'::regclass
                    AND t.tgname = 'mask_secret_keys') THEN
    CREATE TRIGGER mask_secret_keys BEFORE INSERT OR UPDATE ON pg2kafka.mask_secret
    FOR EACH ROW EXECUTE FUNCTION pg2kafka.mask_secret_keys();
  END IF;
END
$$;
-- The row is created by the function set (30_capture.sql), once its trigger function is live.

-- 5. Parked events.
ALTER TABLE pg2kafka.parked_events ADD COLUMN IF NOT EXISTS headers jsonb;
ALTER TABLE pg2kafka.parked_events ADD COLUMN IF NOT EXISTS tombstone boolean NOT NULL
  DEFAULT false;

INSERT INTO pg2kafka.schema_migrations (version, name) VALUES (13, 'capture_options')
ON CONFLICT (version) DO NOTHING;
