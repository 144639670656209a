#!/usr/bin/env bash
# What each capture option (issue 20, sql/README.md "Capture options") costs, on the write path
# and on draining, in one run on one throwaway PostgreSQL.
#
#   bench/capture_options.sh [--parts "write session bulk drain"] [--seconds S] [--rounds N]
#                            [--clients C] [--rows N] [--bulk-rows N] [--drain-events N]
#                            [--session-statements N] [--fsync on|off] [--as writer|superuser]
#                            [--ref REF] [--sets "none none_r ..."] [--quick]
#
# Starts PostgreSQL with tests/support/pg/pg_fixture.sh (P2K_PG_FSYNC=off by default: commits are
# not flushed, so the figures are CPU cost, far less noisy on a shared machine), installs the
# working tree's sql/install.sql into a database and creates one table per option set, all of
# the same shape
#   (id int, email text, ssn text, notes text, big text, tenant text)   -- ~430 bytes of JSON a row
# with PRIMARY KEY (id), or (tenant, id) for the sets with a composite key; tenant = 't' || id % 8.
# Option sets (pg2kafka.setup(table, key_column, options); the row-mode sets add "capture":"row"):
#   none       (the two-argument setup: the plain capture functions)
#   exclude    {"exclude":["notes"]}          mask     {"mask":["ssn"]}
#   redact     {"redact":["notes"]}           prov     {"provenance":["actor"]}
#   full       {"update":"full","before":"full","delete":"row"}
#   ckey       {"key":["tenant","id"]}        tomb     {"tombstones":true,"key_changes":"delete"}
#   all        all of them at once: exclude notes, mask ssn, redact email, provenance actor,
#              update/before full, delete row, key [tenant,id], tombstones, key_changes delete
#   *_r        row mode: none_r, exclude_r, mask_r, prov_r, all_r
# (--sets picks some of these for the write, session and bulk parts; keep each mode's none.)
# plus `plain` (no triggers: the floor). With --ref REF, the sql/ of git revision REF is installed
# into a second database with `none` and `none_r` tables (ref:none, ref:none_r), interleaved with
# the others: B/A of a table without options, in both capture modes.
#
# Parts (all by default):
#   write  pgbench (-n -c C -j C -T S) one-row INSERT, UPDATE (email and notes of a random row
#          among the first rows/2) and DELETE (the next id of a sequence walking up from rows/2+1)
#          on every table, interleaved: for each kind, N rounds, in each every table once, the
#          order rotated by one each round; VACUUM ANALYZE of the table, queue truncated and a
#          CHECKPOINT before each run. pgbench connects as --as (default `writer`: a role with
#          only SELECT, INSERT, UPDATE, DELETE on the tables, so the queue's row-level security is
#          in force as for an application) with pg2kafka.actor set (so that provenance has a
#          setting to report). Median tps; ratio to `none` of the same mode, and to plain.
#   session  the same three kinds without pgbench: one psql session per table and round runs a
#          DO block of N (default 2000) one-row INSERTs, then UPDATEs of those rows, then DELETEs,
#          each loop timed with clock_timestamp(): us per statement (one transaction, no client
#          round trip or commit: the capture's own cost, far steadier than pgbench's tps).
#   bulk   one psql session per table and round: INSERT ... SELECT of --bulk-rows rows, UPDATE of
#          those rows (email, notes), DELETE of them, each timed by psql \timing; medians and
#          ratios as above.
#   drain  for none, maskexcl ({"exclude":["notes"],"mask":["ssn"]}), prov, full, tomb, ckey
#          (statement mode), tables of their own: --drain-events events queued by one-row
#          statements (a DO loop: a third INSERTs, a third UPDATEs, a third DELETEs, one batch
#          per event) and as many from three bulk statements (batches of up to 1000 events); then
#          ANALYZE of the queue, CHECKPOINT, and `pg2kafka run --once` with the stdout sink to
#          /dev/null (no Kafka: the source side and record shaping only), under /usr/bin/time.
#          Events/s = events / wall time of the process (start-up included, ~0.1 s); daemon CPU
#          (user+sys) per event; PostgreSQL CPU per event (all server processes, from /proc,
#          including the exited backend via the postmaster's cutime/cstime; the checkpointer's
#          and autovacuum's share included). Each set is checked first on a few events drained
#          to a file (line count; tombstones add one record per DELETE). The fill (DO loop) time
#          is reported too: single-session write cost per one-row statement.
#
# --quick: 2 rounds of 2 s, 5k bulk rows, 15k drain events. A benchmark, not a test: it never
# fails on speed (exit 1 only when something broke). Needs build/bin/pg2kafka and the plugins
# (build/lib/pg2kafka/plugins) for the drain part: cmake --build build --target pg2kafka
# source_pg_outbox sink_stdout. Only ratios within one run mean anything on a shared machine.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

