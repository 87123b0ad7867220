#!/usr/bin/env bash
# A single Apache Kafka broker in KRaft mode (broker + controller in one JVM) on loopback, no Docker.
# (Three brokers with replicated topics: deploy/kafka-cluster.sh.)
#   deploy/kafka.sh fetch   resolve the broker's jars from Maven Central into the cache (once)
#   deploy/kafka.sh start   fetch if needed, format storage once, start, wait until metadata is served
#   deploy/kafka.sh stop    SIGTERM, wait for a clean shutdown (SIGKILL after 60 s)
#   deploy/kafka.sh status  exit 0 and say "running" only if the process is alive AND answers metadata
#   deploy/kafka.sh reset   stop and delete the broker's data (topics, offsets, transactions)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
source "$REPO_ROOT/deploy/kafka/node.sh"

KDIR="$CROWNSTREAM_STATE_DIR/kafka"
PIDFILE="$KDIR/kafka.pid"

answers_metadata() { kafka_answers_metadata "$CROWNSTREAM_KAFKA_PORT"; }

start() {
  if pid_alive "$PIDFILE" && answers_metadata; then log "kafka already running (pid $(cat "$PIDFILE"))"; return 0; fi
  if port_open "$CROWNSTREAM_KAFKA_PORT"; then
    die "port $CROWNSTREAM_KAFKA_PORT is taken by another process; stop it or set CROWNSTREAM_KAFKA_PORT"
  fi
  command -v java >/dev/null || die "Java 17 is needed to run the broker: run deploy/bootstrap.sh"
  kafka_fetch
  # One node, its own controller quorum; internal topics with a replication factor of 1.
  kafka_render_config "$KDIR" 1 "$CROWNSTREAM_KAFKA_PORT" "$CROWNSTREAM_KAFKA_CONTROLLER_PORT" \
    "1@127.0.0.1:$CROWNSTREAM_KAFKA_CONTROLLER_PORT" 1
  [ -f "$KDIR/data/meta.properties" ] || kafka_format "$KDIR" "$(kafka_random_uuid "$KDIR")"
  log "starting Apache Kafka $CROWNSTREAM_KAFKA_VERSION on 127.0.0.1:$CROWNSTREAM_KAFKA_PORT"
  kafka_launch "$KDIR"
  kafka_wait_up "$KDIR" "$CROWNSTREAM_KAFKA_PORT" kafka
}

stop() { kafka_stop "$KDIR" kafka; }

status() {
  if pid_alive "$PIDFILE" && answers_metadata; then
    echo "kafka running: pid $(cat "$PIDFILE"), 127.0.0.1:$CROWNSTREAM_KAFKA_PORT, Apache Kafka $CROWNSTREAM_KAFKA_VERSION (KRaft)"
  elif pid_alive "$PIDFILE"; then echo "kafka starting or unhealthy: pid $(cat "$PIDFILE") does not answer metadata"; return 1
  else echo "kafka stopped"; return 3; fi
}

case "${1:-}" in
  fetch) kafka_fetch ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  restart) stop; start ;;
  reset) stop; rm -rf "$KDIR"; log "kafka data deleted" ;;
  *) echo "usage: $0 {fetch|start|stop|status|restart|reset}" >&2; exit 2 ;;
esac
