#!/usr/bin/env bash
# The pg2kafka benchmarks (issue 5). See bench/README.md for what each workload measures.
#
#   scripts/bench.sh [--quick] [--json FILE] [--no-build] [WORKLOAD...]
#
# Workloads: drain live live-notify write-path snapshot backfill footprint long-tx (default: all,
# in that order).
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

# This script only drives: the workloads are bench/workloads/<name>.sh (each defines wl_<name>
# and its sizes), the set-up shared by all is bench/lib/setup.sh, their helpers
# bench/lib/common.sh, and bench/lib/results.py writes the JSON and the table.
quick=0
build=1
json_out=""
workloads=()
all_workloads=(drain live live-notify write-path snapshot backfill footprint long-tx metrics)
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

# shellcheck source=bench/lib/common.sh
source bench/lib/common.sh
# shellcheck source=bench/lib/setup.sh
source bench/lib/setup.sh
for w in "${workloads[@]}"; do
  # shellcheck source=/dev/null
  source "bench/workloads/$w.sh"
done

bench_prepare
bench_build "$build"
bench_services
bench_pipeline
bench_install_schema

# Each workload in a subshell with errexit (which an `if` around it would turn off): one that
# breaks is reported and the others still run.
failed=()
for w in "${workloads[@]}"; do
  rc=0
  set +e
  (
    set -e
    "wl_${w//-/_}"
  )
  rc=$?
  set -e
  if ((rc != 0)); then
    failed+=("$w")
    record_row "$w" "FAILED" "error" "-" "-" "see the output above"
  fi
done

# Report: the JSON, then the table.
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
