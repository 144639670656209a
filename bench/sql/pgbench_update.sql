-- pgbench script (write-path workload): one single-row UPDATE of one column per transaction on
-- :tbl (rows 1..100000 exist). Run with -D tbl=TABLE.
\set id random(1, 100000)
UPDATE :tbl SET qty = qty + 1 WHERE id = :id;
