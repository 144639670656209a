-- pg2kafka migration 007: the function definitions get a version of their own, and tracked
-- tables are recorded so that pg_dump / pg_restore keep them pointing at the right table.
--
-- From this migration on, migrations hold only DDL and data changes. The current definition of
-- every function and view lives in exactly one place, sql/functions/*.sql, applied after the
-- migrations as one versioned set (see sql/README.md, "Layout and versions"). Migrations
-- 002-006 still define the function bodies of their time: they are history, replaced by the
-- function set right after them in the same transaction.
--
-- Applied by the pg-outbox plugin (perform_migrations=true) or by `psql --single-transaction -v
-- ON_ERROR_STOP=1 -f sql/install.sql`, which both skip migrations already recorded in
-- pg2kafka.schema_migrations. Applying it twice changes nothing.

SELECT pg_catalog.pg_advisory_xact_lock(1882352481, 1);  -- 1882352481 = 'p2ka', 1 = migrations

-- One row per version of sql/functions/ ever applied; the installed version is the largest.
-- The function set refuses to replace a newer version by an older one (a standby or a
-- rolled-back binary must not put back old bodies), and the plugin refuses to run against a
-- version newer than the one it ships.
CREATE TABLE IF NOT EXISTS pg2kafka.schema_functions (
  version    integer PRIMARY KEY,
  applied_at timestamptz NOT NULL DEFAULT now()
);
-- Every drainer reads it at start. Versions are no secret (function bodies are public in
-- pg_proc), and a drainer role granted what the README listed before this migration keeps
-- working: the table is readable by every role with USAGE on the schema.
GRANT SELECT ON pg2kafka.schema_functions TO PUBLIC;

-- relid was an oid: pg_dump writes it as a number, which names another table (or none) after a
-- restore into a new database. As regclass it is dumped as the table's qualified name and
-- resolved again on restore; it still follows renames (it is stored as the OID). Binary
-- compatible: no rewrite. tracked_tables is read only by setup, teardown and the drainer at
-- start, never by the capture triggers, so the short ACCESS EXCLUSIVE lock stalls no writer of a
-- tracked table; it waits at most 2 s for a setup in progress (then the migration fails, changes
-- nothing, and the plugin retries it: lock_not_available is transient).
SET LOCAL lock_timeout = '2s';
ALTER TABLE pg2kafka.tracked_tables ALTER COLUMN relid TYPE regclass;
RESET lock_timeout;

INSERT INTO pg2kafka.schema_migrations (version, name) VALUES (7, 'function_versions')
ON CONFLICT (version) DO NOTHING;
