#!/usr/bin/env bash
# The pg2kafka benchmarks (issue 5). See bench/README.md for what each workload measures.
#
#   scripts/bench.sh [--quick] [--json FILE] [--no-build] [WORKLOAD...]
#
# Workloads: drain live live-notify write-path snapshot footprint long-tx (default: all, in
# that order).
#   --quick     smaller sizes and shorter runs (a few minutes in all)
#   --json F    where to write the results (default bench/results/<UTC timestamp>.json)
#   --no-build  use the binaries already built (build/ and build-bench/)
#
# Services: a throwaway PostgreSQL and Kafka broker on loopback, started with the test fixtures
# and stopped at the end (even on failure), unless given:
#   BENCH_DATABASE_URL  a THROWAWAY database (the benchmark creates tables, installs the pg2kafka
#                       schema and empties pg2kafka.event_batches)
#   BENCH_KAFKA_BROKER  host:port of a Kafka broker (topics are created under a per-run namespace)
# Other settings: BENCH_PG2KAFKA_CONFIG (pipeline file; default the shipped config/pg2kafka.json),
# P2K_BUILD_DIR (default build), BENCH_BUILD_DIR (default build-bench).
#
# A benchmark never fails on speed: the exit code is 0 unless a workload broke (an error, lost
# or missing events), then 1. Figures are printed as a table and written as JSON.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

quick=0
build=1
json_out=""
workloads=()
all_workloads=(drain live live-notify write-path snapshot footprint long-tx)
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) quick=1 ;;
    --no-build) build=0 ;;
    --json)
      json_out=${2:?--json needs a file}
      shift
      ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
      exit 0
      ;;
    -*)
      echo "bench.sh: unknown option $1" >&2
      exit 2
      ;;
    *)
      if [[ " ${all_workloads[*]} " != *" $1 "* ]]; then
        echo "bench.sh: unknown workload $1 (known: ${all_workloads[*]})" >&2
        exit 2
      fi
      workloads+=("$1")
      ;;
  esac
  shift
