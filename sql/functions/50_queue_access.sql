-- Who may queue what (the row-level security policy queue_insert of pg2kafka.event_batches,
-- migration 008, calls this for every row that a role other than the schema's owner queues).

-- pg2kafka.may_queue(...): true when the calling role may queue this row: it is well-formed, and
-- it names an existing table on which the role holds the privilege its statement stands for:
--   INSERT, UPDATE    on the table or on any of its columns (a column-level grant lets a role
--                     write, and its writes are captured);
--   DELETE, TRUNCATE  on the table;
--   SNAPSHOT          ownership of the table (membership in the owning role): setup;
-- for a partitioned table, the privilege on the table or on one of its partitions (the capture
-- of a write made straight to a partition names the partitioned table).
-- Well-formed: a known statement; TRUNCATE has no data and one event; the others a JSON array of
-- data, and only UPDATE an array of old rows. Each check reads a row's first JSON token, never a
-- whole array: counting the elements of a large batch would cost a bulk statement more than 10%,
-- so the drainer delivers the elements an array holds whatever `events` says (sql/README.md).
-- Runs as the calling role, the one it judges. Every function, operator and type it names is
-- qualified with pg_catalog, so that the caller's search_path cannot redirect them; written so
-- rather than with SET search_path, which costs a third of the call (it runs for every queued
-- row). Keep it so when changing it (Security.QueueAccessCannotBeRedirectedBySearchPath).
CREATE OR REPLACE FUNCTION pg2kafka.may_queue(table_schema text, table_name text,
                                              statement text, events integer, data json,
                                              old_data json) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_table   pg_catalog.oid;
  v_allowed pg_catalog.bool;
BEGIN
  IF statement OPERATOR(pg_catalog.=) 'TRUNCATE' THEN
    IF data IS NOT NULL OR old_data IS NOT NULL OR events OPERATOR(pg_catalog.<>) 1 THEN
      RETURN false;
    END IF;
  ELSIF NOT (statement OPERATOR(pg_catalog.=) 'INSERT' OR statement OPERATOR(pg_catalog.=) 'UPDATE'
             OR statement OPERATOR(pg_catalog.=) 'DELETE'
             OR statement OPERATOR(pg_catalog.=) 'SNAPSHOT')
        OR data IS NULL
        OR pg_catalog.json_typeof(data) OPERATOR(pg_catalog.<>) 'array'
        OR old_data IS NOT NULL
           AND (statement OPERATOR(pg_catalog.<>) 'UPDATE'
                OR pg_catalog.json_typeof(old_data) OPERATOR(pg_catalog.<>) 'array') THEN
    RETURN false;
  END IF;
  v_table := pg_catalog.to_regclass(pg_catalog.format('%I.%I', table_schema, table_name));
  IF v_table IS NULL THEN
    RETURN false;
  ELSIF statement OPERATOR(pg_catalog.=) 'SNAPSHOT' THEN
    RETURN pg_catalog.pg_has_role((SELECT c.relowner FROM pg_catalog.pg_class c
                                    WHERE c.oid OPERATOR(pg_catalog.=) v_table), 'USAGE');
  END IF;
  -- Expressions only on the common path: no query to run (a query costs more than all this).
  v_allowed := CASE
                 WHEN statement OPERATOR(pg_catalog.=) 'INSERT' THEN
                   pg_catalog.has_any_column_privilege(v_table, 'INSERT')
                 WHEN statement OPERATOR(pg_catalog.=) 'UPDATE' THEN
                   pg_catalog.has_any_column_privilege(v_table, 'UPDATE')
                 WHEN statement OPERATOR(pg_catalog.=) 'DELETE' THEN
                   pg_catalog.has_table_privilege(v_table, 'DELETE')
                 ELSE pg_catalog.has_table_privilege(v_table, 'TRUNCATE')
               END;
  IF v_allowed THEN
    RETURN true;
  END IF;
  RETURN EXISTS (
    SELECT FROM pg_catalog.pg_partition_tree(v_table) p
     WHERE p.relid OPERATOR(pg_catalog.<>) v_table
       AND CASE
             WHEN statement OPERATOR(pg_catalog.=) 'INSERT' THEN
               pg_catalog.has_any_column_privilege(p.relid, 'INSERT')
             WHEN statement OPERATOR(pg_catalog.=) 'UPDATE' THEN
               pg_catalog.has_any_column_privilege(p.relid, 'UPDATE')
             WHEN statement OPERATOR(pg_catalog.=) 'DELETE' THEN
               pg_catalog.has_table_privilege(p.relid, 'DELETE')
             ELSE pg_catalog.has_table_privilege(p.relid, 'TRUNCATE')
           END);
END
$$;
