#!/usr/bin/env bash
# bench/soak.sh: does the queue give its space back after a backlog? (issue 18)
#
#   bench/soak.sh [--minutes N] [--short] [--rate TPS] [--drain-rate TPS] [--settle S]
#                 [--naptime S] [--no-build] [--keep]
#
# A throwaway PostgreSQL (tests/support/pg/pg_fixture.sh, loopback, its own data directory) with
# the pg2kafka schema and one tracked table. Then:
#   1. "sink down": pgbench writers insert into the table for --minutes (default 5) at --rate
#      transactions per second (default 1000: nine one-row INSERTs for one 50-row INSERT, so the
#      queue gets small batches in its heap and large ones in its TOAST table) while
#      `pg2kafka run` (the shipped pipeline, config/pg2kafka.json) runs with its Kafka sink
#      pointed at a loopback port where no broker listens: it holds the drain lock and waits
#      for its sink (giving up after open_timeout, 60 s, and started again, as a service manager
#      would), and nothing is delivered or removed;
#   2. "sink up": that instance is stopped and another `pg2kafka run` drains the queue, its sink
#      working (the stdout sink into /dev/null: the source, its queries and its deletes are the
#      product's; only Kafka is left out), while the writers go on at --drain-rate (default
#      200), until the queue is drained and then for --settle seconds more (default 4
#      autovacuum naptimes), for autovacuum to act.
# Every 10 s it records the queue table's sizes (pg_relation_size of the heap, of the TOAST
# table with its index, pg_indexes_size, pg_total_relation_size), its rows and dead rows, and
# autovacuum's runs; then prints them as a table with a verdict, and exits 1 when the sizes did
# not come back down (see "Verdict" below) or something broke.
#
# Nobody runs VACUUM by hand: what gives the space back is autovacuum with the queue's settings
# (sql/migrations/011_monitoring.sql). The cluster keeps PostgreSQL's default autovacuum settings
# (autovacuum_naptime 1 min, as production has), except with --short or --naptime; every
# autovacuum run is logged (log_autovacuum_min_duration = 0) and its truncations counted.
#
# --short: the CTest variant (Soak.QueueReturnsToABoundedSize, about a minute): 20 s of writers,
# autovacuum_naptime 5 s (the naptime only sets how often autovacuum looks at a database; what it
# then does is decided by the table's settings, which is what is tested), writers at 500/s while
# it drains (so that autovacuum's thresholds are reached sooner), and it ends as soon as the
# sizes are within the verdict's bounds (at most 60 s after the drain).
# --no-build: use build/bin/pg2kafka as it is. --keep: keep the work directory (logs, samples).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
build_dir=${P2K_BUILD_DIR:-build}
bin=${P2K_BINARY:-"$repo/$build_dir/bin/pg2kafka"}

minutes=5
rate=1000
drain_rate=""
settle=""
naptime=""
build=1
keep=0
short=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --minutes) minutes=${2:?--minutes needs a number}; shift ;;
    --rate) rate=${2:?}; shift ;;
    --drain-rate) drain_rate=${2:?}; shift ;;
    --settle) settle=${2:?}; shift ;;
    --naptime) naptime=${2:?}; shift ;;
    --short) short=1 ;;
    --no-build) build=0 ;;
    --keep) keep=1 ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "soak.sh: unknown argument $1 (see --help)" >&2
      exit 2
      ;;
  esac
  shift
done
down_seconds=$((minutes * 60))
if ((short)); then
  down_seconds=20
  naptime=${naptime:-5}
  settle=${settle:-60}
  drain_rate=${drain_rate:-500}
fi
drain_rate=${drain_rate:-200}
settle=${settle:-$((4 * ${naptime:-60}))}
sample_every=10
((short)) && sample_every=5

for tool in psql pgbench python3; do
  command -v "$tool" >/dev/null || { echo "soak.sh: $tool is needed" >&2; exit 1; }
