#!/usr/bin/env bash
# Installs pg2kafka into a temporary prefix, builds the out-of-tree example plugin against the
# installed SDK and CMake package, runs the sink conformance suite on it, and runs a pipeline
# through the installed binary into it.
set -euo pipefail
source_dir="$1"
build_dir="$2"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cmake --install "$build_dir" --prefix "$work/prefix" >/dev/null
cmake -S "$source_dir/examples/sink-file" -B "$work/example" -DCMAKE_PREFIX_PATH="$work/prefix" \
  -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$work/example" >/dev/null
plugin="$work/example/pg2kafka-sink-file.so"
test -f "$plugin" || { echo "FAIL: the example plugin was not built"; exit 1; }

# The installed binary finds its installed plugins without any flag.
"$work/prefix/bin/pg2kafka" plugins list | grep -q $'^sink\tstdout\t' ||
  { echo "FAIL: installed pg2kafka does not list the installed stdout plugin"; exit 1; }

"$work/prefix/bin/pg2kafka-sink-conformance" --plugin "$plugin" \
  --options "{\"path\": \"$work/conformance.jsonl\"}"

cat >"$work/pipeline.json" <<JSON
{
  "source": {"plugin": "test-sequence", "options": {"count": 25, "keys": 4}},
  "sink": {"plugin": "file", "options": {"path": "$work/out.jsonl", "fsync": true}},
  "pipeline": {"batch_size": 10}
}
JSON
"$work/prefix/bin/pg2kafka" run --once --config "$work/pipeline.json" \
  --plugin-dir "$work/example" --plugin-dir "$build_dir/test-plugins"
lines=$(wc -l <"$work/out.jsonl")
[ "$lines" -eq 25 ] || { echo "FAIL: expected 25 records in the file, found $lines"; exit 1; }
first=$(head -1 "$work/out.jsonl")
expected='{"topic":"test.topic","key":"key-1","id":"evt-1","value":"{\"seq\":1,\"key\":\"key-1\"}"}'
[ "$first" = "$expected" ] || { echo "FAIL: first line is $first"; exit 1; }
echo "example plugin: built against the installed SDK, conformant, and ran 25 records"
