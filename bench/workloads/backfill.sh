# shellcheck shell=bash disable=SC2154 # its variables are set by scripts/bench.sh and bench/lib
# backfill: adopting a table online (issue 17). On a bf_rows-row table (bf_pk, with a primary
# key) and its twin without one (bf_nopk, whose setup still copies the snapshot under the lock):
#  1. how long writers wait at setup: pgbench updates random rows at a steady rate while
#     pg2kafka.setup runs on bf_pk, then on bf_nopk (the old, blocking snapshot copy);
#  2. the backfill rate: pg2kafka.setup, then pg2kafka run --once until the rows are delivered,
#     to Kafka (chunks of 5000 rows, the default, and of 20000) and to the stdout sink; against
#     the floor, the old path on bf_nopk (the copy into the queue, then draining it);
#  3. the writers' statement times while a backfill runs (pg2kafka.backfill with the daemon
#     running) and without one.
# See bench/README.md.

if ((quick)); then
  bf_rows=200000
  bf_setup_seconds=8   # each pgbench run of part 1
  bf_writer_seconds=10 # each pgbench run of part 3
else
  bf_rows=1000000
  bf_setup_seconds=10
  bf_writer_seconds=20
fi
bf_setup_at=3   # part 1: setup starts this many seconds after the writers
bf_request_at=2 # part 3: the backfill is asked for this many seconds after the writers
bf_throttle_chunk=1000 # part 3, throttled: rows per chunk
bf_throttle_pause=50   # part 3, throttled: backfill_pause (ms)
# One-row UPDATEs per second, all clients together: well below what the machine sustains (here,
# with fsync on, about 300/s on 2 clients and 500/s on 4), so that statement times are not those
# of a queue.
bf_clients=4
bf_rate=200
bf_chunk_default=5000 # pg-outbox's backfill_chunk_rows default
bf_chunk_large=20000
bf_reps=2 # rounds of part 2's runs (medians)

# bf_writers NAME TABLE SECONDS: pgbench (bench/sql/pgbench_update.sql: one-row UPDATEs of random
# rows among the bf_rows) at bf_rate per second for SECONDS, in the background, logging every
# statement to $state/NAME.log.*; sets bf_writers_pid and bf_writers_t0 (epoch seconds).
bf_writers() {
  rm -f "$state/$1.log".*
  bf_writers_t0=$(date +%s.%N)
  "$P2K_BENCH_PGBENCH" -n -c "$bf_clients" -j "$bf_clients" --rate "$bf_rate" -T "$3" \
    -l --log-prefix="$state/$1.log" -D "tbl=$2" -D "rows=$bf_rows" \
    -f "$repo/bench/sql/pgbench_update.sql" "$DATABASE_URL" >"$state/logs/$1.pgbench.out" \
    2>"$state/logs/$1.pgbench.err" &
  bf_writers_pid=$!
  remember_pids "$bf_writers_pid"
}

# bf_writers_wait NAME: waits for the pgbench run; sets bf_writers_tps (the rate it achieved).
bf_writers_wait() {
  local rc=0
  wait "$bf_writers_pid" || rc=$?
  forget_pids "$bf_writers_pid"
  bf_writers_tps=$(sed -n 's/^tps = \([0-9.]*\).*without initial.*/\1/p' "$state/logs/$1.pgbench.out")
  if ((rc != 0)) || [[ -z $bf_writers_tps ]]; then
    cat "$state/logs/$1.pgbench.out" "$state/logs/$1.pgbench.err" >&2
    die "backfill: pgbench ($1) failed"
  fi
  bf_writers_tps=$(calc "$bf_writers_tps" 0)
}

