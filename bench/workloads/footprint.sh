# shellcheck shell=bash disable=SC2154 # its variables are set by scripts/bench.sh and bench/lib
# footprint: the daemon idle on an empty queue (CPU, RSS), then draining a backlog of large rows
# (peak RSS bounded by bytes). See bench/README.md.

if ((quick)); then
  large_rows=500
else
  large_rows=2000
fi
idle_seconds=10

wl_footprint() {
  say "footprint: pg2kafka run idle for ${idle_seconds}s"
  reset_queue
  start_daemon idle
  sleep 1
  local c0 c1
  c0=$(cpu_seconds "$daemon_pid")
  sleep "$idle_seconds"
  c1=$(cpu_seconds "$daemon_pid")
  local rss hwm
  rss=$(rss_mb "$daemon_pid")
  hwm=$(hwm_mb "$daemon_pid")
  stop_daemon idle
  record footprint "idle daemon CPU" "$(calc "($c1 - $c0) * 100 / $idle_seconds" 2)" % "-" \
    "of one core over ${idle_seconds}s"
  record footprint "idle daemon RSS" "$rss" MB "< 100"
  record_peak_rss footprint "idle daemon peak RSS" idle "$hwm"
  note "RSS while draining the largest backlog: see the drain rows (daemon peak RSS)"

  # Large rows: memory must stay bounded by bytes, not only by the number of events. Rows of
  # ~190 kB of JSON (a repeated md5: quick to write, stored compressed, counted uncompressed),
  # one queue batch per 5 rows (1 MB), written by statements of 100 rows.
  local n=$large_rows from
  say "footprint: pg2kafka run --once on $n rows of ~190 kB"
  reset_queue
  psql_q -c "DROP TABLE IF EXISTS fp_large" \
    -c "CREATE TABLE fp_large (id bigint PRIMARY KEY, k text, doc text)" \
    -c "SELECT pg2kafka.setup('fp_large', 'k')" >/dev/null
  for ((from = 1; from <= n; from += 100)); do
    psql_q -c "INSERT INTO fp_large SELECT g, 'k' || g, repeat(md5(g::text), 6000)
                 FROM generate_series($from, $((from + 99 < n ? from + 99 : n))) g"
  done
  psql_q -c "DROP TABLE fp_large" -c "ANALYZE pg2kafka.event_batches" -c "CHECKPOINT"
  record footprint "large-row backlog size" \
    "$(sql_value "SELECT round(sum(octet_length(data::text)) / 1048576.0)
                    FROM pg2kafka.event_batches")" MB "-" "$n rows, JSON as queued (uncompressed)"
  create_topic fp_large
  drain_once fp_large "$n" "large-row backlog" footprint "-"
}
