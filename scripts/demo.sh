#!/usr/bin/env bash
# The main job on an embedded default: a throwaway PostgreSQL and a local Kafka broker (both on
# loopback, removed at the end), the original README's scenario, and the messages read back.
#
#   scripts/demo.sh            stream to the local Kafka broker and consume the topic
#   scripts/demo.sh --stdout   no Kafka: print the events with DRY_RUN=true
#
# Everything goes through the shipped default pipeline (config/pg2kafka.json) and the original
# environment variables: DATABASE_URL, PERFORM_MIGRATIONS, KAFKA_BROKER, DRY_RUN.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
mode=kafka
[ "${1:-}" = "--stdout" ] && mode=stdout

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "installing what is missing and building"
scripts/install-deps.sh >/dev/null
scripts/build.sh >/dev/null
bin="$repo/${P2K_BUILD_DIR:-build}/bin/pg2kafka"

state=$(mktemp -d /tmp/pg2kafka-demo.XXXXXX)
chmod 755 "$state"  # the throwaway cluster runs as the postgres user when we are root
cleanup() {
  tests/support/kafka/kafka_fixture.sh stop "$state" >/dev/null 2>&1 || true
  tests/support/pg/pg_fixture.sh stop "$state" >/dev/null 2>&1 || true
  rm -rf "$state"
}
trap cleanup EXIT

# KEY=VALUE lines written by the fixtures (values may contain spaces: not shell syntax).
load_env() { while IFS='=' read -r key value; do export "$key=$value"; done <"$1"; }

say "starting a throwaway PostgreSQL on 127.0.0.1"
tests/support/pg/pg_fixture.sh start "$state" >/dev/null
load_env "$state/pg.env"
psql -q "$P2K_TEST_PG_URL" -c "CREATE DATABASE shop_test"
export DATABASE_URL="postgresql://postgres@127.0.0.1:$P2K_TEST_PG_PORT/shop_test"
export PERFORM_MIGRATIONS=true
unset PG2KAFKA_CONFIG TOPIC_NAMESPACE
if [ "$mode" = kafka ]; then
  say "starting a local Kafka broker on 127.0.0.1"
  tests/support/kafka/kafka_fixture.sh start "$state" >/dev/null
  load_env "$state/kafka.env"
  export KAFKA_BROKER="$P2K_TEST_KAFKA_BROKERS" KAFKA_CREATE_TOPICS=true KAFKA_TOPIC_PARTITIONS=3
  export DRY_RUN=false
else
  export DRY_RUN=true
  unset KAFKA_BROKER KAFKA_PRODUCER_URL
fi

sql() { echo "shop_test=# $1"; psql -q -v ON_ERROR_STOP=1 "$DATABASE_URL" -c "$1"; }
say "the seed's products table, with data"
sql "CREATE TABLE products (id BIGSERIAL, sku TEXT, name TEXT)"
sql "INSERT INTO products (sku, name) VALUES ('CM01-R', 'Red Coffee Mug')"
sql "INSERT INTO products (sku, name) VALUES ('CM01-B', 'Blue Coffee Mug')"

say "pg2kafka run --once with PERFORM_MIGRATIONS=true: installs the pg2kafka schema"
"$bin" run --once

say "tracking the table (snapshots its rows), then changing it"
sql "SELECT pg2kafka.setup('products', 'sku')"
sql "UPDATE products SET name = 'Big Red Coffee Mug' WHERE sku = 'CM01-R'"

if [ "$mode" = kafka ]; then
  say "pg2kafka run --once: streams the events to Kafka"
  "$bin" run --once
  say "the messages on topic pg2kafka.shop_test.products"
  kcat -q -C -b "$KAFKA_BROKER" -t pg2kafka.shop_test.products -e \
    -f 'partition %p  offset %o  key %k\n%s\n\n'
  say "the queue afterwards"
  sql "SELECT coalesce(sum(events), 0) AS events_left FROM pg2kafka.event_batches"
else
  say "pg2kafka run --once with DRY_RUN=true: prints the events, removes nothing"
  "$bin" run --once
fi
