"""Clustering diagnostics computed on Spark: inertia, Davies–Bouldin, Calinski–Harabasz, cluster shares.

Spark ML has silhouette only. These come from per-cluster aggregates — count, vector sum, sum of squared
norms, sum of distances to the centre — gathered in ONE aggregation over the assigned rows; only K small
vectors reach the driver. Definitions follow scikit-learn (centroids are the means of each cluster's rows):

* inertia = Σ‖x − μ_c‖² = Σ_c (Q_c − n_c‖μ_c‖²)
* Calinski–Harabasz = [B / (k − 1)] / [W / (n − k)], B = Σ_c n_c‖μ_c − μ‖², W = inertia
* Davies–Bouldin = mean_i max_{j≠i} (s_i + s_j) / ‖μ_i − μ_j‖, s_c = mean ‖x − μ_c‖ over the cluster

s_c needs the centroids before the pass; the pass measures distances to the model's centres, which equal
the cluster means when k-means has converged. When they differ by more than `CENTRE_TOLERANCE` (k-means
stopped at maxIter), a second aggregation measures the distances to the exact means.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from pyspark.ml.evaluation import ClusteringEvaluator
from pyspark.ml.functions import vector_to_array
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

CENTRE_TOLERANCE = 1e-9
SILHOUETTE_DISTANCE = "squaredEuclidean"


@dataclass(frozen=True)
class ClusterStats:
    sizes: np.ndarray  # (k,)
    means: np.ndarray  # (k, d) cluster means
    inertia: float
    davies_bouldin: float
    calinski_harabasz: float

    @property
    def shares(self) -> np.ndarray:
        return self.sizes / self.sizes.sum()


def squared_distance(vector: Column, centre: Sequence[float]) -> Column:
    """‖vector − centre‖² for an array column and a constant centre, with built-in functions only."""
    diffs = [(vector.getItem(i) - F.lit(float(c))) ** 2 for i, c in enumerate(centre)]
    total = diffs[0]
    for d in diffs[1:]:
        total = total + d
    return total


def cluster_stats(predictions: DataFrame, features_col: str, prediction_col: str, centres: np.ndarray) -> ClusterStats:
    """Aggregates and metrics of a labelled data set; `centres` are the model's centres (k, d)."""
    k, d = centres.shape
    labelled = predictions.select(F.col(prediction_col).alias("cluster"), vector_to_array(F.col(features_col)).alias("_x"))
    distance_to_model = F.sqrt(
        F.coalesce(*[F.when(F.col("cluster") == c, squared_distance(F.col("_x"), centres[c])) for c in range(k)])
    )
    rows = (
        labelled.groupBy("cluster")
        .agg(
            F.count(F.lit(1)).alias("n"),
            F.array(*[F.sum(F.col("_x").getItem(i)) for i in range(d)]).alias("sum"),
            F.sum(F.aggregate("_x", F.lit(0.0), lambda acc, v: acc + v * v)).alias("sq"),
            F.sum(distance_to_model).alias("dist"),
        )
        .collect()
    )
    sizes = np.zeros(k)
    sums = np.zeros((k, d))
    squares = np.zeros(k)
    distances = np.zeros(k)
    for r in rows:
        c = int(r["cluster"])
        sizes[c], sums[c], squares[c], distances[c] = r["n"], r["sum"], r["sq"], r["dist"]
    present = sizes > 0
    means = np.divide(sums, sizes[:, None], out=np.zeros_like(sums), where=present[:, None])
    if np.abs(means[present] - centres[present]).max(initial=0.0) > CENTRE_TOLERANCE:
        distances = _distances_to(predictions, features_col, prediction_col, means)
    return _metrics(sizes, means, squares, distances)


def _distances_to(predictions: DataFrame, features_col: str, prediction_col: str, means: np.ndarray) -> np.ndarray:
    k = means.shape[0]
    x = vector_to_array(F.col(features_col))
    distance = F.sqrt(F.coalesce(*[F.when(F.col(prediction_col) == c, squared_distance(x, means[c])) for c in range(k)]))
    rows = predictions.groupBy(prediction_col).agg(F.sum(distance).alias("dist")).collect()
    distances = np.zeros(k)
    for r in rows:
        distances[int(r[prediction_col])] = r["dist"]
    return distances


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
    return ClusterStats(sizes, means, within, db, float(ch))


def silhouette(predictions: DataFrame, features_col: str, prediction_col: str) -> float:
    """Spark's silhouette with squared Euclidean distance (linear in rows, computed from cluster aggregates)."""
    evaluator = ClusteringEvaluator(
        featuresCol=features_col, predictionCol=prediction_col, metricName="silhouette", distanceMeasure=SILHOUETTE_DISTANCE
    )
    return float(evaluator.evaluate(predictions))
