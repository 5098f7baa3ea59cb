"""k-means against the rule-based segments on the same visits: separation and split-half stability.

Computed on the sweep sample (at most `model.sweep_sample_rows` rows, already in memory), in standardised
feature units, for both methods whichever one labels the run:

* separation — per feature, the effect size eta² = between-segment sum of squares / total sum of squares
  (the share of the feature's variance the segments explain; 0 = the segments do not differ in it, 1 = the
  feature is constant within each segment), and its mean over the features;
* split stability — k-means: the adjusted Rand index between the fits on the two halves of the sample
  (`sweep`); rules: 1 by construction (thresholds learn nothing from the data);
* profile shift — how far a segment's profile moves between the two halves, in standard deviations:
  k-means, the largest distance from a centre of the half-0 fit to its nearest centre of the half-1 fit;
  rules, the largest distance between a segment's mean vector on half 0 and on half 1.

One aggregation serves both methods (rows stacked per method, grouped by method, segment and half).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from pyspark.ml.clustering import KMeansModel
from pyspark.ml.functions import vector_to_array
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from visitseg.model.preprocess import FEATURES
from visitseg.model.sweep import PREDICTION, half_flag


def compare_methods(
    sample: DataFrame, key: str, seed: int, features: Sequence[str], kmeans_model: KMeansModel,
    kmeans_halves: tuple[KMeansModel, KMeansModel], kmeans_stability: float, rules_label: Column,
) -> dict[str, Any]:
    """{"kmeans": {...}, "rules": {...}} as described in the module docstring (small: one number per feature)."""
    d = len(features)
    labelled = kmeans_model.transform(sample.select(key, FEATURES, rules_label.alias("_rules")))
    methods = F.array(
        F.struct(F.lit("kmeans").alias("method"), F.col(PREDICTION).cast("int").alias("segment")),
        F.struct(F.lit("rules").alias("method"), F.col("_rules").cast("int").alias("segment")),
    )
    x = [F.col("_x").getItem(i) for i in range(d)]
    rows = (
        labelled.select(vector_to_array(F.col(FEATURES)).alias("_x"), half_flag(key, seed).alias("half"), F.explode(methods).alias("_m"))
        .groupBy("_m.method", "_m.segment", "half")
        .agg(F.count(F.lit(1)).alias("n"), F.array(*[F.sum(v) for v in x]).alias("sum"), F.array(*[F.sum(v * v) for v in x]).alias("sq"))
        .collect()
    )
    result = {}
    for method in ("kmeans", "rules"):
        groups = [r for r in rows if r["method"] == method]
        eta = eta_squared(groups)
        if method == "kmeans":
            stability, shift = kmeans_stability, nearest_centre_shift(*[np.array(m.clusterCenters()) for m in kmeans_halves])
        else:
            stability, shift = 1.0, half_mean_shift(groups)
        result[method] = {
            "segments": len({r["segment"] for r in groups}),
            "mean_eta_squared": float(np.mean(eta)),
            "eta_squared": {f: float(e) for f, e in zip(features, eta)},
            "split_stability_ari": float(stability),
            "profile_shift": float(shift),
        }
    return result


def eta_squared(groups: list) -> np.ndarray:
    """Per feature, between-segment / total sum of squares, from per-(segment, half) counts, sums and squares."""
    segments = sorted({r["segment"] for r in groups})
    n = np.array([sum(r["n"] for r in groups if r["segment"] == s) for s in segments], dtype=float)
    sums = np.array([np.sum([r["sum"] for r in groups if r["segment"] == s], axis=0) for s in segments])
    squares = np.sum([r["sq"] for r in groups], axis=0)
    mean = sums.sum(axis=0) / n.sum()
    total = squares - n.sum() * mean**2
    between = (n[:, None] * (sums / n[:, None] - mean) ** 2).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, between / total, 0.0)


def half_mean_shift(groups: list) -> float:
    """The largest distance between a segment's mean vector on half 0 and on half 1 (segments in both)."""
    means = {(r["segment"], r["half"]): np.array(r["sum"]) / r["n"] for r in groups}
    shifts = [np.linalg.norm(means[(s, 0)] - means[(s, 1)]) for s, h in means if h == 0 and (s, 1) in means]
    return float(max(shifts, default=0.0))


def nearest_centre_shift(a: np.ndarray, b: np.ndarray) -> float:
    """The largest distance from a centre of `a` to the nearest centre of `b`."""
    return float(np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=2)).min(axis=1).max())