parts="write session bulk drain"
seconds=3
rounds=3
clients=2
rows=50000
bulk_rows=10000
drain_events=30000
session_n=2000
only_sets=""
fsync=off
as=writer
ref=""
bin=${P2K_BIN:-build/bin/pg2kafka}
plugin_dir=${P2K_PLUGIN_DIR:-build/lib/pg2kafka/plugins}
while [[ $# -gt 0 ]]; do
  case "$1" in
    --parts) parts=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --clients) clients=$2; shift 2 ;;
    --rows) rows=$2; shift 2 ;;
    --bulk-rows) bulk_rows=$2; shift 2 ;;
    --drain-events) drain_events=$2; shift 2 ;;
    --session-statements) session_n=$2; shift 2 ;;
    --sets) only_sets=$2; shift 2 ;;
    --fsync) fsync=$2; shift 2 ;;
    --as) as=$2; shift 2 ;;
    --ref) ref=$2; shift 2 ;;
    --quick) seconds=2; rounds=2; bulk_rows=5000; drain_events=15000; shift ;;
    *) sed -n '2,8p' "$0" >&2; exit 2 ;;
  esac
done
has_part() { [[ " $parts " == *" $1 "* ]]; }

state=$(mktemp -d /tmp/p2k-co.XXXXXX)
chmod 755 "$state"
cleanup() {
  tests/support/pg/pg_fixture.sh stop "$state" >/dev/null 2>&1 || true
  rm -rf "$state"
}
trap cleanup EXIT
die() { echo "capture_options: $*" >&2; exit 1; }
P2K_PG_FSYNC=$fsync tests/support/pg/pg_fixture.sh start "$state" >/dev/null
server=$(sed -n 's/^P2K_TEST_PG_URL=//p' "$state/pg.env")
server=${server%/*}
pg_bin=$(sed -n 's/^P2K_TEST_PG_BIN=//p' "$state/pg.env")
pg_data=$(sed -n 's/^P2K_TEST_PG_DATA=//p' "$state/pg.env")
psql_q() { PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 "$@"; }
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

# ---------------------------------------------------------------------------------------------
# Databases, roles, tables.
install_sql() { # DIR DATABASE
  if [[ -f "$1/sql/install.sql" ]]; then
    psql_q --single-transaction -f "$1/sql/install.sql" "$server/$2" >/dev/null
  else
    local files=() f
    for f in "$1"/sql/[0-9]*.sql; do files+=(-f "$f"); done
    psql_q --single-transaction "${files[@]}" "$server/$2" >/dev/null
  fi
}
psql_q "$server/postgres" -c "CREATE DATABASE co"
install_sql "$repo" co
dbs=(co)
if [[ -n $ref ]]; then
  mkdir -p "$state/a"
  git archive "$ref" sql | tar -x -C "$state/a"
  psql_q "$server/postgres" -c "CREATE DATABASE co_ref"
  install_sql "$state/a" co_ref
  dbs+=(co_ref)
fi
user=postgres
if [[ $as == writer ]]; then
  user=p2k_co_writer
  psql_q "$server/postgres" -c "CREATE ROLE $user LOGIN"
fi
# The writer's URL; PGOPTIONS of every writer session (pg2kafka.actor: provenance's setting).
wurl() { echo "${server/postgres@/$user@}/$1"; }
sc=on
[[ $fsync == off ]] && sc=off
writer_opts="-c synchronous_commit=$sc -c pg2kafka.actor=bench-writer -c client_min_messages=warning"

all_opts='"exclude":["notes"],"mask":["ssn"],"redact":["email"],"provenance":["actor"],"update":"full","before":"full","delete":"row","key":["tenant","id"],"tombstones":true,"key_changes":"delete"'
# NAME|OPTIONS (JSON members, without braces)|PRIMARY KEY
declare -A opts pk
def() { opts[$1]=$2; pk[$1]=${3:-id}; }
def none ''
def exclude '"exclude":["notes"]'
def mask '"mask":["ssn"]'
def redact '"redact":["notes"]'
def prov '"provenance":["actor"]'
def full '"update":"full","before":"full","delete":"row"'
def ckey '"key":["tenant","id"]' tenant,id
def tomb '"tombstones":true,"key_changes":"delete"'
def all "$all_opts" tenant,id
def none_r '"capture":"row"'
def exclude_r '"capture":"row","exclude":["notes"]'
def mask_r '"capture":"row","mask":["ssn"]'
def prov_r '"capture":"row","provenance":["actor"]'
def all_r "\"capture\":\"row\",$all_opts" tenant,id
def maskexcl '"exclude":["notes"],"mask":["ssn"]'

# create_table DB TABLE SET: an empty table, tracked with the set's options (set "plain": not
# tracked), and its sequences: T_ins (INSERT ids, above the rows), T_del (DELETE ids, from rows/2+1).
create_table() {
  local db=$1 t=$2 set=$3 setup=""
  local key=${pk[$set]:-id}
  if [[ $set != plain ]]; then
    if [[ -z ${opts[$set]} ]]; then
      setup="SELECT pg2kafka.setup('$t', '${key%%,*}');"
    else
      setup="SELECT pg2kafka.setup('$t', '${key%%,*}', '{${opts[$set]}}'::jsonb);"
    fi
  fi
  psql_q "$server/$db" >/dev/null <<EOF
CREATE TABLE $t (id int NOT NULL, email text, ssn text, notes text, big text, tenant text NOT NULL,
                 PRIMARY KEY ($key));
$setup
CREATE SEQUENCE ${t}_ins START $((rows + 1));
CREATE SEQUENCE ${t}_del START $((rows / 2 + 1));
GRANT SELECT, INSERT, UPDATE, DELETE ON $t TO $user;
GRANT USAGE ON ${t}_ins, ${t}_del TO $user;
EOF
}
# The rows written by every part: row(ID_EXPRESSION, SALT)
row_values() { # ID SALT
  echo "$1, 'user' || $2 || '@example.com', lpad(($2 % 1000000000)::text, 9, '0'),
        'note ' || md5($2::text), repeat(md5(($2)::text), 8), 't' || ($1 % 8)"
}
fill_rows() { # DB TABLE
  psql_q "$server/$1" -c "INSERT INTO $2 SELECT $(row_values g g) FROM generate_series(1, $rows) g" \
    -c "TRUNCATE pg2kafka.event_batches" -c "VACUUM ANALYZE $2" >/dev/null
}

write_sets=(none exclude mask redact prov full ckey tomb all none_r exclude_r mask_r prov_r all_r)
if [[ -n $only_sets ]]; then  # --sets: these only (each ratio needs its mode's none among them)
  read -r -a write_sets <<<"$only_sets"
fi
variants=(plain)   # DB:TABLE:SET
if has_part write || has_part bulk || has_part session; then
  create_table co plain plain
  fill_rows co plain
  for s in "${write_sets[@]}"; do
    create_table co "w_$s" "$s"
    fill_rows co "w_$s"
    variants+=("$s")
  done
  if [[ -n $ref ]]; then
    for s in none none_r; do
      create_table co_ref "w_$s" "$s"
      fill_rows co_ref "w_$s"
      variants+=("ref:$s")
    done
  fi
fi
# v_db VARIANT / v_table VARIANT
v_db() { if [[ $1 == ref:* ]]; then echo co_ref; else echo co; fi; }
v_table() { if [[ $1 == plain ]]; then echo plain; else echo "w_${1#ref:}"; fi; }
# The row's mode-mate "none" (the base of its ratio).
v_base() { if [[ $1 == *_r ]]; then echo none_r; else echo none; fi; }

echo "pg2kafka capture options: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- sql || echo '+dirty sql/'), PostgreSQL $(psql_q -t -A "$server/postgres" -c 'SHOW server_version'), fsync $fsync, statements as $user, $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"
[[ -n $ref ]] && echo "ref = sql/ of $(git rev-parse --short "$ref") (tables ref:none, ref:none_r)"

# ---------------------------------------------------------------------------------------------
# Part 1: pgbench one-row statements.
cat >"$state/insert.sql" <<EOF
\set r random(1, 1000000000)
INSERT INTO :tbl (id, email, ssn, notes, big, tenant)
SELECT $(row_values s.v :r) FROM (SELECT nextval(:ins)::int AS v) s;
EOF
cat >"$state/update.sql" <<'EOF'
\set id random(1, :upd)
\set r random(1, 1000000000)
UPDATE :tbl SET email = 'user' || :r || '@example.com', notes = 'note ' || :r
 WHERE tenant = 't' || (:id % 8) AND id = :id;
EOF
cat >"$state/delete.sql" <<'EOF'
DELETE FROM :tbl t USING (SELECT nextval(:del)::int AS v) s
 WHERE t.tenant = 't' || (s.v % 8) AND t.id = s.v;
EOF

run_pgbench() { # VARIANT KIND -> tps
  local db t
  db=$(v_db "$1")
  t=$(v_table "$1")
  psql_q "$server/$db" -c "VACUUM ANALYZE $t" -c "TRUNCATE pg2kafka.event_batches" -c "CHECKPOINT"
  PGOPTIONS="$writer_opts" "$pg_bin/pgbench" -n -c "$clients" -j "$clients" -T "$seconds" \
    -D "tbl=$t" -D "ins='${t}_ins'" -D "del='${t}_del'" -D "upd=$((rows / 2))" \
    -f "$state/$2.sql" "$(wurl "$db")" 2>"$state/pgbench.err" >"$state/pgbench.out" ||
    { cat "$state/pgbench.err" >&2; die "pgbench $2 on $1 failed"; }
  if [[ $2 == delete ]]; then  # every DELETE must have deleted a row
    local ok
    ok=$(psql_q -t -A "$server/$db" -c "SELECT (SELECT last_value FROM ${t}_del) <= (SELECT max(id) FROM $t)")
    [[ $ok == t ]] || die "$1: the DELETE sequence went past the table's rows (use more --rows)"
  fi
  sed -n 's/^tps = \([0-9.]*\).*without initial.*/\1/p' "$state/pgbench.out"
}

