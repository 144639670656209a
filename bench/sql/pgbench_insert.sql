-- pgbench script (write-path workload): one single-row INSERT per transaction into :tbl, a table
-- shaped like the drain rows (about 150 bytes of JSON when captured). Run with -D tbl=TABLE.
\set r random(1, 1000000000)
INSERT INTO :tbl (id, sku, name, price, qty, note)
VALUES (nextval('pgb_ids'), 'SKU-' || :r, 'Product name ' || :r, (:r % 10000) / 100.0, :r % 500,
        'note ' || left(md5(:r::text), 16));
