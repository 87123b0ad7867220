#!/usr/bin/env bash
# Static type check of the whole package with mypy (config: [tool.mypy] in pyproject.toml).
#
# Why a throwaway tree: the top-level folders (schemas/, agents/, web/ …) install as crownstream.* through
# setuptools' package-dir mapping, and the editable install reaches them through an import hook mypy cannot
# follow. So this lays out, under .state/typecheck/, the package as the imports read it — symlinks only, no
# copies — runs mypy there, and rewrites the reported paths back to the repository's own (clickable from the
# repo root). Exits non-zero on any error. Extra arguments go to mypy (e.g. --no-incremental).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE_DIR="${CROWNSTREAM_STATE_DIR:-$REPO_ROOT/.state}"
TREE="$STATE_DIR/typecheck"
VENV="${CROWNSTREAM_VENV:-$REPO_ROOT/.venv}"
# Folders installed as crownstream.<name>: read from [tool.setuptools.package-dir], as setup.py reads them.
mapfile -t MAPPED < <("$VENV/bin/python" - "$REPO_ROOT/pyproject.toml" <<'PY'
import sys, tomllib
dirs = tomllib.load(open(sys.argv[1], "rb"))["tool"]["setuptools"]["package-dir"]
print("\n".join(folder for package, folder in dirs.items() if package != "crownstream"))
PY
)

rm -rf "$TREE/crownstream"
mkdir -p "$TREE/crownstream"
for entry in "$REPO_ROOT"/crownstream/*; do
  case "$(basename "$entry")" in __pycache__) continue ;; esac
  ln -s "$entry" "$TREE/crownstream/$(basename "$entry")"
done
for name in "${MAPPED[@]}"; do
  ln -s "$REPO_ROOT/$name" "$TREE/crownstream/$name"
done

# crownstream/<mapped>/x.py (as mypy sees it) -> <mapped>/x.py (where it lives); crownstream/x.py stays.
mapped_re="$(IFS='|'; echo "${MAPPED[*]}")"
cd "$TREE"
set +e
"$VENV/bin/python" -m mypy --config-file "$REPO_ROOT/pyproject.toml" --cache-dir "$TREE/.mypy_cache" \
  --no-error-summary "$@" -p crownstream 2>&1 | sed -E "s#^crownstream/($mapped_re)/#\\1/#"
status=${PIPESTATUS[0]}
set -e
if [ "$status" -eq 0 ]; then
  echo "typecheck: no errors"
else
  echo "typecheck: mypy found errors (exit $status); paths above are relative to $REPO_ROOT" >&2
fi
exit "$status"
