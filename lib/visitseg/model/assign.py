"""Assigning rows to fitted centres: used by `visitseg run` (its labels) and `visitseg score` (new visits).

For each row: the nearest centre, the Euclidean distance to it (standardised units) and the margin to the
second-nearest centre (small margin = a borderline row), what Spark ML's KMeansModel does not return.
Built-in column functions only: no Python UDF. Ties go to the lower centre index, as in
KMeansModel.predict. Plain doubles are sorted with `sort_array` (compiled) and the index picked apart;
the nearest-first array is built from ranks, not by sorting structs (see docs/performance.md).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from pyspark.ml.functions import vector_to_array
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from visitseg.core.sql import squared_distance
from visitseg.model.preprocess import FEATURES
from visitseg.model.saved_model import STANDARDISED, SavedModel

# Spark's advice for HotSpot: the scores plan's generated methods exceed the JVM's 8,000-byte JIT limit
# and would run interpreted; with this limit Spark compiles such a plan operator by operator. For score
# writes only: the feature aggregation was no faster with it (docs/performance.md).
SCORES_CODEGEN = {"spark.sql.codegen.hugeMethodLimit": "8000"}
RAW_CLUSTER = "raw_cluster"
NEAREST_CENTROIDS = "nearest_centroids"


def with_nearest_centre(df: DataFrame, centres: np.ndarray, cluster_ids: Sequence[int] | None = None, x: Column | None = None) -> DataFrame:
    """Adds raw_cluster (index into `centres`), distance_to_centroid and margin of the standardised
    features `x` (an array column; by default the `features` vector's values).
    With `cluster_ids` (the id of each centre) also `nearest_centroids`: every (cluster_id, distance), nearest first.
    The expressions are SQL text, parsed once per layer: built with Column operators they cost a Py4J
    round trip each, about 0.4 s of driver time per call at K = 5 (hundreds of calls for the K² ranks)."""
    names = [f"_d{i}" for i in range(len(centres))]
    nearest = f"least({', '.join(names)})"
    assigned = (
        df.withColumn("_x", vector_to_array(F.col(FEATURES)) if x is None else x)
        .selectExpr("*", *[f"sqrt({squared_distance('_x', centre)}) AS {name}" for name, centre in zip(names, centres)])
        .selectExpr(
            "*",
            f"CASE {' '.join(f'WHEN {n} = {nearest} THEN {i}' for i, n in enumerate(names))} END AS {RAW_CLUSTER}",
            f"{nearest} AS distance_to_centroid",
            f"sort_array(array({', '.join(names)}))[1] - {nearest} AS margin",
        )
    )
    if cluster_ids is not None:
        ranks = [f"_rank{j}" for j in range(len(names))]
        assigned = assigned.selectExpr("*", *[f"{rank} AS {name}" for rank, name in zip(_ranks(names, list(cluster_ids)), ranks)])
        pairs = [f"named_struct('cluster_id', {cid}, 'distance', {n})" for n, cid in zip(names, cluster_ids)]
        nearest_first = [f"CASE {' '.join(f'WHEN {r} = {p} THEN {pair}' for r, pair in zip(ranks, pairs))} END" for p in range(len(names))]
        assigned = assigned.selectExpr("*", f"array({', '.join(nearest_first)}) AS {NEAREST_CENTROIDS}").drop(*ranks)
    return assigned.drop("_x", *names)


def _ranks(names: Sequence[str], cluster_ids: Sequence[int]) -> list[str]:
    """SQL text of each centre's place in the nearest-first order (how many centres come before it; ties
    by cluster id): K² comparisons per row. Sorting an array of (distance, id) structs instead took most
    of the scoring time (a comparator evaluated on objects, per pair)."""

    def before(i: int, j: int) -> str:
        tie = "true" if cluster_ids[i] < cluster_ids[j] else "false"
        return f"CASE WHEN {names[i]} < {names[j]} OR ({names[i]} = {names[j]} AND {tie}) THEN 1 ELSE 0 END"

    return [" + ".join(["0", *(before(i, j) for i in range(len(names)) if i != j)]) for j in range(len(names))]


def with_segments(assigned: DataFrame, segments: Mapping[int, tuple[int, str]]) -> DataFrame:
    """Adds cluster_id and segment from raw_cluster (raw index → (cluster_id, segment name))."""
    raw_to_id = F.create_map(*[v for raw, (cid, _) in segments.items() for v in (F.lit(raw), F.lit(cid))])
    id_to_name = F.create_map(*[v for cid, name in segments.values() for v in (F.lit(cid), F.lit(name))])
    return assigned.withColumn("cluster_id", raw_to_id[F.col(RAW_CLUSTER)]).withColumn("segment", id_to_name[F.col("cluster_id")])




def assigned_visits(features: DataFrame, model: SavedModel) -> DataFrame:
    """The visit feature rows with the saved preprocessing's STANDARDISED array, their nearest centre
    (raw_cluster, distance_to_centroid, margin, nearest_centroids), cluster_id and segment: what a score's
    `session_scores` rows and its segment KPIs both read. One plan for both: Spark prunes what each does
    not use, and the driver parses and analyses the long expressions once (0.5 s less in a fresh JVM)."""
    centres = model.centres
    ids = [model.segments[raw][0] for raw in range(len(centres))]
    return with_segments(with_nearest_centre(model.standardised(features), centres, ids, F.col(STANDARDISED)), model.segments)


def score_visits(assigned: DataFrame, model: SavedModel, score_run_id: str) -> DataFrame:
    """`session_scores` rows of `assigned_visits` rows."""
    # One task per day: `session_scores` is partitioned by day, and every task would otherwise write a
    # file into every day's folder (tasks x days files, each moved and listed in the commit one by one).
    return assigned.select(
        "visit_key", "user_key", "visit_date", "cluster_id", "segment", "distance_to_centroid", "margin", NEAREST_CENTROIDS,
        F.lit(model.run_id).alias("model_run_id"), F.lit(score_run_id).alias("score_run_id"),
    ).repartition("visit_date")

