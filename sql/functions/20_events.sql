-- Events of a batch, as the pg-outbox plugin sends them, and the per-event views of the queue.
-- The plugin expands batches in C++ (plugins/source-pg-outbox/batch.cpp) by the same rules; a
-- test (BatchRules.SqlAndPluginAgree) checks that both give the same ids, keys and data.

-- pg2kafka.event_uuid(batch_uuid, batch_index): the id of the event at batch_index (0-based) of
-- a batch: the batch's uuid with its last 32 bits XORed with the index (version and variant bits
-- untouched, so it is still a valid version 4 uuid). Index 0 gives the batch's uuid itself.
CREATE OR REPLACE FUNCTION pg2kafka.event_uuid(batch_uuid uuid, batch_index integer) RETURNS uuid
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
  SELECT encode(substr(uuid_send($1), 1, 12)
                || int4send(('x' || right(replace($1::text, '-', ''), 8))::bit(32)::integer # $2),
                'hex')::uuid
$$;

-- pg2kafka.batch_events(...): the events of one batch, as the pg-outbox plugin sends them
-- (data is the message's `data`: whole row, changed columns, or {key_column: key}). For the
-- views below. Keys and changed values are taken from the JSON text as stored (json, not jsonb),
-- as the plugin does: a key is the member's text (1e+20 stays 1e+20, [1,2] stays [1,2]), and a
-- value changed when its text did (1.0 to 1.00 is a change). The data column is jsonb, for
-- querying; the message holds the text as built.
CREATE OR REPLACE FUNCTION pg2kafka.batch_events(
    batch_uuid uuid, statement text, key_column text, external_id text, events integer,
    data json, old_data json)
RETURNS TABLE (batch_index integer, uuid uuid, external_id text, data jsonb)
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT e.i::integer - 1,
         pg2kafka.event_uuid($1, e.i::integer - 1),
         CASE WHEN $3 IS NULL THEN $4
              WHEN $2 = 'DELETE' THEN e.v #>> '{}'
              ELSE e.v ->> $3 END,
         CASE WHEN $2 = 'DELETE' AND $3 IS NOT NULL THEN jsonb_build_object($3, e.v)
              WHEN o.v IS NOT NULL THEN
                (SELECT coalesce(jsonb_object_agg(n.key, n.value), '{}')
                   FROM json_each(e.v) n
                  WHERE (o.v -> n.key)::text IS DISTINCT FROM n.value::text)
              ELSE e.v::jsonb END
    FROM json_array_elements($6) WITH ORDINALITY e(v, i)
    LEFT JOIN json_array_elements($7) WITH ORDINALITY o(v, i) ON o.i = e.i
   WHERE o.v IS NULL OR o.v::text <> e.v::text
  UNION ALL
  SELECT g - 1, pg2kafka.event_uuid($1, g - 1), $4, NULL
    FROM generate_series(1, $5) g
   WHERE $6 IS NULL
$$;

-- One row per queued event, in queue order (batch_id, batch_index), without the events skipped
-- in place (event_batches.skipped). Expanding JSON costs time on a large queue: to count pending
-- events, SELECT sum(events) FROM pg2kafka.event_batches.
-- The last two columns are the original tool's (function set 7), for its scripts:
--   id         batch_id * 2^20 + batch_index: increases in the order the drainer sends the
--              events (batch id order, then index), and stays an event's id while it is queued.
--              It assumes at most 2^20 events per batch (the triggers write at most 10000) and
--              batch ids below 2^43 (8.8e12).
--   processed  always false: delivered events leave the queue.
-- DELETE FROM it skips the events (the INSTEAD OF trigger skip_on_delete, 80_queue_admin.sql).
CREATE OR REPLACE VIEW pg2kafka.outbound_event_queue AS
SELECT b.id AS batch_id, e.batch_index, e.uuid, e.external_id, b.table_name, b.statement,
       e.data, b.created_at, b.table_schema, b.txid,
       b.id OPERATOR(pg_catalog.*) 1048576 OPERATOR(pg_catalog.+) e.batch_index AS id,
       false AS processed
  FROM pg2kafka.event_batches b,
       LATERAL pg2kafka.batch_events(b.uuid, b.statement, b.key_column, b.external_id, b.events,
                                     b.data, b.old_data) e
 WHERE b.skipped IS NULL OR e.batch_index OPERATOR(pg_catalog.<>) ALL (b.skipped);

CREATE OR REPLACE VIEW pg2kafka.acknowledged_events AS
SELECT b.id AS batch_id, e.batch_index, e.uuid, e.external_id, b.table_name, b.statement,
       e.data, b.created_at, b.table_schema, b.txid, b.acked_at
  FROM pg2kafka.acknowledged_batches b,
       LATERAL pg2kafka.batch_events(b.uuid, b.statement, b.key_column, b.external_id, b.events,
                                     b.data, b.old_data) e
 WHERE b.skipped IS NULL OR e.batch_index OPERATOR(pg_catalog.<>) ALL (b.skipped);

-- pg2kafka.adopt_restored_events(): makes events restored from a dump of another PostgreSQL
-- cluster deliverable, and returns how many batches it changed. Such a batch carries a
-- transaction id (txid) of the other cluster; where that is above this cluster's counter, no
-- snapshot shows it as committed, so the drainer would not deliver it before this cluster's
-- counter passes it (and then after newer events of the same keys). The drainer refuses to start
-- while such batches are queued. This gives them the id of the calling transaction: they become
-- visible when it commits, keeping their queue order (ids), uuids and contents. Run it as a role
-- that may UPDATE pg2kafka.event_batches (the schema's owner), while no pg2kafka drains the
-- database (the drainer reads each window from the position it reached; a restarted one reads
-- the queue from its head).
CREATE OR REPLACE FUNCTION pg2kafka.adopt_restored_events() RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_next xid8 := pg_snapshot_xmax(pg_current_snapshot());
  v_rows bigint;
BEGIN
  UPDATE pg2kafka.event_batches b SET txid = pg_current_xact_id() WHERE b.txid >= v_next;
  GET DIAGNOSTICS v_rows = ROW_COUNT;
  RETURN v_rows;
END
$$;
