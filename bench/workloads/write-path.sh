# shellcheck shell=bash disable=SC2154 # its variables are set by scripts/bench.sh and bench/lib
# write-path: what capture costs writers (issues 5 and 16). See bench/README.md.
#  1. bulk: INSERT, UPDATE and DELETE of wp_rows rows on a tracked table and its untracked twin;
#  2. one-row: pgbench single-row INSERT, UPDATE and DELETE at 2 and 4 clients on narrow tables
#     without triggers (untracked), with pg2kafka's statement-level and row-level capture, and
#     with two minimal reference triggers (bench/sql/reference_triggers.sql), interleaved, the
#     order rotated each round; medians and their ratios to untracked. No daemon runs;
#  3. WAL bytes per captured one-row statement, above untracked (measured before 2, while all the
#     tables have the same history);
#  4. the one-row runs again while the daemon drains (untracked, statement, row), and the CPU per
#     event that draining costs: the daemon's PostgreSQL backend and the daemon itself.

# The one-row runs are many (kinds x client counts x variants x rounds, twice): many short runs,
# interleaved, resist the machine's bursts of noise better than a few long ones. Full: about
# 9 minutes in all with the row variant (7 without); quick: about 3 (2.5).
if ((quick)); then
  wp_reps=3
  onerow_seconds=1
  onerow_rounds=2
  wal_statements=1000
else
  wp_reps=5
  onerow_seconds=2
  onerow_rounds=4
  wal_statements=5000
fi
wp_rows=100000
onerow_rows=100000 # of each one-row table; UPDATEs pick among them, they are never deleted
onerow_clients=(2 4)
onerow_kinds=(insert update delete)
onerow_daemon_app=pg2kafka # the daemon's application_name (pg-outbox's default)

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

# rotated N WORD...: the words, rotated left N times (the order of a round).
rotated() {
  local n=$1
  shift
  local words=("$@")
  n=$((n % ${#words[@]}))
  echo "${words[@]:n}" "${words[@]:0:n}"
}

# --- the one-row tables -------------------------------------------------------------------------
# The narrow table of issue 16, one per variant: id bigint PRIMARY KEY, sku text (the key),
# price numeric, pad text; onerow_rows rows. Ids above onerow_rows come from TABLE_ins (INSERT
# runs, top-ups) and are deleted in order by TABLE_del (DELETE runs), so UPDATEs always find
# their row and every DELETE deletes one.
onerow_table() { echo "pgb_${1//-/_}"; } # VARIANT -> its table
onerow_row_sql() { echo "$1, 'SKU-' || lpad($1::text, 8, '0'), ($1 % 10000) / 100.0, 'pad ' || md5($1::text)"; }

onerow_create() { # TABLE
  psql_q -c "DROP TABLE IF EXISTS $1" \
    -c "CREATE TABLE $1 (id bigint PRIMARY KEY, sku text, price numeric, pad text)" \
    -c "INSERT INTO $1 SELECT $(onerow_row_sql g) FROM generate_series(1, $onerow_rows) g" \
    -c "CREATE SEQUENCE ${1}_ins START $((onerow_rows + 1)) OWNED BY $1.id" \
    -c "CREATE SEQUENCE ${1}_del START $((onerow_rows + 1)) OWNED BY $1.id"
  if [[ $onerow_url != "$DATABASE_URL" ]]; then
    psql_q -c "GRANT SELECT, INSERT, UPDATE, DELETE ON $1 TO p2k_bench_writer" \
      -c "GRANT USAGE ON SEQUENCE ${1}_ins, ${1}_del TO p2k_bench_writer"
  fi
}

# onerow_track VARIANT TABLE: its capture triggers (none for untracked).
onerow_track() {
  case $1 in
    untracked) ;;
    statement) psql_q -c "SELECT pg2kafka.setup('$2', 'sku')" >/dev/null ;;
    row) psql_q -c "SELECT pg2kafka.setup('$2', 'sku', '{\"capture\": \"row\"}')" >/dev/null ;;
    ref-statement) psql_q -c "SELECT bench_ref_track('$2', 'statement')" >/dev/null ;;
    ref-row) psql_q -c "SELECT bench_ref_track('$2', 'row')" >/dev/null ;;
    *) die "write-path: unknown variant $1" ;;
  esac
}

