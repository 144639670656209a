-- pg2kafka migration 008: the privilege model (sql/README.md, "Security model").
--
-- Until now the capture functions ran as the schema's owner (SECURITY DEFINER), and serialising
-- a row (row_to_json) runs user code: a cast to json of a user-defined type. Any table owner
-- could thus run code as the schema's owner, usually a superuser. From function set 2 on, the
-- capture functions run with the rights of the role whose statement fired them, like any other
-- trigger of the table; that role queues the events itself. So that it can do that and nothing
-- more, the queue is opened to every role under row-level security: a role may queue an event
-- only for a table on which it holds the privilege the event stands for (INSERT, UPDATE, DELETE,
-- TRUNCATE; ownership for SNAPSHOT), and it can neither read, change nor delete queued events.
-- Table owners set up and tear down their own tables, and only those, in the same way.
--
-- The policies' expressions are stored parsed, bound to the functions and operators they name
-- when this file runs: the search_path of the role they check cannot change what they call.

SELECT pg_catalog.pg_advisory_xact_lock(1882352481, 1);  -- 1882352481 = 'p2ka', 1 = migrations

-- Writers of tracked tables run the capture functions, which name objects of this schema.
GRANT USAGE ON SCHEMA pg2kafka TO PUBLIC;

-- The queue. Enabling row-level security takes the queue table's ACCESS EXCLUSIVE lock: as in
-- 006, wait at most 2 s for it (the plugin retries a lock timeout).
SET LOCAL lock_timeout = '2s';

ALTER TABLE pg2kafka.event_batches ENABLE ROW LEVEL SECURITY;
-- Only the columns that describe events: the id, uuid, time and transaction of a queued row are
-- always its defaults, so no role can reorder the queue, reuse another event's id, or hide an
-- event from the drainer's snapshots.
GRANT INSERT (table_schema, table_name, statement, key_column, external_id, events, data,
              old_data, data_bytes)
   ON pg2kafka.event_batches TO PUBLIC;
GRANT USAGE ON SEQUENCE pg2kafka.event_batches_id_seq TO PUBLIC;

-- A role other than the schema's owner queues only well-formed rows, naming a table on which it
-- holds the privilege the event stands for: pg2kafka.may_queue decides (its live definition is
-- in sql/functions/50_queue_access.sql, applied right after the migrations; until then this stub
-- refuses everything, which stops no capture: the capture functions of 002-006 run as the
-- schema's owner, whom row-level security does not restrain). One function call per queued row:
-- a policy or CHECK constraint written out here would be prepared anew with every capture
-- trigger's INSERT, which costs a one-row statement more than the whole check.
CREATE OR REPLACE FUNCTION pg2kafka.may_queue(table_schema text, table_name text,
                                              statement text, events integer, data json,
                                              old_data json) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$ SELECT false $$;

DROP POLICY IF EXISTS queue_insert ON pg2kafka.event_batches;
CREATE POLICY queue_insert ON pg2kafka.event_batches FOR INSERT TO PUBLIC
WITH CHECK (pg2kafka.may_queue(table_schema, table_name, statement, events, data, old_data));

-- Reading and removing delivered events is for the drainer, by grant (the README's role):
-- these policies let a role do what its grants allow, no more.
DROP POLICY IF EXISTS queue_read ON pg2kafka.event_batches;
CREATE POLICY queue_read ON pg2kafka.event_batches FOR SELECT TO PUBLIC USING (true);
DROP POLICY IF EXISTS queue_delete ON pg2kafka.event_batches;
CREATE POLICY queue_delete ON pg2kafka.event_batches FOR DELETE TO PUBLIC USING (true);
RESET lock_timeout;

-- The registry of tracked tables: readable by all (which tables are tracked, with which key
-- column), written by setup and teardown as the table's owner, for its own tables only. A row
-- whose table no longer exists is the schema owner's to remove (setup of a table that got its
-- OID replaces it).
ALTER TABLE pg2kafka.tracked_tables ENABLE ROW LEVEL SECURITY;
GRANT SELECT, INSERT, UPDATE, DELETE ON pg2kafka.tracked_tables TO PUBLIC;
DROP POLICY IF EXISTS tracked_read ON pg2kafka.tracked_tables;
CREATE POLICY tracked_read ON pg2kafka.tracked_tables FOR SELECT TO PUBLIC USING (true);
DROP POLICY IF EXISTS tracked_owner ON pg2kafka.tracked_tables;
CREATE POLICY tracked_owner ON pg2kafka.tracked_tables FOR ALL TO PUBLIC
USING (EXISTS (SELECT FROM pg_catalog.pg_class c
                WHERE c.oid OPERATOR(pg_catalog.=) relid
                  AND pg_catalog.pg_has_role(c.relowner, 'USAGE')))
WITH CHECK (EXISTS (SELECT FROM pg_catalog.pg_class c
                     WHERE c.oid OPERATOR(pg_catalog.=) relid
                       AND pg_catalog.pg_has_role(c.relowner, 'USAGE')));

INSERT INTO pg2kafka.schema_migrations (version, name) VALUES (8, 'privileges')
ON CONFLICT (version) DO NOTHING;