# rotate N ITEMS... -> the items rotated left by N
rotate() { local n=$1; shift; local a=("$@"); n=$((n % ${#a[@]})); echo "${a[@]:n}" "${a[@]:0:n}"; }

# One line per variant: the medians of res[PREFIX.<kind>.<variant>] for insert, update and
# delete, and their ratios to "none" of the same capture mode and to the untracked table.
print_medians() {
  local prefix=$1 v kind
  for v in "${variants[@]}"; do
    declare -A m=()
    for kind in insert update delete; do
      m[$kind]=$(median <<<"${res[$prefix.$kind.$v]}")
      m[$kind.base]=$(median <<<"${res[$prefix.$kind.$(v_base "${v#ref:}")]}")
      m[$kind.plain]=$(median <<<"${res[$prefix.$kind.plain]}")
    done
    awk -v v="$v" -v i="${m[insert]}" -v u="${m[update]}" -v d="${m[delete]}" \
      -v bi="${m[insert.base]}" -v bu="${m[update.base]}" -v bd="${m[delete.base]}" \
      -v pi="${m[insert.plain]}" -v pu="${m[update.plain]}" -v pd="${m[delete.plain]}" 'BEGIN {
      printf "%-12s %9.1f %9.1f %9.1f   %6.2f %6.2f %6.2f  %6.2f %6.2f %6.2f\n", v, i, u, d,
        i / bi, u / bu, d / bd, i / pi, u / pu, d / pd }'
  done
}

declare -A res
if has_part write; then
  echo
  echo "== one-row statements: pgbench -c $clients -T $seconds, $rounds rounds, median tps (ratio to none of the same mode | to plain)"
  for kind in insert update delete; do
    for ((r = 0; r < rounds; r++)); do
      for v in $(rotate "$r" "${variants[@]}"); do
        tps=$(run_pgbench "$v" "$kind")
        [[ -n $tps ]] || { cat "$state/pgbench.err" >&2; die "no tps for $kind on $v"; }
        res[w.$kind.$v]+="$tps "
      done
    done
  done
  printf '%-12s %9s %9s %9s   %-20s %-20s %s\n' set insert update delete "/none: ins upd del" "/plain: ins upd del" "runs (insert | update | delete)"
  for v in "${variants[@]}"; do
    line=$(printf '%-12s' "$v")
    declare -A m=()
    for kind in insert update delete; do
      m[$kind]=$(median <<<"${res[w.$kind.$v]}")
      m[$kind.base]=$(median <<<"${res[w.$kind.$(v_base "${v#ref:}")]}")
      m[$kind.plain]=$(median <<<"${res[w.$kind.plain]}")
    done
    awk -v v="$v" -v i="${m[insert]}" -v u="${m[update]}" -v d="${m[delete]}" \
      -v bi="${m[insert.base]}" -v bu="${m[update.base]}" -v bd="${m[delete.base]}" \
      -v pi="${m[insert.plain]}" -v pu="${m[update.plain]}" -v pd="${m[delete.plain]}" \
      -v runs="${res[w.insert.$v]}| ${res[w.update.$v]}| ${res[w.delete.$v]}" 'BEGIN {
      printf "%-12s %9.0f %9.0f %9.0f   %6.3f %6.3f %6.3f  %6.3f %6.3f %6.3f  %s\n", v, i, u, d,
        i / bi, u / bu, d / bd, i / pi, u / pu, d / pd, runs }'
  done
  if [[ -n $ref ]]; then
    for s in none none_r; do
      awk -v s="$s" -v bi="$(median <<<"${res[w.insert.$s]}")" -v bu="$(median <<<"${res[w.update.$s]}")" \
        -v bd="$(median <<<"${res[w.delete.$s]}")" -v ai="$(median <<<"${res[w.insert.ref:$s]}")" \
        -v au="$(median <<<"${res[w.update.ref:$s]}")" -v ad="$(median <<<"${res[w.delete.ref:$s]}")" 'BEGIN {
        printf "B/A (working tree / ref), %-7s insert %.3f  update %.3f  delete %.3f\n", s, bi / ai, bu / au, bd / ad }'
    done
  fi
fi

# ---------------------------------------------------------------------------------------------
# Part 1b: one session, no client round trips: --session-statements one-row INSERTs, then as
# many UPDATEs, then DELETEs of those rows, in one DO block per table and round, each loop
# timed by clock_timestamp(); µs per statement. Far less noisy than pgbench (no network, no
# commit, one core), but one transaction: the cost of the capture itself.
if has_part session; then
  for ((r = 0; r < rounds; r++)); do
    for v in $(rotate "$r" "${variants[@]}"); do
      db=$(v_db "$v")
      t=$(v_table "$v")
      psql_q "$server/$db" -c "VACUUM ANALYZE $t" -c "TRUNCATE pg2kafka.event_batches" -c "CHECKPOINT"
      out=$(PGOPTIONS="$writer_opts -c client_min_messages=notice" psql -X -q -v ON_ERROR_STOP=1 "$(wurl "$db")" -c "DO \$\$
        DECLARE t0 timestamptz; t1 timestamptz; t2 timestamptz; t3 timestamptz; b int := 2000000000 - $session_n;
        BEGIN
          t0 := clock_timestamp();
          FOR i IN b + 1 .. b + $session_n LOOP INSERT INTO $t VALUES ($(row_values i i)); END LOOP;
          t1 := clock_timestamp();
          FOR i IN b + 1 .. b + $session_n LOOP UPDATE $t SET email = 'u' || i || '@example.com', notes = 'n' || i
                                 WHERE tenant = 't' || (i % 8) AND id = i; END LOOP;
          t2 := clock_timestamp();
          FOR i IN b + 1 .. b + $session_n LOOP DELETE FROM $t WHERE tenant = 't' || (i % 8) AND id = i; END LOOP;
          t3 := clock_timestamp();
          RAISE NOTICE 'us % % %', extract(epoch FROM t1 - t0) * 1e6 / $session_n,
            extract(epoch FROM t2 - t1) * 1e6 / $session_n, extract(epoch FROM t3 - t2) * 1e6 / $session_n;
        END \$\$" 2>&1) || die "session statements on $v failed: $out"
      read -r ins upd del < <(sed -n 's/.*NOTICE:  us \([0-9.]*\) \([0-9.]*\) \([0-9.]*\).*/\1 \2 \3/p' <<<"$out")
      [[ -n $del ]] || die "session statements on $v: no timings in: $out"
      res[s.insert.$v]+="$ins "
      res[s.update.$v]+="$upd "
      res[s.delete.$v]+="$del "
    done
  done
  echo
  echo "== one session, $session_n one-row statements of each kind in a DO block: median us per statement ($rounds rounds; ratio to none of the same mode | to plain)"
  printf '%-12s %9s %9s %9s   %-20s %-20s\n' set insert update delete "/none: ins upd del" "/plain: ins upd del"
  print_medians s
fi

# ---------------------------------------------------------------------------------------------
# Part 2: bulk statements.
if has_part bulk; then
  base=1000000000
  tenants="'{t0,t1,t2,t3,t4,t5,t6,t7}'"
  for ((r = 0; r < rounds; r++)); do
    for v in $(rotate "$r" "${variants[@]}"); do
      db=$(v_db "$v")
      t=$(v_table "$v")
      psql_q "$server/$db" -c "VACUUM ANALYZE $t" -c "TRUNCATE pg2kafka.event_batches" -c "CHECKPOINT"
      out=$(PGOPTIONS="$writer_opts" psql -X -v ON_ERROR_STOP=1 "$(wurl "$db")" <<EOF
\timing on
INSERT INTO $t SELECT $(row_values g g) FROM generate_series($((base + 1)), $((base + bulk_rows))) g;
UPDATE $t SET email = 'bulk' || id || '@example.com', notes = 'bulk note ' || id
 WHERE tenant = ANY ($tenants) AND id > $base;
DELETE FROM $t WHERE tenant = ANY ($tenants) AND id > $base;
EOF
      ) || die "bulk statements on $v failed"
      mapfile -t times < <(sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' <<<"$out")
      ((${#times[@]} == 3)) || die "bulk on $v: expected 3 timings, got: $out"
      res[b.insert.$v]+="${times[0]} "
      res[b.update.$v]+="${times[1]} "
      res[b.delete.$v]+="${times[2]} "
    done
  done
  echo
  echo "== bulk statements of $bulk_rows rows: median ms ($rounds rounds; ratio to none of the same mode | to plain)"
  printf '%-12s %9s %9s %9s   %-20s %-20s\n' set insert update delete "/none: ins upd del" "/plain: ins upd del"
  print_medians b
fi

# ---------------------------------------------------------------------------------------------
# Part 3: draining.
if has_part drain; then
  [[ -x $bin ]] || die "$bin not built (cmake --build build --target pg2kafka source_pg_outbox sink_stdout)"
  cat >"$state/pipeline.json" <<EOF
{"source": {"plugin": "pg-outbox", "options": {"connection": "$server/co"}},
 "sink": {"plugin": "stdout", "options": {}}}
EOF
  drain_sets=(none maskexcl prov full tomb ckey)
  for s in "${drain_sets[@]}"; do create_table co "d_$s" "$s"; done
  n3=$((drain_events / 3))
  events=$((n3 * 3))
  # fill SET KIND(onerow|bulk) COUNT_PER_KIND -> seconds the writes took
  fill() {
    local t=d_$1 n=$3 sql
    if [[ $2 == onerow ]]; then
      sql="DO \$\$ BEGIN
        FOR i IN 1..$n LOOP INSERT INTO $t VALUES ($(row_values i i)); END LOOP;
        FOR i IN 1..$n LOOP UPDATE $t SET email = 'u' || i || '@example.com', notes = 'n' || i
                             WHERE tenant = 't' || (i % 8) AND id = i; END LOOP;
        FOR i IN 1..$n LOOP DELETE FROM $t WHERE tenant = 't' || (i % 8) AND id = i; END LOOP;
      END \$\$;"
    else
      sql="INSERT INTO $t SELECT $(row_values g g) FROM generate_series(1, $n) g;
        UPDATE $t SET email = 'u' || id || '@example.com', notes = 'n' || id;
        DELETE FROM $t;"
    fi
    local t0 t1
    t0=$(date +%s.%N)
    PGOPTIONS="$writer_opts" psql -X -q -v ON_ERROR_STOP=1 "$(wurl co)" -c "$sql" >/dev/null
    t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }'
  }
  # CPU ticks of every PostgreSQL process: the postmaster's own and its reaped children's, and
  # its live children's.
  pg_ticks() {
    local pm
    pm=$(head -1 "$pg_data/postmaster.pid")
    { awk '{ print $14 + $15 + $16 + $17 }' "/proc/$pm/stat"
      for c in $(pgrep -P "$pm"); do awk '{ print $14 + $15 }' "/proc/$c/stat" 2>/dev/null || true; done
    } | awk '{ s += $1 } END { print s }'
  }
  hz=$(getconf CLK_TCK)
  # Waits (at most 5 s) until no client backend runs: one that has exited is counted (in the
  # postmaster's cutime) only once the postmaster has reaped it, so the fill's and the checks'
  # sessions must be gone before the drain's window opens, and the daemon's before it closes.
  backends_gone() {
    local pm c i
    pm=$(head -1 "$pg_data/postmaster.pid")
    for ((i = 0; i < 100; i++)); do
      c=0
      for p in $(pgrep -P "$pm"); do
        grep -qaE '127\.0\.0\.1|\[local\]' "/proc/$p/cmdline" 2>/dev/null && c=1
      done
      ((c == 0)) && return 0
      sleep 0.05
    done
  }
  prepare_drain() {
    psql_q "$server/co" -c "ANALYZE pg2kafka.event_batches" -c "CHECKPOINT"
  }
  queued() { psql_q -t -A "$server/co" -c "SELECT coalesce(sum(events), 0) FROM pg2kafka.event_batches"; }
  drain() { # OUT; sets wall, usr, sys, pgcpu (seconds)
    local p0 p1
    backends_gone
    p0=$(pg_ticks)
    /usr/bin/time -f '%e %U %S' -o "$state/time.txt" "$bin" run --once --config "$state/pipeline.json" \
      --plugin-dir "$plugin_dir" >"$1" 2>"$state/drain.log" ||
      { tail -n 20 "$state/drain.log" >&2; die "pg2kafka run --once failed"; }
    backends_gone
    p1=$(pg_ticks)
    [[ $(queued) == 0 ]] || die "events left in the queue after run --once"
    read -r wall usr sys <"$state/time.txt"
    pgcpu=$(awk -v a="$p0" -v b="$p1" -v hz="$hz" 'BEGIN { printf "%.2f", (b - a) / hz }')
  }
  # Check each set's records first (and warm up): 5 statements of each kind, drained to a file.
  for s in "${drain_sets[@]}"; do
    psql_q "$server/co" -c "TRUNCATE pg2kafka.event_batches"
    fill "$s" onerow 5 >/dev/null
    want=15
    [[ $s == tomb ]] && want=20
    drain "$state/check.$s.out"
    got=$(wc -l <"$state/check.$s.out")
    [[ $got == "$want" ]] || die "$s: $got records drained, expected $want (see $state/check.$s.out)"
  done
  for kind in onerow bulk; do
    for ((r = 0; r < rounds; r++)); do
      for s in $(rotate "$r" "${drain_sets[@]}"); do
        psql_q "$server/co" -c "TRUNCATE pg2kafka.event_batches" -c "VACUUM ANALYZE d_$s"
        secs=$(fill "$s" "$kind" "$n3")
        [[ $(queued) == "$events" ]] || die "$s $kind: $(queued) events queued, expected $events"
        prepare_drain
        drain /dev/null
        res[d.$kind.$s.fill]+="$secs "
        res[d.$kind.$s.rate]+="$(awk -v n="$events" -v w="$wall" 'BEGIN { printf "%.0f", n / w }') "
        res[d.$kind.$s.cpu]+="$(awk -v n="$events" -v u="$usr" -v s="$sys" 'BEGIN { printf "%.2f", (u + s) * 1e6 / n }') "
        res[d.$kind.$s.pg]+="$(awk -v n="$events" -v p="$pgcpu" 'BEGIN { printf "%.2f", p * 1e6 / n }') "
      done
    done
  done
  echo
  echo "== draining $events events (a third each INSERT, UPDATE, DELETE) with run --once, stdout sink to /dev/null; medians of $rounds rounds"
  echo "   (fill: the writes queueing them, one session; events/s incl. start-up; CPU per event: daemon user+sys, all PostgreSQL processes)"
  printf '%-8s %-9s %9s %9s %9s %10s   %-6s %-6s %-6s %-6s  %s\n' kind set "fill us/ev" "events/s" "daemon us" "pg us/ev" "/none:" fill rate daemon "pg ; runs of events/s"
  for kind in onerow bulk; do
    for s in "${drain_sets[@]}"; do
      awk -v k="$kind" -v s="$s" -v ev="$events" \
        -v f="$(median <<<"${res[d.$kind.$s.fill]}")" -v fb="$(median <<<"${res[d.$kind.none.fill]}")" \
        -v r="$(median <<<"${res[d.$kind.$s.rate]}")" -v rb="$(median <<<"${res[d.$kind.none.rate]}")" \
        -v c="$(median <<<"${res[d.$kind.$s.cpu]}")" -v cb="$(median <<<"${res[d.$kind.none.cpu]}")" \
        -v p="$(median <<<"${res[d.$kind.$s.pg]}")" -v pb="$(median <<<"${res[d.$kind.none.pg]}")" \
        -v runs="${res[d.$kind.$s.rate]}" 'BEGIN {
        printf "%-8s %-9s %10.1f %9.0f %9.2f %10.2f   %6s %6.2f %6.2f %6.2f %6.2f  %s\n", k, s,
          f * 1e6 / ev, r, c, p, "", f / fb, r / rb, c / cb, (pb > 0 ? p / pb : 0), runs }'
    done
  done
fi
