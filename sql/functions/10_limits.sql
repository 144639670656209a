-- The bounds of a queue row (a batch), named once. Each is an IMMUTABLE function of no
-- arguments, so PostgreSQL folds a call into a constant when it plans the calling query: reading
-- one costs nothing at run time. The capture functions and setup use them; the drainer does not
-- depend on them (it bounds its reads by events and data_bytes, whatever a batch holds).

-- Most rows (events) in one batch of SNAPSHOT, INSERT, UPDATE, or DELETE of whole rows.
CREATE OR REPLACE FUNCTION pg2kafka.batch_max_rows() RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT 1000 $$;

-- About the most bytes of row data in one batch: a batch is cut once its rows reach it (it holds
-- under this much plus at most one row); a statement under it, and under batch_max_rows(), is
-- written as one batch. Far below PostgreSQL's 1 GB value limit, and small enough that the
-- drainer never holds much in memory.
CREATE OR REPLACE FUNCTION pg2kafka.batch_max_bytes() RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT 1048576 $$;

-- Most keys in one DELETE batch (a DELETE event carries only its key).
CREATE OR REPLACE FUNCTION pg2kafka.delete_batch_max_keys() RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT 10000 $$;

-- Most rows of a DELETE whose keys are read as members of row_to_json (cheap to plan, the
-- one-row OLTP case) rather than with a query built for the key column (EXECUTE).
CREATE OR REPLACE FUNCTION pg2kafka.delete_inline_max_rows() RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT 100 $$;
