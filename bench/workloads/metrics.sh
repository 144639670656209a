# shellcheck shell=bash disable=SC2154 # its variables are set by scripts/bench.sh and bench/lib
# metrics (issue 18): does the HTTP endpoint slow draining? The drain workload's run --once on a
# backlog of single-row statements, alternately with the endpoint off and on (PG2KAFKA_HTTP_LISTEN
# of the shipped pipeline) while a scraper asks for /metrics and /readyz every second (Prometheus
# scrapes every 15 s by default: this is 15 times that load, and it keeps the pg-outbox monitor
# reading the queue's lag every monitor_interval, 10 s). Off and on alternate within each round
# so that the machine's drift hits both; the figure is the ratio of the mean rates, with the
# spread between the off runs for scale. BENCH_METRICS_PATHS changes what is asked for (e.g.
# "/healthz", which reaches no plugin: the server's own cost).

if ((quick)); then
  metrics_size=50000
  metrics_rounds=2
else
  metrics_size=200000
  metrics_rounds=${BENCH_METRICS_ROUNDS:-4}
fi

# Asks for /metrics and /readyz every second while the process $1 lives; counts the answers.
metrics_scrape() {
  local pid=$1 port=$2 count_file=$3 n=0
  while kill -0 "$pid" 2>/dev/null; do
    for path in ${BENCH_METRICS_PATHS:-/metrics /readyz}; do
      if exec 3<>"/dev/tcp/127.0.0.1/$port" 2>/dev/null; then
        printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n' "$path" >&3
        if head -c 12 <&3 | grep -q '^HTTP/1.1'; then n=$((n + 1)); fi
        exec 3<&-
      fi
    done
    echo "$n" >"$count_file"
    sleep 1
  done
}

wl_metrics() {
  local round mode n=$metrics_size sum_off=0 sum_on=0 min_off="" max_off="" port
  local cpu_off=0 cpu_on=0 cpu
  # shellcheck source=../../tests/support/free_port.sh
  log() { say "$*"; }
  source "$repo/tests/support/free_port.sh"
  for ((round = 1; round <= metrics_rounds; round++)); do
    for mode in off on; do
      local name="metrics_${mode}_$round"
      say "metrics: round $round, endpoint $mode: $n events"
      reset_queue
      fill_backlog "$name" "$n"
      if [[ $mode == on ]]; then
        port=$(pick_port)
        export PG2KAFKA_HTTP_LISTEN="127.0.0.1:$port"
        (
          # Wait for the daemon started by drain_once, then scrape it while it runs.
          for _ in $(seq 1 200); do
            pid=$(pgrep -f -n "$bin run --once" || true)
            [[ -n "$pid" ]] && break
            sleep 0.05
          done
          [[ -n "$pid" ]] && metrics_scrape "$pid" "$port" "$state/$name.scrapes"
        ) &
        local scraper=$!
        remember_pids "$scraper"
      fi
      drain_once "$name" "$n" "endpoint $mode, round $round" metrics
      cpu=$(calc "$(json_get "$state/$name.run.json" user_s) + $(json_get "$state/$name.run.json" sys_s)" 3)
      if [[ $mode == on ]]; then
        wait "$scraper" || true
        forget_pids "$scraper"
        unset PG2KAFKA_HTTP_LISTEN
        local scrapes
        scrapes=$(cat "$state/$name.scrapes" 2>/dev/null || echo 0)
        record metrics "endpoint on, round $round: answers served" "$scrapes" requests "> 0" \
          "GET /metrics and /readyz every second during the drain"
        sum_on=$(calc "$sum_on + $drain_rate" 0)
        cpu_on=$(calc "$cpu_on + $cpu" 3)
      else
        sum_off=$(calc "$sum_off + $drain_rate" 0)
        cpu_off=$(calc "$cpu_off + $cpu" 3)
        # (Parenthesised: a bare > in awk's printf is an output redirection.)
        [[ -z "$min_off" || $(calc "($drain_rate < $min_off)" 0) -eq 1 ]] && min_off=$drain_rate
        [[ -z "$max_off" || $(calc "($drain_rate > $max_off)" 0) -eq 1 ]] && max_off=$drain_rate
      fi
    done
  done
  record metrics "mean rate, endpoint on / off" "$(calc "$sum_on / $sum_off" 3)" ratio ">= 0.98" \
    "$metrics_rounds rounds of $n events, off and on alternating"
  record metrics "spread of the off runs (max / min)" "$(calc "$max_off / $min_off" 3)" ratio "-" \
    "the run-to-run noise the ratio above is to be read against"
  record metrics "daemon CPU time, endpoint on / off" "$(calc "$cpu_on / $cpu_off" 3)" ratio "-" \
    "the daemon's user + system time over all rounds: HTTP thread and monitor included"
}
