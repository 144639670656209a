#!/usr/bin/env bash
# Usage: pg_fixture.sh start|stop|restart|status STATE_DIR
#
# A throwaway PostgreSQL cluster for the test suite, the README demo and the benchmarks: trust
# authentication, listening on 127.0.0.1 only, on a free port, with its unix socket inside
# STATE_DIR/pg.
#
#   start    stops and removes a cluster left over in STATE_DIR, runs initdb into
#            STATE_DIR/pg/data, starts the server, waits until it accepts connections and writes
#            STATE_DIR/pg.env:
#              P2K_TEST_PG_URL=postgresql://postgres@127.0.0.1:<port>/postgres
#              P2K_TEST_PG_PORT=<port>
#              P2K_TEST_PG_DATA=<data directory>
#              P2K_TEST_PG_BIN=<directory of initdb, pg_ctl, postgres>
#              P2K_TEST_PG_SOCKET=<unix socket directory>
#              P2K_TEST_PG_LOG=<server log file>
#              P2K_TEST_PG_CTL=<command line running pg_ctl -D <data> as the cluster's owner>
#            Append a pg_ctl action to P2K_TEST_PG_CTL, e.g. `$P2K_TEST_PG_CTL restart -m immediate`
#            (word-split it; it contains no quoted arguments).
#   restart  crash-restarts the server (pg_ctl restart -m immediate), as a fault test does.
#   stop     stops the server (fast, then immediate) and removes the data directory; keeps the
#            log. Succeeds when nothing runs.
#   status   exits 0 when the server runs.
#
# When run as root (CI), initdb and pg_ctl run as the unprivileged `postgres` system user (initdb
# refuses root), which then owns STATE_DIR/pg; every parent directory must be traversable.
#
# Besides trust, pg_hba.conf requires a SCRAM password for the role `p2k_password_user` over TCP,
# so tests can check how a wrong password is reported (the role itself is created by such tests).
#
# Environment:
#   P2K_PG_BIN   directory of the server binaries (default: the newest
#                /usr/lib/postgresql/<major>/bin, else `pg_config --bindir`)
#   P2K_PG_PORT  port to use instead of a free one picked at random
#   P2K_PG_FSYNC on: durable settings (fsync, full_page_writes), for benchmarks; default off
set -euo pipefail

usage() {
  echo "usage: $0 start|stop|restart|status STATE_DIR" >&2
  exit 2
}
[[ $# -eq 2 && -n "$2" ]] || usage
action=$1
mkdir -p "$2"
state_dir=$(cd "$2" && pwd)
env_file="$state_dir/pg.env"
# When the cluster's owner cannot reach STATE_DIR (root running in a directory under /root, say),
# the cluster lives in a directory of its own under /tmp, named in this file.
location_file="$state_dir/pg.location"
set_work() {
  work=$1
  data="$work/data"
  log_file="$work/postgresql.log"
}
if [[ -f "$location_file" ]]; then set_work "$(cat "$location_file")"; else set_work "$state_dir/pg"; fi

log() { echo "pg_fixture: $*" >&2; }

find_bin() {
  if [[ -n "${P2K_PG_BIN:-}" ]]; then
    echo "$P2K_PG_BIN"
    return
  fi
  local newest
  newest=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [[ -n "$newest" && -x "$newest/initdb" ]]; then
    echo "$newest"
  elif command -v pg_config >/dev/null && [[ -x "$(pg_config --bindir)/initdb" ]]; then
    pg_config --bindir
  else
    log "cannot find initdb: install postgresql or set P2K_PG_BIN"
    exit 1
  fi
}
bin=$(find_bin)

# Runs a command as the cluster owner: ourselves, or `postgres` when we are root.
as_owner() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}
owner_prefix() {
  if [[ $(id -u) -eq 0 ]]; then echo "runuser -u postgres --"; fi
}

source "$(dirname "${BASH_SOURCE[0]}")/../free_port.sh"

running() { [[ -f "$data/PG_VERSION" ]] && as_owner "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; }

stop() {
  if running; then
    as_owner "$bin/pg_ctl" -D "$data" -w -t 30 stop -m fast >/dev/null 2>&1 ||
      as_owner "$bin/pg_ctl" -D "$data" -w -t 30 stop -m immediate >/dev/null 2>&1 || true
  fi
  rm -rf "$data" "$env_file"
  if [[ -f "$location_file" ]]; then
    cp "$log_file" "$state_dir/postgresql.log" 2>/dev/null || true
    rm -rf "$work" "$location_file"
    set_work "$state_dir/pg"
  fi
}

start() {
  stop
  if [[ $(id -u) -eq 0 ]] && ! runuser -u postgres -- test -x "$state_dir" 2>/dev/null; then
    set_work "$(mktemp -d "${TMPDIR:-/tmp}/p2k-pg.XXXXXX")"
    echo "$work" >"$location_file"
  fi
  mkdir -p "$work"
  if [[ $(id -u) -eq 0 ]]; then chown postgres: "$work"; fi
  as_owner "$bin/initdb" -D "$data" -A trust -U postgres -E UTF8 --no-locale --no-sync \
    >"$work/initdb.log" 2>&1 || {
    cat "$work/initdb.log" >&2
    log "initdb failed"
    exit 1
  }
  cat >"$data/pg_hba.conf" <<HBA
# pg2kafka test cluster: trust on the socket and on loopback, except one password role.
local all all                                trust
host  all p2k_password_user 127.0.0.1/32     scram-sha-256
host  all all               127.0.0.1/32     trust
HBA
  local attempt port
  for attempt in 1 2 3 4 5; do
    port=${P2K_PG_PORT:-$(pick_port)}
    # Settings live in postgresql.auto.conf so that a restart keeps them. fsync=off only risks
    # data on an OS crash; a server crash (restart -m immediate) loses nothing that committed.
    cat >"$data/postgresql.auto.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$work'
fsync = ${P2K_PG_FSYNC:-off}
full_page_writes = ${P2K_PG_FSYNC:-off}
max_connections = 200
log_min_messages = warning
log_line_prefix = '%m [%p] %d '
CONF
    if as_owner "$bin/pg_ctl" -D "$data" -l "$log_file" -w -t 60 start >/dev/null 2>&1; then
      {
        echo "P2K_TEST_PG_URL=postgresql://postgres@127.0.0.1:$port/postgres"
        echo "P2K_TEST_PG_PORT=$port"
        echo "P2K_TEST_PG_DATA=$data"
        echo "P2K_TEST_PG_BIN=$bin"
        echo "P2K_TEST_PG_SOCKET=$work"
        echo "P2K_TEST_PG_LOG=$log_file"
        echo "P2K_TEST_PG_CTL=$(owner_prefix) $bin/pg_ctl -D $data -l $log_file -w -t 60" |
          sed 's/=  */=/'
      } >"$env_file"
      log "PostgreSQL $(cat "$data/PG_VERSION") running on 127.0.0.1:$port (data $data)"
      return 0
    fi
    log "start on port $port failed (attempt $attempt)"
    tail -n 5 "$log_file" >&2 || true
    [[ -n "${P2K_PG_PORT:-}" ]] && break
  done
  log "could not start PostgreSQL; see $log_file"
  exit 1
}

case "$action" in
  start) start ;;
  stop) stop ;;
  restart)
    running || {
      log "no cluster runs in $state_dir"
      exit 1
    }
    as_owner "$bin/pg_ctl" -D "$data" -l "$log_file" -w -t 60 restart -m immediate >/dev/null
    ;;
  status) running ;;
  *) usage ;;
esac
