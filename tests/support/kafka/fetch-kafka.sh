#!/usr/bin/env bash
# Usage: fetch-kafka.sh DEST_DIR
#
# Copies the runtime jars of Apache Kafka 3.9.x (and a logging binding) from Maven Central into
# DEST_DIR, using the pom-only project next to this script. Idempotent: when DEST_DIR already holds
# the jars of the same pom.xml, it does nothing. Maven caches downloads in ~/.m2, so a fetch into
# a new directory is fast after the first one. Needs `mvn` and a Java runtime.
set -euo pipefail

if [[ $# -ne 1 || -z "$1" ]]; then
  echo "usage: $0 DEST_DIR" >&2
  exit 2
fi
dest=$1
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
pom="$here/pom.xml"
stamp="$dest/.pg2kafka-fetched"
want=$(sha256sum "$pom" | cut -d' ' -f1)

if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]] && compgen -G "$dest/kafka_2.13-*.jar" >/dev/null; then
  exit 0
fi

if ! command -v mvn >/dev/null; then
  echo "fetch-kafka.sh: mvn (Maven) is not installed; install the 'maven' package" >&2
  exit 1
fi

mkdir -p "$dest"
# A previous fetch of another version would leave two kafka-clients jars on the class path.
rm -f "$dest"/*.jar "$stamp"
echo "fetch-kafka.sh: fetching Kafka jars from Maven Central into $dest" >&2
mvn -q -B -Dstyle.color=never -f "$pom" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$dest"
if ! compgen -G "$dest/kafka_2.13-*.jar" >/dev/null; then
  echo "fetch-kafka.sh: Maven finished but $dest has no kafka_2.13 jar" >&2
  exit 1
fi
echo "$want" >"$stamp"
