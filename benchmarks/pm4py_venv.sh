#!/usr/bin/env bash
# Creates the throwaway virtualenv with pm4py that benchmarks/bench_process.py compares against.
#
# pm4py is AGPL-3.0: it is never a dependency of Rathaus, never installed by `make setup` or the
# tests. It lives only in var/bench-pm4py (ignored by git) and is called as a separate process.
#
#   benchmarks/pm4py_venv.sh            # creates var/bench-pm4py with pm4py (pinned below)
#   PM4PY_VERSION=2.7.15 benchmarks/pm4py_venv.sh
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${PM4PY_VENV:-var/bench-pm4py}"
VERSION="${PM4PY_VERSION:-2.7.15}"
PYTHON="${PYTHON:-python3.11}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet --upgrade pip
"$VENV/bin/pip" install --quiet "pm4py==$VERSION"
"$VENV/bin/python" -c "import pm4py; print('pm4py', pm4py.__version__, 'in', '$VENV')"
