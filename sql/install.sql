-- pg2kafka: installs or upgrades the schema `pg2kafka` of a database, by hand. Run it with psql
-- as the role that is to own the schema (see sql/README.md, "Security"), in one transaction:
--
--   psql --single-transaction -v ON_ERROR_STOP=1 -f sql/install.sql "$DATABASE_URL"
--
-- It applies the migrations the database lacks (sql/migrations/, in order, each recorded in
-- pg2kafka.schema_migrations), then the function set (sql/functions/, in order), which refuses
-- to replace a newer set. Running it again changes nothing. It is what the pg-outbox plugin does
-- with perform_migrations=true. Without psql (a migration tool, say): run the migration files
-- that pg2kafka.schema_migrations does not list, in order, then every file of sql/functions/ in
-- order, all in one transaction.

-- Query results (the files' lock calls) are of no interest; errors, warnings and notices still
-- go to standard error.
\o /dev/null

SELECT pg_catalog.pg_advisory_xact_lock(1882352481, 1);  -- 1882352481 = 'p2ka', 1 = migrations

-- A schema newer than this script knows is left alone.
DO $$
DECLARE
  v_installed integer;
BEGIN
  IF to_regclass('pg2kafka.schema_migrations') IS NOT NULL THEN
    EXECUTE 'SELECT max(version) FROM pg2kafka.schema_migrations' INTO v_installed;
    IF v_installed > 13 THEN
      RAISE EXCEPTION 'pg2kafka: the database has schema migrations up to %, newer than this '
                      'release knows (13)', v_installed
        USING ERRCODE = 'object_not_in_prerequisite_state',
              HINT = 'A newer pg2kafka installed it: use the sql/ of that release or a newer one.';
    END IF;
  END IF;
END
$$;

SELECT to_regclass('pg2kafka.schema_migrations') IS NOT NULL AS p2k_installed \gset
\if :p2k_installed
SELECT coalesce(max(version), 0) AS p2k_version FROM pg2kafka.schema_migrations \gset
\else
\set p2k_version 0
\endif

SELECT :p2k_version < 1 AS p2k_apply \gset
\if :p2k_apply
\ir migrations/001_outbox.sql
\endif

SELECT :p2k_version < 2 AS p2k_apply \gset
\if :p2k_apply
\ir migrations/002_capture.sql
\endif

SELECT :p2k_version < 3 AS p2k_apply \gset
\if :p2k_apply
\ir migrations/003_update_old_row.sql
\endif

SELECT :p2k_version < 4 AS p2k_apply \gset
\if :p2k_apply
\ir migrations/004_event_batches.sql
\endif

SELECT :p2k_version < 5 AS p2k_apply \gset
\if :p2k_apply
\ir migrations/005_small_statements.sql
\endif

SELECT :p2k_version < 6 AS p2k_apply \gset
\if :p2k_apply
\ir migrations/006_bulk_statements.sql
\endif

SELECT :p2k_version < 7 AS p2k_apply \gset
\if :p2k_apply
\ir migrations/007_function_versions.sql
\endif

SELECT :p2k_version < 8 AS p2k_apply \gset
\if :p2k_apply
\ir migrations/008_privileges.sql
\endif

SELECT :p2k_version < 9 AS p2k_apply \gset
\if :p2k_apply
\ir migrations/009_capture_modes.sql
\endif

SELECT :p2k_version < 10 AS p2k_apply \gset
\if :p2k_apply
\ir migrations/010_backfills.sql
\endif

SELECT :p2k_version < 11 AS p2k_apply \gset
\if :p2k_apply
\ir migrations/011_monitoring.sql
\endif

SELECT :p2k_version < 12 AS p2k_apply \gset
\if :p2k_apply
\ir migrations/012_parking.sql
\endif

SELECT :p2k_version < 13 AS p2k_apply \gset
\if :p2k_apply
\ir migrations/013_capture_options.sql
\endif


\ir functions/00_version.sql
\ir functions/10_limits.sql
\ir functions/20_events.sql
\ir functions/30_capture.sql
\ir functions/40_tracking.sql
\ir functions/50_queue_access.sql
\ir functions/60_backfill.sql
\ir functions/70_monitoring.sql
\ir functions/80_queue_admin.sql
\ir functions/90_grants.sql
\o
