#!/usr/bin/env bash
# Installs what building and testing pg2kafka needs on Debian 12 (bookworm): compilers, Boost,
# libpq, librdkafka, GoogleTest, PostgreSQL, Java (to run a real Kafka broker in tests), python3
# (the bench's results writer), promtool (package prometheus: checks the /metrics exposition),
# systemd-analyze and dpkg-dev (the Debian package's tests) and the Kafka jars (from Maven
# Central, cached). Installs only what is missing; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake ninja-build pkg-config clang-format
  libboost1.81-dev libboost-json1.81-dev libboost-program-options1.81-dev
  libpq-dev librdkafka-dev libgtest-dev libgmock-dev
  postgresql postgresql-contrib kcat python3
  prometheus systemd dpkg-dev file
)
command -v java >/dev/null 2>&1 || packages+=(default-jre-headless)
command -v mvn >/dev/null 2>&1 || packages+=(maven)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

# The Kafka broker used by the tests (jars from Maven Central, cached between runs).
if [ -x tests/support/kafka/fetch-kafka.sh ]; then
  tests/support/kafka/fetch-kafka.sh "${P2K_KAFKA_LIBS:-$HOME/.cache/pg2kafka/kafka-3.9}"
fi
echo "install-deps: done"
