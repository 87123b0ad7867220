#!/usr/bin/env bash
# Installs everything Crownstream needs on a fresh Debian machine, and nothing twice:
#   - Java 17 and Maven (to fetch and run the Kafka broker), PostgreSQL server binaries (apt, if missing)
#   - a virtualenv at .venv with the project installed editable, with its dev extras
#   - the Kafka broker's jars from Maven Central (cached in ~/.cache/crownstream)
# Safe to re-run: each step checks before it acts, and the pip step is skipped while pyproject.toml and setup.py are unchanged.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

need_apt=()
command -v java >/dev/null || need_apt+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || need_apt+=(maven)
ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || need_apt+=(postgresql)
if [ "${#need_apt[@]}" -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "missing system packages (${need_apt[*]}); install them with: sudo apt-get install ${need_apt[*]}"
  log "installing ${need_apt[*]} from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  # Debian's postgresql package starts a cluster of its own on 5432; ours runs on its own port and data dir.
  command -v pg_ctlcluster >/dev/null && pg_lsclusters -h 2>/dev/null | awk '{print $1, $2}' | while read -r v c; do
    pg_ctlcluster "$v" "$c" stop 2>/dev/null || true; done
fi

PY="${CROWNSTREAM_PYTHON:-python3}"
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || die "Python 3.11+ is needed (found $("$PY" --version))"
if [ ! -x "$CROWNSTREAM_VENV/bin/python" ]; then
  log "creating virtualenv $CROWNSTREAM_VENV"
  "$PY" -m venv "$CROWNSTREAM_VENV"
fi
stamp="$CROWNSTREAM_VENV/.crownstream-installed"
want="$(cat "$REPO_ROOT/pyproject.toml" "$REPO_ROOT/setup.py" | sha256sum | cut -c1-16)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log "installing Python dependencies into $CROWNSTREAM_VENV"
  "$CROWNSTREAM_VENV/bin/pip" install -q --upgrade pip setuptools wheel
  "$CROWNSTREAM_VENV/bin/pip" install -q -e "$REPO_ROOT[dev]"
  echo "$want" > "$stamp"
fi

"$REPO_ROOT/deploy/kafka.sh" fetch
log "bootstrap complete"
