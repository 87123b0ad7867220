#!/usr/bin/env bash
# Runs a command with the local Kafka broker and PostgreSQL up, then stops whichever of them it started
# (services that were already running are left running). Used by `make test`, `make demo`, `make bench`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

started=()
cleanup() {
  local rc=$?
  for svc in "${started[@]}"; do "$REPO_ROOT/deploy/$svc.sh" stop || true; done
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for svc in kafka postgres; do
  if ! "$REPO_ROOT/deploy/$svc.sh" status >/dev/null 2>&1; then
    "$REPO_ROOT/deploy/$svc.sh" start
    started+=("$svc")
  fi
done
"$@"
