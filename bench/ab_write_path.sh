#!/usr/bin/env bash
# A/B of the one-row write path between two versions of sql/, in one run on one PostgreSQL.
#
#   bench/ab_write_path.sh [--ref REF] [--seconds S] [--rounds N] [--clients "2 4"] [--fsync on|off]
#                          [--as superuser|writer] [--trigger-time [--no-pgbench]]
#
# A is the sql/ of git revision REF (default: HEAD), B the working tree's. Each is installed into
# a database of its own (sql/install.sql, or for revisions before it, the numbered files in
# order) on one throwaway PostgreSQL with durable settings (tests/support/pg/pg_fixture.sh,
# P2K_PG_FSYNC=on); a third table without triggers is the floor. pgbench then runs single-row
# INSERT, UPDATE and DELETE statements (-c CLIENTS -j CLIENTS -T S, synchronous_commit on) on the
# three tables, interleaved, N rounds, the order rotated each round; the queue is emptied and a
# CHECKPOINT taken before each run. Prints the median tps of each and the ratios A/plain, B/plain
# and B/A. A benchmark, not a test: it never fails on speed. --fsync off (commits not flushed)
# compares CPU cost only: far less noisy on a shared machine, where flush times vary by 2-3x.
# --as writer runs pgbench as a role that holds only the privileges an application has on its
# tables (a superuser bypasses row-level security, so its figures leave out what the privilege
# model costs every other role).
# --trigger-time also measures the time spent in the capture functions per statement, which flush
# times do not blur: in each database, one session runs 5000 one-row INSERTs each followed by a
# one-row UPDATE, in one DO block, with track_functions = pl; pg_stat_user_functions gives the
# mean time per call of capture_insert and capture_update (their total time, nested calls such
# as pg2kafka.may_queue included). Alternating A and B, `rounds` times; medians.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

ref=HEAD
seconds=8
rounds=5
clients="2"
fsync=on
as=superuser
trigger_time=0
pgbench=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --ref) ref=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --clients) clients=$2; shift 2 ;;
    --fsync) fsync=$2; shift 2 ;;
    --as) as=$2; shift 2 ;;
    --trigger-time) trigger_time=1; shift ;;
    --no-pgbench) pgbench=0; shift ;;
    *) echo "usage: $0 [--ref REF] [--seconds S] [--rounds N] [--clients \"2 4\"] [--fsync on|off] [--as superuser|writer]" >&2; exit 2 ;;
  esac
done

state=$(mktemp -d /tmp/p2k-ab.XXXXXX)
chmod 755 "$state"
cleanup() {
  tests/support/pg/pg_fixture.sh stop "$state" >/dev/null 2>&1 || true
  rm -rf "$state"
}
trap cleanup EXIT
P2K_PG_FSYNC=$fsync tests/support/pg/pg_fixture.sh start "$state" >/dev/null
server=$(sed -n 's/^P2K_TEST_PG_URL=//p' "$state/pg.env")
server=${server%/*}
pg_bin=$(sed -n 's/^P2K_TEST_PG_BIN=//p' "$state/pg.env")
psql_q() { PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 "$@"; }

# The SQL of revision REF, installed as that revision would install it.
mkdir -p "$state/a"
git archive "$ref" sql | tar -x -C "$state/a"
install_sql() { # DIR DATABASE
  if [[ -f "$1/sql/install.sql" ]]; then
    psql_q --single-transaction -f "$1/sql/install.sql" "$server/$2"
  else
    local files=() f
    for f in "$1"/sql/[0-9]*.sql; do files+=(-f "$f"); done
    psql_q --single-transaction "${files[@]}" "$server/$2"
  fi
}

rows=300000
table_sql() { # TABLE
  echo "CREATE TABLE $1 (id bigint PRIMARY KEY, sku text, name text, price numeric(10,2),
          qty int, note text);
        INSERT INTO $1 SELECT g, 'SKU-' || lpad(g::text, 8, '0'), 'Product name number ' || g,
          (g % 10000) / 100.0, g % 500, 'note ' || md5(g::text) FROM generate_series(1, $rows) g;
        CREATE SEQUENCE ${1}_ins START $((rows + 1)); CREATE SEQUENCE ${1}_del;"
}
for db in ab_a ab_b; do
  psql_q "$server/postgres" -c "CREATE DATABASE $db"
done
install_sql "$state/a" ab_a >/dev/null
install_sql "$repo" ab_b >/dev/null
psql_q "$server/ab_a" -c "$(table_sql t)" -c "SELECT pg2kafka.setup('t', 'sku')" >/dev/null
psql_q "$server/ab_b" -c "$(table_sql t)" -c "SELECT pg2kafka.setup('t', 'sku')" >/dev/null
psql_q "$server/ab_b" -c "$(table_sql plain)" >/dev/null
pgbench_user=postgres
if [[ $as == writer ]]; then
  pgbench_user=p2k_ab_writer
  psql_q "$server/postgres" -c "CREATE ROLE $pgbench_user LOGIN"
  for db in ab_a ab_b; do
    psql_q "$server/$db" -c "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO $pgbench_user" \
      -c "GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO $pgbench_user"
  done
fi

cat >"$state/insert.sql" <<'EOF'
\set r random(1, 1000000000)
INSERT INTO :tbl (id, sku, name, price, qty, note)
VALUES (nextval(:ins), 'SKU-' || :r, 'Product name ' || :r, (:r % 10000) / 100.0,
        :r % 500, 'note ' || left(md5(:r::text), 16));
EOF
cat >"$state/update.sql" <<'EOF'
\set id random(1, 200000)
UPDATE :tbl SET qty = qty + 1 WHERE id = :id;
EOF
cat >"$state/delete.sql" <<'EOF'
DELETE FROM :tbl WHERE id = (SELECT nextval(:del));
EOF

# run NAME(a|b|plain) KIND CLIENTS -> tps
run() {
  local db=ab_b tbl=t
  [[ $1 == a ]] && db=ab_a
  [[ $1 == plain ]] && tbl=plain
  psql_q "$server/$db" -c "VACUUM ANALYZE $tbl" -c "TRUNCATE pg2kafka.event_batches" \
    -c "CHECKPOINT"
  PGOPTIONS="-c synchronous_commit=$fsync" "$pg_bin/pgbench" -n -c "$3" -j "$3" \
    -T "$seconds" -D "tbl=$tbl" -D "ins='${tbl}_ins'" -D "del='${tbl}_del'" -f "$state/$2.sql" "${server/postgres@/$pgbench_user@}/$db" 2>"$state/pgbench.err" |
    sed -n 's/^tps = \([0-9.]*\).*without initial.*/\1/p'
}
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

