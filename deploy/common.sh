# Shared paths and defaults for the deploy/ scripts. Sourced, never run.
# Every value can be overridden by the same environment variable the Python settings module reads
# (crownstream/settings.py), so the scripts, the workers and docker-compose.yml agree on one name each.
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CROWNSTREAM_STATE_DIR="${CROWNSTREAM_STATE_DIR:-$REPO_ROOT/.state}"
CROWNSTREAM_CACHE_DIR="${CROWNSTREAM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/crownstream}"
CROWNSTREAM_KAFKA_VERSION="${CROWNSTREAM_KAFKA_VERSION:-3.9.1}"
CROWNSTREAM_KAFKA_PORT="${CROWNSTREAM_KAFKA_PORT:-19092}"
CROWNSTREAM_KAFKA_CONTROLLER_PORT="${CROWNSTREAM_KAFKA_CONTROLLER_PORT:-19093}"
CROWNSTREAM_KAFKA_HEAP="${CROWNSTREAM_KAFKA_HEAP:-768m}"
# deploy/kafka-cluster.sh: node i (1..NODES) listens on PORT + 2(i-1) for clients and the next port for the
# controller quorum (19192/19193, 19194/19195, 19196/19197), apart from the single broker's ports.
CROWNSTREAM_KAFKA_CLUSTER_NODES="${CROWNSTREAM_KAFKA_CLUSTER_NODES:-3}"
CROWNSTREAM_KAFKA_CLUSTER_PORT="${CROWNSTREAM_KAFKA_CLUSTER_PORT:-19192}"
CROWNSTREAM_KAFKA_CLUSTER_HEAP="${CROWNSTREAM_KAFKA_CLUSTER_HEAP:-512m}"
CROWNSTREAM_PG_PORT="${CROWNSTREAM_PG_PORT:-15432}"
CROWNSTREAM_PG_USER="${CROWNSTREAM_PG_USER:-crownstream}"
CROWNSTREAM_PG_DATABASE="${CROWNSTREAM_PG_DATABASE:-crownstream}"
CROWNSTREAM_VENV="${CROWNSTREAM_VENV:-$REPO_ROOT/.venv}"
mkdir -p "$CROWNSTREAM_STATE_DIR"

log() { printf '[deploy] %s\n' "$*" >&2; }
die() { printf '[deploy] error: %s\n' "$*" >&2; exit 1; }

# pid_alive FILE: true when FILE names a running process.
pid_alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# port_open PORT: true when something accepts TCP connections on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
