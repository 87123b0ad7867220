#!/usr/bin/env bash
# Three Apache Kafka nodes in KRaft mode on loopback, no Docker: each a broker and a voter of the controller
# quorum (one JVM each), with ports and a data dir of its own; internal topics (offsets, transaction state)
# replicated 3 times with min.insync.replicas 2. The single broker of deploy/kafka.sh is a different cluster
# (other ports, other data) and may run beside it.
#   deploy/kafka-cluster.sh start            fetch if needed, format each node once, start the ones not running,
#                                            wait until every node serves metadata listing all of them
#   deploy/kafka-cluster.sh stop             SIGTERM every node at once, wait for their shutdown (SIGKILL at 60 s)
#   deploy/kafka-cluster.sh status           exit 0 and say "running" only if every node is alive and answers
#   deploy/kafka-cluster.sh reset            stop and delete every node's data
#   deploy/kafka-cluster.sh bootstrap        print the bootstrap servers (CROWNSTREAM_KAFKA_BOOTSTRAP)
#   deploy/kafka-cluster.sh start-node N     start node N (1..3) and wait until it serves metadata listing itself
#   deploy/kafka-cluster.sh stop-node N      SIGTERM node N: a controlled shutdown (leadership moves away first)
#   deploy/kafka-cluster.sh kill-node N      kill -9 node N: a crash, nothing handed over
#   deploy/kafka-cluster.sh restart-node N   stop-node, start-node
#   deploy/kafka-cluster.sh wait-in-sync     wait (120 s at most) until every partition has all replicas in sync
#   deploy/kafka-cluster.sh pid N            print node N's pid
#   deploy/kafka-cluster.sh transactions     list the transactions the coordinators know: id, coordinator, state
# Settings: CROWNSTREAM_KAFKA_CLUSTER_NODES (3), CROWNSTREAM_KAFKA_CLUSTER_PORT (19192: node i serves clients on
# PORT+2(i-1) and the quorum on the port after it), CROWNSTREAM_KAFKA_CLUSTER_HEAP (512m per node).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
KAFKA_HEAP="$CROWNSTREAM_KAFKA_CLUSTER_HEAP"
source "$REPO_ROOT/deploy/kafka/node.sh"

CDIR="$CROWNSTREAM_STATE_DIR/kafka-cluster"
NODES="$CROWNSTREAM_KAFKA_CLUSTER_NODES"
[ "$NODES" -ge 1 ] 2>/dev/null || die "CROWNSTREAM_KAFKA_CLUSTER_NODES must be a positive number, not '$NODES'"
REPLICATION=$(( NODES < 3 ? NODES : 3 ))

node_dir() { echo "$CDIR/node-$1"; }
port_of() { echo $(( CROWNSTREAM_KAFKA_CLUSTER_PORT + 2 * ($1 - 1) )); }
controller_port_of() { echo $(( CROWNSTREAM_KAFKA_CLUSTER_PORT + 2 * ($1 - 1) + 1 )); }
all_ids() { seq -s, 1 "$NODES"; }
voters() { local i v=(); for i in $(seq 1 "$NODES"); do v+=("$i@127.0.0.1:$(controller_port_of "$i")"); done; (IFS=,; echo "${v[*]}"); }
bootstrap() { local i b=(); for i in $(seq 1 "$NODES"); do b+=("127.0.0.1:$(port_of "$i")"); done; (IFS=,; echo "${b[*]}"); }

check_node() {
  [[ "${1:-}" =~ ^[0-9]+$ ]] && [ "$1" -ge 1 ] && [ "$1" -le "$NODES" ] || die "node must be 1..$NODES, not '${1:-}'"
}

cluster_id() {
  # Every node is formatted with the same cluster id, made once.
  if [ ! -s "$CDIR/cluster.id" ]; then mkdir -p "$CDIR"; kafka_random_uuid "$CDIR" > "$CDIR/cluster.id"; fi
  cat "$CDIR/cluster.id"
}

prepare() {
  command -v java >/dev/null || die "Java 17 is needed to run the brokers: run deploy/bootstrap.sh"
  kafka_fetch
  local id; id="$(cluster_id)"
  local i
  for i in "$@"; do
    kafka_render_config "$(node_dir "$i")" "$i" "$(port_of "$i")" "$(controller_port_of "$i")" "$(voters)" "$REPLICATION"
    kafka_format "$(node_dir "$i")" "$id"
  done
}

launch() {
  local i="$1" dir; dir="$(node_dir "$i")"
  if pid_alive "$dir/kafka.pid"; then return 0; fi
  for port in "$(port_of "$i")" "$(controller_port_of "$i")"; do
    port_open "$port" && die "port $port (node $i) is taken by another process; stop it or set CROWNSTREAM_KAFKA_CLUSTER_PORT"
  done
  log "starting node $i of $NODES (Apache Kafka $CROWNSTREAM_KAFKA_VERSION) on 127.0.0.1:$(port_of "$i")"
  kafka_launch "$dir"
}

