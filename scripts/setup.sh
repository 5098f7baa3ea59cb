#!/usr/bin/env bash
# Installs what visitseg needs into ./.venv from the project's own files: Java 17 (Debian package) when
# no java is on PATH, then the package with its pinned dependencies (constraints.txt) and dev extras.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

if ! command -v java >/dev/null 2>&1; then
  echo "setup: no java on PATH; installing openjdk-17-jre-headless" >&2
  apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless
fi
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -c constraints.txt -e ".[dev]"
touch "$VENV/.installed"
