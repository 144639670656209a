-- pg2kafka migration 003: UPDATE events keep the old row, and the drainer works out which columns
-- changed.
--
-- Computing the changed columns inside the trigger (jsonb_each over every updated row) was the
-- most expensive part of capturing an UPDATE, paid by the application's statement. The trigger
-- now stores the new row in `data` and the old row in `old_data`, skipping rows whose JSON form
-- did not change; the pg-outbox plugin reduces `data` to the changed columns when it builds the
-- message, which stays exactly what it was: {"uuid", "external_id", "statement": "UPDATE",
-- "data": {<changed columns only>}, "created_at"}. Events queued before this migration (old_data
-- NULL, data already reduced) are delivered as they are.

SELECT pg_catalog.pg_advisory_xact_lock(1882352481, 1);  -- 1882352481 = 'p2ka', 1 = migrations

ALTER TABLE pg2kafka.outbound_event_queue ADD COLUMN IF NOT EXISTS old_data jsonb;
ALTER TABLE pg2kafka.acknowledged_events ADD COLUMN IF NOT EXISTS old_data jsonb;

-- Old and new rows are paired by their position in the transition tables (see migration 002).
CREATE OR REPLACE FUNCTION pg2kafka.capture_update() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_key text := TG_ARGV[0];
BEGIN
  INSERT INTO pg2kafka.outbound_event_queue
         (external_id, table_schema, table_name, statement, data, old_data)
  SELECT n.j ->> v_key, TG_TABLE_SCHEMA, TG_TABLE_NAME, 'UPDATE', n.j, o.j
    FROM (SELECT row_number() OVER () AS rn, to_jsonb(r.*) AS j FROM pg2kafka_old r) o
    JOIN (SELECT row_number() OVER () AS rn, to_jsonb(r.*) AS j FROM pg2kafka_new r) n
      ON n.rn = o.rn
   WHERE o.j <> n.j
   ORDER BY n.rn;
  IF FOUND AND current_setting('pg2kafka.notify', true) = 'on' THEN
    PERFORM pg_notify('pg2kafka', NULL);
  END IF;
  RETURN NULL;
END
$$;

INSERT INTO pg2kafka.schema_migrations (version, name) VALUES (3, 'update_old_row')
ON CONFLICT (version) DO NOTHING;
