#!/usr/bin/env bash
# Installs pg2kafka into a temporary prefix and uses it as a third-party plugin author would:
#   - builds the out-of-tree example plugin against the installed SDK and CMake package, runs the
#     sink conformance suite on it and a pipeline through the installed binary into it;
#   - installs it with `cmake --install` and finds it with `pg2kafka plugins list`, no flag needed;
#   - builds the plugin template and runs its CTest (the conformance suite);
#   - checks that a plugin that forgot to link a library fails to build (-z defs).
set -euo pipefail
source_dir="$1"
build_dir="$2"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

cmake --install "$build_dir" --prefix "$work/prefix" >/dev/null
cmake -S "$source_dir/examples/sink-file" -B "$work/example" -DCMAKE_PREFIX_PATH="$work/prefix" \
  -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$work/example" >/dev/null
plugin="$work/example/pg2kafka-sink-file.so"
test -f "$plugin" || fail "the example plugin was not built"

# The installed binary finds its installed plugins without any flag.
"$work/prefix/bin/pg2kafka" plugins list | grep -q $'^sink\tstdout\t' ||
  fail "installed pg2kafka does not list the installed stdout plugin"
"$work/prefix/bin/pg2kafka" plugins list | grep -q $'^source\tgenerator\t' ||
  fail "installed pg2kafka does not list the generator source"

"$work/prefix/bin/pg2kafka-sink-conformance" --plugin "$plugin" \
  --options "{\"path\": \"$work/conformance.jsonl\"}" --failing-options '{"path": "/dev/full"}'

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
[ "$lines" -eq 25 ] || fail "expected 25 records in the file, found $lines"
first=$(head -1 "$work/out.jsonl")
expected='{"topic":"test.topic","key":"key-1","id":"evt-1","value":"{\"seq\":1,\"key\":\"key-1\"}"}'
[ "$first" = "$expected" ] || fail "first line is $first"

# `cmake --install` of the out-of-tree build puts the plugin where the installed host looks.
cmake --install "$work/example" >/dev/null
test -f "$work/prefix/lib/pg2kafka/plugins/pg2kafka-sink-file.so" ||
  test -f "$work/prefix/lib64/pg2kafka/plugins/pg2kafka-sink-file.so" ||
  fail "cmake --install did not put the plugin into the prefix's plugin directory"
"$work/prefix/bin/pg2kafka" plugins list | grep -q $'^sink\tfile\t1.1.0\t' ||
  fail "pg2kafka plugins list does not show the installed file plugin:
$("$work/prefix/bin/pg2kafka" plugins list)"
cat >"$work/generated.json" <<JSON
{
  "source": {"plugin": "generator", "options": {"count": 40, "keys": 3}},
  "sink": {"plugin": "file", "options": {"path": "$work/generated.jsonl"}}
}
JSON
"$work/prefix/bin/pg2kafka" run --once --config "$work/generated.json"
lines=$(wc -l <"$work/generated.jsonl")
[ "$lines" -eq 40 ] || fail "expected 40 generated records in the file, found $lines"

# The plugin template builds, passes its own conformance test, and installs.
cp -r "$source_dir/examples/plugin-template" "$work/template-src"
cmake -S "$work/template-src" -B "$work/template" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/template" >/dev/null
ctest --test-dir "$work/template" --output-on-failure >/dev/null ||
  fail "the plugin template does not pass the conformance suite"
cmake --install "$work/template" >/dev/null
"$work/prefix/bin/pg2kafka" plugins describe my-sink | grep -q 'headers\.\*  (prefix, secret' ||
  fail "the installed template is not described"

# -z defs: a missing library is a link error, not a load error.
cmake -S "$source_dir/tests/e2e/unlinked-plugin" -B "$work/unlinked" \
  -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
if cmake --build "$work/unlinked" >"$work/unlinked.log" 2>&1; then
  fail "a plugin with an undefined symbol linked"
fi
grep -q "undefined reference to .p2k_function_of_a_library_not_linked" "$work/unlinked.log" ||
  fail "the link failed for another reason: $(cat "$work/unlinked.log")"

echo "example plugin: built against the installed SDK, conformant, installed and listed, ran 25 +" \
  "40 records; the template builds and is conformant; an unlinked plugin fails to link"
