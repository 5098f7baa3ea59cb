#!/usr/bin/env bash
# Add the whole job as a step to a running EMR cluster (EMR 7.x with the delta-defaults classification
# delta.enabled=true). The artifact and config go to S3 first.
# Usage: scripts/submit_emr.sh CLUSTER_ID S3_PREFIX INPUT OUTPUT [extra visitseg args...]
set -euo pipefail
cd "$(dirname "$0")/.."
cluster=$1 prefix=${2%/} input=$3 output=$4; shift 4
artifact=$(scripts/package.sh dist | tail -1)
aws s3 cp "$artifact" "$prefix/visitseg.zip"
aws s3 cp jobs/segment_visits.py "$prefix/segment_visits.py"
aws s3 cp conf/emr.toml "$prefix/emr.toml"
args=$(printf ',%s' --deploy-mode cluster --py-files "$prefix/visitseg.zip" --files "$prefix/emr.toml" \
  "$prefix/segment_visits.py" --config emr.toml --input-format ga4 --input "$input" --output "$output" "$@")
aws emr add-steps --cluster-id "$cluster" --steps "Type=Spark,Name=visitseg,ActionOnFailure=CONTINUE,Args=[${args:1}]"
