#!/usr/bin/env bash
# Installs what visitseg needs for one Spark line from the project's own files: Java 17 (Debian package)
# when no java is on PATH, headless Chromium and its driver for the report page's browser test (Debian
# packages, where apt-get can run; the test skips with the reason where they are missing), then a virtualenv with the package, its dev extras and the line's pins
# (constraints/spark-$LINE.txt), then the line's Delta jars with Maven (scripts/fetch_delta_jars.sh), so
# the tests run Spark's native Delta writer for real. LINE=4 (default) → .venv, LINE=3.5 → .venv-spark3.5;
# VENV overrides. Each step does nothing when its result is newer than the files it is made from.
set -euo pipefail
cd "$(dirname "$0")/.."
LINE=${LINE:-4}
CONSTRAINTS=constraints/spark-$LINE.txt
if [ "$LINE" = 4 ]; then VENV=${VENV:-.venv}; else VENV=${VENV:-.venv-spark$LINE}; fi
PYTHON=${PYTHON:-python3}
[ -f "$CONSTRAINTS" ] || { echo "setup: no $CONSTRAINTS; the lines are: $(ls constraints | sed 's/spark-//; s/.txt//' | xargs)" >&2; exit 2; }

stamp="$VENV/.installed"
if [ -f "$stamp" ] && [ "$stamp" -nt setup.py ] && [ "$stamp" -nt "$CONSTRAINTS" ] && [ "$stamp" -nt scripts/setup.sh ]; then
  LINE=$LINE PYTHON="$VENV/bin/python" scripts/fetch_delta_jars.sh
  exit 0
fi
if ! command -v java >/dev/null 2>&1; then
  echo "setup: no java on PATH; installing openjdk-17-jre-headless" >&2
  apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless
fi
if ! command -v mvn >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "setup: no mvn on PATH; installing maven (it fetches the Delta jars for the native-writer tests)" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends maven >/dev/null; } \
    || echo "setup: could not install maven; the native-writer tests will be skipped" >&2
fi
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing chromium and chromium-driver (the report page's browser test)" >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null; } \
      || echo "setup: could not install chromium; the browser test will be skipped" >&2
  else
    echo "setup: no chromium/chromedriver and no root apt-get; the browser test will be skipped" >&2
  fi
fi
echo "setup: Spark line $LINE into $VENV ($CONSTRAINTS)" >&2
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -c "$CONSTRAINTS" -e ".[dev]"
touch "$stamp"
LINE=$LINE PYTHON="$VENV/bin/python" scripts/fetch_delta_jars.sh