done
[[ ${#workloads[@]} -eq 0 ]] && workloads=("${all_workloads[@]}")

# Sizes ------------------------------------------------------------------------------------------
if ((quick)); then
  drain_sizes=(50000)
  drain_after_size=50000
  live_seconds=10
  warmup_seconds=2
  wp_reps=3
  pgbench_seconds=5
  pgbench_reps=2
  snapshot_rows=200000
  longtx_size=50000
  large_rows=500
else
  drain_sizes=(200000 1000000)
  drain_after_size=200000
  live_seconds=30
  warmup_seconds=2
  wp_reps=5
  pgbench_seconds=15
  pgbench_reps=5
  snapshot_rows=1000000
  longtx_size=200000
  large_rows=2000
fi
live_rates=(1000 5000 20000 0) # 0 = flat out
wp_rows=100000
pgbench_rows=100000
idle_seconds=10
partitions=3

# Helpers ----------------------------------------------------------------------------------------
say() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }
note() { printf '   %s\n' "$*" >&2; }
die() {
  echo "bench.sh: $*" >&2
  exit 1
}

build_dir="${P2K_BUILD_DIR:-build}"
bench_build="${BENCH_BUILD_DIR:-build-bench}"
bin="$repo/$build_dir/bin/pg2kafka"
tools="$repo/$bench_build"

state=$(mktemp -d /tmp/pg2kafka-bench.XXXXXX)
chmod 755 "$state" # the throwaway cluster runs as the postgres user when we are root
mkdir -p "$state/logs"
results="$state/results.tsv"
: >"$results"
: >"$state/pids"
started_pg=0
started_kafka=0

cleanup() {
  local rc=$?
  # Only the processes this script started (their pids were recorded), never by name.
  local pid
  while read -r pid; do
    [[ -n "$pid" ]] && kill -TERM "$pid" 2>/dev/null || true
  done <"$state/pids"
  sleep 0.5
  while read -r pid; do
    [[ -n "$pid" ]] && kill -KILL "$pid" 2>/dev/null || true
  done <"$state/pids"
  ((started_kafka)) && tests/support/kafka/kafka_fixture.sh stop "$state" >/dev/null 2>&1 || true
  ((started_pg)) && tests/support/pg/pg_fixture.sh stop "$state" >/dev/null 2>&1 || true
  if [[ -n "${BENCH_KEEP_STATE:-}" ]]; then
    echo "bench.sh: state kept in $state" >&2
  else
    rm -rf "$state"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

load_env() { while IFS='=' read -r key value; do export "$key=$value"; done <"$1"; }

# record WORKLOAD METRIC VALUE UNIT TARGET [NOTE]
#   TARGET is "OP NUMBER" (OP one of <= >= < >) or "-"; the table and the JSON say if it is met.
record() {
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "${5:--}" "${6:-}" >>"$results"
  printf '   %-34s %14s %-9s target %s\n' "$2" "$3" "$4" "${5:--}" >&2
}

# json_get FILE KEY: a number from the flat one-line JSON objects the bench tools print.
json_get() { sed -n "s/.*\"$2\":\([-0-9.a-z]*\).*/\1/p" "$1" | head -n 1; }
calc() { awk "BEGIN { printf \"%.${2:-1}f\", $1 }"; }

# The bench's own sessions skip NOTICEs (DROP TABLE IF EXISTS ...); the daemon's are untouched.
psql_q() { PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 "$DATABASE_URL" "$@"; }
sql_value() {
  PGOPTIONS="-c client_min_messages=warning" psql -X -q -t -A -v ON_ERROR_STOP=1 "$DATABASE_URL" -c "$1"
}

topic_of() { echo "pg2kafka.$TOPIC_NAMESPACE.$db_name.$1"; }

create_topic() {
  "$tools/p2k-bench-kafka" create-topic --brokers "$KAFKA_BROKER" --topic "$(topic_of "$1")" \
    --partitions "$partitions" --config message.timestamp.type=LogAppendTime
}

topic_count() { "$tools/p2k-bench-kafka" count --brokers "$KAFKA_BROKER" --topic "$(topic_of "$1")"; }

queue_count() { sql_value "SELECT coalesce(sum(events), 0) FROM pg2kafka.event_batches"; }

# Empties the queue between workloads (no daemon runs then) so that each starts alike.
reset_queue() {
  psql_q -c "TRUNCATE pg2kafka.event_batches" -c "VACUUM ANALYZE pg2kafka.event_batches"
}

# The drain workloads' rows: about 150 bytes of JSON per event (checked and reported).
drain_table_sql() {
  echo "CREATE TABLE $1 (id bigint PRIMARY KEY, sku text, name text, price numeric(10,2),
          qty int, note text)"
}
# The row numbered g (an SQL expression in g) of those tables.
drain_row_sql="g, 'SKU-' || lpad(g::text, 8, '0'), 'Product name number ' || g,
          (g % 10000) / 100.0, g % 500, 'note ' || md5(g::text)"
drain_rows_sql() { # TABLE FROM TO
  echo "INSERT INTO $1 SELECT $drain_row_sql FROM generate_series($2, $3) g"
}

# fill_backlog TABLE N [bulk]: a tracked table, N rows inserted one row per statement (one queue
# batch per event, the drainer's worst case, like OLTP writes) or, with `bulk`, by statements of
# 100k rows (batches of 1000 events); then the table is dropped (its events stay queued).
fill_backlog() {
  local table=$1 n=$2 mode=${3:-single} from to
  psql_q -c "DROP TABLE IF EXISTS $table" -c "$(drain_table_sql "$table")" \
    -c "SELECT pg2kafka.setup('$table', 'sku')" >/dev/null
  for ((from = 1; from <= n; from += 100000)); do
    to=$((from + 99999 < n ? from + 99999 : n))
    if [[ $mode == single ]]; then
      psql_q -c "DO \$\$ BEGIN FOR g IN $from..$to LOOP
          INSERT INTO $table SELECT $drain_row_sql; END LOOP; END \$\$"
    else
      psql_q -c "$(drain_rows_sql "$table" "$from" "$to")"
    fi
  done
  psql_q -c "DROP TABLE $table" -c "ANALYZE pg2kafka.event_batches" -c "CHECKPOINT"
  create_topic "$table"
}

# start_daemon NAME: pg2kafka run in the background under p2k-bench-run; sets daemon_pid (the
# pg2kafka process) and runner_pid. The cost report goes to $state/NAME.run.json.
start_daemon() {
  local name=$1
  rm -f "$state/$name.pid"
  "$tools/p2k-bench-run" --out "$state/$name.run.json" --pid-file "$state/$name.pid" -- \
    "$bin" run >"$state/logs/$name.out" 2>"$state/logs/$name.log" &
  runner_pid=$!
  echo "$runner_pid" >>"$state/pids"
  for _ in $(seq 1 100); do
    [[ -s "$state/$name.pid" ]] && break
    sleep 0.05
  done
  daemon_pid=$(cat "$state/$name.pid")
  echo "$daemon_pid" >>"$state/pids"
  # Running once the host logs that the pipeline runs (plugins opened, connected).
  for _ in $(seq 1 200); do
    grep -q "pipeline running" "$state/logs/$name.log" 2>/dev/null && return 0
    kill -0 "$daemon_pid" 2>/dev/null || break
    sleep 0.05
  done
  tail -n 20 "$state/logs/$name.log" >&2
  die "pg2kafka did not start (log: $state/logs/$name.log)"
}

# Forgets pids that have been waited for, so that the cleanup never signals a reused pid.
forget_pids() {
  local pid
  for pid in "$@"; do sed -i "/^$pid\$/d" "$state/pids"; done
}

stop_daemon() {
  kill -TERM "$daemon_pid" 2>/dev/null || true
  local rc=0
  wait "$runner_pid" || rc=$?
  forget_pids "$runner_pid" "$daemon_pid"
  if ((rc != 0)); then
    tail -n 20 "$state/logs/$1.log" >&2
    die "pg2kafka exited with $rc (log: $state/logs/$1.log)"
  fi
}

# CPU seconds (user + system) used so far by a process, from /proc.
cpu_seconds() {
  local ticks
  ticks=$(awk '{ print $14 + $15 }' "/proc/$1/stat")
  calc "$ticks / $(getconf CLK_TCK)" 3
}
rss_mb() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
# Peak RSS so far (VmHWM), in MB.
hwm_mb() { awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
max_of() { awk "BEGIN { a = $1; b = $2; printf \"%.1f\", (a > b ? a : b) }"; }

wait_queue_empty() { # TIMEOUT_S
  local deadline=$((SECONDS + $1))
  while ((SECONDS < deadline)); do
    [[ $(queue_count) -eq 0 ]] && return 0
    sleep 0.2
  done
  return 1
}

# drain_once NAME N: runs pg2kafka run --once on a backlog of N and records its figures.
drain_once() { # NAME N LABEL [WORKLOAD [RATE_TARGET]]
  local name=$1 n=$2 label=$3 workload=${4:-drain} target=${5:->= 50000}
  local out="$state/$name.run.json" rc=0
  "$tools/p2k-bench-run" --out "$out" -- "$bin" run --once >"$state/logs/$name.out" \
    2>"$state/logs/$name.log" || rc=$?
  if ((rc != 0)); then
    tail -n 20 "$state/logs/$name.log" >&2
    die "pg2kafka run --once exited with $rc (log: $state/logs/$name.log)"
  fi
  local left delivered
  left=$(queue_count)
  delivered=$(topic_count "$name")
  [[ "$left" -eq 0 ]] || die "$name: $left events left in the queue after run --once"
  [[ "$delivered" -eq "$n" ]] || die "$name: $delivered messages in Kafka, expected $n"
  local wall user sys rss
  wall=$(json_get "$out" wall_s)
  user=$(json_get "$out" user_s)
  sys=$(json_get "$out" sys_s)
  rss=$(json_get "$out" max_rss_kb)
  drain_rate=$(calc "$n / $wall" 0)
  record "$workload" "$label rate" "$drain_rate" events/s "$target" "N=$n, wall ${wall}s incl. start"
  record "$workload" "$label wall time" "$wall" s "-"
  record "$workload" "$label daemon CPU time" "$(calc "$user + $sys" 2)" s "-" "user $user s, sys $sys s"
  record "$workload" "$label daemon CPU per event" "$(calc "($user + $sys) * 1000000 / $n" 2)" us "-"
  record "$workload" "$label daemon peak RSS" "$(calc "$rss / 1024" 1)" MB "< 100"
}

# Workloads --------------------------------------------------------------------------------------

wl_drain() {
  local n first_rate="" label
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
  say "drain: $n events again, after $(( ${drain_sizes[-1]} / 1000 ))k shipped"
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
    record "$workload" "$label daemon peak RSS" \
      "$(max_of "$hwm" "$(json_get "$state/$name.run.json" max_rss_kb) / 1024")" MB "< 100" \
      "VmHWM / ru_maxrss"
  done
}

wl_live() { live_run live "" "${live_rates[@]}"; }

# The same at 1k and 5k/s with the triggers' NOTIFY switched on for the database (off by
# default: see sql/README.md), so the daemon wakes on each commit instead of its poll interval.
wl_live_notify() {
  trap 'psql_q -c "ALTER DATABASE \"$db_name\" RESET pg2kafka.notify" || true' EXIT
  psql_q -c "ALTER DATABASE \"$db_name\" SET pg2kafka.notify = on"
  live_run live-notify "notify on, " 1000 5000
}

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
  local t0 t_lock t1
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
  t1=$(date +%s.%N)
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
  record footprint "idle daemon peak RSS" \
    "$(max_of "$hwm" "$(json_get "$state/idle.run.json" max_rss_kb) / 1024")" MB "< 100" \
    "VmHWM / ru_maxrss"
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
  echo "$holder" >>"$state/pids"
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

# Set-up -----------------------------------------------------------------------------------------
if ((build)); then
  say "building pg2kafka ($build_dir) and the bench tools ($bench_build)"
  scripts/build.sh >/dev/null
  cmake -S bench -B "$bench_build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$bench_build" --parallel "$(nproc)" >/dev/null
fi
[[ -x "$bin" ]] || die "$bin not found: build first (scripts/build.sh) or drop --no-build"
for t in p2k-bench-run p2k-bench-writer p2k-bench-kafka; do
  [[ -x "$tools/$t" ]] || die "$tools/$t not found: run without --no-build"
done

if [[ -n "${BENCH_DATABASE_URL:-}" ]]; then
  export DATABASE_URL=$BENCH_DATABASE_URL
else
  say "starting a throwaway PostgreSQL on 127.0.0.1"
  started_pg=1
  # Durable settings (fsync, full_page_writes on), as on a real server: with fsync off commits
  # cost nothing and every per-statement overhead looks bigger than it is in production.
  P2K_PG_FSYNC=on tests/support/pg/pg_fixture.sh start "$state" >/dev/null 2>"$state/logs/pg_fixture.log" ||
    die "$(cat "$state/logs/pg_fixture.log")"
  load_env "$state/pg.env"
  psql -X -q "$P2K_TEST_PG_URL" -c "CREATE DATABASE p2k_bench"
  export DATABASE_URL="postgresql://postgres@127.0.0.1:$P2K_TEST_PG_PORT/p2k_bench"
fi
if [[ -n "${BENCH_KAFKA_BROKER:-}" ]]; then
  export KAFKA_BROKER=$BENCH_KAFKA_BROKER
  kafka_version="external broker (version not checked)"
else
  say "starting a Kafka broker on 127.0.0.1"
  started_kafka=1
  tests/support/kafka/kafka_fixture.sh start "$state" >/dev/null 2>"$state/logs/kafka_fixture.log" ||
    die "$(cat "$state/logs/kafka_fixture.log")"
  load_env "$state/kafka.env"
  export KAFKA_BROKER=$P2K_TEST_KAFKA_BROKERS
  kafka_version=$(ls "$P2K_TEST_KAFKA_LIBS" | sed -n 's/^kafka_[0-9.]*-\([0-9.]*\)\.jar$/\1/p' | head -n 1)
fi
P2K_BENCH_PGBENCH=$(command -v pgbench || true)
[[ -n "${P2K_TEST_PG_BIN:-}" && -x "${P2K_TEST_PG_BIN}/pgbench" ]] && P2K_BENCH_PGBENCH=$P2K_TEST_PG_BIN/pgbench
[[ -n "$P2K_BENCH_PGBENCH" ]] || die "pgbench not found (apt-get install postgresql-contrib)"

# The default pipeline with its environment interface; topics under a namespace of this run.
export PERFORM_MIGRATIONS=true KAFKA_CREATE_TOPICS=true KAFKA_TOPIC_PARTITIONS=$partitions
export TOPIC_NAMESPACE="bench$(date -u +%Y%m%d%H%M%S)"
export DRY_RUN=false
unset KAFKA_PRODUCER_URL
if [[ -n "${BENCH_PG2KAFKA_CONFIG:-}" ]]; then
  export PG2KAFKA_CONFIG=$BENCH_PG2KAFKA_CONFIG
else
  unset PG2KAFKA_CONFIG
fi
[[ "$KAFKA_BROKER" =~ ^(127\.[0-9.]+|localhost|\[?::1\]?):[0-9]+$ ]] ||
  note "warning: KAFKA_BROKER $KAFKA_BROKER is not a loopback address"

say "installing the pg2kafka schema (pg2kafka run --once on an empty queue)"
"$bin" run --once >/dev/null 2>"$state/logs/migrate.log" || {
  cat "$state/logs/migrate.log" >&2
  die "pg2kafka could not start"
}
db_name=$(sql_value "SELECT current_database()")
pg_version=$(sql_value "SHOW server_version")
p2k_version=$("$bin" --version | head -n 1)
rdkafka_version=$("$tools/p2k-bench-kafka" version)
cores=$(nproc)
started_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)
note "pg2kafka: $p2k_version; PostgreSQL $pg_version; librdkafka $rdkafka_version; Kafka $kafka_version; $cores cores"

# Run --------------------------------------------------------------------------------------------
failed=()
for w in "${workloads[@]}"; do
  fn="wl_${w//-/_}"
  # Each workload in a subshell with errexit (which an `if` around it would turn off): one that
  # breaks is reported and the others still run.
  rc=0
  set +e
  (
    set -e
    "$fn"
  )
  rc=$?
  set -e
  if ((rc != 0)); then
    failed+=("$w")
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$w" "FAILED" "error" "-" "-" "see the output above" >>"$results"
  fi
done

# Report -----------------------------------------------------------------------------------------
finished_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)
if [[ -z "$json_out" ]]; then
  json_out="bench/results/$(date -u +%Y%m%dT%H%M%SZ)"
  if ((quick)); then json_out+="-quick"; fi
  json_out+=".json"
fi
mkdir -p "$(dirname "$json_out")"

mode=full
if ((quick)); then mode=quick; fi
report_args=(--started-at="$started_at" --finished-at="$finished_at" --mode="$mode" --cores="$cores"
  --pg2kafka="$p2k_version" --postgresql="$pg_version" --librdkafka="$rdkafka_version"
  --kafka="$kafka_version")
for w in "${workloads[@]}"; do report_args+=(--workload="$w"); done
for w in "${failed[@]}"; do report_args+=(--failed="$w"); done
# The JSON file, and the table's rows on stdout.
table=$(python3 bench/lib/results.py "$results" "$json_out" "${report_args[@]}")

say "results ($cores cores; $p2k_version; PostgreSQL $pg_version; librdkafka $rdkafka_version; Kafka $kafka_version)"
column -t -s $'\t' <<<"$table"
echo
echo "JSON: $json_out"
if ((${#failed[@]})); then
  echo "bench.sh: workloads that broke: ${failed[*]}" >&2
  exit 1
fi
exit 0
