#!/usr/bin/env bash
# Usage: kafka_fixture.sh start|stop STATE_DIR
#
# A throwaway single-node Apache Kafka 3.9.x (KRaft: broker and controller in one JVM) for the
# test suite, listening on 127.0.0.1 only, on free ports.
#
#   start  fetches the jars if needed (fetch-kafka.sh), formats fresh storage under
#          STATE_DIR/kafka, starts the broker, waits until it answers a metadata request and
#          writes STATE_DIR/kafka.env:
#            P2K_TEST_KAFKA_BROKERS=127.0.0.1:<port>
#            P2K_TEST_KAFKA_LIBS=<jar directory>
#          A broker left over from an earlier start in the same STATE_DIR is stopped first.
#   stop   stops the broker (SIGTERM, then SIGKILL after a grace period) and removes its data;
#          the logs stay in STATE_DIR/kafka/logs. Succeeds when nothing runs.
#
# Environment:
#   P2K_KAFKA_LIBS        jar directory (default: $HOME/.cache/pg2kafka/kafka-3.9)
#   P2K_KAFKA_START_WAIT  seconds to wait for readiness (default 90)
#   JAVA                  the java binary (default: java from PATH)
#
# Broker settings worth knowing in tests: auto.create.topics.enable=false (a test creates its
# topics), one partition and replication factor 1 by default, and no initial rebalance delay
# for consumer groups.
set -euo pipefail

usage() {
  echo "usage: $0 start|stop STATE_DIR" >&2
  exit 2
}
[[ $# -eq 2 && -n "$2" ]] || usage
action=$1
state_dir=$2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
libs=${P2K_KAFKA_LIBS:-$HOME/.cache/pg2kafka/kafka-3.9}
java=${JAVA:-java}
work="$state_dir/kafka"
pid_file="$work/kafka.pid"
env_file="$state_dir/kafka.env"

log() { echo "kafka_fixture: $*" >&2; }

source "$(dirname "${BASH_SOURCE[0]}")/../free_port.sh"

stop_broker() {
  [[ -f "$pid_file" ]] || return 0
  local pid
  pid=$(cat "$pid_file")
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    # A single-node broker shuts down in a few seconds; do not let a stuck JVM hold the suite.
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "broker (pid $pid) did not stop in 10 s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
    fi
  fi
  rm -f "$pid_file"
}

start_broker() {
  command -v "$java" >/dev/null || {
    log "java is not installed (a Java 17 runtime is needed for the Kafka broker)"
    exit 1
  }
  command -v kcat >/dev/null || {
    log "kcat is not installed (used to wait for the broker's readiness); install the 'kcat' package"
    exit 1
  }
  # Idempotent and quick when the jars of this pom.xml are already there.
  "$here/fetch-kafka.sh" "$libs"
  mkdir -p "$state_dir"
  stop_broker
  rm -rf "$work/data" "$env_file"
  mkdir -p "$work/data" "$work/logs"

  local port ctrl_port
  port=$(pick_port)
  ctrl_port=$(pick_port "$port")

  cat >"$work/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$ctrl_port
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$ctrl_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$work/data
auto.create.topics.enable=false
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=2
num.recovery.threads.per.data.dir=1
PROPS

  cat >"$work/log4j.properties" <<PROPS
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=$work/logs/server.log
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.org.apache.kafka.controller=INFO
PROPS

  local jvm=(-Xms128m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true
    "-Dlog4j.configuration=file:$work/log4j.properties" "-Dkafka.logs.dir=$work/logs")
  local cp="$libs/*"

  local cluster_id
  cluster_id=$("$java" -Xmx128m "-Dlog4j.configuration=file:$work/log4j.properties" -cp "$cp" \
    kafka.tools.StorageTool random-uuid 2>>"$work/logs/storage-tool.log")
  "$java" -Xmx256m "-Dlog4j.configuration=file:$work/log4j.properties" -cp "$cp" \
    kafka.tools.StorageTool format -t "$cluster_id" -c "$work/server.properties" \
    >>"$work/logs/storage-tool.log" 2>&1 || {
    log "formatting the storage failed; see $work/logs/storage-tool.log"
    tail -n 20 "$work/logs/storage-tool.log" >&2
    exit 1
  }

  # setsid: the broker must not share the process group of ctest, so that a Ctrl-C on the
  # terminal does not kill it halfway; `stop` (the cleanup fixture) ends it.
  setsid "$java" "${jvm[@]}" -cp "$cp" kafka.Kafka "$work/server.properties" \
    >"$work/logs/stdout.log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$pid_file"

  local wait_s=${P2K_KAFKA_START_WAIT:-90}
  local deadline=$((SECONDS + wait_s))
  while :; do
    if ! kill -0 "$pid" 2>/dev/null; then
      log "the broker exited during start; last lines of $work/logs/server.log:"
      tail -n 30 "$work/logs/server.log" >&2 || true
      tail -n 10 "$work/logs/stdout.log" >&2 || true
      rm -f "$pid_file"
      exit 1
    fi
    # A broker answers metadata requests only once it has joined the quorum and is unfenced.
    if kcat -L -b "127.0.0.1:$port" -m 2 -q 2>/dev/null | grep -q "1 brokers:"; then
      break
    fi
    if ((SECONDS >= deadline)); then
      log "the broker did not answer within $wait_s s; see $work/logs/server.log"
      stop_broker
      exit 1
    fi
    sleep 0.3
  done

  {
    echo "P2K_TEST_KAFKA_BROKERS=127.0.0.1:$port"
    echo "P2K_TEST_KAFKA_LIBS=$libs"
  } >"$env_file.tmp"
  mv "$env_file.tmp" "$env_file"
  log "broker up on 127.0.0.1:$port (pid $pid, ${SECONDS}s)"
}

case "$action" in
  start) start_broker ;;
  stop)
    stop_broker
    rm -rf "$work/data" "$env_file"
    ;;
  *) usage ;;
esac
