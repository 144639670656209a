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

-- The queue. Adding constraints and enabling row-level security take the queue table's ACCESS
-- EXCLUSIVE lock: as in 006, wait at most 2 s for it (the plugin retries a lock timeout).
SET LOCAL lock_timeout = '2s';

-- Well-formed rows only. Each check reads a row's header or first JSON token, never a whole
-- array (counting elements of a large batch would cost a bulk statement more than 10%); the
-- drainer delivers the elements an array holds whatever `events` says (sql/README.md).
ALTER TABLE pg2kafka.event_batches
  DROP CONSTRAINT IF EXISTS event_batches_well_formed,
  ADD CONSTRAINT event_batches_well_formed CHECK (
    statement IN ('SNAPSHOT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE')
    AND CASE WHEN statement = 'TRUNCATE'
             THEN data IS NULL AND old_data IS NULL AND events = 1
             ELSE data IS NOT NULL AND pg_catalog.json_typeof(data) = 'array'
                  AND (old_data IS NULL
                       OR statement = 'UPDATE' AND pg_catalog.json_typeof(old_data) = 'array')
        END
    AND (data_bytes IS NULL OR data_bytes >= 0)) NOT VALID;
-- NOT VALID: rows queued before are not checked (they were written by the capture functions;
-- validating would hold the queue's lock, and so every tracked write, while reading it whole).
-- Every row queued from now on is.

ALTER TABLE pg2kafka.event_batches ENABLE ROW LEVEL SECURITY;
-- Only the columns that describe events: the id, uuid, time and transaction of a queued row are
-- always its defaults, so no role can reorder the queue, reuse another event's id, or hide an
-- event from the drainer's snapshots.
GRANT INSERT (table_schema, table_name, statement, key_column, external_id, events, data,
              old_data, data_bytes)
   ON pg2kafka.event_batches TO PUBLIC;
GRANT USAGE ON SEQUENCE pg2kafka.event_batches_id_seq TO PUBLIC;

-- A role queues an event for the table it names only with the privilege the event stands for:
-- INSERT and UPDATE on the table or on any of its columns (a column-level grant lets a role
-- write), DELETE and TRUNCATE on the table, ownership (membership in the owning role) for
-- SNAPSHOT. For a partitioned table the privilege on the table or on one of its partitions will
-- do (the capture of a write made straight to a partition names the partitioned table).
DROP POLICY IF EXISTS queue_insert ON pg2kafka.event_batches;
CREATE POLICY queue_insert ON pg2kafka.event_batches FOR INSERT TO PUBLIC
WITH CHECK (
  EXISTS (
    SELECT FROM pg_catalog.pg_class c
     WHERE c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass(
             pg_catalog.format('%I.%I', table_schema, table_name))
       AND CASE
             WHEN statement OPERATOR(pg_catalog.=) 'SNAPSHOT' THEN
               pg_catalog.pg_has_role(c.relowner, 'USAGE')
             WHEN c.relkind OPERATOR(pg_catalog.<>) 'p' THEN
               CASE statement
                 WHEN 'INSERT' THEN pg_catalog.has_any_column_privilege(c.oid, 'INSERT')
                 WHEN 'UPDATE' THEN pg_catalog.has_any_column_privilege(c.oid, 'UPDATE')
                 WHEN 'DELETE' THEN pg_catalog.has_table_privilege(c.oid, 'DELETE')
                 WHEN 'TRUNCATE' THEN pg_catalog.has_table_privilege(c.oid, 'TRUNCATE')
                 ELSE false
               END
             ELSE EXISTS (
               SELECT FROM pg_catalog.pg_partition_tree(c.oid) p
                WHERE CASE statement
                 WHEN 'INSERT' THEN pg_catalog.has_any_column_privilege(p.relid, 'INSERT')
                 WHEN 'UPDATE' THEN pg_catalog.has_any_column_privilege(p.relid, 'UPDATE')
                 WHEN 'DELETE' THEN pg_catalog.has_table_privilege(p.relid, 'DELETE')
                 WHEN 'TRUNCATE' THEN pg_catalog.has_table_privilege(p.relid, 'TRUNCATE')
                 ELSE false
               END)
           END));

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
