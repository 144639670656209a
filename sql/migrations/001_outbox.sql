-- pg2kafka migration 001: the schema, the event queue, the archive of acknowledged events and the
-- registry of tracked tables.
--
-- Migrations are numbered, applied in order, each exactly once, and never edited once released:
-- a change is a new file. Each file is self-contained and records itself in
-- pg2kafka.schema_migrations, so it can be applied by the pg-outbox plugin
-- (perform_migrations=true) or by hand with `psql --single-transaction -f sql/001_outbox.sql`.
-- The transaction-level advisory lock below serialises concurrent installers: a second process
-- waits for the first to commit and then finds everything in place (every statement is
-- IF NOT EXISTS or CREATE OR REPLACE). See sql/README.md for the contract of every object.

SELECT pg_catalog.pg_advisory_xact_lock(1882352481, 1);  -- 1882352481 = 'p2ka', 1 = migrations

CREATE SCHEMA IF NOT EXISTS pg2kafka;

CREATE TABLE IF NOT EXISTS pg2kafka.schema_migrations (
  version    integer PRIMARY KEY,
  name       text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
);

-- The event queue. Triggers append; the pg-outbox plugin reads rows in the order their writing
-- transactions became visible (tracked by txid) and deletes (or archives) them once the sink has
-- delivered them.
--
-- The sequence deliberately keeps CACHE 1: ids then grow in the global order in which triggers
-- run, so for one row (whose writers are serialised by the row lock) id order is commit order.
-- A cached sequence would hand each session its own block of ids and break that.
CREATE TABLE IF NOT EXISTS pg2kafka.outbound_event_queue (
  id           bigserial PRIMARY KEY,
  uuid         uuid NOT NULL DEFAULT gen_random_uuid(),
  external_id  text,
  table_name   text NOT NULL,
  statement    text NOT NULL,
  data         jsonb,
  created_at   timestamptz NOT NULL DEFAULT statement_timestamp(),
  table_schema text NOT NULL,
  txid         xid8 NOT NULL DEFAULT pg_current_xact_id()
);
ALTER SEQUENCE pg2kafka.outbound_event_queue_id_seq CACHE 1;

-- With acknowledged=keep the plugin moves delivered events here instead of deleting them; it
-- purges rows older than the retention period. Draining never reads this table.
CREATE TABLE IF NOT EXISTS pg2kafka.acknowledged_events (
  id           bigint PRIMARY KEY,
  uuid         uuid NOT NULL,
  external_id  text,
  table_name   text NOT NULL,
  statement    text NOT NULL,
  data         jsonb,
  created_at   timestamptz NOT NULL,
  table_schema text NOT NULL,
  txid         xid8 NOT NULL,
  acked_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS acknowledged_events_acked_at_idx
  ON pg2kafka.acknowledged_events (acked_at);

-- One row per table that pg2kafka.setup() tracks. relid is the table's OID (stable across
-- renames); table_schema and table_name are the names at setup time, for humans.
CREATE TABLE IF NOT EXISTS pg2kafka.tracked_tables (
  relid         oid PRIMARY KEY,
  table_schema  text NOT NULL,
  table_name    text NOT NULL,
  key_column    text NOT NULL,
  tracked_since timestamptz NOT NULL DEFAULT now()
);

INSERT INTO pg2kafka.schema_migrations (version, name) VALUES (1, 'outbox')
ON CONFLICT (version) DO NOTHING;
