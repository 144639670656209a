# shellcheck shell=bash disable=SC2154 # its variables are set by scripts/bench.sh and bench/lib
# long-tx: the drain rate while another session holds a transaction open (so no dead queue row
# can be vacuumed), against the rate without. See bench/README.md.

if ((quick)); then
  longtx_size=50000
else
  longtx_size=200000
fi

wl_long_tx() {
  local n=$longtx_size base
  say "long-tx: drain $n events, then $n while another session holds a transaction open"
  reset_queue
  fill_backlog "ltx_base" "$n"
  drain_once "ltx_base" "$n" "baseline" long-tx
  base=$drain_rate
  reset_queue
  # The holder takes a transaction id before the backlog is written, so nothing the drain
  # deletes can be vacuumed away while it runs.
  PGAPPNAME=p2k-bench-holder psql -X -q "$DATABASE_URL" \
    -c "BEGIN" -c "SELECT txid_current()" -c "SELECT pg_sleep(3600)" >/dev/null 2>&1 &
  local holder=$!
  remember_pids "$holder"
  for _ in $(seq 1 100); do
    [[ $(sql_value "SELECT count(*) FROM pg_stat_activity WHERE application_name =
                      'p2k-bench-holder' AND backend_xid IS NOT NULL") -gt 0 ]] && break
    sleep 0.05
  done
  fill_backlog "ltx_held" "$n"
  drain_once "ltx_held" "$n" "transaction held open" long-tx
  sql_value "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
              WHERE application_name = 'p2k-bench-holder'" >/dev/null
  wait "$holder" 2>/dev/null || true
  forget_pids "$holder"
  record long-tx "rate with open transaction / baseline" "$(calc "$drain_rate / $base" 2)" ratio ">= 0.8"
  reset_queue
}
