# shellcheck shell=bash disable=SC2154 # its variables are set by scripts/bench.sh and bench/lib
# live: latency and daemon cost while a writer commits at 1k, 5k, 20k events/s and flat out, for
# live_seconds each (live_run, which live-notify.sh uses too). See bench/README.md.

if ((quick)); then
  live_seconds=10
else
  live_seconds=30
fi
warmup_seconds=2
live_rates=(1000 5000 20000 0) # 0 = flat out

# live_run WORKLOAD PREFIX RATE...: for each rate, a writer for live_seconds while pg2kafka run
# drains; latency per event = the broker's LogAppendTime - the row's ts (taken before commit).
live_run() {
  local workload=$1 prefix=$2 rate name label stat0 stat1 latency writer_json
  shift 2
  for rate in "$@"; do
    if ((rate == 0)); then label="flat out"; else label="$((rate / 1000))k/s"; fi
    label="$prefix$label"
    name="${workload//-/_}_${rate}"
    say "live: writer at ${label} for ${live_seconds}s while pg2kafka run drains"
    reset_queue
    psql_q -c "DROP TABLE IF EXISTS $name" \
      -c "CREATE TABLE $name (id bigserial PRIMARY KEY, k text, ts bigint, payload text)" \
      -c "SELECT pg2kafka.setup('$name', 'k')" >/dev/null
    create_topic "$name"
    start_daemon "$name"
    sleep 1
    stat0=$(cpu_seconds "$daemon_pid")
    writer_json="$state/$name.writer.json"
    # The first warmup_seconds wake an idle pipeline (its polls have backed off): reported as
    # their own figure, left out of the steady-state percentiles.
    "$tools/p2k-bench-writer" --url "$DATABASE_URL" --table "$name" --rate "$rate" \
      --duration "$((live_seconds + warmup_seconds))" --max-batch 100 >"$writer_json"
    stat1=$(cpu_seconds "$daemon_pid")
    wait_queue_empty 120 || die "$name: queue not drained 120 s after the writer stopped"
    local hwm
    hwm=$(hwm_mb "$daemon_pid")
    stop_daemon "$name"
    local rows
    rows=$(json_get "$writer_json" rows)
    latency="$state/$name.latency.json"
    "$tools/p2k-bench-kafka" latency --brokers "$KAFKA_BROKER" --topic "$(topic_of "$name")" \
      --expect "$rows" --timeout 120 --warmup-ms "$((warmup_seconds * 1000))" >"$latency"
    [[ $(json_get "$latency" messages) -eq "$rows" ]] ||
      die "$name: $(json_get "$latency" messages) messages read, $rows written"
    [[ $(json_get "$latency" log_append_time) == true ]] ||
      die "$name: the topic does not use LogAppendTime"
    local p50_target="-" p99_target="-"
    if ((rate == 1000 || rate == 5000)); then p50_target="<= 5" p99_target="<= 20"; fi
    record "$workload" "$label achieved write rate" "$(json_get "$writer_json" achieved_rate)" events/s "-" \
      "$rows events, $(json_get "$writer_json" statements) statements"
    record "$workload" "$label latency p50" "$(json_get "$latency" p50_ms)" ms "$p50_target" \
      "commit to broker LogAppendTime, after the first ${warmup_seconds} s"
    local worst
    worst=$(sed -n 's/.*"worst_windows":\[\(.*\)\].*/\1/p' "$latency" |
      sed 's/{"at_s":\([0-9.]*\),"peak_ms":\([0-9.]*\),"n":\([0-9]*\)}/\1 s: \2 ms (\3 events)/g; s/,/; /g')
    record "$workload" "$label latency p99" "$(json_get "$latency" p99_ms)" ms "$p99_target" \
      "worst 100 ms windows (time from the first event: peak latency): $worst"
    record "$workload" "$label latency max" "$(json_get "$latency" max_ms)" ms "-"
    # The writer's own statements (INSERT and commit): their tail is the database's, and is part
    # of the latency above (ts is taken before the commit).
    record "$workload" "$label writer statement p99" "$(json_get "$writer_json" stmt_p99_ms)" ms "-" \
      "one INSERT + commit round trip; max $(json_get "$writer_json" stmt_max_ms) ms"
    record "$workload" "$label first ${warmup_seconds} s, latency max" \
      "$(json_get "$latency" warmup_max_ms)" ms "-" \
      "waking an idle pipeline: up to poll_interval without NOTIFY"
    record "$workload" "$label daemon CPU" "$(calc "($stat1 - $stat0) * 100 / $live_seconds" 1)" % "-" \
      "of one core, while the writer ran"
    record_peak_rss "$workload" "$label daemon peak RSS" "$name" "$hwm"
  done
}

wl_live() { live_run live "" "${live_rates[@]}"; }
