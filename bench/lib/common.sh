# shellcheck shell=bash disable=SC2154 # its variables are set by scripts/bench.sh and bench/lib
# The helpers every workload uses (sourced by scripts/bench.sh; bench/lib/setup.sh sets the
# variables they read: state, results, bin, tools, DATABASE_URL, KAFKA_BROKER, TOPIC_NAMESPACE,
# db_name): progress output, recording a figure, psql sessions, topics, the queue, filling a
# backlog, running the daemon and reading its costs.

partitions=3 # of every topic the bench creates (and KAFKA_TOPIC_PARTITIONS of the daemon's)

say() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }
note() { printf '   %s\n' "$*" >&2; }
die() {
  echo "bench.sh: $*" >&2
  exit 1
}

# record_row WORKLOAD METRIC VALUE UNIT TARGET [NOTE]: one line of $results (tab-separated), read
# by bench/lib/results.py.
record_row() {
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "${5:--}" "${6:-}" >>"$results"
}

# record WORKLOAD METRIC VALUE UNIT TARGET [NOTE]
#   TARGET is "OP NUMBER" (OP one of <= >= < >) or "-"; the table and the JSON say if it is met.
record() {
  record_row "$@"
  printf '   %-34s %14s %-9s target %s\n' "$2" "$3" "$4" "${5:--}" >&2
}

# json_get FILE KEY: a number from the flat one-line JSON objects the bench tools print, as they
# print it.
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

wait_queue_empty() { # TIMEOUT_S
  local deadline=$((SECONDS + $1))
  while ((SECONDS < deadline)); do
    [[ $(queue_count) -eq 0 ]] && return 0
    sleep 0.2
  done
  return 1
}

# The event rows of the drain, write-path and snapshot tables: about 150 bytes of JSON per event
# (checked and reported).
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

# Processes started in the background are listed in $state/pids, so that the cleanup
# (bench/lib/setup.sh) ends them, and only them, by pid.
remember_pids() {
  local pid
  for pid in "$@"; do echo "$pid" >>"$state/pids"; done
}
# Forgets pids that have been waited for, so that the cleanup never signals a reused pid.
forget_pids() {
  local pid
  for pid in "$@"; do sed -i "/^$pid\$/d" "$state/pids"; done
}

# start_daemon NAME: pg2kafka run in the background under p2k-bench-run; sets daemon_pid (the
# pg2kafka process) and runner_pid. The cost report goes to $state/NAME.run.json.
start_daemon() {
  local name=$1
  rm -f "$state/$name.pid"
  "$tools/p2k-bench-run" --out "$state/$name.run.json" --pid-file "$state/$name.pid" -- \
    "$bin" run >"$state/logs/$name.out" 2>"$state/logs/$name.log" &
  runner_pid=$!
  remember_pids "$runner_pid"
  for _ in $(seq 1 100); do
    [[ -s "$state/$name.pid" ]] && break
    sleep 0.05
  done
  daemon_pid=$(cat "$state/$name.pid")
  remember_pids "$daemon_pid"
  # Running once the host logs that the pipeline runs (plugins opened, connected).
  for _ in $(seq 1 200); do
    grep -q "pipeline running" "$state/logs/$name.log" 2>/dev/null && return 0
    kill -0 "$daemon_pid" 2>/dev/null || break
    sleep 0.05
  done
  tail -n 20 "$state/logs/$name.log" >&2
  die "pg2kafka did not start (log: $state/logs/$name.log)"
}

stop_daemon() { # NAME
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
# CPU seconds used so far by several processes, summed; fails (status 1, nothing printed) if one
# of them is gone, so that a sum over a window is never taken over different processes.
cpu_seconds_sum() {
  local pid ticks=0 t
  for pid in "$@"; do
    [[ -r "/proc/$pid/stat" ]] || return 1
    t=$(awk '{ print $14 + $15 }' "/proc/$pid/stat") || return 1
    ticks=$((ticks + t))
  done
  calc "$ticks / $(getconf CLK_TCK)" 3
}
# The pids of the PostgreSQL client backends whose application_name is NAME, space-separated
# (empty if none). The daemon's session is `pg2kafka` (pg-outbox's application_name option, as
# the default pipeline leaves it). Their /proc entries are local only when the bench started
# PostgreSQL itself ($started_pg).
backend_pids() {
  sql_value "SELECT coalesce(string_agg(pid::text, ' ' ORDER BY pid), '') FROM pg_stat_activity
             WHERE application_name = '$1' AND backend_type = 'client backend'"
}
rss_mb() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
# Peak RSS so far (VmHWM), in MB.
hwm_mb() { awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
max_of() { awk "BEGIN { a = $1; b = $2; printf \"%.1f\", (a > b ? a : b) }"; }

# record_peak_rss WORKLOAD METRIC NAME HWM_MB: the larger of the daemon's VmHWM (sampled before
# it stopped) and the ru_maxrss p2k-bench-run reported for run NAME.
record_peak_rss() {
  record "$1" "$2" "$(max_of "$4" "$(json_get "$state/$3.run.json" max_rss_kb) / 1024")" MB "< 100" \
    "VmHWM / ru_maxrss"
}

# drain_once NAME N LABEL [WORKLOAD [RATE_TARGET]]: runs pg2kafka run --once on a backlog of N,
# checks that all N reached the topic and none is left queued, and records its figures; sets
# drain_rate.
drain_once() {
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
