-- pgbench script (write-path workload): one single-row DELETE per transaction on :tbl, of the
-- next id of the table's delete sequence, which walks upward through the rows above the first
-- :rows (those the INSERT runs added, topped up by the workload before each DELETE run so that
-- every statement deletes a row). Run with -D tbl=TABLE -D del="'TABLE_del'".
DELETE FROM :tbl WHERE id = (SELECT nextval(:del));
