-- Reference capture triggers for the write-path workload: about the least a trigger that queues
-- changes can do, to put pg2kafka's capture cost in perspective. Not pg2kafka's design: no
-- batching, no key, no privilege checks, no size bounds, one plain queue table.
--
--   SELECT bench_ref_track('TABLE', 'statement');  -- AFTER ... FOR EACH STATEMENT, transition
--                                                   -- tables, one INSERT of json_agg per statement
--   SELECT bench_ref_track('TABLE', 'row');        -- AFTER ... FOR EACH ROW, one INSERT per row
--
-- Run with psql -v ON_ERROR_STOP=1 -f; running it again changes nothing.

CREATE TABLE IF NOT EXISTS bench_ref_queue (
  id         bigserial PRIMARY KEY,
  tbl        text,
  op         text,
  data       json,
  old_data   json,
  created_at timestamptz DEFAULT now()
);

-- Statement level: one INSERT per statement, of the new and/or old transition table as a JSON
-- array. (PostgreSQL allows transition tables only on a trigger for one event, hence three
-- triggers sharing this function.)
CREATE OR REPLACE FUNCTION bench_ref_statement() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO bench_ref_queue (tbl, op, data)
    SELECT TG_TABLE_NAME, TG_OP, json_agg(row_to_json(n)) FROM bench_new n;
  ELSIF TG_OP = 'UPDATE' THEN
    INSERT INTO bench_ref_queue (tbl, op, data, old_data)
    SELECT TG_TABLE_NAME, TG_OP, (SELECT json_agg(row_to_json(n)) FROM bench_new n),
           (SELECT json_agg(row_to_json(o)) FROM bench_old o);
  ELSE
    INSERT INTO bench_ref_queue (tbl, op, old_data)
    SELECT TG_TABLE_NAME, TG_OP, json_agg(row_to_json(o)) FROM bench_old o;
  END IF;
  RETURN NULL;
END $$;

-- Row level: one INSERT per changed row (NEW is null for a DELETE, OLD for an INSERT).
CREATE OR REPLACE FUNCTION bench_ref_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO bench_ref_queue (tbl, op, data, old_data)
  VALUES (TG_TABLE_NAME, TG_OP, row_to_json(NEW), row_to_json(OLD));
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION bench_ref_track(t regclass, level text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  IF level = 'statement' THEN
    EXECUTE format('CREATE TRIGGER bench_ref_insert AFTER INSERT ON %s '
                   'REFERENCING NEW TABLE AS bench_new '
                   'FOR EACH STATEMENT EXECUTE FUNCTION bench_ref_statement()', t);
    EXECUTE format('CREATE TRIGGER bench_ref_update AFTER UPDATE ON %s '
                   'REFERENCING OLD TABLE AS bench_old NEW TABLE AS bench_new '
                   'FOR EACH STATEMENT EXECUTE FUNCTION bench_ref_statement()', t);
    EXECUTE format('CREATE TRIGGER bench_ref_delete AFTER DELETE ON %s '
                   'REFERENCING OLD TABLE AS bench_old '
                   'FOR EACH STATEMENT EXECUTE FUNCTION bench_ref_statement()', t);
  ELSIF level = 'row' THEN
    EXECUTE format('CREATE TRIGGER bench_ref_row AFTER INSERT OR UPDATE OR DELETE ON %s '
                   'FOR EACH ROW EXECUTE FUNCTION bench_ref_row()', t);
  ELSE
    RAISE EXCEPTION 'bench_ref_track: level must be statement or row, not %', level;
  END IF;
END $$;
