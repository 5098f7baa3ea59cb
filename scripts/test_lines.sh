#!/usr/bin/env bash
# `make test`: the suite on each Spark line of LINES, one line after the other, each with its own venv.
# The first line is set up first, alone: its setup may install system packages (apt-get takes a lock).
# Every later line's setup (a virtualenv from PyPI, its Delta jars from Maven: mostly waiting on the
# network) then runs in the background while the earlier lines' tests run, and its log is shown when
# its turn comes. Exits 1 if any line's setup or tests failed.
# Usage: LINES="4 3.5" PYTEST_WORKERS="-n 2 --dist loadfile" scripts/test_lines.sh
set -uo pipefail
cd "$(dirname "$0")/.."
read -ra lines <<< "${LINES:-4 3.5}"
read -ra workers <<< "${PYTEST_WORKERS:-}"
venv_of() { if [ "$1" = 4 ]; then echo .venv; else echo ".venv-spark$1"; fi; }

LINE=${lines[0]} scripts/setup.sh || exit 1
mkdir -p .cache
declare -A setups
for line in "${lines[@]:1}"; do
  LINE=$line scripts/setup.sh >".cache/setup-spark-$line.log" 2>&1 &
  setups[$line]=$!
done
status=0
for line in "${lines[@]}"; do
  echo "== Spark line $line"
  if [ -n "${setups[$line]:-}" ]; then
    wait "${setups[$line]}"; code=$?
    cat ".cache/setup-spark-$line.log"
    if [ "$code" != 0 ]; then echo "== setup of Spark line $line failed (exit $code)"; status=1; continue; fi
  fi
  python=$(venv_of "$line")/bin/python
  "$python" -c "import platform, pyspark; print('== pyspark', pyspark.__version__, 'on Python', platform.python_version())"
  "$python" -m pytest "${workers[@]}" || status=1
done
exit $status
