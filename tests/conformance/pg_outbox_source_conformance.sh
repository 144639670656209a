#!/usr/bin/env bash
# Runs the source conformance suite against the pg-outbox plugin and the test PostgreSQL (the
# `postgres` CTest fixture): a database of its own, the schema installed from sql/, one tracked
# table; the suite's --produce inserts 50 rows into it in one statement.
# Usage: pg_outbox_source_conformance.sh STATE_DIR SQL_DIR SUITE PLUGIN
set -euo pipefail
state_dir="$1" sql_dir="$2" suite="$3" plugin="$4"
# pg.env holds KEY=VALUE lines, some with unquoted spaces: read the two we need.
value() { sed -n "s/^$1=//p" "$state_dir/pg.env"; }
P2K_TEST_PG_URL=$(value P2K_TEST_PG_URL)
P2K_TEST_PG_BIN=$(value P2K_TEST_PG_BIN)
psql="$P2K_TEST_PG_BIN/psql"
[ -x "$psql" ] || psql=psql
db=p2k_source_conformance
"$psql" -q -v ON_ERROR_STOP=1 "$P2K_TEST_PG_URL" \
  -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
url="${P2K_TEST_PG_URL%/*}/$db"
"$psql" -q -v ON_ERROR_STOP=1 --single-transaction -f "$sql_dir/install.sql" "$url" >/dev/null
"$psql" -q -v ON_ERROR_STOP=1 "$url" \
  -c "CREATE TABLE items (id bigint PRIMARY KEY, name text)" \
  -c "SELECT pg2kafka.setup('items', 'id')" >/dev/null
produce="'$psql' -q -v ON_ERROR_STOP=1 '$url' -c \"INSERT INTO items SELECT m + g, 'item ' || (m + g) FROM (SELECT coalesce(max(id), 0) AS m FROM items) s, generate_series(1, 50) g\""
exec "$suite" --plugin "$plugin" \
  --options "{\"connection\": \"$url\", \"poll_interval\": \"200ms\"}" --produce "$produce"
