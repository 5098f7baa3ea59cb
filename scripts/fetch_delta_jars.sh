#!/usr/bin/env bash
# Fetches the Delta Lake jars of one Spark line with Maven (delta-jars/pom.xml, profile spark-$LINE) into
# .cache/delta-jars/spark-$LINE/, keeping only the jars that line's pyspark does not ship itself (on
# Spark's classpath its own versions win anyway). The test suite then starts Spark with them, so Spark's
# native Delta writer runs for real. Maven, not Spark's Ivy resolver: Ivy may not see this machine's Maven
# settings. Where Maven cannot fetch them, it says why and exits 0: the native-writer tests then skip,
# naming that reason. Does nothing when the folder is newer than the pom.
# Usage: LINE=4|3.5 PYTHON=.venv/bin/python scripts/fetch_delta_jars.sh
set -euo pipefail
cd "$(dirname "$0")/.."
LINE=${LINE:-4}
PYTHON=${PYTHON:-.venv/bin/python}
out=.cache/delta-jars/spark-$LINE
stamp=$out/.fetched
if [ -f "$stamp" ] && [ "$stamp" -nt delta-jars/pom.xml ] && [ "$stamp" -nt "$0" ]; then
  exit 0
fi
if ! command -v mvn >/dev/null 2>&1; then
  echo "setup: no mvn on PATH; Spark's native Delta writer will not be tested (install Maven to test it)" >&2
  exit 0
fi
rm -rf "$out" && mkdir -p "$out"
echo "setup: fetching the Delta jars of Spark line $LINE with Maven into $out" >&2
if ! mvn -q -B -f delta-jars/pom.xml -P "spark-$LINE" dependency:copy-dependencies -DincludeScope=runtime \
     -DoutputDirectory="$PWD/$out" >"$out/maven.log" 2>&1; then
  echo "setup: Maven could not fetch the Delta jars (see $out/maven.log); the native-writer tests will skip" >&2
  rm -f "$out"/*.jar
  exit 0
fi
# Drop what Spark ships (same artifact, any version): two copies of a library on one classpath invite
# class clashes, and Spark's own would win.
spark_jars=$("$PYTHON" -c "import os, pyspark; print(os.path.join(os.path.dirname(pyspark.__file__), 'jars'))")
for jar in "$out"/*.jar; do
  name=$(basename "$jar" | sed -E 's/-[0-9][0-9.]*(-[0-9]+)?\.jar$//')
  if compgen -G "$spark_jars/$name-[0-9]*.jar" >/dev/null; then rm "$jar"; fi
done
ls "$out"/delta-spark_*.jar >/dev/null
touch "$stamp"
