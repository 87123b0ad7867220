#!/usr/bin/env bash
# A single Apache Kafka broker in KRaft mode (broker + controller in one JVM) on loopback, no Docker.
#   deploy/kafka.sh fetch   resolve the broker's jars from Maven Central into the cache (once)
#   deploy/kafka.sh start   fetch if needed, format storage once, start, wait until metadata is served
#   deploy/kafka.sh stop    SIGTERM, wait for a clean shutdown (SIGKILL after 60 s)
#   deploy/kafka.sh status  exit 0 and say "running" only if the process is alive AND answers metadata
#   deploy/kafka.sh reset   stop and delete the broker's data (topics, offsets, transactions)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

LIBS="$CROWNSTREAM_CACHE_DIR/kafka-$CROWNSTREAM_KAFKA_VERSION/libs"
KDIR="$CROWNSTREAM_STATE_DIR/kafka"
PIDFILE="$KDIR/kafka.pid"
CONFIG="$KDIR/server.properties"

fetch() {
  if [ -f "$LIBS/.complete" ]; then return 0; fi
  command -v mvn >/dev/null || die "Maven is needed to fetch the Kafka jars: run deploy/bootstrap.sh (or apt-get install maven)"
  log "fetching Apache Kafka $CROWNSTREAM_KAFKA_VERSION jars from Maven Central into $LIBS"
  mkdir -p "$LIBS"
  mvn -q -B -Dstyle.color=never -f "$REPO_ROOT/deploy/kafka/pom.xml" -Dkafka.version="$CROWNSTREAM_KAFKA_VERSION" \
      dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$LIBS" \
    || die "Maven could not resolve org.apache.kafka:kafka_2.13:$CROWNSTREAM_KAFKA_VERSION (see output above)"
  ls "$LIBS"/kafka_2.13-*.jar >/dev/null 2>&1 || die "no kafka_2.13 jar in $LIBS after Maven ran"
  touch "$LIBS/.complete"
}

JAVA_OPTS=(-Xms"$CROWNSTREAM_KAFKA_HEAP" -Xmx"$CROWNSTREAM_KAFKA_HEAP" -XX:+UseG1GC -Djava.awt.headless=true
           -Dlog4j.configuration="file:$REPO_ROOT/deploy/kafka/log4j.properties" -Dkafka.logs.dir="$KDIR/logs"
           -cp "$LIBS/*")
java_run() { java "${JAVA_OPTS[@]}" "$@"; }

write_config() {
  mkdir -p "$KDIR/logs" "$KDIR/data"
  sed -e "s#@DATA@#$KDIR/data#" \
      -e "s#@PORT@#$CROWNSTREAM_KAFKA_PORT#g" \
      -e "s#@CONTROLLER_PORT@#$CROWNSTREAM_KAFKA_CONTROLLER_PORT#g" \
      "$REPO_ROOT/deploy/kafka/server.properties.in" > "$CONFIG"
}

answers_metadata() {
  # A port that accepts connections is not yet a broker that serves metadata; ask for it for real.
  [ -x "$CROWNSTREAM_VENV/bin/python" ] || { port_open "$CROWNSTREAM_KAFKA_PORT"; return; }
  "$CROWNSTREAM_VENV/bin/python" "$REPO_ROOT/deploy/kafka/ping.py" "127.0.0.1:$CROWNSTREAM_KAFKA_PORT" >/dev/null 2>&1
}

start() {
  if pid_alive "$PIDFILE" && answers_metadata; then log "kafka already running (pid $(cat "$PIDFILE"))"; return 0; fi
  if port_open "$CROWNSTREAM_KAFKA_PORT"; then
    die "port $CROWNSTREAM_KAFKA_PORT is taken by another process; stop it or set CROWNSTREAM_KAFKA_PORT"
  fi
  command -v java >/dev/null || die "Java 17 is needed to run the broker: run deploy/bootstrap.sh"
  fetch
  write_config
  if [ ! -f "$KDIR/data/meta.properties" ]; then
    log "formatting KRaft storage in $KDIR/data"
    java_run kafka.tools.StorageTool format -t "$(java_run kafka.tools.StorageTool random-uuid)" -c "$CONFIG" >/dev/null
  fi
  log "starting Apache Kafka $CROWNSTREAM_KAFKA_VERSION on 127.0.0.1:$CROWNSTREAM_KAFKA_PORT"
  nohup java "${JAVA_OPTS[@]}" kafka.Kafka "$CONFIG" > "$KDIR/logs/stdout.log" 2>&1 &
  echo $! > "$PIDFILE"
  for _ in $(seq 1 120); do
    if answers_metadata; then log "kafka is up (pid $(cat "$PIDFILE"))"; return 0; fi
    pid_alive "$PIDFILE" || { tail -n 40 "$KDIR/logs/stdout.log" >&2; die "the broker exited during start-up (log: $KDIR/logs)"; }
    sleep 0.5
  done
  die "the broker did not answer metadata requests within 60 s (log: $KDIR/logs)"
}

stop() {
  if ! pid_alive "$PIDFILE"; then log "kafka is not running"; rm -f "$PIDFILE"; return 0; fi
  local pid; pid="$(cat "$PIDFILE")"
  kill -TERM "$pid"
  for _ in $(seq 1 120); do kill -0 "$pid" 2>/dev/null || { rm -f "$PIDFILE"; log "kafka stopped"; return 0; }; sleep 0.5; done
  log "kafka did not stop within 60 s; killing it"; kill -KILL "$pid" 2>/dev/null || true; rm -f "$PIDFILE"
}

status() {
  if pid_alive "$PIDFILE" && answers_metadata; then
    echo "kafka running: pid $(cat "$PIDFILE"), 127.0.0.1:$CROWNSTREAM_KAFKA_PORT, Apache Kafka $CROWNSTREAM_KAFKA_VERSION (KRaft)"
  elif pid_alive "$PIDFILE"; then echo "kafka starting or unhealthy: pid $(cat "$PIDFILE") does not answer metadata"; return 1
  else echo "kafka stopped"; return 3; fi
}

case "${1:-}" in
  fetch) fetch ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  restart) stop; start ;;
  reset) stop; rm -rf "$KDIR"; log "kafka data deleted" ;;
  *) echo "usage: $0 {fetch|start|stop|status|restart|reset}" >&2; exit 2 ;;
esac
