"""The K sweep: Spark ML KMeans for each K, its four diagnostics, and the rule that picks K.

Automatic K (unless `model.k_final` is set), among the Ks whose smallest cluster holds at least
`model.min_cluster_share` of the rows (all Ks if none does):
  1. each metric votes for its best K — silhouette (highest), Davies–Bouldin (lowest), Calinski–Harabasz
     (highest), every K tied for best getting the vote; the K with the most votes wins;
  2. a tie in votes goes to the best combined rank (ranks summed, ties averaged);
  3. then to the K nearest the inertia elbow (the K farthest below the straight line from the first to
     the last point of the normalised inertia curve), then to the smaller K.
Votes rather than rank sums first: Calinski–Harabasz tends to keep growing with K on large, well-separated
data, and a pure rank sum lets it outvote silhouette and Davies–Bouldin when both agree.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from pyspark import StorageLevel
from pyspark.ml.clustering import KMeans, KMeansModel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from visitseg.config import ModelConfig
from visitseg.metrics import SILHOUETTE_DISTANCE, cluster_stats, silhouette
from visitseg.preprocess import FEATURES

log = logging.getLogger(__name__)

PREDICTION = "prediction"
SAMPLE_UNIT = 2**62


@dataclass(frozen=True)
class KResult:
    k: int
    inertia: float
    silhouette: float
    davies_bouldin: float
    calinski_harabasz: float
    min_cluster_share: float
    max_cluster_share: float
    seconds: float


def kmeans(cfg: ModelConfig, k: int, seed: int) -> KMeans:
    return KMeans(
        k=k, seed=seed, maxIter=cfg.max_iter, tol=cfg.tol, initMode="k-means||", initSteps=cfg.init_steps,
        solver=cfg.solver, featuresCol=FEATURES, predictionCol=PREDICTION,
    )


def deterministic_sample(df: DataFrame, key: str, rows: int, total: int, seed: int) -> DataFrame:
    """About `rows` rows chosen by a hash of the key and seed: the same rows whatever the partitioning."""
    if total <= rows:
        return df
    threshold = int(SAMPLE_UNIT * rows / total)
    return df.filter(F.pmod(F.xxhash64(F.col(key), F.lit(seed)), F.lit(SAMPLE_UNIT)) < F.lit(threshold))


def sweep(data: DataFrame, cfg: ModelConfig, seed: int, k_max: int) -> tuple[list[KResult], dict[int, KMeansModel]]:
    """Fit every K in k_min..k_max on `data` (persisted by the caller), then diagnose all of them together.

    Each K is fitted `model.n_init` times with seeds seed, seed+1, …, keeping the lowest training cost:
    k-means|| now and then settles in a poor local optimum, which can change the chosen K.
    The sweep data is small, so each k-means iteration is a short job whose time is mostly scheduling:
    `model.sweep_parallelism` fits run at once from driver threads (as Spark ML's CrossValidator does
    with `parallelism`) to keep both cores busy. Seeds are fixed per fit, so results do not depend on it.
    """
    def fit(job: tuple[int, int]) -> tuple[KMeansModel, float]:
        k, attempt = job
        started = time.perf_counter()
        model = kmeans(cfg, k, seed + attempt).fit(data)
        elapsed = time.perf_counter() - started
        log.info("sweep k=%d seed %d: %d iterations, training cost %.1f, %.1fs", k, seed + attempt, model.summary.numIter, model.summary.trainingCost, elapsed)
        return model, elapsed

    ks = list(range(cfg.k_min, k_max + 1))
    jobs = [(k, attempt) for k in ks for attempt in range(cfg.n_init)]
    with ThreadPoolExecutor(cfg.sweep_parallelism) as pool:
        runs = dict(zip(jobs, pool.map(fit, jobs)))
        models = {k: min((runs[(k, a)][0] for a in range(cfg.n_init)), key=lambda m: m.summary.trainingCost) for k in ks}
        seconds = {k: round(sum(runs[(k, a)][1] for a in range(cfg.n_init)), 3) for k in ks}
        labelled = data.select(FEATURES)
        for k, model in models.items():
            labelled = model.transform(labelled).withColumnRenamed(PREDICTION, f"{PREDICTION}_{k}")
        labelled = labelled.persist(StorageLevel.MEMORY_AND_DISK)
        try:
            d = len(models[ks[0]].clusterCenters()[0])
            stats = cluster_stats(labelled, FEATURES, d, {k: f"{PREDICTION}_{k}" for k in ks})
            silhouettes = dict(zip(ks, pool.map(lambda k: silhouette(labelled, FEATURES, f"{PREDICTION}_{k}"), ks)))
        finally:
            labelled.unpersist()
    results = []
    for k in models:
        result = KResult(
            k=k,
            inertia=stats[k].inertia,
            silhouette=silhouettes[k],
            davies_bouldin=stats[k].davies_bouldin,
            calinski_harabasz=stats[k].calinski_harabasz,
            min_cluster_share=float(stats[k].shares.min()),
            max_cluster_share=float(stats[k].shares.max()),
            seconds=seconds[k],
        )
        log.info(
            "sweep k=%d: inertia %.1f, silhouette (%s) %.4f, Davies-Bouldin %.4f, Calinski-Harabasz %.1f, cluster shares %.3f..%.3f",
            k, result.inertia, SILHOUETTE_DISTANCE, result.silhouette, result.davies_bouldin, result.calinski_harabasz,
            result.min_cluster_share, result.max_cluster_share,
        )
        results.append(result)
    return results, models


def _ranks(values: list[float], higher_is_better: bool) -> np.ndarray:
    """1 = best; ties share the mean of their ranks."""
    v = -np.asarray(values) if higher_is_better else np.asarray(values)
    ranks = np.empty(len(v))
    for i, value in enumerate(v):
        ranks[i] = (v < value).sum() + ((v == value).sum() + 1) / 2
    return ranks


def elbow_k(results: list[KResult]) -> int:
    ks = np.array([r.k for r in results], dtype=float)
    inertia = np.array([r.inertia for r in results])
    if len(ks) < 3 or inertia[0] == inertia[-1]:
        return int(ks[0])
    x = (ks - ks[0]) / (ks[-1] - ks[0])
    y = (inertia - inertia[-1]) / (inertia[0] - inertia[-1])
    below_line = (1 - x) - y
    return int(ks[int(np.argmax(below_line))])


def choose_k(results: list[KResult], cfg: ModelConfig) -> tuple[int, str]:
    """The chosen K and a sentence that says why."""
    if cfg.k_final:
        return cfg.k_final, f"k={cfg.k_final} set by model.k_final"
    eligible = [r for r in results if r.min_cluster_share >= cfg.min_cluster_share]
    scope = f"among Ks whose smallest cluster holds >= {cfg.min_cluster_share:.1%} of rows"
    if not eligible:
        eligible = results
        scope = f"no K kept every cluster >= {cfg.min_cluster_share:.1%} of rows, so among all Ks"
    sil = _ranks([r.silhouette for r in eligible], higher_is_better=True)
    db = _ranks([r.davies_bouldin for r in eligible], higher_is_better=False)
    ch = _ranks([r.calinski_harabasz for r in eligible], higher_is_better=True)
    votes = (sil == sil.min()).astype(int) + (db == db.min()).astype(int) + (ch == ch.min()).astype(int)
    combined = sil + db + ch
    elbow = elbow_k(results)
    best = min(range(len(eligible)), key=lambda i: (-votes[i], combined[i], abs(eligible[i].k - elbow), eligible[i].k))
    r = eligible[best]
    reason = (
        f"k={r.k}: best for {votes[best]} of 3 metrics, combined rank {combined[best]:g}, {scope} "
        f"(silhouette {r.silhouette:.4f} rank {sil[best]:g}, Davies-Bouldin {r.davies_bouldin:.4f} rank {db[best]:g}, "
        f"Calinski-Harabasz {r.calinski_harabasz:.1f} rank {ch[best]:g}); inertia elbow at k={elbow}"
    )
    return r.k, reason