done
if ((build)); then scripts/build.sh >/dev/null; fi
[[ -x "$bin" ]] || { echo "soak.sh: $bin is missing: run scripts/build.sh" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/p2k-soak.XXXXXX")
chmod 755 "$work"  # the cluster's owner (postgres, when run as root) must reach its directory
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  tests/support/pg/pg_fixture.sh stop "$work/state" >/dev/null 2>&1 || true
  if ((keep)); then echo "soak.sh: work directory kept: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '\033[1m== %s\033[0m\n' "$*" >&2; }

tests/support/pg/pg_fixture.sh start "$work/state" 2>&1 | sed 's/^/   /' >&2
while IFS='=' read -r key value; do export "$key=$value"; done <"$work/state/pg.env"
export PGOPTIONS="-c client_min_messages=warning"
admin="postgresql://postgres@127.0.0.1:$P2K_TEST_PG_PORT/postgres"
export DATABASE_URL="postgresql://postgres@127.0.0.1:$P2K_TEST_PG_PORT/soak"
q() { psql -X -q -t -A -v ON_ERROR_STOP=1 "$DATABASE_URL" -c "$1"; }

system=(-c "ALTER SYSTEM SET log_autovacuum_min_duration = 0")
[[ -n "$naptime" ]] && system+=(-c "ALTER SYSTEM SET autovacuum_naptime = '${naptime}s'")
psql -X -q -v ON_ERROR_STOP=1 "$admin" "${system[@]}" -c "SELECT pg_reload_conf()" \
  -c "CREATE DATABASE soak" >/dev/null
psql -X -q --single-transaction -v ON_ERROR_STOP=1 -f sql/install.sql "$DATABASE_URL"
q "CREATE TABLE orders (id bigserial PRIMARY KEY, k text NOT NULL, payload text)" >/dev/null
q "SELECT pg2kafka.setup('orders', 'k')" >/dev/null
settings=$(q "SELECT array_to_string(reloptions, ', ') FROM pg_class
               WHERE oid = 'pg2kafka.event_batches'::regclass")
pg_settings=$(q "SELECT string_agg(name || '=' || setting || coalesce(unit, ''), ', ' ORDER BY name)
                   FROM pg_settings WHERE name IN ('autovacuum_naptime',
                   'autovacuum_vacuum_cost_delay', 'autovacuum_vacuum_cost_limit',
                   'server_version', 'fsync')")

# One-row INSERTs (small batches, stored in the heap), and one INSERT of 50 rows in ten (a batch
# of about 6 kB of JSON, stored in the TOAST table).
cat >"$work/one.sql" <<'SQL'
\set r random(1, 1000000000)
INSERT INTO orders (k, payload) VALUES ('k' || :r, repeat(md5(:r::text), 6));
SQL
cat >"$work/bulk.sql" <<'SQL'
\set r random(1, 1000000000)
INSERT INTO orders (k, payload)
SELECT 'b' || :r || '-' || g, md5(g::text || :r) || md5(:r::text || g) FROM generate_series(1, 50) g;
SQL
writers() { # RATE SECONDS LOG
  pgbench -n -c 4 -j 2 -R "$1" -T "$2" -f "$work/one.sql@9" -f "$work/bulk.sql@1" \
    "$DATABASE_URL" >"$3" 2>&1 &
  writers_pid=$!
  pids+=("$writers_pid")
}

samples="$work/samples.tsv"
start=$SECONDS
sample() { # PHASE
  q "SELECT $((SECONDS - start)), '$1', coalesce((SELECT sum(events) FROM pg2kafka.event_batches), 0),
            (SELECT count(*) FROM pg2kafka.event_batches),
            pg_relation_size(c.oid), coalesce(pg_total_relation_size(nullif(c.reltoastrelid, 0)), 0),
            pg_indexes_size(c.oid), pg_total_relation_size(c.oid),
            coalesce(s.n_dead_tup, 0), coalesce(s.autovacuum_count, 0)
       FROM pg_class c LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid
      WHERE c.oid = 'pg2kafka.event_batches'::regclass" | tr '|' '\t' | tee -a "$samples" |
    awk -F'\t' '{ printf "   %5ds %-5s events %9d batches %8d heap %7.1f MB toast %7.1f MB index %6.1f MB total %7.1f MB dead %8d autovacuums %d\n", $1, $2, $3, $4, $5/1048576, $6/1048576, $7/1048576, $8/1048576, $9, $10 }' >&2
}

source tests/support/free_port.sh
log() { echo "soak.sh: $*" >&2; }
dead_port=$(pick_port "$P2K_TEST_PG_PORT")
say "sink down: writers at $rate/s for ${down_seconds}s; pg2kafka runs, its broker (127.0.0.1:$dead_port) is down (queue settings: $settings)"
# It gives up after open_timeout (60 s) with exit code 4; a service manager starts it again, and
# so does this loop.
start_down_daemon() {
  env -u PG2KAFKA_CONFIG -u DRY_RUN -u PERFORM_MIGRATIONS KAFKA_BROKER="127.0.0.1:$dead_port" \
    "$bin" run >/dev/null 2>>"$work/pg2kafka-down.log" &
  daemon_pid=$!
  pids=("$writers_pid" "$daemon_pid")
}
restarts=0
writers "$rate" "$down_seconds" "$work/writers-down.log"
start_down_daemon
while kill -0 "$writers_pid" 2>/dev/null; do
  sleep "$sample_every"
  if ! kill -0 "$daemon_pid" 2>/dev/null; then
    wait "$daemon_pid" || true
    restarts=$((restarts + 1))
    start_down_daemon
  fi
  sample down
done
wait "$writers_pid" || { cat "$work/writers-down.log" >&2; echo "soak.sh: writers failed" >&2; exit 1; }
grep -q "holds the drain lock" "$work/pg2kafka-down.log" ||
  { tail -n 20 "$work/pg2kafka-down.log" >&2; echo "soak.sh: pg2kafka did not take the drain lock" >&2; exit 1; }
echo "   pg2kafka: $(grep -c "cannot open sink 'kafka' yet" "$work/pg2kafka-down.log") failed attempts to open its sink; gave up and was started again $restarts times" >&2
kill -TERM "$daemon_pid"
wait "$daemon_pid" || true
pids=() # both waited for: never signal a pid that may have been reused
grep -E "^(number of transactions actually processed|tps)" "$work/writers-down.log" | sed 's/^/   /' >&2

say "sink up: pg2kafka drains while writers go on at $drain_rate/s; then ${settle}s to settle"
cat >"$work/pipeline.json" <<'JSON'
{
  "source": {"plugin": "pg-outbox", "options": {"connection": "${DATABASE_URL}"}},
  "sink": {"plugin": "stdout", "options": {"format": "value"}}
}
JSON
writers "$drain_rate" 36000 "$work/writers-up.log"
"$bin" run --config "$work/pipeline.json" >/dev/null 2>"$work/pg2kafka.log" &
daemon_pid=$!
pids+=("$daemon_pid")
drained_at=""
deadline=$((SECONDS + down_seconds * 2 + settle + 300))
while ((SECONDS < deadline)); do
  sleep "$sample_every"
  kill -0 "$daemon_pid" 2>/dev/null || { tail -n 20 "$work/pg2kafka.log" >&2; echo "soak.sh: pg2kafka stopped" >&2; exit 1; }
  sample up
  batches=$(tail -n 1 "$samples" | cut -f 4)
  if [[ -z "$drained_at" && $batches -lt 1000 ]]; then
    drained_at=$((SECONDS - start))
    echo "   drained (fewer than 1000 batches queued) at ${drained_at}s" >&2
  fi
  [[ -n "$drained_at" ]] && ((SECONDS - start >= drained_at + settle)) && break
  # --short ends as soon as the verdict's bounds hold (--settle is then the longest wait).
  if ((short)) && [[ -n "$drained_at" ]] && awk -F'\t' '
      { data = $5 + $6; if (data > peak) peak = data; if ($8 > total) total = $8 }
      END { exit !(data <= (0.1 * peak > 4194304 ? 0.1 * peak : 4194304) && $8 <= 0.25 * total) }' "$samples"; then
    break
  fi
done
kill -TERM "$writers_pid" "$daemon_pid" 2>/dev/null || true
wait "$writers_pid" 2>/dev/null || true
wait "$daemon_pid" 2>/dev/null || true
pids=()
[[ -n "$drained_at" ]] || { echo "soak.sh: the queue did not drain in time" >&2; exit 1; }

# What autovacuum did to the queue (its log lines name the table; truncation shows as pages
# removed).
vacuums=$(grep -c 'automatic vacuum of table "soak.pg2kafka.event_batches"' "$P2K_TEST_PG_LOG" || true)
truncations=$(grep -A2 'automatic vacuum of table "soak.pg2kafka.event_batches"' "$P2K_TEST_PG_LOG" |
  grep -cE 'pages: [1-9][0-9]* removed' || true)
toast_truncations=$(grep -A2 'automatic vacuum of table "soak.pg_toast.pg_toast_' "$P2K_TEST_PG_LOG" |
  grep -cE 'pages: [1-9][0-9]* removed' || true)

python3 - "$samples" "$drained_at" "$settings" "$pg_settings" "$vacuums" "$truncations" \
  "$toast_truncations" <<'PY'
import sys
path, drained_at, settings, pg_settings, vacuums, truncations, toast_truncations = sys.argv[1:]
rows = [l.rstrip("\n").split("\t") for l in open(path) if l.strip()]
rows = [(int(r[0]), r[1], *map(int, r[2:])) for r in rows]
mb = lambda b: b / 1048576
peak = lambda i: max(r[i] for r in rows)
last = rows[-1]
print()
print("queue table pg2kafka.event_batches, every sample (MB):")
print(f"{'t (s)':>6} {'phase':<5} {'events':>9} {'batches':>8} {'heap':>8} {'toast':>8} {'index':>7} {'total':>8} {'dead rows':>10} {'autovac':>7}")
for t, phase, ev, ba, heap, toast, idx, total, dead, av in rows:
    print(f"{t:>6} {phase:<5} {ev:>9} {ba:>8} {mb(heap):>8.1f} {mb(toast):>8.1f} {mb(idx):>7.1f} {mb(total):>8.1f} {dead:>10} {av:>7}")
peak_data = max(r[4] + r[5] for r in rows)
final_data = last[4] + last[5]
# Verdict: after the drain, the heap and TOAST hold the queue's few live rows again (at most a
# tenth of their peak, or 4 MB when the peak was small), the index has not grown past the size
# the backlog gave it although the writes went on (PostgreSQL reuses its emptied pages but never
# shrinks its file), and the whole table takes at most a quarter of its peak.
backlog_index = max(r[6] for r in rows if r[1] == "down")
data_ok = final_data <= max(0.10 * peak_data, 4 * 1048576)
index_ok = last[6] <= backlog_index * 1.05 + 65536
total_ok = last[7] <= 0.25 * peak(7)
print()
print(f"settings: queue {settings}; server {pg_settings}")
print(f"drained at {drained_at} s; autovacuum runs on the queue: {vacuums} "
      f"(heap truncated {truncations} times, TOAST {toast_truncations} times)")
print(f"heap+TOAST: peak {mb(peak_data):.1f} MB, end {mb(final_data):.1f} MB "
      f"({100 * final_data / max(peak_data, 1):.1f}% of peak; bound max(10%, 4 MB)): {'ok' if data_ok else 'NOT OK'}")
print(f"index: {mb(backlog_index):.1f} MB after the backlog, end {mb(last[6]):.1f} MB "
      f"(bound: no growth while writes went on): {'ok' if index_ok else 'NOT OK'}")
print(f"total: peak {mb(peak(7)):.1f} MB, end {mb(last[7]):.1f} MB "
      f"({100 * last[7] / max(peak(7), 1):.1f}% of peak; bound 25%): {'ok' if total_ok else 'NOT OK'}")
ok = data_ok and index_ok and total_ok
print("VERDICT: " + ("bounded: the queue table returned to a bounded size after the backlog drained"
                     if ok else "NOT bounded: the queue table kept the backlog's size"))
sys.exit(0 if ok else 1)
PY
