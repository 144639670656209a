#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs every test (unit, ABI,
# conformance, plugins against a throwaway PostgreSQL and a real Kafka broker, end to end).
# Extra arguments go to ctest, e.g. `scripts/test.sh -R Pipeline` or `scripts/test.sh -L pg`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
build_dir="${P2K_BUILD_DIR:-build}"
ctest --test-dir "$build_dir" --output-on-failure --parallel "$(nproc)" --timeout 600 "$@"
