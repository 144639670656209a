#!/usr/bin/env bash
# Package.Debian: builds the Debian packages with scripts/package.sh (in a tree of their own under
# the build directory), then, without installing anything on this machine:
#   1. their control fields: names, version, architecture, dependencies (every library an ELF
#      file of a package needs belongs to a package it depends on);
#   2. their contents: what each must hold (every plugin the build makes, the SQL, the unit,
#      the conffiles with their modes) and must not (test plugins, files of the other package);
#   3. the conffiles list and the maintainer scripts: `sh -n`, then run with stub commands (user
#      creation, idempotence, no start at installation, the purge);
#   4. the ELF files: hardened (PIE, RELRO, BIND_NOW), stripped with their debug symbols in the
#      dbgsym packages, and no executable stack in them or the libraries they load
#      (MemoryDenyWriteExecute=yes);
#   5. the unit: `systemd-analyze verify` against the extracted package (no running systemd
#      needed), its directives, `systemd-analyze security` (exposure at most 2.0);
#   6. the extracted binary: --version, its plugins (its own, never those of the build tree), its
#      default pipeline path (/etc/pg2kafka), and the default pipeline run with the packaged env
#      template (DRY_RUN=true, the stdout sink) against the test PostgreSQL (schema installed by
#      hand from the packaged SQL), the events checked on stdout;
#   7. pg2kafka-dev: the example sink builds against the extracted packages and passes the
#      packaged conformance suite.
# Usage: package_test.sh SOURCE_DIR BUILD_DIR STATE_DIR
set -euo pipefail
source_dir="$1" build_dir="$2" state_dir="$3"
package_tree="$build_dir/package-tree"
work=$(mktemp -d "${TMPDIR:-/tmp}/p2k-package.XXXXXX")
db=p2k_package_test
psql=psql

fail() {
  echo "FAIL: $*" >&2
  exit 1
}
started=$SECONDS
step() { echo "== [$((SECONDS - started))s] $*"; }

