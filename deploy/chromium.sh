#!/usr/bin/env bash
# Headless Chromium for the leaderboard's browser test, from Debian's packages (never a browser download:
# the machines reach package registries only). Idempotent; prints the browser's path.
set -euo pipefail

if [[ -x /usr/bin/chromium ]]; then
  echo /usr/bin/chromium
  exit 0
fi
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >&2
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >&2
echo /usr/bin/chromium
