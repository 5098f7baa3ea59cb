"""Segment ids across retrains: optimal matching of centres, then a retrain end to end on real Delta tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from deltalake import DeltaTable
from pyspark.sql import functions as F
from support import one_k, spark4_only

from visitseg.ingest import sample_data
from visitseg.cli import main
from visitseg.model.lineage import match


def test_match_pairs_centres_optimally_and_cuts_far_ones():
    previous = {0: np.array([0.0, 0.0]), 1: np.array([5.0, 0.0]), 2: np.array([0.0, 5.0])}
    new = {10: np.array([4.8, 0.1]), 11: np.array([0.2, -0.1]), 12: np.array([9.0, 9.0]), 13: np.array([0.3, 5.2])}
    # 12 is nearest to 1 and 2, but they have better partners: it is unpaired (K grew) and new.
    assert match(new, previous, max_shift=1.0) == {
        10: (1, pytest.approx(np.hypot(0.2, 0.1))),
        11: (0, pytest.approx(np.hypot(0.2, 0.1))),
        12: (None, pytest.approx(np.hypot(4.0, 9.0))),
        13: (2, pytest.approx(np.hypot(0.3, 0.2))),
    }
    assert match({0: np.array([3.0, 0.0])}, {0: np.array([0.0, 0.0])}, max_shift=1.0) == {0: (None, pytest.approx(3.0))}


def table(path) -> pd.DataFrame:
    return DeltaTable(str(path)).to_pyarrow_table().to_pandas()


@spark4_only("segment ids are matched on the driver, from the centres both lines' k-means write alike")
def test_a_retrain_keeps_ids_and_gives_a_new_behaviour_a_new_id(spark, tmp_path):
    """First run: planted visits without the researchers. Retrain: the same visits plus the researchers.
    The four behaviours of the first run keep their ids and names; the researchers get id 4."""
    full = tmp_path / "full"
    planted = sample_data.write_sample(spark, "ga360", str(full), 1200, days=5, seed=3, file_format="json")
    researchers = planted.filter(F.col("segment") == "researcher").select("visit_key")
    sessions = spark.read.json(str(full))
    without = sessions.join(researchers, F.concat_ws("-", "fullVisitorId", F.col("visitId").cast("string")) == F.col("visit_key"), "left_anti")
    without.write.json(str(tmp_path / "without"))
    out = str(tmp_path / "out")

    def run(input_path, run_id, k):
        args = ["run", "--input-format", "ga360", "--input", input_path, "--output", out, "--set", f"run.run_id={run_id}", "--set", f"model.k_final={k}", *one_k(k)]
        assert main(args) == 0

    run(str(tmp_path / "without"), "first", 4)
    first = table(f"{out}/cluster_centers").set_index("cluster_id")
    run(str(full), "retrain", 5)
    centers = table(f"{out}/cluster_centers")
    retrain = centers[centers.run_id == "retrain"].set_index("cluster_id")
    lineage = table(f"{out}/cluster_lineage").sort_values("cluster_id")

    assert list(lineage.columns) == ["run_id", "cluster_id", "previous_run_id", "previous_cluster_id", "centroid_shift", "share",
                                     "previous_share", "adjusted_rand_index", "shared_visits"] and len(lineage) == 5
    kept = lineage[lineage.previous_cluster_id.notna()]
    assert sorted(kept.cluster_id) == [0, 1, 2, 3] and (kept.cluster_id == kept.previous_cluster_id).all()
    assert (kept.centroid_shift < 1.0).all() and set(lineage.previous_run_id) == {"first"}
    assert all(retrain.loc[c, "segment"] == first.loc[c, "segment"] for c in kept.cluster_id)
    new = lineage[lineage.previous_cluster_id.isna()]
    assert new.cluster_id.tolist() == [4] and retrain.loc[4, "pageviews"] >= 20  # the researchers: 20-24 pages
    assert new.previous_share.isna().all() and kept.previous_share.notna().all()
    assert lineage.adjusted_rand_index.iloc[0] > 0.95  # the visits both runs labelled stay in their segments
    assert (lineage.shared_visits == 1200 - len(researchers.toPandas())).all()

    labels = table(f"{out}/session_clusters")
    assert set(labels[labels.run_id == "retrain"].cluster_id) == {0, 1, 2, 3, 4}
