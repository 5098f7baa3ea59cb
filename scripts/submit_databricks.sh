#!/usr/bin/env bash
# Run the whole job once on a new Databricks job cluster. Databricks Runtime ships Delta Lake (nothing to
# add) and PySpark; the job cluster gets `deltalake` from PyPI for visitseg's driver:
#   runtime 15.4 (default): 15.4 LTS, Spark 3.5.0, Scala 2.12, Python 3.11
#   runtime 17.3:           17.3 LTS, Spark 4.0.0, Scala 2.13, Python 3.12
# Usage: scripts/submit_databricks.sh [--dry-run] [--runtime 15.4|17.3] DBFS_PREFIX INPUT OUTPUT [visitseg args...]
#   --dry-run  print the commands instead of running them (nothing is built, copied or submitted)
set -euo pipefail
cd "$(dirname "$0")/.."
dry_run=0 runtime=15.4
while [ $# -gt 0 ]; do
  case $1 in
    --dry-run) dry_run=1; shift ;;
    --runtime) runtime=$2; shift 2 ;;
    *) break ;;
  esac
done
case $runtime in 15.4) scala=2.12 ;; 17.3) scala=2.13 ;; *) echo "submit_databricks: --runtime must be 15.4 (Spark 3.5) or 17.3 (Spark 4.0), got $runtime" >&2; exit 2 ;; esac
[ $# -ge 3 ] || { sed -n 2,8p "$0" >&2; exit 2; }
prefix=${1%/} input=$2 output=$3; shift 3
deltalake=$(grep '^deltalake==' constraints/spark-4.txt)

. scripts/cloud_common.sh

artifact=$(artifact)
run databricks fs cp --overwrite "$artifact" "$prefix/visitseg.zip"
run databricks fs cp --overwrite jobs/segment_visits.py "$prefix/segment_visits.py"
run databricks fs cp --overwrite conf/databricks.toml "$prefix/databricks.toml"
parameters=$(printf '"%s",' --py-files "$prefix/visitseg.zip" --files "$prefix/databricks.toml" "$prefix/segment_visits.py" \
  --config databricks.toml --input-format ga4 --input "$input" --output "$output" "$@")
task="{\"task_key\": \"visitseg\", \"new_cluster\": {\"spark_version\": \"$runtime.x-scala$scala\", \"node_type_id\": \"i3.xlarge\", \"num_workers\": 2}, \"libraries\": [{\"pypi\": {\"package\": \"$deltalake\"}}], \"spark_submit_task\": {\"parameters\": [${parameters%,}]}}"
run databricks jobs submit --json "{\"run_name\": \"visitseg\", \"tasks\": [$task]}"
