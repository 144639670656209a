-- pg2kafka function set: the current definition of every function and view of the schema, one
-- place each. Applied as a whole, after the migrations (sql/migrations/), in one transaction:
-- by the pg-outbox plugin when the database holds a lower version, or by hand with
-- `psql --single-transaction -v ON_ERROR_STOP=1 -f sql/install.sql`. Every statement is
-- CREATE OR REPLACE, so applying the set twice changes nothing.
--
-- This file comes first: it takes the installers' advisory lock, refuses to replace a newer set
-- by this one, and records this set's version. Raise the version by one with every change to any
-- file of sql/functions/ (the plugin reads it from the line below at build time).

SELECT pg_catalog.pg_advisory_xact_lock(1882352481, 1);  -- 1882352481 = 'p2ka', 1 = migrations

DO $$
DECLARE
  this_version CONSTANT integer := 8;  -- the function set's version
  installed    integer;
BEGIN
  IF to_regclass('pg2kafka.schema_functions') IS NULL THEN
    RAISE EXCEPTION 'pg2kafka: the function set needs migration 007 (pg2kafka.schema_functions)'
      USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = 'Apply the schema with psql --single-transaction -v ON_ERROR_STOP=1 -f '
                   'sql/install.sql, which runs the missing migrations first.';
  END IF;
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_attribute a
                  WHERE a.attrelid = to_regclass('pg2kafka.event_batches')
                    AND a.attname = 'headers' AND NOT a.attisdropped)
     OR to_regclass('pg2kafka.mask_secret') IS NULL THEN
    RAISE EXCEPTION 'pg2kafka: the function set needs migration 013 (pg2kafka.mask_secret, '
                    'event_batches.options and headers)'
      USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = 'Apply the schema with psql --single-transaction -v ON_ERROR_STOP=1 -f '
                   'sql/install.sql, which runs the missing migrations first.';
  END IF;
  SELECT max(f.version) INTO installed FROM pg2kafka.schema_functions f;
  IF installed > this_version THEN
    RAISE EXCEPTION 'pg2kafka: the database has function set version %, newer than this one (%)',
      installed, this_version
      USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = 'A newer pg2kafka installed it. Install the SQL of that release (or a newer '
                   'one); older function bodies are never put back.';
  END IF;
  INSERT INTO pg2kafka.schema_functions (version) VALUES (this_version)
  ON CONFLICT (version) DO NOTHING;
END
$$;
