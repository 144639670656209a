-- pgbench script (write-path workload): one single-row UPDATE of one column per transaction on
-- :tbl, at a random id among its first :rows rows (which are never deleted).
-- Run with -D tbl=TABLE -D rows=N.
\set id random(1, :rows)
UPDATE :tbl SET price = price + 1 WHERE id = :id;
