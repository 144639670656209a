# shellcheck shell=bash disable=SC2154,SC2034 # variables shared with scripts/bench.sh and bench/lib
# The benchmark's set-up, shared by all workloads (sourced by scripts/bench.sh after
# bench/lib/common.sh, from the repository's top directory): the work directory and the cleanup,
# building, the services (the test fixtures' PostgreSQL and Kafka, or those given), the daemon's
# environment, the pg2kafka schema and the versions in the report.

# bench_prepare: the work directory ($state: logs, per-run JSON, the results), and the cleanup on
# exit, failure or Ctrl-C. Sets state, results, build_dir, bench_build, bin and tools.
bench_prepare() {
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
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
}

# shellcheck disable=SC2317 # run by the EXIT trap
bench_cleanup() {
  local rc=$?
  # Only the processes this script started (their pids were recorded), never by name.
  local pid
  while read -r pid; do
    if [[ -n "$pid" ]]; then kill -TERM "$pid" 2>/dev/null || true; fi
  done <"$state/pids"
  sleep 0.5
  while read -r pid; do
    if [[ -n "$pid" ]]; then kill -KILL "$pid" 2>/dev/null || true; fi
  done <"$state/pids"
  if ((started_kafka)); then tests/support/kafka/kafka_fixture.sh stop "$state" >/dev/null 2>&1 || true; fi
  if ((started_pg)); then tests/support/pg/pg_fixture.sh stop "$state" >/dev/null 2>&1 || true; fi
  if [[ -n "${BENCH_KEEP_STATE:-}" ]]; then
    echo "bench.sh: state kept in $state" >&2
  else
    rm -rf "$state"
  fi
  exit "$rc"
}

# bench_build BUILD: with BUILD 1, builds pg2kafka (scripts/build.sh) and the drivers of bench/src
# (a CMake project of their own); then checks that the binaries are there, and python3 (which
# writes the results at the end).
bench_build() {
  if (($1)); then
    say "building pg2kafka ($build_dir) and the bench tools ($bench_build)"
    scripts/build.sh >/dev/null
    cmake -S bench -B "$bench_build" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$bench_build" --parallel "$(nproc)" >/dev/null
  fi
  [[ -x "$bin" ]] || die "$bin not found: build first (scripts/build.sh) or drop --no-build"
  local t
  for t in p2k-bench-run p2k-bench-writer p2k-bench-kafka; do
    [[ -x "$tools/$t" ]] || die "$tools/$t not found: run without --no-build"
  done
  command -v python3 >/dev/null || die "python3 not found (bench/lib/results.py writes the results)"
}

load_env() { while IFS='=' read -r key value; do export "$key=$value"; done <"$1"; }

# bench_services: DATABASE_URL and KAFKA_BROKER (exported), from BENCH_DATABASE_URL and
# BENCH_KAFKA_BROKER or else a throwaway PostgreSQL and Kafka broker started on loopback with the
# test fixtures; kafka_version; P2K_BENCH_PGBENCH (the pgbench to run).
bench_services() {
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
    kafka_version=""
    local jar
    for jar in "$P2K_TEST_KAFKA_LIBS"/kafka_*.jar; do
      if [[ ${jar##*/} =~ ^kafka_[0-9.]*-([0-9.]*)\.jar$ ]]; then
        kafka_version=${BASH_REMATCH[1]}
        break
      fi
    done
  fi
  P2K_BENCH_PGBENCH=$(command -v pgbench || true)
  [[ -n "${P2K_TEST_PG_BIN:-}" && -x "${P2K_TEST_PG_BIN}/pgbench" ]] && P2K_BENCH_PGBENCH=$P2K_TEST_PG_BIN/pgbench
  [[ -n "$P2K_BENCH_PGBENCH" ]] || die "pgbench not found (apt-get install postgresql-contrib)"
}

# bench_pipeline: the daemon's environment, the default pipeline with its environment interface
# (or BENCH_PG2KAFKA_CONFIG), topics under a namespace of this run.
bench_pipeline() {
  export PERFORM_MIGRATIONS=true KAFKA_CREATE_TOPICS=true KAFKA_TOPIC_PARTITIONS=$partitions
  TOPIC_NAMESPACE="bench$(date -u +%Y%m%d%H%M%S)"
  export TOPIC_NAMESPACE
  export DRY_RUN=false
  unset KAFKA_PRODUCER_URL
  if [[ -n "${BENCH_PG2KAFKA_CONFIG:-}" ]]; then
    export PG2KAFKA_CONFIG=$BENCH_PG2KAFKA_CONFIG
  else
    unset PG2KAFKA_CONFIG
  fi
  [[ "$KAFKA_BROKER" =~ ^(127\.[0-9.]+|localhost|\[?::1\]?):[0-9]+$ ]] ||
    note "warning: KAFKA_BROKER $KAFKA_BROKER is not a loopback address"
}

# bench_install_schema: pg2kafka run --once on an empty queue (PERFORM_MIGRATIONS); then the
# facts of the report: db_name, pg_version, p2k_version, rdkafka_version, cores, started_at.
bench_install_schema() {
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
}