# The rows above onerow_rows that TABLE_del has not reached yet (negative: DELETEs ran past them).
onerow_ahead() { # TABLE
  sql_value "SELECT (SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM ${1}_ins)
               - (SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM ${1}_del)"
}
# How many rows a DELETE run may find ahead (raised to twice the largest run seen).
onerow_delete_want=$((onerow_seconds * 20000))
# Tops TABLE up to onerow_delete_want rows ahead of its DELETEs, by one INSERT (captured like any
# other: onerow_prepare then empties the queue, or waits for the daemon to drain it).
onerow_refill() { # TABLE
  local ahead
  ahead=$(onerow_ahead "$1")
  ((ahead < onerow_delete_want)) || return 0
  psql_q -c "INSERT INTO $1 SELECT $(onerow_row_sql g) FROM
               (SELECT nextval('${1}_ins') AS g FROM generate_series(1, $((onerow_delete_want - ahead)))) s"
}

# onerow_prepare KIND TABLE DAEMON: before each run, the table vacuumed and analyzed, the queues
# empty (truncated, or with the daemon running, drained by it), a CHECKPOINT.
onerow_prepare() {
  if [[ $1 == delete ]]; then onerow_refill "$2"; fi
  if (($3)); then
    psql_q -c "VACUUM ANALYZE $2"
    wait_queue_empty 120 || die "write-path: $(queue_count) events still queued 120 s after a run"
    psql_q -c "CHECKPOINT"
  else
    psql_q -c "VACUUM ANALYZE $2" -c "TRUNCATE pg2kafka.event_batches, bench_ref_queue" -c "CHECKPOINT"
  fi
}

# onerow_pgbench KIND CLIENTS TABLE PGBENCH_OPTION...: one pgbench run of bench/sql/pgbench_KIND.sql
# with synchronous_commit = $onerow_sync; sets run_tps and run_xacts (statements run).
onerow_sync=on
onerow_pgbench() {
  local kind=$1 c=$2 t=$3 rc=0 out="$state/logs/pgbench.out"
  shift 3
  PGOPTIONS="-c synchronous_commit=$onerow_sync" "$P2K_BENCH_PGBENCH" -n -c "$c" -j "$c" "$@" \
    -D "tbl=$t" -D "ins='${t}_ins'" -D "del='${t}_del'" -D "rows=$onerow_rows" \
    -f "$repo/bench/sql/pgbench_$kind.sql" "$onerow_url" >"$out" 2>"$state/logs/pgbench.err" || rc=$?
  run_tps=$(sed -n 's/^tps = \([0-9.]*\).*without initial.*/\1/p' "$out")
  run_xacts=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$out")
  if ((rc != 0)) || [[ -z "$run_tps" || -z "$run_xacts" ]]; then
    cat "$out" "$state/logs/pgbench.err" >&2
    die "write-path: pgbench $kind -c $c on $t failed"
  fi
  if [[ $kind == delete ]]; then
    (($(onerow_ahead "$t") >= 0)) ||
      die "write-path: the DELETEs on $t ran past the $onerow_delete_want rows topped up"
    ((2 * run_xacts <= onerow_delete_want)) || onerow_delete_want=$((2 * run_xacts))
  fi
}

