-- Who may call what (sql/README.md, "Security model"). Granted explicitly, so that a database
-- whose default privileges withhold EXECUTE from PUBLIC still captures every write. None of these
-- functions runs with rights other than its caller's.

-- Called, directly or through the capture triggers, by every role that writes to a tracked
-- table (the limits, the partition lookup, may_queue by the queue's policy), by table owners
-- (setup, configure, teardown, backfill, cancel_backfill and their helpers), and by the drainer
-- (tracking_problems at start).
GRANT EXECUTE ON FUNCTION
  pg2kafka.batch_max_rows(), pg2kafka.batch_max_bytes(), pg2kafka.delete_batch_max_keys(),
  pg2kafka.delete_inline_max_rows(),
  pg2kafka.event_uuid(uuid, integer),
  pg2kafka.batch_events(uuid, text, text, text, integer, json, json),
  pg2kafka.capture_insert(), pg2kafka.capture_update(), pg2kafka.capture_delete(),
  pg2kafka.capture_truncate(), pg2kafka.capture_row(),
  pg2kafka.capture_changes(), pg2kafka.capture_row_options(),
  pg2kafka.capture_columns(oid, jsonb, boolean), pg2kafka.filter_row(json, text[], text[]),
  pg2kafka.key_values(json, text[]), pg2kafka.cut_bytes(text, integer),
  pg2kafka.tracked_partition_root(oid, oid, text, smallint),
  pg2kafka.trigger_arguments(bytea, smallint),
  pg2kafka.mode_triggers(boolean),
  pg2kafka.create_triggers(regclass, text, smallint, text, text),
  pg2kafka.drop_triggers(regclass),
  pg2kafka.tracking_problem(regclass), pg2kafka.tracking_problems(),
  pg2kafka.capture_mode(regclass, jsonb, text, text),
  pg2kafka.check_options(regclass, jsonb, text, text),
  pg2kafka.option_columns(regclass, jsonb), pg2kafka.current_options(regclass),
  pg2kafka.options_spec(regclass, jsonb, jsonb),
  pg2kafka.copy_snapshot(regclass, text, jsonb, text),
  pg2kafka.setup(regclass, text, jsonb), pg2kafka.setup(text, text, jsonb),
  pg2kafka.configure(regclass, jsonb), pg2kafka.configure(text, jsonb),
  pg2kafka.teardown(regclass), pg2kafka.teardown(text),
  pg2kafka.may_queue(text, text, text, integer, json, json),
  pg2kafka.lock_table(regclass, text, text),
  pg2kafka.backfill_order_key(regclass), pg2kafka.check_condition(text, text),
  pg2kafka.reader_body(), pg2kafka.backfill_reader(),
  pg2kafka.backfill_request(regclass, text, text),
  pg2kafka.start_backfill(regclass, smallint[], text, regprocedure, bigint),
  pg2kafka.backfill(regclass, text), pg2kafka.backfill(text, text),
  pg2kafka.cancel_backfill(regclass), pg2kafka.cancel_backfill(text)
  TO PUBLIC;

-- The schema owner's repair after a restore (it needs UPDATE on the queue, which no one else
-- holds; withheld anyway so that its existence promises nothing to others).
REVOKE EXECUTE ON FUNCTION pg2kafka.adopt_restored_events() FROM PUBLIC;

-- The monitoring views (70_monitoring.sql) are for every role: each filters what it shows by the
-- reader's own rights (pg2kafka.lag: its own tables, or all with the drainer's grant or
-- pg_read_all_stats; pg2kafka.drainers: what pg_locks and pg_stat_activity show it anyway).
-- Revoked first: default privileges may have given PUBLIC more on new relations.
REVOKE ALL ON pg2kafka.lag, pg2kafka.drainers FROM PUBLIC;
GRANT SELECT ON pg2kafka.lag, pg2kafka.drainers TO PUBLIC;

-- Queue administration (80_queue_admin.sql, function set 7): for every role to call; each runs
-- as its caller, who needs the operator's grants on the tables it changes (sql/README.md,
-- "Security model"), so calling them grants nothing. The trigger functions are for their
-- triggers only (each refuses to run as another trigger), created by the schema's owner:
-- withheld from PUBLIC, so that no one attaches them elsewhere.
GRANT EXECUTE ON FUNCTION
  pg2kafka.drain_lock_holder(), pg2kafka.audit_note(text),
  pg2kafka.skip_event(uuid, text),
  pg2kafka.retry_parked(bigint, text, text, text), pg2kafka.retry_event(uuid),
  pg2kafka.retry_table(text, text), pg2kafka.retry_all()
  TO PUBLIC;
REVOKE EXECUTE ON FUNCTION
  pg2kafka.event_batches_skip(), pg2kafka.parked_events_deleted(),
  pg2kafka.parked_events_retry(), pg2kafka.outbound_event_queue_delete()
  FROM PUBLIC;

-- Parked events and the audit record are for the drainer's and the operator's roles only, by
-- the DBA's grants. Revoked first: default privileges may have given PUBLIC some.
REVOKE ALL ON pg2kafka.parked_events, pg2kafka.queue_audit FROM PUBLIC;
REVOKE ALL ON SEQUENCE pg2kafka.parked_events_id_seq, pg2kafka.queue_audit_id_seq FROM PUBLIC;

-- Capture options (function set 8). The queue's trigger functions are for their triggers only
-- (each refuses to run as another trigger): withheld from PUBLIC, so that no one attaches them
-- elsewhere. event_batches_mask runs as the schema's owner (SECURITY DEFINER) to read the
-- masking secret, which no other role may read.
REVOKE EXECUTE ON FUNCTION
  pg2kafka.event_batches_provenance(), pg2kafka.event_batches_mask(), pg2kafka.mask_secret_keys(),
  pg2kafka.mask_rows(json, text[], bytea, bytea)
  FROM PUBLIC;
REVOKE ALL ON pg2kafka.mask_secret FROM PUBLIC;