value() { sed -n "s/^$1=//p" "$state_dir/pg.env"; }
pg_url=$(value P2K_TEST_PG_URL)
[ -n "$pg_url" ] || fail "no PostgreSQL: $state_dir/pg.env lacks P2K_TEST_PG_URL (fixture postgres)"
[ -x "$(value P2K_TEST_PG_BIN)/psql" ] && psql="$(value P2K_TEST_PG_BIN)/psql"
cleanup() {
  "$psql" -q "$pg_url" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# ---------------------------------------------------------------------------------------------
step "building the packages: scripts/package.sh (tree $package_tree)"
P2K_PACKAGE_RELEASE=1 P2K_PACKAGE_BUILD_DIR="$package_tree" \
  "$source_dir/scripts/package.sh" "$work/debs" >"$work/package.log" 2>&1 ||
  fail "scripts/package.sh failed: $(tail -n 30 "$work/package.log")"

arch=$(dpkg --print-architecture)
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
project_version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$package_tree/CMakeCache.txt")
version="$project_version-1"
runtime_deb="$work/debs/pg2kafka_${version}_$arch.deb"
dev_deb="$work/debs/pg2kafka-dev_${version}_$arch.deb"
runtime_dbgsym="$work/debs/pg2kafka-dbgsym_${version}_$arch.ddeb"
dev_dbgsym="$work/debs/pg2kafka-dev-dbgsym_${version}_$arch.ddeb"
expected=("$runtime_deb" "$dev_deb" "$runtime_dbgsym" "$dev_dbgsym")
# Without `file`, CPack makes no dbgsym packages (cmake/Packaging.cmake).
file_program=$(sed -n 's/^PG2KAFKA_FILE_PROGRAM:FILEPATH=//p' "$package_tree/CMakeCache.txt")
[ -f "$file_program" ] || expected=("$runtime_deb" "$dev_deb")
for f in "${expected[@]}"; do
  [ -f "$f" ] || fail "no $(basename "$f") among: $(ls "$work/debs")"
done
[ "$(find "$work/debs" -type f | wc -l)" -eq ${#expected[@]} ] ||
  fail "unexpected files among the packages: $(ls "$work/debs")"

# ---------------------------------------------------------------------------------------------
step "control fields"
field() { dpkg-deb -f "$1" "$2"; }
for deb in "$runtime_deb" "$dev_deb"; do
  [ "$(field "$deb" Version)" = "$version" ] ||
    fail "$(basename "$deb"): Version $(field "$deb" Version)"
  [ "$(field "$deb" Architecture)" = "$arch" ] || fail "$(basename "$deb"): Architecture"
  for f in Maintainer Section Priority Description Installed-Size; do
    [ -n "$(field "$deb" $f)" ] || fail "$(basename "$deb"): no $f field"
  done
done
[ "$(field "$runtime_deb" Package)" = pg2kafka ] || fail "runtime package named otherwise"
[ "$(field "$dev_deb" Package)" = pg2kafka-dev ] || fail "dev package: $(field "$dev_deb" Package)"
runtime_depends=$(field "$runtime_deb" Depends)
dev_depends=$(field "$dev_deb" Depends)
echo "pg2kafka Depends: $runtime_depends"
echo "pg2kafka-dev Depends: $dev_depends"
for needed in adduser libpq5 librdkafka1 'libboost-json1[.0-9]*' 'libboost-program-options1[.0-9]*' \
  libc6 'libstdc\+\+6'; do
  grep -Eq "(^|, )$needed( \(>= [^)]*\))?(,|$)" <<<"$runtime_depends" ||
    fail "pg2kafka does not depend on $needed"
done
[[ "$dev_depends" == *"pg2kafka (= $version)"* ]] ||
  fail "pg2kafka-dev does not depend on pg2kafka (= $version)"
[[ "$runtime_depends$dev_depends" != *gtest* ]] || fail "a package depends on GoogleTest"

# ---------------------------------------------------------------------------------------------
step "contents"
x="$work/root"  # both packages extracted into one tree, as they would be installed
mkdir -p "$x"
dpkg-deb -x "$runtime_deb" "$x"
dpkg-deb -x "$dev_deb" "$x"
list() { dpkg-deb -c "$1" | awk '{print $6}' | sed 's|^\./|/|; s|/$||'; }
list "$runtime_deb" | sort >"$work/runtime.files"
list "$dev_deb" | sort >"$work/dev.files"
regular() { dpkg-deb -c "$1" | awk '$1 ~ /^-/ {print $6}' | sed 's|^\./|/|' | sort; }
regular "$runtime_deb" >"$work/runtime.regular"
regular "$dev_deb" >"$work/dev.regular"
plugin_dir="/usr/lib/$multiarch/pg2kafka/plugins"
has() { grep -qx -- "$2" "$work/$1.files" || fail "pg2kafka${1/runtime/}: no $2"; }
lacks() {
  ! grep -qE -- "$2" "$work/$1.files" ||
    fail "pg2kafka${1/runtime/} holds $(grep -E -- "$2" "$work/$1.files" | head -n 3)"
}
for f in /usr/bin/pg2kafka /etc/pg2kafka/pg2kafka.json /etc/pg2kafka/env \
  /lib/systemd/system/pg2kafka.service /usr/share/doc/pg2kafka/README.md \
  /usr/share/doc/pg2kafka/README.Debian.md "$plugin_dir/pg2kafka-source-pg-outbox.so" \
  "$plugin_dir/pg2kafka-sink-kafka.so" "$plugin_dir/pg2kafka-sink-stdout.so" \
  "$plugin_dir/pg2kafka-source-generator.so"; do
  has runtime "$f"
done
# Every plugin the build makes for users is packaged (the test plugins are built elsewhere).
for plugin in "$build_dir"/lib*/pg2kafka/plugins/*.so "$build_dir"/lib/*/pg2kafka/plugins/*.so; do
  [ -e "$plugin" ] || continue
  has runtime "$plugin_dir/$(basename "$plugin")"
done
lacks runtime 'test-|/include/|/cmake/|conformance|^/usr/etc|^/usr/local|/build'
# The SQL is the repository's sql/, every file.
(cd "$source_dir/sql" && find . -type f \( -name '*.sql' -o -name README.md \)) |
  sed 's|^\.||' | sort >"$work/sql.expected"
sed -n 's|^/usr/share/pg2kafka/sql||p' "$work/runtime.regular" >"$work/sql.packaged"
diff "$work/sql.expected" "$work/sql.packaged" >&2 || fail "the packaged SQL differs from sql/"
for f in /usr/include/pg2kafka/plugin.h /usr/bin/pg2kafka-sink-conformance \
  /usr/bin/pg2kafka-source-conformance "/usr/lib/$multiarch/cmake/pg2kafka/pg2kafka-config.cmake" \
  "/usr/lib/$multiarch/cmake/pg2kafka/pg2kafka-config-version.cmake" \
  "/usr/lib/$multiarch/cmake/pg2kafka/Pg2kafkaPlugin.cmake" \
  /usr/share/doc/pg2kafka-dev/examples/sink-file/file_sink.cpp; do
  has dev "$f"
done
(cd "$source_dir/framework/include" && find . -type f) | sed 's|^\.|/usr/include|' | sort \
  >"$work/headers.expected"
grep '^/usr/include/' "$work/dev.regular" >"$work/headers.packaged" || true
diff "$work/headers.expected" "$work/headers.packaged" >&2 ||
  fail "the packaged headers differ from framework/include"
lacks dev '\.so$|^/usr/bin/pg2kafka$|^/etc'
# No file in both packages (they would conflict at installation).
both=$(comm -12 "$work/runtime.regular" "$work/dev.regular")
[ -z "$both" ] || fail "files in both packages: $both"
# Owners and modes.
for deb in "$runtime_deb" "$dev_deb"; do
  not_root=$(dpkg-deb -c "$deb" | awk '$2 != "root/root"')
  [ -z "$not_root" ] || fail "files not owned by root: $not_root"
done
mode() { dpkg-deb -c "$runtime_deb" | awk -v f="./${1#/}" '$6 == f {print $1}'; }
[ "$(mode /etc/pg2kafka/env)" = "-rw-r-----" ] ||
  fail "/etc/pg2kafka/env is $(mode /etc/pg2kafka/env), not -rw-r-----"
[ "$(mode /usr/bin/pg2kafka)" = "-rwxr-xr-x" ] || fail "/usr/bin/pg2kafka is not 0755"
[ "$(mode /lib/systemd/system/pg2kafka.service)" = "-rw-r--r--" ] || fail "the unit is not 0644"
# The env template names every variable of the default pipeline, and the operations' ones.
for var in $(grep -o '[$][{][A-Z0-9_]*' "$x/etc/pg2kafka/pg2kafka.json" | cut -c3- | sort -u) \
  PG2KAFKA_HTTP_LISTEN PG2KAFKA_LOG_FORMAT; do
  grep -q "^#$var=" "$x/etc/pg2kafka/env" || fail "/etc/pg2kafka/env does not list $var"
done
! grep -q '^[A-Z]' "$x/etc/pg2kafka/env" || fail "the env template sets a variable"

# ---------------------------------------------------------------------------------------------
step "conffiles and maintainer scripts"
dpkg-deb -e "$runtime_deb" "$work/control"
printf '/etc/pg2kafka/env\n/etc/pg2kafka/pg2kafka.json\n' >"$work/conffiles.expected"
sort "$work/control/conffiles" | diff "$work/conffiles.expected" - >&2 || fail "conffiles list"
grep '^/etc/' "$work/runtime.regular" | diff "$work/conffiles.expected" - >&2 ||
  fail "a file in /etc is not a conffile"
[ -f "$work/control/md5sums" ] || fail "no md5sums"
for script in postinst prerm postrm; do
  s="$work/control/$script"
  [ -f "$s" ] || fail "no $script"
  [ -x "$s" ] || fail "$script is not executable"
  [ "$(head -n 1 "$s")" = "#!/bin/sh" ] || fail "$script does not start with #!/bin/sh"
  sh -n "$s" || fail "$script: syntax error"
  grep -q '^set -e$' "$s" || fail "$script lacks set -e"
  if command -v shellcheck >/dev/null; then shellcheck -s sh "$s" || fail "$script: shellcheck"; fi
done
dpkg-deb --ctrl-tarfile "$dev_deb" | tar -t >"$work/dev.control"
! grep -Eqx '\./(preinst|postinst|prerm|postrm|conffiles)' "$work/dev.control" ||
  fail "pg2kafka-dev has maintainer scripts or conffiles: $(cat "$work/dev.control")"
# Every systemctl call is guarded by a running systemd, and nothing starts the service.
grep -q '\[ -d /run/systemd/system \]' "$work/control/postinst" ||
  fail "postinst: systemctl not guarded"
! grep -Eq 'invoke start|systemctl (--system )?start|enable --now' "$work/control/postinst" ||
  fail "postinst starts the service"
grep -q 'try-restart' "$work/control/postinst" ||
  fail "postinst does not restart a running service on upgrade"

# The scripts run against stub commands that record their calls (PATH holds only the stubs, so
# nothing on this machine is changed). getent answers from the files passwd and group.
stubs="$work/stubs"
mkdir -p "$stubs"
for cmd in adduser addgroup deluser delgroup chown chmod dpkg-statoverride \
  deb-systemd-helper deb-systemd-invoke systemctl; do
  cat >"$stubs/$cmd" <<STUB
#!/bin/sh
echo "$cmd \$*" >>"$work/calls"
for rc in "$work/rc.$cmd.\$1" "$work/rc.$cmd.\$2" "$work/rc.$cmd"; do
  [ -f "\$rc" ] && exit "\$(/bin/cat "\$rc")"
done
exit 0
STUB
done
script_root="$work/script-root"
cat >"$stubs/rmdir" <<STUB
#!/bin/sh
echo "rmdir \$*" >>"$work/calls"
case "\$1" in "$script_root"/*) exec /bin/rmdir "\$1" ;; *) exit 1 ;; esac
STUB
cat >"$stubs/getent" <<STUB
#!/bin/sh
/bin/grep -q "^\$2:" "$work/\$1" 2>/dev/null
STUB
chmod +x "$stubs"/*
# DPKG_ROOT: the scripts' paths (/etc/pg2kafka) are those of a copy of the extracted package.
cp -a "$x" "$script_root"
run_script() {  # run_script SCRIPT ARGS...: runs it, its calls in $work/calls
  : >"$work/calls"
  PATH="$stubs" DPKG_ROOT="$script_root" /bin/sh "$work/control/$1" "${@:2}" ||
    fail "$1 $* failed: $(cat "$work/calls")"
}
called() { grep -q -- "$1" "$work/calls"; }
: >"$work/passwd"
: >"$work/group"
# The stubs' answers: no statoverride for the env file; deb-systemd-helper knows nothing of the
# unit yet (debian-installed: no), and says was-enabled for a unit it does not know (as it does).
echo 1 >"$work/rc.dpkg-statoverride"
echo 1 >"$work/rc.deb-systemd-helper.debian-installed"
run_script postinst configure
called '^adduser --system --group .*pg2kafka$' || fail "postinst does not create the system user"
called "^chown root:pg2kafka $script_root/etc/pg2kafka/env\$" ||
  fail "postinst does not give the env file to the pg2kafka group"
called "^chmod 0640 $script_root/etc/pg2kafka/env\$" || fail "postinst does not chmod the env file"
! called 'deb-systemd-helper enable' || fail "a first installation enables the service"
! called 'start' || fail "a first installation starts the service"
called 'deb-systemd-helper update-state pg2kafka.service' ||
  fail "postinst does not record the unit's state"
echo "pg2kafka:x:999:999::/nonexistent:/usr/sbin/nologin" >"$work/passwd"
echo "pg2kafka:x:999:" >"$work/group"
# An upgrade: the user exists; the operator's enable or disable of the service is kept.
echo 0 >"$work/rc.deb-systemd-helper.debian-installed"
echo 1 >"$work/rc.deb-systemd-helper.was-enabled"
run_script postinst configure "$version"
! called adduser || fail "postinst creates the user again: $(cat "$work/calls")"
! called 'deb-systemd-helper enable' || fail "an upgrade enables a service the operator disabled"
echo 0 >"$work/rc.deb-systemd-helper.was-enabled"
run_script postinst configure "$version"
called 'deb-systemd-helper enable pg2kafka.service' ||
  fail "an upgrade forgets that the service was enabled"
run_script prerm upgrade "$version"
! called stop || fail "prerm stops the service on an upgrade"
run_script postrm remove
! called deluser || fail "postrm remove deletes the user"
# A purge: dpkg has removed the conffiles. With a file of the operator's left in /etc/pg2kafka,
# the user (who may own it) is kept; without, it goes.
rm "$script_root/etc/pg2kafka/env" "$script_root/etc/pg2kafka/pg2kafka.json"
touch "$script_root/etc/pg2kafka/pgpass"
run_script postrm purge
called 'deb-systemd-helper purge pg2kafka.service' || fail "postrm purge leaves the unit's state"
! called deluser || fail "postrm purge deletes the user while /etc/pg2kafka holds files"
rm "$script_root/etc/pg2kafka/pgpass"
run_script postrm purge
called '^deluser --system --quiet pg2kafka$' || fail "postrm purge keeps the user"
called '^delgroup --system --only-if-empty --quiet pg2kafka$' ||
  fail "postrm purge keeps the group"

# ---------------------------------------------------------------------------------------------
step "ELF files: hardening, stripping, debug symbols, no executable stack"
if [ -f "$runtime_dbgsym" ]; then
  dpkg-deb -f "$runtime_dbgsym" Build-Ids >"$work/build-ids"
  dpkg-deb -f "$dev_dbgsym" Build-Ids >>"$work/build-ids"
else
  echo "note: no dbgsym packages (no \`file\` on this machine): debug symbols not checked"
fi
# The package owning a library (dpkg knows some by their /lib, some by their /usr/lib path).
owner() {
  local cand
  local cands=("$1" "$(readlink -f "$1")" "${1/#\/lib\//\/usr\/lib\/}" "${1/#\/usr\/lib\//\/lib\/}")
  for cand in "${cands[@]}"; do
    dpkg-query -S "$cand" 2>/dev/null | head -n 1 | cut -d: -f1 && return 0
  done
  return 1
}
declare -A owners=()
: >"$work/libraries"
elf_count=0
for pkg in runtime dev; do
  if [ $pkg = runtime ]; then depends=$runtime_depends; else depends=$dev_depends; fi
  tr ',|' '\n' <<<"$depends" | sed 's/(.*//; s/ //g' | grep . >"$work/depends.names"
  while read -r f; do
    [ "$(head -c 4 "$x$f" | od -An -c | tr -d ' ')" = '177ELF' ] || continue
    elf_count=$((elf_count + 1))
    readelf -lW "$x$f" >"$work/phdr"
    readelf -dW "$x$f" >"$work/dyn"
    readelf -SW "$x$f" >"$work/sections"
    grep GNU_STACK "$work/phdr" | grep -q ' RW ' || fail "$f: executable stack"
    grep -q GNU_RELRO "$work/phdr" || fail "$f: no RELRO"
    grep -q BIND_NOW "$work/dyn" || fail "$f: not linked with -z now"
    ! grep -q TEXTREL "$work/dyn" || fail "$f: text relocations"
    ! grep -q '\.debug_info' "$work/sections" || fail "$f: not stripped"
    if [ -f "$runtime_dbgsym" ]; then
      id=$(readelf -nW "$x$f" | sed -n 's/.*Build ID: //p')
      grep -qw "$id" "$work/build-ids" || fail "$f: no dbgsym package has its build id $id"
    fi
    if [[ "$f" == /usr/bin/* ]]; then
      grep -q 'DYN (Position-Independent' <(readelf -hW "$x$f") || fail "$f: not PIE"
    fi
    # Every library it needs belongs to a package this package depends on.
    ldd "$x$f" >"$work/ldd"
    awk '$2 == "=>" && $3 ~ /^\// {print $3}' "$work/ldd" >>"$work/libraries"
    while read -r soname; do
      path=$(awk -v s="$soname" '$1 == s && $3 ~ /^\// {print $3}' "$work/ldd")
      # The dynamic loader (NEEDED by code using thread-local storage) has no "=>" in ldd's output.
      [ -n "$path" ] || path=$(awk -v s="/$soname" 'substr($1, length($1) - length(s) + 1) == s {print $1}' "$work/ldd")
      [ -n "$path" ] || fail "$f: $soname not found"
      [ -n "${owners[$path]:-}" ] || owners[$path]=$(owner "$path") ||
        fail "$f: no package owns $path"
      grep -qx "${owners[$path]}" "$work/depends.names" ||
        fail "$f needs $soname of ${owners[$path]}: pg2kafka${pkg/runtime/} does not depend on it"
    done < <(sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' "$work/dyn")
  done <"$work/$pkg.regular"
done
[ "$elf_count" -ge 7 ] || fail "only $elf_count ELF files found in the packages"
# The libraries they load: none with an executable stack either (MemoryDenyWriteExecute=yes).
while read -r lib; do
  grep GNU_STACK <(readelf -lW "$lib") | grep -q ' RW ' || fail "$lib: executable stack"
done < <(sort -u "$work/libraries")

# ---------------------------------------------------------------------------------------------
step "the systemd unit"
unit="$x/lib/systemd/system/pg2kafka.service"
# systemd-analyze verify with --root: the extracted package plus this machine's units (targets),
# so the unit is checked as installed, ExecStart= included, without a running systemd. It
# reports most mistakes (an unknown directive, a bad value) as warnings: any output fails.
verify_root="$work/verify-root"
cp -a "$x" "$verify_root"
[ -d /lib/systemd/system ] && cp -an /lib/systemd/system/. "$verify_root/lib/systemd/system/"
if ! systemd-analyze verify --root="$verify_root" /lib/systemd/system/pg2kafka.service \
  >"$work/verify.log" 2>&1 || [ -s "$work/verify.log" ]; then
  fail "systemd-analyze verify: $(cat "$work/verify.log")"
fi
for directive in User=pg2kafka Group=pg2kafka EnvironmentFile=/etc/pg2kafka/env \
  'ExecStart=/usr/bin/pg2kafka run' Restart=on-failure 'RestartPreventExitStatus=2 3' \
  ProtectSystem=strict ProtectHome=yes PrivateTmp=yes PrivateDevices=yes NoNewPrivileges=yes \
  ProtectKernelTunables=yes ProtectKernelModules=yes ProtectKernelLogs=yes \
  ProtectControlGroups=yes 'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6' \
  RestrictNamespaces=yes LockPersonality=yes MemoryDenyWriteExecute=yes \
  SystemCallFilter=@system-service CapabilityBoundingSet= KillSignal=SIGTERM \
  WantedBy=multi-user.target; do
  grep -qx -- "$directive" "$unit" || fail "the unit lacks $directive"
done
grep -q '^RestartSec=' "$unit" || fail "the unit has no RestartSec"
! grep -qE '^(PrivateUsers=yes|ExecReload=)' "$unit" || fail "the unit has PrivateUsers/ExecReload"
[ -x "$x$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$unit")" ] || fail "ExecStart: no packaged file"
[ -f "$x$(sed -n 's/^EnvironmentFile=//p' "$unit")" ] || fail "EnvironmentFile: no packaged file"
# TimeoutStopSec leaves pg2kafka its whole shutdown_timeout (its default, from the host's option
# table) and a margin before SIGKILL.
shutdown_timeout=$(sed -n 's/.*"shutdown_timeout", P2K_OPT_DURATION, "\([0-9]*\)s".*/\1/p' \
  "$source_dir/framework/src/config/pipeline_config.cpp")
[ -n "$shutdown_timeout" ] || fail "cannot read shutdown_timeout's default in pipeline_config.cpp"
stop_timeout=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)s$/\1/p' "$unit")
if [ -z "$stop_timeout" ] || [ "$stop_timeout" -lt $((shutdown_timeout + 5)) ]; then
  fail "TimeoutStopSec=${stop_timeout:-?}s: no margin over shutdown_timeout=${shutdown_timeout}s"
fi
systemd-analyze security --offline=yes --threshold=20 --root="$verify_root" \
  /lib/systemd/system/pg2kafka.service >"$work/security.log" 2>&1 ||
  fail "the unit's exposure is over 2.0: $(grep -E '✗|Overall' "$work/security.log")"
grep 'Overall exposure' "$work/security.log"

# ---------------------------------------------------------------------------------------------
step "the extracted binary: version, plugins, default pipeline path"
bin="$x/usr/bin/pg2kafka"
p2k() { env -u PG2KAFKA_PLUGIN_PATH -u PG2KAFKA_CONFIG "$bin" "$@"; }
p2k --version >"$work/version"
grep -q "^pg2kafka $project_version " "$work/version" || fail "--version: $(cat "$work/version")"
p2k plugins list >"$work/plugins"
for kind_name in source/pg-outbox sink/kafka sink/stdout source/generator; do
  kind=${kind_name%/*} name=${kind_name#*/}
  path=$(awk -F'\t' -v k="$kind" -v n="$name" '$1 == k && $2 == n {print $NF}' "$work/plugins")
  [ "$path" = "$x$plugin_dir/pg2kafka-$kind-$name.so" ] ||
    fail "plugins list: $kind $name is '${path:-missing}', not the package's"
done
! grep -q 'test-' "$work/plugins" || fail "plugins list shows test plugins"
# The search path: next to the binary, then the compiled-in installed directory (prefix /usr).
sed -n '/^search path:/,$p' "$work/plugins" | sed -n 2,3p | sed 's/^ *//' >"$work/search-path"
printf '%s\n' "$x$plugin_dir" "$plugin_dir" | diff - "$work/search-path" >&2 ||
  fail "plugin search path"
if [ ! -e /etc/pg2kafka/pg2kafka.json ]; then
  status=0
  p2k check >"$work/check.log" 2>&1 || status=$?
  if [ $status -ne 2 ] || ! grep -q 'nor in /etc/pg2kafka' "$work/check.log"; then
    fail "no default pipeline in /etc/pg2kafka expected (exit $status): $(cat "$work/check.log")"
  fi
fi

# ---------------------------------------------------------------------------------------------
step "the default pipeline with the packaged env template: DRY_RUN=true against PostgreSQL"
PGOPTIONS="-c client_min_messages=warning" "$psql" -q -v ON_ERROR_STOP=1 "$pg_url" \
  -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
url="${pg_url%/*}/$db"
sql() {
  PGOPTIONS="-c client_min_messages=warning" "$psql" -q -v ON_ERROR_STOP=1 "$url" "$@" >/dev/null
}
# The schema, installed by hand from the packaged SQL, as the package's README tells a DBA.
sql --single-transaction -f "$x/usr/share/pg2kafka/sql/install.sql"
sql -c "CREATE TABLE products (id BIGSERIAL, sku TEXT, name TEXT)" \
  -c "INSERT INTO products (sku, name) VALUES ('CM01-R', 'Red Coffee Mug')" \
  -c "INSERT INTO products (sku, name) VALUES ('CM01-B', 'Blue Coffee Mug')" \
  -c "SELECT pg2kafka.setup('products', 'sku')" \
  -c "UPDATE products SET name = 'Big Red Coffee Mug' WHERE sku = 'CM01-R'"
# The env file as an operator fills it in (the service reads it with EnvironmentFile=).
cp "$x/etc/pg2kafka/env" "$work/env"
printf 'DATABASE_URL=%s\nDRY_RUN=true\n' "$url" >>"$work/env"
run_pipeline() {  # the service's environment: the env file, nothing else of ours
  # shellcheck disable=SC2016  # expanded by the inner shell
  env -i PATH=/usr/bin:/bin HOME="$work" PG2KAFKA_CONFIG="$x/etc/pg2kafka/pg2kafka.json" \
    sh -c 'set -a; . "$1"; set +a; shift; exec "$@"' sh "$work/env" "$bin" "$@"
}
status=0
run_pipeline run --once >"$work/events" 2>"$work/run.log" || status=$?
[ $status -eq 0 ] || fail "pg2kafka run --once exited $status: $(cat "$work/run.log")"
cat "$work/events"
topic='"topic":"pg2kafka.'$db'.products"'
[ "$(grep -c "$topic" "$work/events")" -ge 3 ] || fail "expected 3 events on $topic"
grep "$topic" "$work/events" | grep '"key":"CM01-R"' | grep '"statement":"UPDATE"' |
  grep -Eq '"data":\{"name": ?"Big Red Coffee Mug"\}' || fail "no UPDATE event for CM01-R"
grep "$topic" "$work/events" | grep -q '"key":"CM01-B"' || fail "no event for CM01-B"

# Without its own stdout plugin, the extracted binary finds none: not the build tree's.
if [ ! -e "$plugin_dir/pg2kafka-sink-stdout.so" ]; then
  rm "$x$plugin_dir/pg2kafka-sink-stdout.so"
  p2k plugins list >"$work/plugins"
  ! grep -q $'^sink\tstdout\t' "$work/plugins" || fail "a stdout plugin from elsewhere is listed"
  status=0
  run_pipeline run --once >/dev/null 2>"$work/run.log" || status=$?
  [ $status -eq 3 ] || fail "without its stdout plugin, run exited $status: $(cat "$work/run.log")"
fi

# ---------------------------------------------------------------------------------------------
step "pg2kafka-dev: the example sink builds against the extracted packages and is conformant"
if ! cmake -S "$x/usr/share/doc/pg2kafka-dev/examples/sink-file" -B "$work/example" \
  -DCMAKE_PREFIX_PATH="$x/usr" -DCMAKE_BUILD_TYPE=Release >"$work/example.log" 2>&1 ||
  ! cmake --build "$work/example" >>"$work/example.log" 2>&1; then
  fail "the example sink does not build against pg2kafka-dev: $(tail -n 20 "$work/example.log")"
fi
"$x/usr/bin/pg2kafka-sink-conformance" --plugin "$work/example/pg2kafka-sink-file.so" \
  --options "{\"path\": \"$work/conformance.jsonl\"}" >"$work/conformance.log" 2>&1 ||
  fail "the packaged conformance suite fails the example: $(tail -n 20 "$work/conformance.log")"

step "passed"