# bf_latency NAME FROM TO: "COUNT P50 P99 MAX" (ms) of the statements of the pgbench run NAME
# that started between FROM and TO (epoch seconds). pgbench logs, per statement, its time from
# when it was due (--rate), its end, and its lag (how late it started); the lag is left out: the
# figures are each statement's own round trip, a statement held up by a lock included.
bf_latency() {
  cat "$state/$1.log".* | awk -v from="$2" -v to="$3" '{
      own = ($3 - $7) / 1000; start = $5 + $6 / 1000000 - own / 1000
      if (start >= from && start <= to) print own }' | sort -g |
    awk '{ v[NR] = $1 } END {
      if (NR == 0) { print "0 - - -"; exit }
      printf "%d %.2f %.2f %.2f\n", NR, v[int(0.50 * (NR - 1)) + 1], v[int(0.99 * (NR - 1)) + 1], v[NR] }'
}

bf_median() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END {
  if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# bf_psql_ms SQL: runs one statement in its own session and prints its duration (ms, psql \timing).
bf_psql_ms() {
  psql -X -v ON_ERROR_STOP=1 "$DATABASE_URL" -c '\timing on' -c "$1" 2>"$state/logs/bf_psql.err" |
    awk '/^Time:/ { print $2 }'
}

# bf_pipeline FILE SINK CHUNK_ROWS [PAUSE_MS]: a pipeline file of the bench's own (the environment
# interface of the default one), with pg-outbox's backfill_chunk_rows (and backfill_pause); SINK
# kafka or stdout.
bf_pipeline() {
  local sink
  if [[ $2 == kafka ]]; then
    # shellcheck disable=SC2016 # ${...} is the pipeline file's own substitution
    sink='{"plugin": "kafka", "options": {"bootstrap_servers": "${KAFKA_BROKER}",
       "create_topics": "true", "topic_partitions": "${KAFKA_TOPIC_PARTITIONS:--1}"}}'
  else
    sink='{"plugin": "stdout"}'
  fi
  cat >"$1" <<EOF
{
  "source": {"plugin": "pg-outbox", "options": {"connection": "\${DATABASE_URL}",
     "topic_namespace": "\${TOPIC_NAMESPACE:-}", "backfill_chunk_rows": $3,
     "backfill_pause": "${4:-0}ms"}},
  "sink": $sink
}
EOF
}

