# Sourced by the service fixtures (pg_fixture.sh, kafka_fixture.sh): picking a free TCP port on
# loopback. Expects a `log` function.

# True when nothing listens on TCP port $1 on loopback.
port_free() {
  if command -v ss >/dev/null; then
    [[ -z "$(ss -Htln "sport = :$1" 2>/dev/null)" ]]
  else
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
  fi
}

# A free port outside the usual ephemeral range (so an outgoing connection cannot take it
# between this check and the server's bind), distinct from $1 if given.
pick_port() {
  local p
  for _ in $(seq 1 200); do
    p=$((20000 + RANDOM % 12000))
    [[ "$p" != "${1:-}" ]] && port_free "$p" && {
      echo "$p"
      return 0
    }
  done
  log "no free port found"
  return 1
}