start() {
  local i all_up=1
  for i in $(seq 1 "$NODES"); do
    pid_alive "$(node_dir "$i")/kafka.pid" && kafka_answers_metadata "$(port_of "$i")" --broker-ids "$(all_ids)" || all_up=0
  done
  if [ "$all_up" = 1 ]; then log "kafka cluster already running ($(bootstrap))"; return 0; fi
  prepare $(seq 1 "$NODES")
  # All at once: a node alone has no quorum (2 of 3 voters) and serves nothing, so none can be awaited alone.
  for i in $(seq 1 "$NODES"); do launch "$i"; done
  for i in $(seq 1 "$NODES"); do
    kafka_wait_up "$(node_dir "$i")" "$(port_of "$i")" "node $i" --broker-ids "$(all_ids)"
  done
  log "kafka cluster is up: $(bootstrap)"
}

start_node() {
  check_node "$1"
  local dir; dir="$(node_dir "$1")"
  if pid_alive "$dir/kafka.pid" && kafka_answers_metadata "$(port_of "$1")" --broker-ids "$1"; then
    log "node $1 already running (pid $(cat "$dir/kafka.pid"))"; return 0
  fi
  prepare "$1"
  launch "$1"
  kafka_wait_up "$dir" "$(port_of "$1")" "node $1" --broker-ids "$1"
}

stop() {
  local i pids=()
  for i in $(seq 1 "$NODES"); do
    # In parallel: stopped one after the other, the last node would wait for a quorum that is gone.
    kafka_stop "$(node_dir "$i")" "node $i" & pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || true; done
}

wait_in_sync() {
  for _ in $(seq 1 240); do
    if "$CROWNSTREAM_VENV/bin/python" "$REPO_ROOT/deploy/kafka/ping.py" "$(bootstrap)" --in-sync >/dev/null 2>&1; then
      log "every partition has all its replicas in sync"; return 0
    fi
    sleep 0.5
  done
  "$CROWNSTREAM_VENV/bin/python" "$REPO_ROOT/deploy/kafka/ping.py" "$(bootstrap)" --in-sync || true
  die "replicas not in sync after 120 s"
}

status() {
  local i dir up=0 line=()
  for i in $(seq 1 "$NODES"); do
    dir="$(node_dir "$i")"
    if pid_alive "$dir/kafka.pid" && kafka_answers_metadata "$(port_of "$i")" --broker-ids "$i"; then
      line+=("node $i running: pid $(cat "$dir/kafka.pid"), 127.0.0.1:$(port_of "$i")"); up=$((up + 1))
    elif pid_alive "$dir/kafka.pid"; then line+=("node $i starting or unhealthy: pid $(cat "$dir/kafka.pid")")
    else line+=("node $i stopped"); fi
  done
  if [ "$up" = "$NODES" ]; then
    echo "kafka cluster running: $NODES nodes, Apache Kafka $CROWNSTREAM_KAFKA_VERSION (KRaft), $(bootstrap)"
  elif [ "$up" = 0 ] && ! ls "$CDIR"/node-*/kafka.pid >/dev/null 2>&1; then echo "kafka cluster stopped"
  else echo "kafka cluster degraded: $up of $NODES nodes serve metadata"; fi
  printf '%s\n' "${line[@]}"
  if [ "$up" = "$NODES" ]; then return 0; elif echo "${line[*]}" | grep -q "running\|starting"; then return 1; else return 3; fi
}

case "${1:-}" in
  fetch) kafka_fetch ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  restart) stop; start ;;
  reset) stop; rm -rf "$CDIR"; log "kafka cluster data deleted" ;;
  bootstrap) bootstrap ;;
  start-node) start_node "${2:-}" ;;
  stop-node) check_node "${2:-}"; kafka_stop "$(node_dir "$2")" "node $2" ;;
  kill-node) check_node "${2:-}"; kafka_kill "$(node_dir "$2")" "node $2" ;;
  restart-node) check_node "${2:-}"; kafka_stop "$(node_dir "$2")" "node $2"; start_node "$2" ;;
  wait-in-sync) wait_in_sync ;;
  pid) check_node "${2:-}"; pid_alive "$(node_dir "$2")/kafka.pid" && cat "$(node_dir "$2")/kafka.pid" ;;
  transactions) kafka_java "$CDIR" "$REPO_ROOT/deploy/kafka/ListTransactions.java" "$(bootstrap)" ;;
  *) echo "usage: $0 {fetch|start|stop|status|restart|reset|bootstrap|wait-in-sync|transactions} | {start-node|stop-node|kill-node|restart-node|pid} N" >&2; exit 2 ;;
esac
