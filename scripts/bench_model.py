"""Times the model stage alone — K sweep and final fit — on planted visit features of given sizes.

For each size, the visit features are built once (planted GA360 sample → visit_features, persisted),
then `segment()` runs --runs times on them in one Spark session; the median seconds of the sweep and of
the final model (the sweep's fit at the chosen K, the k-means vs rules comparison, assignment and profiles)
are printed side by side.

    python scripts/bench_model.py --visits 100000 1000000 --runs 3 [--master local[2]] [--json bench/model.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
from pathlib import Path

from pyspark import StorageLevel

from visitseg.ingest import sample_data
from visitseg.core.config import SparkConfig, load_config, with_values
from visitseg.pipelines.features import FeatureTable
from visitseg.ingest import read_visits
from visitseg.model.fit import fit_segments
from visitseg.core.spark import StageLog, build_session, persisted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visits", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--set", action="append", default=[], help="config overrides, e.g. model.k_max=8")
    parser.add_argument("--json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    spark = build_session(SparkConfig(master=args.master, app_name="visitseg-bench-model"))
    spark.sparkContext.setLogLevel("ERROR")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.visits:
            path = str(Path(tmp) / f"ga360_{n}")
            sample_data.write_sample(spark, "ga360", path, n, days=28, seed=42)
            cfg = with_values(load_config([], args.set), input={"format": "ga360", "path": path}, run={"run_id": "bench"})
            with persisted(read_visits(spark, cfg), StorageLevel.MEMORY_AND_DISK) as features:
                table = FeatureTable("visit_features", features, features.count())
                timings = []
                for _ in range(args.runs):
                    stages = StageLog(spark)
                    seg = fit_segments(spark, cfg, table, stages)
                    seg.tables["session_clusters"].write.format("noop").mode("overwrite").save()  # the assignment is lazy: force it
                    by_stage = {r["stage"]: r["seconds"] for r in stages.records}
                    timings.append({"sweep": by_stage["sweep"], "final_fit": by_stage["final model"] + by_stage.get("compare methods", 0.0) + by_stage["assign and profile"], "k": seg.k})
            results.append(
                {
                    "visits": table.rows,
                    "sweep_rows": seg.selection.sweep_rows,
                    "sweep_seconds_median": statistics.median(t["sweep"] for t in timings),
                    "final_fit_seconds_median": statistics.median(t["final_fit"] for t in timings),
                    "runs": timings,
                }
            )
            print(f"{table.rows:>10,} visits: done", file=sys.stderr)
    spark.stop()
    print(f"{'visits':>10} {'sweep rows':>11} {'sweep s':>9} {'final fit s':>12}   (median of {args.runs}, {args.master})")
    for r in results:
        print(f"{r['visits']:>10,} {r['sweep_rows']:>11,} {r['sweep_seconds_median']:>9.1f} {r['final_fit_seconds_median']:>12.1f}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
