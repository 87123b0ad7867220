# One KRaft node (broker + controller in one JVM) on loopback: the functions deploy/kafka.sh (one node) and
# deploy/kafka-cluster.sh (three) share. Sourced after deploy/common.sh, never run. A node lives in a directory
# of its own: server.properties, data/, logs/ and kafka.pid.

KAFKA_LIBS="$CROWNSTREAM_CACHE_DIR/kafka-$CROWNSTREAM_KAFKA_VERSION/libs"
KAFKA_HEAP="${KAFKA_HEAP:-$CROWNSTREAM_KAFKA_HEAP}"  # the caller may set its own before sourcing

kafka_fetch() {
  if [ -f "$KAFKA_LIBS/.complete" ]; then return 0; fi
  command -v mvn >/dev/null || die "Maven is needed to fetch the Kafka jars: run deploy/bootstrap.sh (or apt-get install maven)"
  log "fetching Apache Kafka $CROWNSTREAM_KAFKA_VERSION jars from Maven Central into $KAFKA_LIBS"
  mkdir -p "$KAFKA_LIBS"
  mvn -q -B -Dstyle.color=never -f "$REPO_ROOT/deploy/kafka/pom.xml" -Dkafka.version="$CROWNSTREAM_KAFKA_VERSION" \
      dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$KAFKA_LIBS" \
    || die "Maven could not resolve org.apache.kafka:kafka_2.13:$CROWNSTREAM_KAFKA_VERSION (see output above)"
  ls "$KAFKA_LIBS"/kafka_2.13-*.jar >/dev/null 2>&1 || die "no kafka_2.13 jar in $KAFKA_LIBS after Maven ran"
  touch "$KAFKA_LIBS/.complete"
}

# kafka_java_opts DIR: the JVM options of a node (heap, class path, logging under DIR/logs) into KAFKA_JAVA_OPTS.
kafka_java_opts() {
  KAFKA_JAVA_OPTS=(-Xms"$KAFKA_HEAP" -Xmx"$KAFKA_HEAP" -XX:+UseG1GC -Djava.awt.headless=true
                   -Dlog4j.configuration="file:$REPO_ROOT/deploy/kafka/log4j.properties" -Dkafka.logs.dir="$1/logs"
                   -cp "$KAFKA_LIBS/*")
}

# kafka_java DIR ARGS...: run a Kafka tool with the node's JVM options.
kafka_java() { kafka_java_opts "$1"; shift; java "${KAFKA_JAVA_OPTS[@]}" "$@"; }

# kafka_min_isr FACTOR: the min.insync.replicas that goes with a replication factor, as crownstream/settings.py
# derives CROWNSTREAM_TOPIC_MIN_INSYNC_REPLICAS: 2 from a factor of 3 up (one broker may die and writes go on,
# none acknowledged on one replica only), else 1 (a factor of 2 with 2 would stop every write while a broker is
# down).
kafka_min_isr() { if [ "$1" -ge 3 ]; then echo 2; else echo 1; fi; }

# kafka_render_config DIR NODE_ID PORT CONTROLLER_PORT VOTERS REPLICATION: DIR/server.properties from the template.
kafka_render_config() {
  local dir="$1" node_id="$2" port="$3" controller_port="$4" voters="$5" replication="$6"
  mkdir -p "$dir/logs" "$dir/data"
  sed -e "s#@DATA@#$dir/data#" \
      -e "s#@NODE_ID@#$node_id#g" \
      -e "s#@PORT@#$port#g" \
      -e "s#@CONTROLLER_PORT@#$controller_port#g" \
      -e "s#@VOTERS@#$voters#g" \
      -e "s#@REPLICATION@#$replication#g" \
      -e "s#@MIN_ISR@#$(kafka_min_isr "$replication")#g" \
      "$REPO_ROOT/deploy/kafka/server.properties.in" > "$dir/server.properties"
}

# kafka_answers_metadata PORT [ARGS...]: the node on PORT answers a real metadata request (a port that accepts
# connections is not yet a broker that serves metadata); ARGS go to deploy/kafka/ping.py (e.g. --broker-ids 1,2,3).
kafka_answers_metadata() {
  local port="$1"; shift
  [ -x "$CROWNSTREAM_VENV/bin/python" ] || { port_open "$port"; return; }
  "$CROWNSTREAM_VENV/bin/python" "$REPO_ROOT/deploy/kafka/ping.py" "127.0.0.1:$port" "$@" >/dev/null 2>&1
}

# kafka_format DIR CLUSTER_ID: format the node's KRaft storage once (a formatted node keeps its data).
kafka_format() {
  local dir="$1" cluster_id="$2"
  if [ ! -f "$dir/data/meta.properties" ]; then
    log "formatting KRaft storage in $dir/data"
    kafka_java "$dir" kafka.tools.StorageTool format -t "$cluster_id" -c "$dir/server.properties" >/dev/null
  fi
}

# kafka_random_uuid DIR: a new cluster id (the tool logs under DIR/logs).
kafka_random_uuid() { kafka_java "$1" kafka.tools.StorageTool random-uuid; }

# kafka_launch DIR: start the node's JVM in the background; its pid goes to DIR/kafka.pid.
kafka_launch() {
  local dir="$1"
  kafka_java_opts "$dir"
  nohup java "${KAFKA_JAVA_OPTS[@]}" kafka.Kafka "$dir/server.properties" > "$dir/logs/stdout.log" 2>&1 &
  echo $! > "$dir/kafka.pid"
}

# kafka_wait_up DIR PORT NAME [PING ARGS...]: wait (60 s at most) until the node answers metadata; fail at once
# if its process exits.
kafka_wait_up() {
  local dir="$1" port="$2" name="$3"; shift 3
  for _ in $(seq 1 120); do
    if kafka_answers_metadata "$port" "$@"; then log "$name is up (pid $(cat "$dir/kafka.pid"))"; return 0; fi
    pid_alive "$dir/kafka.pid" || { tail -n 40 "$dir/logs/stdout.log" >&2; die "$name exited during start-up (log: $dir/logs)"; }
    sleep 0.5
  done
  die "$name did not answer metadata requests within 60 s (log: $dir/logs)"
}

# kafka_stop DIR NAME: SIGTERM (a controlled shutdown: leadership moves first), SIGKILL after 60 s.
kafka_stop() {
  local dir="$1" name="$2" pid
  if ! pid_alive "$dir/kafka.pid"; then log "$name is not running"; rm -f "$dir/kafka.pid"; return 0; fi
  pid="$(cat "$dir/kafka.pid")"
  kill -TERM "$pid"
  for _ in $(seq 1 120); do kill -0 "$pid" 2>/dev/null || { rm -f "$dir/kafka.pid"; log "$name stopped"; return 0; }; sleep 0.5; done
  log "$name did not stop within 60 s; killing it"; kill -KILL "$pid" 2>/dev/null || true; rm -f "$dir/kafka.pid"
}

# kafka_kill DIR NAME: SIGKILL, as a crash: no controlled shutdown, no flush. Returns once the process is gone.
kafka_kill() {
  local dir="$1" name="$2" pid
  if ! pid_alive "$dir/kafka.pid"; then log "$name is not running"; rm -f "$dir/kafka.pid"; return 0; fi
  pid="$(cat "$dir/kafka.pid")"
  kill -KILL "$pid"
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  rm -f "$dir/kafka.pid"; log "$name killed (kill -9, pid $pid)"
}