echo "A = sql/ of $(git rev-parse --short "$ref"), B = working tree; PostgreSQL $(psql_q -t -A "$server/postgres" -c 'SHOW server_version'), fsync $fsync, statements as $as"
echo "$rounds rounds of $seconds s, tables interleaved (order rotated each round)"
printf '%-8s %-8s %10s %10s %10s %8s %8s %8s\n' kind clients "A tps" "B tps" "plain tps" A/plain B/plain B/A
((pgbench)) || clients=""
for c in $clients; do
  for kind in insert update delete; do
    declare -A all=([a]="" [b]="" [plain]="")
    for ((r = 0; r < rounds; r++)); do
      order=(a b plain)
      for ((k = 0; k < r % 3; k++)); do order=("${order[@]:1}" "${order[0]}"); done
      for who in "${order[@]}"; do
        tps=$(run "$who" "$kind" "$c")
        [[ -n "$tps" ]] || { cat "$state/pgbench.err" >&2; exit 1; }
        all[$who]+="$tps "
      done
    done
    a=$(median <<<"${all[a]}")
    b=$(median <<<"${all[b]}")
    p=$(median <<<"${all[plain]}")
    awk -v k="$kind" -v c="$c" -v a="$a" -v b="$b" -v p="$p" 'BEGIN {
      printf "%-8s %-8s %10.0f %10.0f %10.0f %8.3f %8.3f %8.3f\n", k, c, a, b, p, a / p, b / p, b / a }'
    echo "  runs: A ${all[a]}| B ${all[b]}| plain ${all[plain]}"
  done
done

((trigger_time)) || exit 0
echo
echo "time per call of the capture functions (us, median of $rounds; 5000 one-row statements each)"
# trigger_time DATABASE -> "insert_us update_us"
trigger_time() {
  psql_q "$server/$1" -c "TRUNCATE pg2kafka.event_batches" -c "SELECT pg_stat_reset()" >/dev/null
  psql_q "${server/postgres@/$pgbench_user@}/$1" -c "DO \$\$
    DECLARE v bigint;
    BEGIN FOR i IN 1..5000 LOOP
      v := nextval('t_ins');
      INSERT INTO t (id, sku, name, price, qty, note) VALUES (v, 'S' || i, 'n', 1, 1, 'x');
      UPDATE t SET qty = qty + 1 WHERE id = v;
    END LOOP; END \$\$" >/dev/null
  psql_q "$server/$1" -c "SELECT pg_stat_force_next_flush()" >/dev/null
  sleep 1
  psql_q -t -A -F ' ' "$server/$1" -c "SELECT
      (SELECT round((total_time / calls * 1000)::numeric, 1) FROM pg_stat_user_functions
        WHERE schemaname = 'pg2kafka' AND funcname = 'capture_insert'),
      (SELECT round((total_time / calls * 1000)::numeric, 1) FROM pg_stat_user_functions
        WHERE schemaname = 'pg2kafka' AND funcname = 'capture_update')"
}
psql_q "$server/postgres" -c "ALTER ROLE $pgbench_user SET track_functions = 'pl'"
declare -A tt=([a.insert]="" [a.update]="" [b.insert]="" [b.update]="")
for ((r = 0; r < rounds; r++)); do
  for who in a b; do
    db=ab_$who
    read -r ins upd <<<"$(trigger_time "$db")"
    tt[$who.insert]+="$ins "
    tt[$who.update]+="$upd "
  done
done
for kind in insert update; do
  a=$(median <<<"${tt[a.$kind]}")
  b=$(median <<<"${tt[b.$kind]}")
  awk -v k="$kind" -v a="$a" -v b="$b" 'BEGIN { printf "%-8s A %7.1f us   B %7.1f us   B-A %+6.1f us\n", k, a, b, b - a }'
  echo "  runs: A ${tt[a.$kind]}| B ${tt[b.$kind]}"
done
