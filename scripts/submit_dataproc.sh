#!/usr/bin/env bash
# Submit the whole job to a Dataproc cluster (image 2.3+: Spark 3.5/4 with Delta Lake and the BigQuery connector).
# Usage: scripts/submit_dataproc.sh CLUSTER REGION INPUT OUTPUT [extra visitseg args...]
#   e.g. scripts/submit_dataproc.sh seg-cluster europe-west1 my-project.my_dataset.ga_sessions_20260101 gs://bucket/visitseg \
#        --set input.date_from=2026-01-01 --set input.date_to=2026-02-01
set -euo pipefail
cd "$(dirname "$0")/.."
cluster=$1 region=$2 input=$3 output=$4; shift 4
artifact=$(scripts/package.sh dist | tail -1)
gcloud dataproc jobs submit pyspark jobs/segment_visits.py \
  --cluster "$cluster" --region "$region" \
  --py-files "$artifact" --files conf/dataproc.toml \
  --properties spark.jars.packages=io.delta:delta-spark_2.13:4.0.0 \
  -- --config dataproc.toml --input-format ga360 --input "$input" --output "$output" "$@"
