#!/usr/bin/env bash
# ./run.sh demo | test — sets up .venv on first use (installing python3-venv with apt
# when the system Python lacks it), then runs the demo or the test suite.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON="${PYTHON:-python3}"
VENV=.venv
STAMP="$VENV/.installed-$(sha1sum setup.py | cut -c1-12)"

ensure_venv() {
  [[ -f "$STAMP" ]] && return
  if ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
    echo "python3-venv is missing; installing it with apt" >&2
    SUDO=""; [[ "$(id -u)" != 0 ]] && SUDO="sudo"
    $SUDO apt-get update -q && $SUDO apt-get install -y -q python3-venv
  fi
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -e ".[cpu,test,demo,serving]"
  touch "$STAMP"
}

case "${1:-}" in
  demo) ensure_venv; shift; exec "$VENV/bin/python" -m tfspk.demo "$@" ;;
  test) ensure_venv; shift; exec "$VENV/bin/python" -m pytest -q -rs -n 2 --durations=20 "$@" tests ;;
  setup) ensure_venv ;;
  *) echo "usage: ./run.sh demo|test|setup [extra args]" >&2; exit 2 ;;
esac
