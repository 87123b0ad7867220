#!/usr/bin/env bash
# A PostgreSQL server of the project's own (Debian's packages), data dir under .state/, on loopback.
#   deploy/postgres.sh start   initdb once, start, wait until it accepts connections, create the database
#   deploy/postgres.sh stop    fast shutdown (rolls back open transactions, then exits cleanly)
#   deploy/postgres.sh status  exit 0 only if the server accepts connections on its port
#   deploy/postgres.sh reset   stop and delete the data dir
#   deploy/postgres.sh url     print the SQLAlchemy URL of the project database
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PGDIR="$CROWNSTREAM_STATE_DIR/postgres"
DATA="$PGDIR/data"
SOCK="$PGDIR/socket"
LOGFILE="$PGDIR/postgres.log"

find_bindir() {
  local d
  for d in ${CROWNSTREAM_PG_BINDIR:-} $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$d/pg_ctl" ] && { echo "$d"; return 0; }
  done
  die "PostgreSQL server binaries not found: run deploy/bootstrap.sh (or apt-get install postgresql)"
}
BIN="$(find_bindir)"

# PostgreSQL refuses to run as root; as root we run it as the 'postgres' user that Debian's package creates.
as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

ready() { as_owner "$BIN/pg_isready" -q -h 127.0.0.1 -p "$CROWNSTREAM_PG_PORT" -t 2; }

start() {
  if ready; then log "postgres already running on 127.0.0.1:$CROWNSTREAM_PG_PORT"; return 0; fi
  mkdir -p "$PGDIR" "$SOCK"
  [ "$(id -u)" = 0 ] && chown -R postgres:postgres "$PGDIR"
  if [ ! -f "$DATA/PG_VERSION" ]; then
    log "initialising a PostgreSQL cluster in $DATA"
    as_owner "$BIN/initdb" -D "$DATA" -U "$CROWNSTREAM_PG_USER" --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  fi
  log "starting PostgreSQL ($("$BIN/postgres" --version | awk '{print $3}')) on 127.0.0.1:$CROWNSTREAM_PG_PORT"
  # fsync off: the data dir is a disposable local stand-in; durability comes from Kafka and is not under test here.
  as_owner "$BIN/pg_ctl" -D "$DATA" -l "$LOGFILE" -w -t 60 \
      -o "-p $CROWNSTREAM_PG_PORT -k $SOCK -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=${CROWNSTREAM_PG_FSYNC:-off}" \
      start >/dev/null || { tail -n 30 "$LOGFILE" >&2; die "PostgreSQL did not start (log: $LOGFILE)"; }
  ensure_database
}

ensure_database() {
  local exists
  exists="$(as_owner "$BIN/psql" -h 127.0.0.1 -p "$CROWNSTREAM_PG_PORT" -U "$CROWNSTREAM_PG_USER" -d postgres -tAc \
            "SELECT 1 FROM pg_database WHERE datname = '$CROWNSTREAM_PG_DATABASE'" 2>/dev/null || true)"
  if [ "$exists" != 1 ]; then
    as_owner "$BIN/createdb" -h 127.0.0.1 -p "$CROWNSTREAM_PG_PORT" -U "$CROWNSTREAM_PG_USER" "$CROWNSTREAM_PG_DATABASE"
    log "created database $CROWNSTREAM_PG_DATABASE"
  fi
}

stop() {
  if [ ! -f "$DATA/postmaster.pid" ]; then log "postgres is not running"; return 0; fi
  as_owner "$BIN/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >/dev/null && log "postgres stopped"
}

status() {
  if ready; then echo "postgres running: 127.0.0.1:$CROWNSTREAM_PG_PORT, database $CROWNSTREAM_PG_DATABASE"; else echo "postgres stopped"; return 3; fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  restart) stop; start ;;
  reset) stop; rm -rf "$PGDIR"; log "postgres data deleted" ;;
  url) echo "postgresql+asyncpg://$CROWNSTREAM_PG_USER@127.0.0.1:$CROWNSTREAM_PG_PORT/$CROWNSTREAM_PG_DATABASE" ;;
  *) echo "usage: $0 {start|stop|status|restart|reset|url}" >&2; exit 2 ;;
esac
