# shellcheck shell=bash disable=SC2154 # its variables are set by scripts/bench.sh and bench/lib
# drain: pg2kafka run --once on a backlog, written one row per statement (one queue batch per
# event) for each size, again after the largest was shipped, and once from bulk statements
# (batches of 1000 events). See bench/README.md.

if ((quick)); then
  drain_sizes=(50000)
  drain_after_size=50000
else
  drain_sizes=(200000 1000000)
  drain_after_size=200000
fi

wl_drain() {
  local n first_rate="" first_n="" label
  for n in "${drain_sizes[@]}"; do
    label="backlog $((n / 1000))k"
    say "drain: filling a backlog of $n events, one row per statement"
    reset_queue
    fill_backlog "drain_$n" "$n"
    record drain "$label mean event data size" \
      "$(sql_value "SELECT round(avg(length(data::text) - 2)) FROM pg2kafka.event_batches")" \
      bytes "-" "JSON text of the row; one row per statement, so one event per queue batch"
    say "drain: pg2kafka run --once on $n events"
    drain_once "drain_$n" "$n" "$label"
    [[ -z "$first_rate" ]] && first_rate=$drain_rate && first_n=$n
  done
  # Bonus: no slowdown after a large backlog has been shipped (the queue now holds its dead rows
  # or their vacuumed space).
  n=$drain_after_size
  say "drain: $n events again, after $((${drain_sizes[-1]} / 1000))k shipped"
  fill_backlog "drain_after_$n" "$n"
  drain_once "drain_after_$n" "$n" "again after shipping"
  if [[ "$first_n" -eq "$n" ]]; then
    record drain "rate after shipping / first rate" "$(calc "$drain_rate / $first_rate" 2)" ratio \
      ">= 0.9" "no slowdown expected"
  fi
  # The same volume written by bulk statements: batches of 1000 events.
  n=${drain_sizes[-1]}
  say "drain: filling a backlog of $n events, 100k rows per statement"
  reset_queue
  fill_backlog "drain_bulk_$n" "$n" bulk
  drain_once "drain_bulk_$n" "$n" "backlog $((n / 1000))k from bulk statements"
}
