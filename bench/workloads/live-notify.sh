# shellcheck shell=bash disable=SC2154 # its variables are set by scripts/bench.sh and bench/lib
# live-notify: the live workload at 1k and 5k/s with the triggers' NOTIFY switched on for the
# database (off by default: see sql/README.md), so the daemon wakes on each commit instead of at
# its poll interval; reset afterwards. See bench/README.md.

# shellcheck source=bench/workloads/live.sh
source "$repo/bench/workloads/live.sh" # live_run and its sizes

wl_live_notify() {
  trap 'psql_q -c "ALTER DATABASE \"$db_name\" RESET pg2kafka.notify" || true' EXIT
  psql_q -c "ALTER DATABASE \"$db_name\" SET pg2kafka.notify = on"
  live_run live-notify "notify on, " 1000 5000
}