# onerow_runs DAEMON VARIANT...: onerow_rounds rounds of each kind at each client count on the
# variants' tables, the variants' order rotated each round; tps into onerow_tps[DAEMON.KIND.C.V].
# With DAEMON 1 (the daemon running), each tracked run is also a window of drain cost: from just
# before pgbench to the queue being empty again, the CPU seconds of the daemon's backend(s) and
# of the daemon, and the events delivered (checked against the statements run); summed per
# variant and kind in drain_backend_s, drain_daemon_s, drain_events (and the windows' length in
# drain_window_s).
onerow_runs() {
  local daemon=$1 round kind c v t order line
  shift
  local count0 count1 pids=() b0 b1 d0 d1 w0 k
  local -A counted=() # a topic's count at the end of the last window (a DELETE's top-up adds to it)
  for ((round = 0; round < onerow_rounds; round++)); do
    for kind in "${onerow_kinds[@]}"; do
      for c in "${onerow_clients[@]}"; do
        read -r -a order <<<"$(rotated "$round" "$@")"
        line=""
        for v in "${order[@]}"; do
          t=$(onerow_table "$v")
          onerow_prepare "$kind" "$t" "$daemon"
          local window=0
          if ((daemon)) && [[ $v != untracked ]]; then
            window=1
            if [[ $kind == delete || -z "${counted[$t]:-}" ]]; then
              count0=$(topic_count "$t")
            else
              count0=${counted[$t]}
            fi
            pids=()
            if ((started_pg)); then read -r -a pids <<<"$(backend_pids "$onerow_daemon_app")"; fi
            b0=""
            if ((${#pids[@]})); then b0=$(cpu_seconds_sum "${pids[@]}") || b0=""; fi
            d0=$(cpu_seconds "$daemon_pid")
            w0=$(date +%s.%N)
          fi
          onerow_pgbench "$kind" "$c" "$t" -T "$onerow_seconds"
          onerow_tps[$daemon.$kind.$c.$v]+="$run_tps "
          line+=" $v $(calc "$run_tps" 0)"
          if ((window)); then
            wait_queue_empty 120 || die "write-path: $(queue_count) events still queued 120 s after a run"
            d1=$(cpu_seconds "$daemon_pid")
            drain_window_s[$v.$kind]=$(calc "${drain_window_s[$v.$kind]:-0} + $(date +%s.%N) - $w0" 3)
            b1=""
            if [[ -n "$b0" ]]; then
              b1=$(cpu_seconds_sum "${pids[@]}") ||
                note "the daemon's backend ${pids[*]} is gone: window left out"
            fi
            count1=$(topic_count "$t")
            counted[$t]=$count1
            (((count1 - count0) >= run_xacts)) ||
              die "write-path: $t: $((count1 - count0)) events delivered for $run_xacts one-row statements"
            k=$v.$kind
            drain_daemon_s[$k]=$(calc "${drain_daemon_s[$k]:-0} + $d1 - $d0" 3)
            drain_events[$k]=$((${drain_events[$k]:-0} + count1 - count0))
            if [[ -n "$b1" ]]; then
              drain_backend_s[$k]=$(calc "${drain_backend_s[$k]:-0} + $b1 - $b0" 3)
              drain_backend_events[$k]=$((${drain_backend_events[$k]:-0} + count1 - count0))
            fi
          fi
        done
        note "round $((round + 1))/$onerow_rounds, $kind -c $c, tps:$line"
      done
    done
  done
}

# The target of VARIANT's ratio to untracked at CLIENTS clients, without (0) or with (1) the daemon.
onerow_target() { # DAEMON CLIENTS VARIANT
  [[ $3 == statement || $3 == row ]] || {
    echo "-"
    return
  }
  case $1.$2 in
    0.2) echo ">= 0.90" ;;
    0.4) echo ">= 0.78" ;;
    1.2) echo ">= 0.85" ;;
    1.4) echo ">= 0.70" ;;
    *) echo "-" ;;
  esac
}

