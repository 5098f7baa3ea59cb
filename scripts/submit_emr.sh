#!/usr/bin/env bash
# Add the whole job as a step to an EMR 7.x cluster (Spark 3.5, Scala 2.12). Delta comes from the
# delta-defaults classification (delta.enabled=true); EMR 7's default Python is 3.9, so the cluster runs
# PySpark on Python 3.11 (spark-env PYSPARK_PYTHON) with visitseg's driver packages from a bootstrap
# action. Both are in conf/emr-configurations.json and scripts/emr_bootstrap.sh (used by --create).
# Usage: scripts/submit_emr.sh [--dry-run] [--create] [--release emr-7.13.0] CLUSTER_ID|NAME S3_PREFIX INPUT OUTPUT [visitseg args...]
#   --create   create the cluster first (then CLUSTER_ID is its name; the step goes to the new cluster)
#   --dry-run  print the commands instead of running them (nothing is built, copied or submitted)
set -euo pipefail
cd "$(dirname "$0")/.."
dry_run=0 create=0 release=emr-7.13.0
while [ $# -gt 0 ]; do
  case $1 in
    --dry-run) dry_run=1; shift ;;
    --create) create=1; shift ;;
    --release) release=$2; shift 2 ;;
    *) break ;;
  esac
done
case $release in emr-7.*) ;; *) echo "submit_emr: --release must be an EMR 7.x label (Spark 3.5), got $release" >&2; exit 2 ;; esac
[ $# -ge 4 ] || { sed -n 2,9p "$0" >&2; exit 2; }
cluster=$1 prefix=${2%/} input=$3 output=$4; shift 4

. scripts/cloud_common.sh

artifact=$(artifact)
run aws s3 cp "$artifact" "$prefix/visitseg.zip"
run aws s3 cp jobs/segment_visits.py "$prefix/segment_visits.py"
run aws s3 cp conf/emr.toml "$prefix/emr.toml"
run aws s3 cp scripts/emr_bootstrap.sh "$prefix/emr_bootstrap.sh"
if [ $create = 1 ]; then
  create_cluster=(aws emr create-cluster --name "$cluster" --release-label "$release" --applications Name=Spark
    --configurations file://conf/emr-configurations.json --bootstrap-actions "Path=$prefix/emr_bootstrap.sh"
    --instance-type m6i.xlarge --instance-count 3 --use-default-roles --query ClusterId --output text)
  if [ $dry_run = 1 ]; then run "${create_cluster[@]}"; cluster=CLUSTER_ID; else cluster=$("${create_cluster[@]}"); fi
fi
args=$(printf ',%s' --deploy-mode cluster --py-files "$prefix/visitseg.zip" --files "$prefix/emr.toml" \
  "$prefix/segment_visits.py" --config emr.toml --input-format ga4 --input "$input" --output "$output" "$@")
run aws emr add-steps --cluster-id "$cluster" --steps "Type=Spark,Name=visitseg,ActionOnFailure=CONTINUE,Args=[${args:1}]"
