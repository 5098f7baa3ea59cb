"""The daily loop on the shared real GA4 week: train on the first three days, score the later days with
that model as their files arrive, one a day (`score --incremental`, no refit), then retrain on the later
days and show the lineage of the segment ids.

    python scripts/segments_over_time.py [--real ../shared/data/real] [--output out/over-time] [--set model.k_max=8 ...]

Prints what the README's "Segments over time" section quotes: the training run's segments, what each
daily incremental run scored and held back, the scored days' segment mix (checked against a batch
`score` of the same visits), and the retrain's `cluster_lineage`, `drift` and `segment_kpis_daily` rows. One Spark session; each step is the
`visitseg` command a scheduler would run (in process).
"""

from __future__ import annotations

import argparse
import logging
import shutil
from pathlib import Path

from deltalake import DeltaTable
from sklearn.metrics import adjusted_rand_score  # the dev extra

from visitseg.cli import main as visitseg
from visitseg.core.config import SparkConfig
from visitseg.core.spark import build_session

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ("2020-11-01", "2020-11-05")  # [from, to): 2020-11-01, -02 and -04 (the source lacks -03)
SCORE_DAYS = ("2020-11-05", "2020-11-06", "2020-11-07")
RETRAIN = ("2020-11-05", "2020-11-08")


def table(path: Path):
    return DeltaTable(str(path)).to_pyarrow_table().to_pandas()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--real", default=str(ROOT.parent / "shared" / "data" / "real"))
    parser.add_argument("--output", default=str(ROOT / "out" / "over-time"))
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    week, out = str(Path(args.real) / "ga4_week"), Path(args.output)
    shutil.rmtree(out, ignore_errors=True)
    spark = build_session(SparkConfig(master="local[2]", app_name="visitseg-over-time"))
    spark.sparkContext.setLogLevel("ERROR")
    sets = [a for s in args.overrides for a in ("--set", s)]

    def window(start: str, end: str) -> list[str]:
        return ["--set", f"input.date_from={start}", "--set", f"input.date_to={end}"]

    common = ["--input-format", "ga4", "--input", week, "--output", str(out), *sets]
    print(f"## 1. train on {TRAIN[0]} to {TRAIN[1]} (exclusive)\n")
    assert visitseg(["run", *common, "--set", "run.run_id=train", *window(*TRAIN)]) == 0

    incoming, checkpoint = out / "incoming", out / "checkpoints"
    incoming.mkdir()
    for day in SCORE_DAYS:
        print(f"\n## 2. the file of {day} arrives: score --incremental with the model of run train\n")
        shutil.copy(Path(week) / f"events_{day.replace('-', '')}.parquet", incoming)
        daily = ["--input-format", "ga4", "--input", str(incoming), "--output", str(out), *sets]
        assert visitseg(["score", "--model", "latest", *daily, "--incremental", "--checkpoint", str(checkpoint), "--set", f"run.run_id=score-{day}"]) == 0

    scores = table(out / "session_scores")
    mix = scores.groupby(["visit_date", "segment"]).size().unstack(fill_value=0)
    print("\nscored visits per day and segment (session_scores):\n")
    print(mix.to_string())
    print("\nshares:\n")
    print((mix.div(mix.sum(axis=1), axis=0) * 100).round(1).to_string())
    print(f"\nhits held back in {checkpoint}/train/pending: {len(table(checkpoint / 'train' / 'pending')):,}")

    batch = out.parent / f"{out.name}-batch"
    shutil.rmtree(batch, ignore_errors=True)
    assert visitseg(["score", "--model", str(out / "models" / "train"), "--input-format", "ga4", "--input", str(incoming),
                     "--output", str(batch), "--set", "run.run_id=batch", *sets]) == 0
    same = scores.merge(table(batch / "session_scores"), on="visit_key", suffixes=("", "_batch"))
    agree = (same.cluster_id == same.cluster_id_batch) & ((same.distance_to_centroid - same.distance_to_centroid_batch).abs() < 1e-9)
    print(f"incremental vs one batch score of the same files: {len(same):,} of {len(scores):,} visits found, {agree.sum():,} with the same cluster and distance")

    print(f"\n## 3. retrain on {RETRAIN[0]} to {RETRAIN[1]} (exclusive): lineage against run train\n")
    assert visitseg(["run", *common, "--set", "run.run_id=retrain", *window(*RETRAIN)]) == 0
    lineage = table(out / "cluster_lineage").sort_values("cluster_id")
    centers = table(out / "cluster_centers")
    names = {(r.run_id, r.cluster_id): r.segment for r in centers.itertuples()}
    lineage["segment"] = [names[("retrain", c)] for c in lineage.cluster_id]
    lineage["previous_segment"] = [names.get(("train", p)) if p == p else None for p in lineage.previous_cluster_id]
    columns = ["cluster_id", "segment", "previous_cluster_id", "previous_segment", "centroid_shift", "share", "previous_share", "adjusted_rand_index", "shared_visits"]
    print(lineage[columns].round(3).to_string(index=False))
    rows = table(out / "drift")
    rows = rows[rows.run_id == "retrain"]
    features = rows[rows.kind == "feature"].pivot(index="name", columns="metric", values="value")
    print(f"\ndrift of run retrain against run {rows.reference_run_id.iloc[0]}: {int(rows.drifted.sum())} of {len(rows)} metrics above their thresholds\n")
    print(features.round(3).to_string())
    print()
    print(rows[rows.kind != "feature"][["kind", "name", "metric", "value", "threshold", "drifted"]].round(3).to_string(index=False))
    kpis = table(out / "segment_kpis_daily")
    kpis = kpis[kpis.run_id == "retrain"].sort_values(["visit_date", "cluster_id"])
    print("\nsegment_kpis_daily of run retrain:\n")
    print(kpis[["visit_date", "cluster_id", "segment", "n_visits", "share", "conversion_rate", "revenue_per_visit", "bounce_rate"]].round(3).to_string(index=False))
    labels = table(out / "session_clusters")
    both = scores.merge(labels[labels.run_id == "retrain"], on="visit_key", suffixes=("", "_retrain"))
    print(f"\nthe retrain's labels against the old model's scores of the same {len(both):,} visits: the same id for "
          f"{(both.cluster_id == both.cluster_id_retrain).mean():.1%}, ARI {adjusted_rand_score(both.cluster_id, both.cluster_id_retrain):.3f}")
    spark.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