# onerow_record DAEMON VARIANT...: the median tps of each and the ratios to untracked.
onerow_record() {
  local daemon=$1 kind c v mu mv suffix=""
  shift
  ((daemon)) && suffix=", daemon draining"
  for kind in "${onerow_kinds[@]}"; do
    for c in "${onerow_clients[@]}"; do
      mu=$(median <<<"${onerow_tps[$daemon.$kind.$c.untracked]}")
      record write-path "pgbench $kind $c clients, untracked$suffix" "$(calc "$mu" 0)" tps "-" \
        "median of ${onerow_tps[$daemon.$kind.$c.untracked]}"
      for v in "$@"; do
        [[ $v == untracked ]] && continue
        mv=$(median <<<"${onerow_tps[$daemon.$kind.$c.$v]}")
        record write-path "pgbench $kind $c clients, $v$suffix" "$(calc "$mv" 0)" tps "-" \
          "median of ${onerow_tps[$daemon.$kind.$c.$v]}"
        record write-path "pgbench $kind $c clients, $v / untracked$suffix" "$(calc "$mv / $mu" 2)" \
          ratio "$(onerow_target "$daemon" "$c" "$v")"
      done
    done
  done
}

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

  # --- one-row statements ----------------------------------------------------------------------
  say "write-path: one-row tables ($onerow_rows rows each): untracked, statement, row, ref-statement, ref-row"
  psql_q -f "$repo/bench/sql/reference_triggers.sql" >/dev/null
  # pgbench writes as a role with only an application's privileges on its tables, as the SQL
  # layer's privilege model has it (a superuser would bypass the queue's row-level security).
  onerow_url=$DATABASE_URL
  if [[ $DATABASE_URL == postgresql://postgres@* ]]; then
    psql_q -c "DO \$\$ BEGIN CREATE ROLE p2k_bench_writer LOGIN;
                 EXCEPTION WHEN duplicate_object THEN NULL; END \$\$" \
      -c "GRANT INSERT ON bench_ref_queue TO p2k_bench_writer" \
      -c "GRANT USAGE ON SEQUENCE bench_ref_queue_id_seq TO p2k_bench_writer" >/dev/null
    onerow_url=postgresql://p2k_bench_writer@${DATABASE_URL#postgresql://postgres@}
  else
    note "one-row runs as the role of BENCH_DATABASE_URL: a superuser leaves out what row-level security costs"
  fi
  local v variants=() err
  for v in untracked statement row ref-statement ref-row; do
    t=$(onerow_table "$v")
    onerow_create "$t"
    if ! err=$(onerow_track "$v" "$t" 2>&1); then
      [[ $v == row ]] || die "write-path: could not set up $v capture on $t: $err"
      note "row variant skipped: pg2kafka.setup('$t', 'sku', '{\"capture\": \"row\"}') failed" \
        "(row-level capture, function set 4, not in this build?): $(head -n 1 <<<"$err")"
      psql_q -c "DROP TABLE $t"
      continue
    fi
    variants+=("$v")
  done
  local drained=()
  for v in "${variants[@]}"; do
    [[ $v == untracked || $v == statement || $v == row ]] && drained+=("$v")
  done

  # WAL first, while every table has the same history (the same statement counts): then the
  # full-page writes, most of the WAL of a statement at a random page, match between variants.
  say "write-path: WAL per one-row statement, $wal_statements statements each (1 client), after a CHECKPOINT"
  local lsn0 kind phase_start=$SECONDS
  local -A wal_bytes=()
  onerow_sync=off # the same WAL, without waiting for each flush
  for kind in "${onerow_kinds[@]}"; do
    for v in "${variants[@]}"; do
      t=$(onerow_table "$v")
      onerow_prepare "$kind" "$t" 0
      lsn0=$(sql_value "SELECT pg_current_wal_insert_lsn()")
      onerow_pgbench "$kind" 1 "$t" -t "$wal_statements"
      wal_bytes[$kind.$v]=$(sql_value "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '$lsn0')")
    done
    note "$kind: $(for v in "${variants[@]}"; do printf '%s %s B  ' "$v" "${wal_bytes[$kind.$v]}"; done)"
  done
  onerow_sync=on
  note "took $((SECONDS - phase_start)) s"

  declare -A onerow_tps=() drain_daemon_s=() drain_backend_s=() drain_events=() drain_backend_events=() \
    drain_window_s=()
  say "write-path: pgbench one-row ${onerow_kinds[*]}, -c/-j ${onerow_clients[*]}, -T $onerow_seconds," \
    "$onerow_rounds rounds, no daemon: ${variants[*]}"
  phase_start=$SECONDS
  onerow_runs 0 "${variants[@]}"
  note "took $((SECONDS - phase_start)) s"
  # The figures of issue 5's single-row target under their earlier names: statement capture
  # (pg2kafka's default) at 2 clients.
  local mt mp
  for kind in insert update; do
    mt=$(median <<<"${onerow_tps[0.$kind.2.statement]}")
    mp=$(median <<<"${onerow_tps[0.$kind.2.untracked]}")
    record write-path "pgbench $kind tracked" "$(calc "$mt" 0)" tps "-" \
      "statement capture, 2 clients; median of ${onerow_tps[0.$kind.2.statement]}"
    record write-path "pgbench $kind untracked" "$(calc "$mp" 0)" tps "-" \
      "2 clients; median of ${onerow_tps[0.$kind.2.untracked]}"
    record write-path "pgbench $kind tracked / untracked" "$(calc "$mt / $mp" 2)" ratio ">= 0.85"
  done
  onerow_record 0 "${variants[@]}"
  local wu
  for kind in "${onerow_kinds[@]}"; do
    wu=${wal_bytes[$kind.untracked]}
    record write-path "WAL per one-row $kind, untracked" "$(calc "$wu / $wal_statements" 0)" B "-" \
      "$wu B / $wal_statements statements, full-page writes included"
    for v in "${variants[@]}"; do
      [[ $v == untracked ]] && continue
      record write-path "WAL per one-row $kind, $v, above untracked" \
        "$(calc "(${wal_bytes[$kind.$v]} - $wu) / $wal_statements" 0)" B "-" \
        "(${wal_bytes[$kind.$v]} - $wu) B / $wal_statements statements, full-page writes included in both"
    done
  done

  say "write-path: pgbench one-row statements while the daemon drains: ${drained[*]}"
  psql_q -c "TRUNCATE pg2kafka.event_batches, bench_ref_queue" -c "VACUUM ANALYZE pg2kafka.event_batches"
  for v in "${drained[@]}"; do
    [[ $v == untracked ]] || create_topic "$(onerow_table "$v")"
  done
  ((started_pg)) || note "PostgreSQL was not started by the bench: its backends' CPU is not measured"
  start_daemon write_path_onerow
  if ((started_pg)) && [[ -z $(backend_pids "$onerow_daemon_app") ]]; then
    note "no backend with application_name $onerow_daemon_app: the database side of draining is not measured"
  fi
  phase_start=$SECONDS
  onerow_runs 1 "${drained[@]}"
  wait_queue_empty 120 || die "write-path: $(queue_count) events left in the queue 120 s after the last run"
  stop_daemon write_path_onerow
  note "took $((SECONDS - phase_start)) s"
  onerow_record 1 "${drained[@]}"
  local k rate
  for v in "${drained[@]}"; do
    [[ $v == untracked ]] && continue
    for kind in "${onerow_kinds[@]}"; do
      k=$v.$kind
      rate=" (at $(calc "${drain_events[$k]} / ${drain_window_s[$k]}" 0) events/s: at low rates idle polls weigh)"
      if ((${drain_backend_events[$k]:-0} > 0)); then
        record write-path "drain CPU per event, $v $kind: PostgreSQL backend" \
          "$(calc "${drain_backend_s[$k]} * 1000000 / ${drain_backend_events[$k]}" 1)" us "-" \
          "${drain_backend_s[$k]} s of the daemon's backend / ${drain_backend_events[$k]} events delivered$rate"
      fi
      record write-path "drain CPU per event, $v $kind: pg2kafka daemon" \
        "$(calc "${drain_daemon_s[$k]} * 1000000 / ${drain_events[$k]}" 1)" us "-" \
        "${drain_daemon_s[$k]} s / ${drain_events[$k]} events delivered$rate"
    done
  done
  psql_q -c "TRUNCATE bench_ref_queue"
  reset_queue
}
