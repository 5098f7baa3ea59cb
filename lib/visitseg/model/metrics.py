"""Clustering diagnostics computed on Spark: inertia, Davies–Bouldin, Calinski–Harabasz, cluster shares.

Spark ML has silhouette only, as two jobs per labelling. These — and silhouette — come from per-cluster aggregates — count, vector sum, sum of squared
norms, sum of distances to the cluster mean — and only K small vectors per labelling reach the driver.
Definitions follow scikit-learn (centroids are the means of each cluster's rows):

* inertia = Σ‖x − μ_c‖² = Σ_c (Q_c − n_c‖μ_c‖²)
* Calinski–Harabasz = [B / (k − 1)] / [W / (n − k)], B = Σ_c n_c‖μ_c − μ‖², W = inertia
* Davies–Bouldin = mean_i max_{j≠i} (s_i + s_j) / ‖μ_i − μ_j‖, s_c = mean ‖x − μ_c‖ over the cluster

Several labellings of the same rows (one per K of a sweep) are measured together: the rows are stacked
once per labelling as (k, cluster, x) and grouped by (k, cluster). Two aggregations serve the whole sweep —
counts and sums first, then the distances to the exact means (s_c needs the means before the pass) —
instead of two per K: the sweep data is small, and per-job overhead, not rows, dominated its time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
from pyspark import StorageLevel
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from visitseg.core.spark import local_frame, persisted
from visitseg.core.sql import double, sql_sum

SILHOUETTE_DISTANCE = "squaredEuclidean"


@dataclass(frozen=True)
class ClusterStats:
    sizes: np.ndarray  # (k,)
    means: np.ndarray  # (k, d) cluster means
    squares: np.ndarray  # (k,) sum of the squared norms of each cluster's rows
    inertia: float
    davies_bouldin: float
    calinski_harabasz: float

    @property
    def shares(self) -> np.ndarray:
        return self.sizes / self.sizes.sum()


def cluster_stats(labelled: DataFrame, features_col: str, d: int, prediction_cols: Mapping[int, str]) -> dict[int, ClusterStats]:
    """Metrics of each labelling of the same rows ({k: column holding that labelling's cluster ids});
    `features_col` holds vectors of `d` values."""
    labellings = F.array(*[F.struct(F.lit(k).alias("k"), F.col(c).cast("int").alias("cluster")) for k, c in prediction_cols.items()])
    stacked = labelled.select(vector_to_array(F.col(features_col)).alias("_x"), F.explode(labellings).alias("_l")).select(
        "_l.k", "_l.cluster", "_x"
    )
    sums = (
        stacked.groupBy("k", "cluster")
        .agg(
            F.count(F.lit(1)).alias("n"),
            F.expr(f"array({', '.join(f'sum(_x[{i}])' for i in range(d))})").alias("sum"),
            F.expr(f"sum({sql_sum(f'_x[{i}] * _x[{i}]' for i in range(d))})").alias("sq"),
        )
        .collect()
    )
    mean_table = local_frame(
        labelled.sparkSession,
        [(r["k"], r["cluster"], [s / r["n"] for s in r["sum"]]) for r in sums],
        T.StructType([T.StructField("k", T.IntegerType()), T.StructField("cluster", T.IntegerType()), T.StructField("_m", T.ArrayType(T.DoubleType()))])
    )
    distance = F.expr(f"sqrt({sql_sum(f'POWER(_x[{i}] - _m[{i}], 2)' for i in range(d))})")
    distances = {
        (r["k"], r["cluster"]): r["dist"]
        for r in stacked.join(F.broadcast(mean_table), ["k", "cluster"]).groupBy("k", "cluster").agg(F.sum(distance).alias("dist")).collect()
    }
    stats = {}
    for k in prediction_cols:
        sizes, sum_x, squares, dist = np.zeros(k), np.zeros((k, d)), np.zeros(k), np.zeros(k)  # empty clusters stay 0
        for r in (r for r in sums if r["k"] == k):
            c = r["cluster"]
            sizes[c], sum_x[c], squares[c], dist[c] = r["n"], r["sum"], r["sq"], distances[(k, c)]
        present = sizes > 0
        cluster_means = np.divide(sum_x, sizes[:, None], out=np.zeros_like(sum_x), where=present[:, None])
        stats[k] = _metrics(sizes, cluster_means, squares, dist)
    return stats


def _metrics(sizes: np.ndarray, means: np.ndarray, squares: np.ndarray, distances: np.ndarray) -> ClusterStats:
    present = sizes > 0
    n, k = sizes.sum(), int(present.sum())
    within = float(np.sum(squares[present] - sizes[present] * np.sum(means[present] ** 2, axis=1)))
    within = max(within, 0.0)  # guards the subtraction's rounding when clusters are points
    overall = (sizes[present, None] * means[present]).sum(axis=0) / n
    between = float(np.sum(sizes[present] * np.sum((means[present] - overall) ** 2, axis=1)))
    ch = 1.0 if within == 0.0 else between * (n - k) / (within * (k - 1))
    scatter = distances[present] / sizes[present]
    centres = means[present]
    gaps = np.sqrt(((centres[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = (scatter[:, None] + scatter[None, :]) / gaps
    ratios[~np.isfinite(ratios)] = 0.0  # sklearn's convention for coincident centres
    np.fill_diagonal(ratios, 0.0)
    db = float(np.mean(ratios.max(axis=1)))
    return ClusterStats(sizes, means, squares, within, db, float(ch))


def silhouettes(labelled: DataFrame, features_col: str, stats: Mapping[int, ClusterStats], prediction_cols: Mapping[int, str]) -> dict[int, float]:
    """The silhouette of each labelling with squared Euclidean distance — Spark's ClusteringEvaluator
    definition — for every labelling in one pass, from the per-cluster aggregates of `cluster_stats`.

    The mean squared distance from x to the rows of cluster C is ‖x‖² − 2·x·μ_C + Q_C / n_C (μ the mean,
    Q the sum of squared norms), so each row needs only its distances to the K means, as column
    expressions. For the row's own cluster the mean excludes the row itself (× n / (n − 1)); a row alone in
    its cluster scores 0; s = 1 − a/b when a < b, b/a − 1 when a > b. (ClusteringEvaluator computes the
    same from the same aggregates, but as two jobs per K; the sweep measures every K together.)"""
    d = len(next(iter(stats.values())).means[0])
    norm = sql_sum(f"_x[{i}] * _x[{i}]" for i in range(d))
    present = {k: [c for c in range(k) if stats[k].sizes[c] > 0] for k in prediction_cols}

    def mean_distance(k: int, c: int) -> str:
        cross = sql_sum(f"_x[{i}] * {double(stats[k].means[c][i])}" for i in range(d))
        return f"({norm}) - 2 * ({cross}) + {double(stats[k].squares[c] / stats[k].sizes[c])}"

    # Step 1, persisted so the optimiser cannot inline it into step 2 (that repeats every distance in every
    # branch and the expression outgrows code generation): each row's mean distance to each cluster mean.
    distances = labelled.select(
        *[F.col(column).cast("int").alias(f"_l{k}") for k, column in prediction_cols.items()],
        vector_to_array(F.col(features_col)).alias("_x"),
    ).select(
        *[f"_l{k}" for k in prediction_cols],
        *[F.expr(mean_distance(k, c)).alias(f"_d{k}_{c}") for k in prediction_cols for c in present[k]],
    )
    with persisted(distances, StorageLevel.MEMORY_AND_DISK) as distances:
        scores = []
        for k in prediction_cols:
            own_size = f"element_at(array({', '.join(double(n) for n in stats[k].sizes)}), _l{k} + 1)"
            own = f"(coalesce({', '.join(f'IF(_l{k} = {c}, _d{k}_{c}, NULL)' for c in present[k])}) * {own_size} / ({own_size} - 1))"
            nearest_other = f"(array_min(array({', '.join(f'IF(_l{k} != {c}, _d{k}_{c}, NULL)' for c in present[k])})))"
            score = (
                f"CASE WHEN {own_size} = 1 THEN 0D WHEN {own} < {nearest_other} THEN 1 - {own} / {nearest_other} "
                f"WHEN {own} > {nearest_other} THEN {nearest_other} / {own} - 1 ELSE 0D END"
            )
            scores.append(F.expr(f"avg({score})").alias(str(k)))
        row = distances.agg(*scores).first()
    return {k: float(row[str(k)]) for k in prediction_cols}


def contingency_tables(labelled: DataFrame, pairs: Mapping[int, tuple[str, str]]) -> dict[int, np.ndarray]:
    """{k: counts of rows by (label in the first column, label in the second)} for each pair of labelling
    columns, from one aggregation over the stacked pairs (at most k² small rows per pair reach the driver)."""
    stacked = F.explode(F.array(*[F.struct(F.lit(k).alias("k"), F.col(a).cast("int").alias("a"), F.col(b).cast("int").alias("b")) for k, (a, b) in pairs.items()]))
    counts = labelled.select(stacked.alias("_p")).groupBy("_p.k", "_p.a", "_p.b").count().collect()
    tables = {}
    for k in pairs:
        rows = [r for r in counts if r["k"] == k]
        size = 1 + max(max(r["a"], r["b"]) for r in rows)
        table = np.zeros((size, size))
        for r in rows:
            table[r["a"], r["b"]] = r["count"]
        tables[k] = table
    return tables


def adjusted_rand_index(table: np.ndarray) -> float:
    """Hubert and Arabie's adjusted Rand index from a contingency table (scikit-learn's definition,
    including 1.0 when both labellings are a single cluster)."""
    def pairs(counts: np.ndarray) -> float:
        return float((counts * (counts - 1) / 2).sum())

    n = table.sum()
    index, rows, cols = pairs(table), pairs(table.sum(axis=1)), pairs(table.sum(axis=0))
    expected = rows * cols / (n * (n - 1) / 2) if n > 1 else 0.0
    maximum = (rows + cols) / 2
    if maximum == expected:
        return 1.0
    return float((index - expected) / (maximum - expected))

