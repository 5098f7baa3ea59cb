#!/usr/bin/env bash
# Submit the whole job to Dataproc. Delta comes from the cluster's DELTA optional component, so the job
# names no Delta package; the cluster needs it and `deltalake` on the driver (for reading the Delta log):
#   image 2.3 (default): Spark 3.5.3, Scala 2.12, Delta Lake 3.x component, Python 3.11
#   image 3.0:           Spark 4.1,   Scala 2.13, Delta Lake 4.x component, Python 3.12
# Usage: scripts/submit_dataproc.sh [--dry-run] [--create] [--image 2.3|3.0] CLUSTER REGION INPUT OUTPUT [visitseg args...]
#   --create   create the cluster first (image, DELTA component, deltalake for the driver's Python)
#   --dry-run  print the commands instead of running them (nothing is built or submitted)
set -euo pipefail
cd "$(dirname "$0")/.."
dry_run=0 create=0 image=2.3
while [ $# -gt 0 ]; do
  case $1 in
    --dry-run) dry_run=1; shift ;;
    --create) create=1; shift ;;
    --image) image=$2; shift 2 ;;
    *) break ;;
  esac
done
case $image in 2.3|3.0) ;; *) echo "submit_dataproc: --image must be 2.3 (Spark 3.5) or 3.0 (Spark 4.1), got $image" >&2; exit 2 ;; esac
[ $# -ge 4 ] || { sed -n 2,9p "$0" >&2; exit 2; }
cluster=$1 region=$2 input=$3 output=$4; shift 4
deltalake=$(grep '^deltalake==' constraints/spark-4.txt)

. scripts/cloud_common.sh

if [ $create = 1 ]; then
  run gcloud dataproc clusters create "$cluster" --region="$region" --image-version="$image" \
    --optional-components=DELTA --properties="dataproc:pip.packages=$deltalake"
fi
artifact=$(artifact)
run gcloud dataproc jobs submit pyspark jobs/segment_visits.py --cluster="$cluster" --region="$region" \
  --py-files="$artifact" --files=conf/dataproc.toml \
  -- --config dataproc.toml --input-format ga360 --input "$input" --output "$output" "$@"
