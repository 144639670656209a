#!/usr/bin/env bash
# Builds the Debian packages into OUTPUT_DIR (default: <build tree>/packages):
#   pg2kafka_<version>_<arch>.deb, pg2kafka-dev_<version>_<arch>.deb and their -dbgsym .ddeb files.
#
# Usage: scripts/package.sh [OUTPUT_DIR]
#
# Configures a tree of its own (build-deb/, or $P2K_PACKAGE_BUILD_DIR) for the Debian layout
# (prefix /usr, configuration in /etc), with Debian's hardening build flags (dpkg-buildflags),
# builds only what the packages contain and runs cpack. See packaging/README.md.
#
# Environment:
#   P2K_PACKAGE_BUILD_DIR  the build tree (default build-deb; kept, so a second run is incremental)
#   P2K_PACKAGE_RELEASE    the Debian revision (default 1): the version is <version>-<revision>
#   P2K_JOBS               parallel build jobs (default: the number of cores)
set -euo pipefail
cd "$(dirname "$0")/.."
source_dir=$(pwd)
build_dir="${P2K_PACKAGE_BUILD_DIR:-build-deb}"
out_dir="${1:-$build_dir/packages}"
mkdir -p "$out_dir"
out_dir=$(cd "$out_dir" && pwd)

for tool in cmake cpack dpkg-deb dpkg-buildflags; do
  command -v "$tool" >/dev/null || {
    echo "package.sh: $tool is missing (apt-get install cmake dpkg-dev)" >&2
    exit 1
  }
done

# Debian's build flags, with every hardening feature (PIE, bindnow, fortify, stack protector).
# CMake reads CFLAGS, CXXFLAGS and LDFLAGS when it configures a new tree; it has no CPPFLAGS.
export DEB_BUILD_MAINT_OPTIONS="hardening=+all"
eval "$(dpkg-buildflags --export=sh)"
export CFLAGS="$CFLAGS $CPPFLAGS" CXXFLAGS="$CXXFLAGS $CPPFLAGS"

generator=()
command -v ninja >/dev/null 2>&1 && [ ! -f "$build_dir/CMakeCache.txt" ] && generator=(-G Ninja)
# The tests are configured (not built) for the conformance suites that pg2kafka-dev ships.
cmake -S "$source_dir" -B "$build_dir" "${generator[@]}" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_INSTALL_PREFIX=/usr \
  -DCMAKE_INSTALL_SYSCONFDIR=/etc \
  -DPG2KAFKA_BUILD_TESTS=ON \
  -DPG2KAFKA_PACKAGE_RELEASE="${P2K_PACKAGE_RELEASE:-1}" >/dev/null
cmake --build "$build_dir" --target pg2kafka-packaged --parallel "${P2K_JOBS:-$(nproc)}"

# A package never contains files of an earlier run: cpack stages into _CPack_Packages afresh.
rm -rf "$build_dir/_CPack_Packages"
(cd "$build_dir" && cpack -G DEB -B "$out_dir" >/dev/null)
rm -rf "$out_dir/_CPack_Packages"
find "$out_dir" -maxdepth 1 -type f \( -name '*.deb' -o -name '*.ddeb' \) | sort
