#!/usr/bin/env bash
# Configures and builds pg2kafka (and its tests) into build/ (or $P2K_BUILD_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${P2K_BUILD_DIR:-build}"
generator=()
command -v ninja >/dev/null 2>&1 && [ ! -f "$build_dir/CMakeCache.txt" ] && generator=(-G Ninja)
cmake -S . -B "$build_dir" "${generator[@]}" -DCMAKE_BUILD_TYPE="${P2K_BUILD_TYPE:-RelWithDebInfo}" \
  -DPG2KAFKA_WERROR=ON >/dev/null
cmake --build "$build_dir" --parallel "$(nproc)"
