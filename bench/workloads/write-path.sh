# shellcheck shell=bash disable=SC2154 # its variables are set by scripts/bench.sh and bench/lib
# write-path: what the capture triggers cost writers. Bulk INSERT, UPDATE and DELETE of wp_rows
# rows, and pgbench single-row INSERT and UPDATE, each on a tracked table and its untracked twin,
# interleaved; ratios of the medians. No daemon runs meanwhile. See bench/README.md.

if ((quick)); then
  wp_reps=3
  pgbench_seconds=5
  pgbench_reps=2
else
  wp_reps=5
  pgbench_seconds=15
  pgbench_reps=5
fi
wp_rows=100000
pgbench_rows=100000

# One psql session per table and repetition: the bulk INSERT, UPDATE (one column) and DELETE of
# wp_rows rows, each timed by psql (\timing: the statement's round trip).
wp_run() { # TABLE -> "insert_ms update_ms delete_ms"
  psql -X -v ON_ERROR_STOP=1 "$DATABASE_URL" -c '\timing on' \
    -c "$(drain_rows_sql "$1" 1 "$wp_rows")" \
    -c "UPDATE $1 SET qty = qty + 1" \
    -c "DELETE FROM $1" | awk '/^Time:/ { printf "%s ", $2 }'
}

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END {
  if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

wl_write_path() {
  say "write-path: bulk statements of $wp_rows rows, tracked vs untracked, $wp_reps repetitions"
  reset_queue
  psql_q -c "DROP TABLE IF EXISTS wp_tracked, wp_plain" \
    -c "$(drain_table_sql wp_tracked)" -c "$(drain_table_sql wp_plain)" \
    -c "SELECT pg2kafka.setup('wp_tracked', 'sku')" >/dev/null
  local rep order t times
  declare -A all=()
  for ((rep = 1; rep <= wp_reps; rep++)); do
    # Interleaved, the order alternating, so drift of a noisy machine hits both alike.
    if ((rep % 2)); then order="wp_tracked wp_plain"; else order="wp_plain wp_tracked"; fi
    for t in $order; do
      psql_q -c "VACUUM ANALYZE $t" -c "TRUNCATE pg2kafka.event_batches" -c "CHECKPOINT"
      read -r -a times <<<"$(wp_run "$t")"
      [[ ${#times[@]} -eq 3 ]] || die "write-path: could not time the statements on $t"
      all[$t.insert]+="${times[0]} "
      all[$t.update]+="${times[1]} "
      all[$t.delete]+="${times[2]} "
    done
  done
  local op mt mp
  for op in insert update delete; do
    mt=$(median <<<"${all[wp_tracked.$op]}")
    mp=$(median <<<"${all[wp_plain.$op]}")
    record write-path "bulk $op ${wp_rows} rows, tracked" "$mt" ms "-" "median of ${all[wp_tracked.$op]}"
    record write-path "bulk $op ${wp_rows} rows, untracked" "$mp" ms "-" "median of ${all[wp_plain.$op]}"
    record write-path "bulk $op tracked / untracked" "$(calc "$mt / $mp" 2)" "x" "<= 2"
  done
  reset_queue

  say "write-path: pgbench single-row INSERT and UPDATE, -c 2 -j 2 -T $pgbench_seconds, tracked vs untracked"
  psql_q -c "DROP TABLE IF EXISTS pgb_tracked, pgb_plain" \
    -c "$(drain_table_sql pgb_tracked)" -c "$(drain_table_sql pgb_plain)" \
    -c "$(drain_rows_sql pgb_tracked 1 "$pgbench_rows")" \
    -c "$(drain_rows_sql pgb_plain 1 "$pgbench_rows")" \
    -c "CREATE SEQUENCE IF NOT EXISTS pgb_ids START $((pgbench_rows + 1))" \
    -c "SELECT pg2kafka.setup('pgb_tracked', 'sku')" >/dev/null
  reset_queue
  local kind tps
  declare -A tpsall=()
  for ((rep = 1; rep <= pgbench_reps; rep++)); do
    for kind in insert update; do
      if ((rep % 2)); then order="pgb_tracked pgb_plain"; else order="pgb_plain pgb_tracked"; fi
      for t in $order; do
        psql_q -c "VACUUM ANALYZE $t" -c "TRUNCATE pg2kafka.event_batches" -c "CHECKPOINT"
        tps=$(PGOPTIONS="-c synchronous_commit=on" "$P2K_BENCH_PGBENCH" -n -c 2 -j 2 \
          -T "$pgbench_seconds" -D "tbl=$t" -f "$repo/bench/sql/pgbench_$kind.sql" \
          "$DATABASE_URL" 2>"$state/logs/pgbench.err" |
          sed -n 's/^tps = \([0-9.]*\).*without initial.*/\1/p')
        [[ -n "$tps" ]] || {
          cat "$state/logs/pgbench.err" >&2
          die "pgbench failed"
        }
        tpsall[$t.$kind]+="$tps "
      done
    done
  done
  for kind in insert update; do
    mt=$(median <<<"${tpsall[pgb_tracked.$kind]}")
    mp=$(median <<<"${tpsall[pgb_plain.$kind]}")
    record write-path "pgbench $kind tracked" "$(calc "$mt" 0)" tps "-" "median of ${tpsall[pgb_tracked.$kind]}"
    record write-path "pgbench $kind untracked" "$(calc "$mp" 0)" tps "-" "median of ${tpsall[pgb_plain.$kind]}"
    record write-path "pgbench $kind tracked / untracked" "$(calc "$mt / $mp" 2)" ratio ">= 0.85"
  done
  reset_queue
}
