# shellcheck shell=bash disable=SC2154 # its variables are set by scripts/bench.sh and bench/lib
# snapshot: pg2kafka.setup on a snapshot_rows-row table while a 1-row reader, a full-scan reader
# and a 1-row writer start once it holds its table lock: how long each was held up. See
# bench/README.md.

if ((quick)); then
  snapshot_rows=200000
else
  snapshot_rows=1000000
fi

# psql_timed OUTFILE SQL: runs one statement in its own session and writes its duration (ms).
psql_timed() {
  psql -X -v ON_ERROR_STOP=1 "$DATABASE_URL" -c '\timing on' -c "$2" 2>&1 |
    awk '/^Time:/ { print $2 }' >"$1"
}

wl_snapshot() {
  say "snapshot: pg2kafka.setup on a $snapshot_rows-row table, with a concurrent reader and writer"
  reset_queue
  psql_q -c "DROP TABLE IF EXISTS snap" -c "$(drain_table_sql snap)" >/dev/null
  local from to
  for ((from = 1; from <= snapshot_rows; from += 500000)); do
    to=$((from + 499999 < snapshot_rows ? from + 499999 : snapshot_rows))
    psql_q -c "$(drain_rows_sql snap "$from" "$to")"
  done
  psql_q -c "VACUUM ANALYZE snap" -c "CHECKPOINT"
  local t0 t_lock
  t0=$(date +%s.%N)
  psql_timed "$state/snap.setup" "SELECT pg2kafka.setup('snap', 'sku')" &
  local setup_pid=$!
  # The reader and writer start once setup holds its lock on the table.
  for _ in $(seq 1 500); do
    [[ $(sql_value "SELECT count(*) FROM pg_locks WHERE relation = 'snap'::regclass
                      AND mode = 'ShareRowExclusiveLock' AND granted") -gt 0 ]] && break
    sleep 0.01
  done
  t_lock=$(date +%s.%N)
  psql_timed "$state/snap.reader" "SELECT * FROM snap WHERE id = 42" &
  local reader_pid=$!
  psql_timed "$state/snap.scan" "SELECT count(*) FROM snap" &
  local scan_pid=$!
  psql_timed "$state/snap.writer" "UPDATE snap SET qty = qty + 1 WHERE id = 42" &
  local writer_pid=$!
  wait "$setup_pid" "$reader_pid" "$scan_pid" "$writer_pid"
  local setup_ms
  setup_ms=$(cat "$state/snap.setup")
  [[ -n "$setup_ms" ]] || die "snapshot: setup failed"
  # The snapshot's rows, plus the writer's UPDATE when it was captured after setup (it waited).
  local queued
  queued=$(queue_count)
  [[ "$queued" -eq "$snapshot_rows" || "$queued" -eq $((snapshot_rows + 1)) ]] ||
    die "snapshot: $queued events queued, expected $snapshot_rows (+1)"
  record snapshot "setup on $((snapshot_rows / 1000))k rows" "$(calc "$setup_ms" 0)" ms "-"
  record snapshot "concurrent writers started after" "$(calc "($t_lock - $t0) * 1000" 0)" ms "-" \
    "setup start to its table lock seen in pg_locks"
  record snapshot "1-row reader duration" "$(calc "$(cat "$state/snap.reader")" 1)" ms "-" \
    "readers never blocked: expect ~1 ms"
  record snapshot "full-scan reader duration" "$(calc "$(cat "$state/snap.scan")" 0)" ms "-" \
    "SELECT count(*), not blocked"
  record snapshot "1-row writer duration (blocked)" "$(calc "$(cat "$state/snap.writer")" 0)" ms \
    "<= $(calc "$setup_ms" 0)" "no longer than the setup (snapshot copy)"
  reset_queue
  psql_q -c "DROP TABLE snap" >/dev/null
}