# bf_send NAME TABLE SINK PIPELINE: pg2kafka.setup on TABLE (untracked), then pg2kafka run --once
# with PIPELINE ("" = the bench's pipeline) under p2k-bench-run, its stdout to /dev/null for the
# stdout sink; checks that every row was delivered (Kafka: the topic grew by bf_rows; a backfill:
# done, bf_rows rows) and the queue is empty. Sets bf_total_s (setup's start to run --once's
# exit), bf_setup_ms, bf_run_s, bf_cpu_s (the daemon's), bf_db_s (a backfill: started_at to
# finished_at in pg2kafka.backfills, else empty).
bf_send() {
  local name=$1 table=$2 sink=$3 pipeline=$4 count0=0 out="$state/$1.run.json" rc=0
  psql_q -c "SELECT pg2kafka.teardown('$table')" >/dev/null
  reset_queue
  psql_q -c "VACUUM ANALYZE $table" -c "CHECKPOINT"
  [[ $sink == kafka ]] && count0=$(topic_count "$table")
  local args=(run --once) stdout="$state/logs/$name.out"
  [[ -n $pipeline ]] && args=(run --config "$pipeline" --once)
  [[ $sink == stdout ]] && stdout=/dev/null
  local t0 t1
  t0=$(date +%s.%N)
  bf_setup_ms=$(bf_psql_ms "SELECT pg2kafka.setup('$table', 'sku')")
  [[ -n $bf_setup_ms ]] || die "backfill: setup of $table failed: $(cat "$state/logs/bf_psql.err")"
  "$tools/p2k-bench-run" --out "$out" -- "$bin" "${args[@]}" >"$stdout" 2>"$state/logs/$name.log" ||
    rc=$?
  t1=$(date +%s.%N)
  if ((rc != 0)); then
    tail -n 20 "$state/logs/$name.log" >&2
    die "backfill: pg2kafka run --once exited with $rc (log: $state/logs/$name.log)"
  fi
  local left
  left=$(queue_count)
  [[ $left -eq 0 ]] || die "$name: $left events left in the queue after run --once"
  if [[ $sink == kafka ]]; then
    local delivered
    delivered=$(($(topic_count "$table") - count0))
    [[ $delivered -eq $bf_rows ]] || die "$name: $delivered messages reached Kafka, expected $bf_rows"
  fi
  bf_db_s=""
  if [[ $table == bf_pk ]]; then
    local row
    row=$(sql_value "SELECT state || ' ' || rows_done || ' '
                       || extract(epoch FROM finished_at - started_at)
                       FROM pg2kafka.backfills WHERE relid = 'bf_pk'::regclass ORDER BY id DESC LIMIT 1")
    local b_state b_rows
    read -r b_state b_rows bf_db_s <<<"$row"
    [[ $b_state == "done" && $b_rows -eq $bf_rows ]] ||
      die "$name: the backfill is '$b_state' with $b_rows rows sent after run --once, expected done, $bf_rows"
  fi
  bf_total_s=$(calc "$t1 - $t0" 3)
  bf_run_s=$(json_get "$out" wall_s)
  bf_cpu_s=$(calc "$(json_get "$out" user_s) + $(json_get "$out" sys_s)" 2)
}

# bf_setup_under_writers NAME TABLE: setup on TABLE bf_setup_at seconds into a pgbench run of
# bf_setup_seconds; sets bf_setup_ms and bf_window ("COUNT P50 P99 MAX" of the statements that
# started from 1 s before setup to 2 s after it) and bf_before ("COUNT P50 P99 MAX" before that).
bf_setup_under_writers() {
  local name=$1 table=$2 s0 s1
  bf_writers "$name" "$table" "$bf_setup_seconds"
  sleep "$bf_setup_at"
  s0=$(date +%s.%N)
  bf_setup_ms=$(bf_psql_ms "SELECT pg2kafka.setup('$table', 'sku')")
  s1=$(date +%s.%N)
  bf_writers_wait "$name"
  [[ -n $bf_setup_ms ]] || die "backfill: setup of $table failed: $(cat "$state/logs/bf_psql.err")"
  bf_window=$(bf_latency "$name" "$(calc "$s0 - 1" 3)" "$(calc "$s1 + 2" 3)")
  bf_before=$(bf_latency "$name" "$(calc "$bf_writers_t0 + 0.5" 3)" "$(calc "$s0 - 1" 3)")
  [[ ${bf_window%% *} -gt 0 ]] || die "backfill: no writer statement around the setup of $table"
}

wl_backfill() {
  say "backfill: tables of $bf_rows rows, bf_pk (primary key) and bf_nopk (none: the old snapshot copy)"
  reset_queue
  psql_q -c "DROP TABLE IF EXISTS bf_pk, bf_nopk" -c "$(drain_table_sql bf_pk)" \
    -c "CREATE TABLE bf_nopk (id bigint NOT NULL, sku text, name text, price numeric(10,2),
          qty int, note text)" >/dev/null
  local from to
  for ((from = 1; from <= bf_rows; from += 500000)); do
    to=$((from + 499999 < bf_rows ? from + 499999 : bf_rows))
    psql_q -c "$(drain_rows_sql bf_pk "$from" "$to")"
  done
  # A plain index for the writers' UPDATE ... WHERE id = ...: not unique, so no key to read the
  # table by in chunks (pg2kafka.backfill_order_key), and setup copies it as before.
  psql_q -c "INSERT INTO bf_nopk SELECT * FROM bf_pk" -c "CREATE INDEX ON bf_nopk (id)" \
    -c "VACUUM ANALYZE bf_pk" -c "VACUUM ANALYZE bf_nopk" -c "CHECKPOINT"
  create_topic bf_pk
  create_topic bf_nopk
  local k=$((bf_rows / 1000))k
  local -A bf_rate_of=()

  # --- 1. writers at setup ------------------------------------------------------------------
  say "backfill: pgbench one-row UPDATEs at $bf_rate/s ($bf_clients clients), setup after ${bf_setup_at}s; no daemon"
  local count p50 p99 max bcount bp50 bp99 bmax setup_pk_max setup_nopk_max
  bf_setup_under_writers bf_setup_pk bf_pk
  read -r count p50 p99 max <<<"$bf_window"
  read -r bcount bp50 bp99 bmax <<<"$bf_before"
  setup_pk_max=$max
  record backfill "setup $k rows with key: longest writer statement" "$max" ms "<= 50" \
    "$count UPDATEs from 1 s before setup to 2 s after: p50 $p50, p99 $p99 ms; before: $bcount, p99 $bp99, max $bmax ms; $bf_writers_tps/s achieved"
  record backfill "setup $k rows with key: setup duration" "$(calc "$bf_setup_ms" 1)" ms "-" \
    "triggers and a backfill request, under the table's lock"
  bf_setup_under_writers bf_setup_nopk bf_nopk
  read -r count p50 p99 max <<<"$bf_window"
  read -r bcount bp50 bp99 bmax <<<"$bf_before"
  setup_nopk_max=$max
  record backfill "setup $k rows without key (old copy): longest writer statement" "$max" ms "-" \
    "$count UPDATEs from 1 s before setup to 2 s after: p50 $p50, p99 $p99 ms; before: $bcount, p99 $bp99, max $bmax ms; $bf_writers_tps/s achieved"
  record backfill "setup $k rows without key (old copy): setup duration" "$(calc "$bf_setup_ms" 0)" ms "-" \
    "the snapshot copied into the queue under the table's lock"
  record backfill "longest writer statement at setup, without key / with key" \
    "$(calc "$setup_nopk_max / $setup_pk_max" 1)" ratio "-"
  # The backfill setup asked for is cancelled (teardown; bf_send sets the tables up again). The
  # queue (bf_nopk's copy, the captured UPDATEs) is drained to Kafka, untimed: it warms the broker,
  # its topics and PostgreSQL up, which the first timed run would otherwise pay for alone.
  psql_q -c "SELECT pg2kafka.teardown('bf_pk')" -c "SELECT pg2kafka.teardown('bf_nopk')" >/dev/null
  say "backfill: draining what part 1 queued ($(queue_count) events), untimed: a warm-up"
  "$tools/p2k-bench-run" --out "$state/bf_warmup.run.json" -- "$bin" run --once \
    >"$state/logs/bf_warmup.out" 2>"$state/logs/bf_warmup.log" ||
    die "backfill: the warm-up drain failed (log: $state/logs/bf_warmup.log)"
  [[ $(queue_count) -eq 0 ]] || die "backfill: events left in the queue after the warm-up drain"

  # --- 2. the backfill rate, and the floor ----------------------------------------------------
  local chunk_pipeline="$state/backfill-kafka-$bf_chunk_large.json" \
    stdout_pipeline="$state/backfill-stdout.json" rep v
  bf_pipeline "$chunk_pipeline" kafka "$bf_chunk_large"
  bf_pipeline "$stdout_pipeline" stdout "$bf_chunk_default"
  local -A bf_total=() bf_drain=() bf_setup=() bf_cpu=() bf_db=()
  # The variants, interleaved, bf_reps times: NAME TABLE SINK PIPELINE.
  local variants=("kafka bf_pk kafka -" "kafka_floor bf_nopk kafka -"
    "stdout bf_pk stdout $stdout_pipeline" "stdout_floor bf_nopk stdout $stdout_pipeline"
    "kafka_$bf_chunk_large bf_pk kafka $chunk_pipeline")
  local name table sink pipeline
  for ((rep = 1; rep <= bf_reps; rep++)); do
    say "backfill: setup, then pg2kafka run --once until the $bf_rows rows are delivered, round $rep/$bf_reps:" \
      "Kafka, floor, stdout, floor, Kafka with chunks of $bf_chunk_large"
    for v in "${variants[@]}"; do
      read -r name table sink pipeline <<<"$v"
      [[ $pipeline == - ]] && pipeline=""
      bf_send "bf_$name" "$table" "$sink" "$pipeline"
      bf_total[$name]+="$(calc "$bf_rows / $bf_total_s" 0) "
      bf_drain[$name]+="$(calc "$bf_rows / $bf_run_s" 0) "
      bf_setup[$name]+="$(calc "$bf_setup_ms" 0) "
      bf_cpu[$name]+="$(calc "$bf_cpu_s * 1000000 / $bf_rows" 2) "
      bf_db[$name]+="${bf_db_s:+$(calc "$bf_db_s" 2) }"
      note "$name: ${bf_total_s}s from setup to run --once's exit (setup $(calc "$bf_setup_ms" 0) ms," \
        "run --once ${bf_run_s}s, ${bf_cpu_s}s of daemon CPU)"
    done
  done
  psql_q -c "SELECT pg2kafka.teardown('bf_nopk')" >/dev/null
  reset_queue
  local m
  for v in kafka stdout "kafka_$bf_chunk_large"; do
    m=$(calc "$(bf_median "${bf_total[$v]}")" 0)
    bf_rate_of[$v]=$m
    local target="-" chunk=$bf_chunk_default sink_name=Kafka
    [[ $v == kafka* ]] && target=">= 100000"
    [[ $v == stdout ]] && sink_name="stdout (/dev/null)"
    [[ $v == "kafka_$bf_chunk_large" ]] && chunk=$bf_chunk_large
    record backfill "backfill $k rows to $sink_name, chunks of $chunk: rate" "$m" rows/s "$target" \
      "setup to run --once's exit, median of ${bf_total[$v]}; setup ${bf_setup[$v]}ms; request to done in the database ${bf_db[$v]}s"
    record backfill "backfill $k rows to $sink_name, chunks of $chunk: daemon CPU per row" \
      "$(calc "$(bf_median "${bf_cpu[$v]}")" 2)" us "-" "median of ${bf_cpu[$v]}"
  done
  local floor_total floor_drain
  for v in kafka stdout; do
    sink_name=Kafka
    [[ $v == stdout ]] && sink_name="stdout (/dev/null)"
    floor_total=$(calc "$(bf_median "${bf_total[${v}_floor]}")" 0)
    floor_drain=$(calc "$(bf_median "${bf_drain[${v}_floor]}")" 0)
    record backfill "floor $k rows to $sink_name: setup copy + drain rate" "$floor_total" rows/s "-" \
      "setup (copy into the queue, writers blocked) to run --once's exit, median of ${bf_total[${v}_floor]}; setup ${bf_setup[${v}_floor]}ms"
    record backfill "floor $k rows to $sink_name: drain alone rate" "$floor_drain" rows/s "-" \
      "run --once incl. start, median of ${bf_drain[${v}_floor]}; daemon CPU per row ${bf_cpu[${v}_floor]}us"
    record backfill "backfill / floor (setup + drain), $sink_name" "$(calc "${bf_rate_of[$v]} / $floor_total" 2)" ratio "-"
    record backfill "backfill / floor drain alone, $sink_name" "$(calc "${bf_rate_of[$v]} / $floor_drain" 2)" ratio "-"
  done
  record backfill "backfill rate, chunks of $bf_chunk_large / $bf_chunk_default (Kafka)" \
    "$(calc "${bf_rate_of[kafka_$bf_chunk_large]} / ${bf_rate_of[kafka]}" 2)" ratio "-"

  # --- 3. writers during a backfill ---------------------------------------------------------
  # Twice: the default daemon (chunks as fast as they are sent), and one throttled with
  # backfill_pause (chunks of bf_throttle_chunk rows, bf_throttle_pause ms apart).
  local throttled_pipeline="$state/backfill-kafka-throttled.json"
  bf_pipeline "$throttled_pipeline" kafka "$bf_throttle_chunk" "$bf_throttle_pause"
  say "backfill: pgbench one-row UPDATEs at $bf_rate/s for ${bf_writer_seconds}s on bf_pk (tracked, daemon running), without and with a backfill"
  psql_q -c "VACUUM ANALYZE bf_pk" -c "CHECKPOINT"
  start_daemon bf_daemon
  local w_to base during b0 b1 row b_state b_rows base_tps variant label
  bf_writers bf_writers_base bf_pk "$bf_writer_seconds"
  bf_writers_wait bf_writers_base
  base_tps=$bf_writers_tps
  base=$(bf_latency bf_writers_base "$(calc "$bf_writers_t0 + $bf_request_at" 3)" "$(date +%s.%N)")
  wait_queue_empty 120 || die "backfill: $(queue_count) events still queued 120 s after the writers"
  local bc bp50 bp99 bmax dc dp50 dp99 dmax
  read -r bc bp50 bp99 bmax <<<"$base"
  record backfill "writers without backfill: statement p99" "$bp99" ms "-" \
    "$bc one-row UPDATEs at $bf_rate/s ($base_tps/s achieved), $bf_clients clients, daemon draining: p50 $bp50, max $bmax ms"
  for variant in default throttled; do
    if [[ $variant == throttled ]]; then
      stop_daemon bf_daemon
      PG2KAFKA_CONFIG=$throttled_pipeline start_daemon bf_daemon
      label="during a throttled backfill (chunks of $bf_throttle_chunk, backfill_pause ${bf_throttle_pause}ms)"
    else
      label="during backfill"
    fi
    psql_q -c "CHECKPOINT"
    bf_writers "bf_writers_$variant" bf_pk "$bf_writer_seconds"
    sleep "$bf_request_at"
    # started_at is the requesting transaction's now().
    b0=$(sql_value "SELECT extract(epoch FROM now()) FROM pg2kafka.backfill('bf_pk')")
    bf_writers_wait "bf_writers_$variant"
    b1=$(date +%s.%N)
    row=$(sql_value "SELECT state || ' ' || rows_done || ' ' || coalesce(extract(epoch FROM finished_at)::text, '')
                       FROM pg2kafka.backfills WHERE relid = 'bf_pk'::regclass ORDER BY id DESC LIMIT 1")
    read -r b_state b_rows w_to <<<"$row"
    local until_note="the writers' end (backfill still running, cancelled: $b_rows rows sent)"
    if [[ $b_state == "done" ]]; then
      until_note="the backfill's end"
    else
      psql_q -c "SELECT pg2kafka.cancel_backfill('bf_pk')" >/dev/null
      w_to=$b1
    fi
    during=$(bf_latency "bf_writers_$variant" "$b0" "$w_to")
    wait_queue_empty 120 || die "backfill: $(queue_count) events still queued 120 s after the writers"
    read -r dc dp50 dp99 dmax <<<"$during"
    ((dc > 0)) || die "backfill: no writer statement while the backfill ran"
    record backfill "writers $label: statement p99" "$dp99" ms "-" \
      "$dc UPDATEs from the request to $until_note, $(calc "$w_to - $b0" 1) s: p50 $dp50, max $dmax ms; $bf_writers_tps/s achieved"
    record backfill "writers $label / without: p99" "$(calc "$dp99 / $bp99" 2)" ratio "<= 2"
    record backfill "writers $label / without: p50" "$(calc "$dp50 / $bp50" 2)" ratio "-"
    record backfill "backfill rate while the writers ran, $variant" "$(calc "$b_rows / ($w_to - $b0)" 0)" rows/s "-" \
      "$b_rows rows acknowledged in $(calc "$w_to - $b0" 1) s"
  done
  stop_daemon bf_daemon
  psql_q -c "DROP TABLE bf_pk, bf_nopk" -c "DELETE FROM pg2kafka.backfills WHERE table_name IN ('bf_pk', 'bf_nopk')"
  reset_queue
}
