-- Monitoring views (sql/README.md, "Monitoring"): how far behind the queue is, per table, and
-- which sessions drain it. `pg2kafka status` and the metrics endpoint read the same figures.
--
-- Both views run with their owner's (the installer's) rights for reading tables, like every view
-- without security_invoker, and with the caller's rights for every function they call: the
-- visibility rules below, and what pg_stat_activity shows, are therefore the caller's. They call
-- built-in functions only, and name every function, operator and type with its schema
-- (OPERATOR(pg_catalog.=), pg_catalog.count, ...): a view is stored parsed, bound to what its
-- names meant when this file ran, so neither the installer's search_path then nor a reader's
-- now can put user code into them. No user-defined type, cast or function is reached: they read
-- names, counts, sizes and times, never the queued rows' data.

-- pg2kafka.lag: one row per table that is tracked or has events queued (a table torn down or
-- dropped keeps its queued events until they are delivered), in name order:
--   table_schema, table_name  the table's current names (tracked tables), or the names its
--                             queued events carry (the names when they were written: a table
--                             renamed since has a row under each name)
--   tracked                   it is tracked (pg2kafka.tracked_tables, and the table exists)
--   queued_events             events waiting to be delivered (sum of event_batches.events)
--   queued_batches            queue rows holding them
--   queued_bytes              the size of their data as JSON text, uncompressed
--                             (event_batches.data_bytes; for rows queued before migration 006,
--                             the size as stored): what the drainer reads and sends, about. The
--                             disk space the queue takes is pg_total_relation_size(
--                             'pg2kafka.event_batches'), usually less (lz4), plus dead rows
--   oldest_event_at           when the oldest queued event was written (statement_timestamp)
--   oldest_event_age          now() minus that (now(): the caller's transaction start)
--   triggers                  the capture triggers' state; NULL when not tracked:
--     'enabled'     all in place, enabled ALWAYS (as setup leaves them)
--     'not always'  all in place, but some only ENABLEd (not ALWAYS): changes made with
--                   session_replication_role = replica (pg_restore, logical replication,
--                   some migration tools) are not captured
--     'disabled'    some are disabled (DISABLE TRIGGER) or fire only for replication (ENABLE
--                   REPLICA TRIGGER): ordinary writes of those statements are not captured
--     'partial'     some are missing (dropped by hand; for a partitioned table, a partition
--                   created or attached after setup lacks its TRUNCATE trigger)
--     'missing'     none is there: nothing is captured
--   pg2kafka.tracking_problems() says what each means and how to fix it.
-- Cost: one pass over the queue (a sequential scan of its heap, aggregated per table; it reads
-- sizes, never the events' JSON or TOAST), and per tracked table a look at its triggers. Cheap
-- while the queue is short; on a backlog of millions of rows it reads the whole heap (seconds
-- per GB), so poll it no more often than every few seconds, and bound it with
-- statement_timeout (the metrics endpoint does).
-- Who sees which rows: a role that may read the queue (SELECT on pg2kafka.event_batches: the
-- drainer, the installer), or a member of pg_read_all_stats (a monitoring role), sees every
-- row; any other role sees the rows of the tables it owns (membership in the owning role), and
-- nothing else. Counts, sizes and ages only: the events themselves stay readable only as the
-- queue's grants say. security_barrier: a condition the reader adds (WHERE leaky(table_name))
-- is applied only to the rows it may see, never to others.
CREATE OR REPLACE VIEW pg2kafka.lag WITH (security_barrier = true) AS
WITH caller AS (
  SELECT pg_catalog.has_table_privilege('pg2kafka.event_batches'::pg_catalog.regclass, 'SELECT')
         OR pg_catalog.pg_has_role('pg_read_all_stats'::pg_catalog.name, 'USAGE') AS sees_all
),
queued AS (
  SELECT b.table_schema, b.table_name,
         pg_catalog.sum(b.events)::pg_catalog.int8 AS events,
         pg_catalog.count(*) AS batches,
         pg_catalog.sum(COALESCE(b.data_bytes,
                                 COALESCE(pg_catalog.pg_column_size(b.data), 0)
                                 OPERATOR(pg_catalog.+)
                                 COALESCE(pg_catalog.pg_column_size(b.old_data), 0)))::pg_catalog.int8
           AS bytes,
         pg_catalog.min(b.created_at) AS oldest
    FROM pg2kafka.event_batches b
   GROUP BY b.table_schema, b.table_name
),
tracked AS (
  SELECT c.oid AS relid, n.nspname::pg_catalog.text AS table_schema,
         c.relname::pg_catalog.text AS table_name, c.relowner, c.relkind, t.capture
    FROM pg2kafka.tracked_tables t
    JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) t.relid
    JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
)
SELECT COALESCE(tr.table_schema, q.table_schema) AS table_schema,
       COALESCE(tr.table_name, q.table_name) AS table_name,
       tr.relid IS NOT NULL AS tracked,
       COALESCE(q.events, 0) AS queued_events,
       COALESCE(q.batches, 0) AS queued_batches,
       COALESCE(q.bytes, 0) AS queued_bytes,
       q.oldest AS oldest_event_at,
       pg_catalog.now() OPERATOR(pg_catalog.-) q.oldest AS oldest_event_age,
       CASE WHEN tr.relid IS NULL THEN NULL
            WHEN tg.present OPERATOR(pg_catalog.=) 0 THEN 'missing'
            WHEN tg.present OPERATOR(pg_catalog.<) tg.expected THEN 'partial'
            WHEN tg.disabled OPERATOR(pg_catalog.>) 0 THEN 'disabled'
            WHEN tg.not_always OPERATOR(pg_catalog.>) 0 THEN 'not always'
            ELSE 'enabled' END AS triggers
  FROM queued q
  FULL JOIN tracked tr
    ON tr.table_schema OPERATOR(pg_catalog.=) q.table_schema
   AND tr.table_name OPERATOR(pg_catalog.=) q.table_name
  -- The table the queued events name, for its owner (when they are not a tracked table's).
  LEFT JOIN pg_catalog.pg_namespace qn
    ON tr.relid IS NULL AND qn.nspname OPERATOR(pg_catalog.=) q.table_schema
  LEFT JOIN pg_catalog.pg_class qc
    ON qc.relnamespace OPERATOR(pg_catalog.=) qn.oid
   AND qc.relname OPERATOR(pg_catalog.=) q.table_name
  -- Each capture trigger the table's mode calls for, on the table and, for a partitioned table,
  -- on every partition (the row trigger's clones and each one's own TRUNCATE trigger).
  LEFT JOIN LATERAL (
    SELECT pg_catalog.count(*) AS expected, pg_catalog.count(g.oid) AS present,
           pg_catalog.count(g.oid) FILTER (WHERE g.tgenabled OPERATOR(pg_catalog.=) 'D'
                                              OR g.tgenabled OPERATOR(pg_catalog.=) 'R')
             AS disabled,
           pg_catalog.count(g.oid) FILTER (WHERE g.tgenabled OPERATOR(pg_catalog.=) 'O')
             AS not_always
      FROM (SELECT tr.relid AS rel WHERE tr.relkind OPERATOR(pg_catalog.<>) 'p'
            UNION ALL
            SELECT p.relid FROM pg_catalog.pg_partition_tree(tr.relid) p
             WHERE tr.relkind OPERATOR(pg_catalog.=) 'p') r
     CROSS JOIN pg_catalog.unnest(
             CASE WHEN tr.relkind OPERATOR(pg_catalog.=) 'p'
                       OR tr.capture OPERATOR(pg_catalog.=) 'row'
                  THEN ARRAY['pg2kafka_row', 'pg2kafka_truncate']::pg_catalog.name[]
                  ELSE ARRAY['pg2kafka_insert', 'pg2kafka_update', 'pg2kafka_delete',
                             'pg2kafka_truncate']::pg_catalog.name[] END) e(name)
      LEFT JOIN pg_catalog.pg_trigger g
        ON g.tgrelid OPERATOR(pg_catalog.=) r.rel AND g.tgname OPERATOR(pg_catalog.=) e.name
     WHERE tr.relid IS NOT NULL
  ) tg ON true
 WHERE (SELECT c.sees_all FROM caller c)
    OR pg_catalog.pg_has_role(COALESCE(tr.relowner, qc.relowner), 'USAGE')
 ORDER BY 1, 2;

-- pg2kafka.drainers: the sessions of this database that drain its queue or stand by to.
--   pid               the server process (pg_terminate_backend(pid) ends its session)
--   role              'active': it holds the drain lock, pg_advisory_lock(1882352481, 2),
--                     so it is the one instance that reads the queue (at most one row);
--                     'standby': it does not, and waits to take it over: a pg2kafka instance
--                     whose last statement is its try for the lock (a standby tries every
--                     poll_interval with pg_try_advisory_lock, which leaves no waiting entry in
--                     pg_locks, so it is recognised by that statement), or a session waiting
--                     in pg_advisory_lock for it
--   usename, application_name
--   client_addr       where it connects from (NULL for a local socket, or when hidden)
--   backend_start     when its session began. PostgreSQL does not record when an advisory lock
--                     was granted; an instance tries for the lock right after connecting, so for
--                     the active one this is when it started draining, unless it was a standby
--                     that took over later (then it drains since some time after this)
--   state             pg_stat_activity.state ('idle', 'active', ...)
--   details_visible   false when PostgreSQL hides the session's details from the caller
--                     (client_addr, backend_start and state are then NULL): it shows them only
--                     to members of the session's role and of pg_read_all_stats
-- Who sees what: every role sees the active session (pg_locks is readable by all) with its
-- pid, usename and application_name; the other columns, and standbys at all (recognised by
-- their statement), only when their details are visible. Run `pg2kafka status` as the drainer's
-- role (all instances of a pipeline share it), or GRANT pg_read_all_stats TO a monitoring role.
-- Cost: reads pg_locks and pg_stat_activity, both in memory.
CREATE OR REPLACE VIEW pg2kafka.drainers AS
WITH db AS (
  SELECT d.oid FROM pg_catalog.pg_database d
   WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database()
),
drain_lock AS (
  SELECT l.pid, pg_catalog.bool_or(l.granted) AS granted
    FROM pg_catalog.pg_locks l, db
   WHERE l.locktype OPERATOR(pg_catalog.=) 'advisory'
     AND l.database OPERATOR(pg_catalog.=) db.oid
     AND l.classid OPERATOR(pg_catalog.=) '1882352481'::pg_catalog.oid
     AND l.objid OPERATOR(pg_catalog.=) '2'::pg_catalog.oid
     AND l.objsubid OPERATOR(pg_catalog.=) 2
   GROUP BY l.pid
)
SELECT a.pid,
       CASE WHEN l.granted THEN 'active' ELSE 'standby' END AS role,
       a.usename::pg_catalog.text AS usename, a.application_name, a.client_addr,
       a.backend_start, a.state,
       pg_catalog.pg_has_role(a.usesysid, 'USAGE')
       OR pg_catalog.pg_has_role('pg_read_all_stats'::pg_catalog.name, 'USAGE')
         AS details_visible
  FROM pg_catalog.pg_stat_activity a
 CROSS JOIN db
  LEFT JOIN drain_lock l ON l.pid OPERATOR(pg_catalog.=) a.pid
 WHERE l.pid IS NOT NULL
    OR a.datid OPERATOR(pg_catalog.=) db.oid
       AND a.query OPERATOR(pg_catalog.=) 'SELECT pg_try_advisory_lock(1882352481, 2)'
 ORDER BY 2, a.backend_start, a.pid;
