-- pgbench script (write-path workload): one single-row INSERT per transaction into :tbl, a narrow
-- table (id bigint PRIMARY KEY, sku text, price numeric, pad text; about 90 bytes of JSON when
-- captured). Ids come from the table's own sequence, above the 100k rows the table starts with.
-- Run with -D tbl=TABLE -D ins="'TABLE_ins'".
\set r random(1, 1000000000)
INSERT INTO :tbl (id, sku, price, pad)
VALUES (nextval(:ins), 'SKU-' || :r, (:r % 10000) / 100.0, 'pad ' || md5(:r::text));
