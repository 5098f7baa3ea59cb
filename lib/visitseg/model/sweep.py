"""The K sweep: Spark ML KMeans for each K, its diagnostics, split-half stability, and the rule that picks K.

Fits that depend on the data and seed only. Spark's k-means|| draws its initial centres per partition
(the partition index seeds each draw) and reads rows in partition order, so the same rows laid out in
other partitions — another core count, a cluster instead of a laptop — give other centres. The sweep
therefore runs on one fixed layout: the deterministic sample (chosen by a hash of the key) in a single
partition, sorted by key (`fixed_layout`). One partition also means each of the sweep's many short
jobs is one task. The final model is the sweep's fit at the chosen K; every row is then assigned to its
nearest centre, so no further fit can land in another optimum.

Stability per K: the sample is split in two disjoint halves by another hash of the key; K is fitted on
each half, both fits label the whole sample, and the adjusted Rand index of the two labellings is the
K's stability (1 = the same partition of the visits, ~0 = chance agreement).

Automatic K (unless `model.k_final` is set). First the eligible Ks, those that meet every condition:
  * largest cluster <= `model.max_cluster_share` (one segment holding most visits tells an analyst little),
  * smallest cluster >= `model.min_cluster_share`,
  * stability >= `model.min_stability`.
When no K meets them all, conditions are dropped in this order until some K does: stability, smallest
cluster, largest cluster; the reason names what was dropped (a sign of weak structure). Among the
eligible Ks:
  1. each metric votes for its best K — silhouette (highest), Davies–Bouldin (lowest), Calinski–Harabasz
     (highest), every K tied for best getting the vote; the K with the most votes wins;
  2. a tie in votes goes to the best combined rank of the three metrics and stability (ties averaged);
  3. then to the K nearest the inertia elbow, then to the smaller K.
Votes rather than rank sums first: Calinski–Harabasz tends to keep growing with K on large, well-separated
data, and a pure rank sum lets it outvote silhouette and Davies–Bouldin when both agree.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from pyspark.ml.clustering import KMeans, KMeansModel
from pyspark.ml.functions import vector_to_array
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from visitseg.core.config import ModelConfig
from visitseg.model.metrics import SILHOUETTE_DISTANCE, adjusted_rand_index, cluster_stats, contingency_table, silhouette
from visitseg.model.preprocess import FEATURES
from visitseg.core.spark import bounded_to_pandas

log = logging.getLogger(__name__)

PREDICTION = "prediction"
SAMPLE_UNIT = 2**62
POOR_OPTIMUM_RATIO = 0.25
WEAK_SILHOUETTE = 0.25  # below this, Kaufman & Rousseeuw's "no substantial structure"
HALF_SALT = 7_919  # the halves' hash differs from the sample's (seed + this)
ALL = -1  # the whole sweep sample, as opposed to half 0 or half 1


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
    stability: float = 1.0  # adjusted Rand index between the fits on the two halves of the sample


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


def fixed_layout(df: DataFrame, key: str) -> DataFrame:
    """The rows in one partition, sorted by the (unique) key: the same layout on any cluster."""
    return df.repartition(1).sortWithinPartitions(key)


def half_flag(key: str, seed: int) -> Column:
    """0 or 1: the half of the sample a row belongs to, by a hash of its key."""
    return F.pmod(F.xxhash64(F.col(key), F.lit(seed + HALF_SALT)), F.lit(2)).cast("int")


def half(df: DataFrame, key: str, seed: int, which: int) -> DataFrame:
    """One of two disjoint halves (which = 0 or 1) by a hash of the key; keeps the order of `df`."""
    return df.filter(half_flag(key, seed) == which)


@dataclass(frozen=True)
class Sweep:
    results: list[KResult]
    models: dict[int, KMeansModel]  # per K, the best fit on the whole sweep sample
    half_models: dict[int, tuple[KMeansModel, KMeansModel]]  # per K, the fits on half 0 and half 1


def sweep(data: DataFrame, key: str, cfg: ModelConfig, seed: int, k_max: int) -> Sweep:
    """Fit every K in k_min..k_max on `data` (persisted, in `fixed_layout`, by the caller), fit each K on
    both halves for its stability, then diagnose all of them together.

    Each K is fitted `model.n_init` times with seeds seed, seed+1, …, keeping the lowest training cost:
    k-means|| now and then settles in a poor local optimum, which can change the chosen K. A K whose cost
    then still looks like one (`poor_optima`) is fitted with `model.refit_seeds` more seeds.
    The sweep data is small, so each k-means iteration is a short job whose time is mostly scheduling:
    `model.sweep_parallelism` fits run at once from driver threads (as Spark ML's CrossValidator does
    with `parallelism`) to keep the cores busy. Seeds are fixed per fit, so results do not depend on it.
    """
    parts = {ALL: data, 0: half(data, key, seed, 0), 1: half(data, key, seed, 1)}

    def fit(job: tuple[int, int, int]) -> tuple[KMeansModel, float]:
        k, attempt, part = job
        started = time.perf_counter()
        model = kmeans(cfg, k, seed + attempt).fit(parts[part])
        elapsed = time.perf_counter() - started
        log.info(
            "sweep k=%d seed %d on %s: %d iterations, training cost %.1f, %.1fs",
            k, seed + attempt, "all rows" if part == ALL else f"half {part}", model.summary.numIter, model.summary.trainingCost, elapsed,
        )
        return model, elapsed

    ks = list(range(cfg.k_min, k_max + 1))
    jobs = [(k, attempt, ALL) for k in ks for attempt in range(cfg.n_init)] + [(k, 0, part) for k in ks for part in (0, 1)]

    def best_fits(runs: dict[tuple[int, int, int], tuple[KMeansModel, float]]) -> dict[int, KMeansModel]:
        return {k: min((m for (kk, _, part), (m, _) in runs.items() if kk == k and part == ALL), key=lambda m: m.summary.trainingCost) for k in ks}

    with ThreadPoolExecutor(cfg.sweep_parallelism) as pool:
        pending = {job: pool.submit(fit, job) for job in jobs}
        # The refits need the whole-sample fits only, which head the queue: they are queued as soon as
        # those are done, behind the half fits, rather than after them (a tail of ~4 s of fewer fits
        # than cores on a 50,000-row sample). The fits and their seeds are the same either way.
        whole_sample = {job: pending[job].result() for job in jobs if job[2] == ALL}
        suspects = poor_optima({k: m.summary.trainingCost for k, m in best_fits(whole_sample).items()})
        if suspects and cfg.refit_seeds:
            log.warning("sweep: k=%s look like poor local optima (inertia barely falls to them, then falls steeply); refitting each with %d more seeds",
                        ",".join(map(str, suspects)), cfg.refit_seeds)
            pending.update({job: pool.submit(fit, job) for job in [(k, cfg.n_init + a, ALL) for k in suspects for a in range(cfg.refit_seeds)]})
        runs = {job: future.result() for job, future in pending.items()}
        models = best_fits(runs)
        seconds = {k: round(sum(elapsed for (kk, _, _), (_, elapsed) in runs.items() if kk == k), 3) for k in ks}
    halves = {k: (runs[(k, 0, 0)][0], runs[(k, 0, 1)][0]) for k in ks}
    return Sweep(diagnose(data, models, halves, seconds), models, halves)


def diagnose(data: DataFrame, models: dict[int, KMeansModel], halves: dict[int, tuple[KMeansModel, KMeansModel]], seconds: dict[int, float]) -> list[KResult]:
    """Every K's diagnostics: all fits label the sample in one frame (Spark ML's own `transform`, so a row's
    label is the one the model gives it everywhere else), which comes to the driver once; the metrics are
    numpy passes over it (`metrics`). The sample is bounded by `model.sweep_sample_rows`."""
    ks = list(models)
    labelled = data.select(FEATURES)
    labellings = {(k, ALL): model for k, model in models.items()} | {(k, part): halves[k][part] for k in ks for part in (0, 1)}
    for (k, part), model in labellings.items():
        labelled = model.transform(labelled).withColumnRenamed(PREDICTION, _label_col(k, part))
    d = len(models[ks[0]].clusterCenters()[0])
    local = bounded_to_pandas(labelled.select(
        *[vector_to_array(F.col(FEATURES))[i].alias(f"_x{i}") for i in range(d)],
        *[F.col(_label_col(k, part)).cast("int").alias(_label_col(k, part)) for k, part in labellings],
    ))
    x = local[[f"_x{i}" for i in range(d)]].to_numpy(dtype=float)
    results = []
    for k in ks:
        labels = local[_label_col(k, ALL)].to_numpy()
        stats = cluster_stats(x, labels, k)
        result = KResult(
            k=k,
            inertia=stats.inertia,
            silhouette=silhouette(x, labels, stats),
            davies_bouldin=stats.davies_bouldin,
            calinski_harabasz=stats.calinski_harabasz,
            min_cluster_share=float(stats.shares.min()),
            max_cluster_share=float(stats.shares.max()),
            seconds=seconds[k],
            stability=adjusted_rand_index(contingency_table(local[_label_col(k, 0)].to_numpy(), local[_label_col(k, 1)].to_numpy())),
        )
        log.info(
            "sweep k=%d: inertia %.1f, silhouette (%s) %.4f, Davies-Bouldin %.4f, Calinski-Harabasz %.1f, "
            "cluster shares %.3f..%.3f, stability (split-half ARI) %.3f",
            k, result.inertia, SILHOUETTE_DISTANCE, result.silhouette, result.davies_bouldin, result.calinski_harabasz,
            result.min_cluster_share, result.max_cluster_share, result.stability,
        )
        results.append(result)
    return results


def poor_optima(costs: dict[int, float]) -> list[int]:
    """The Ks whose fit looks like a poor local optimum: the training cost barely falls from K-1 to K
    (less than POOR_OPTIMUM_RATIO of the fall from K to K+1). A good fit's cost curve falls less and
    less as K grows; a K stuck in a poor optimum sits almost level with K-1 and far above K+1 (seen: 77,950
    at K=4, 76,044 at K=5, 22,626 at K=6 on 2.7M planted events). The first and last K have no two
    neighbours and are never suspects."""
    ks = sorted(costs)
    return [
        k for before, k, after in zip(ks, ks[1:], ks[2:])
        if costs[k] - costs[after] > 0 and costs[before] - costs[k] < POOR_OPTIMUM_RATIO * (costs[k] - costs[after])
    ]


def _label_col(k: int, part: int) -> str:
    return f"{PREDICTION}_{k}" if part == ALL else f"{PREDICTION}_{k}_half{part}"


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
    conditions = [
        (f"largest cluster <= {cfg.max_cluster_share:.1%}", lambda r: r.max_cluster_share <= cfg.max_cluster_share),
        (f"smallest cluster >= {cfg.min_cluster_share:.1%}", lambda r: r.min_cluster_share >= cfg.min_cluster_share),
        (f"stability >= {cfg.min_stability:g}", lambda r: r.stability >= cfg.min_stability),
    ]
    kept, eligible = len(conditions), results
    while kept:
        eligible = [r for r in results if all(holds(r) for _, holds in conditions[:kept])]
        if eligible:
            break
        kept -= 1
    if not eligible:
        eligible = results
    scope = "among Ks with " + ", ".join(name for name, _ in conditions[:kept]) if kept else "among all Ks"
    if kept < len(conditions):
        scope += f" (no K met every condition, so dropped: {', '.join(name for name, _ in conditions[kept:])})"
    sil = _ranks([r.silhouette for r in eligible], higher_is_better=True)
    db = _ranks([r.davies_bouldin for r in eligible], higher_is_better=False)
    ch = _ranks([r.calinski_harabasz for r in eligible], higher_is_better=True)
    stab = _ranks([r.stability for r in eligible], higher_is_better=True)
    votes = (sil == sil.min()).astype(int) + (db == db.min()).astype(int) + (ch == ch.min()).astype(int)
    combined = sil + db + ch + stab
    elbow = elbow_k(results)
    best = min(range(len(eligible)), key=lambda i: (-votes[i], combined[i], abs(eligible[i].k - elbow), eligible[i].k))
    r = eligible[best]
    reason = (
        f"k={r.k}: best for {votes[best]} of 3 metrics, combined rank {combined[best]:g}, {scope} "
        f"(silhouette {r.silhouette:.4f} rank {sil[best]:g}, Davies-Bouldin {r.davies_bouldin:.4f} rank {db[best]:g}, "
        f"Calinski-Harabasz {r.calinski_harabasz:.1f} rank {ch[best]:g}, stability {r.stability:.3f} rank {stab[best]:g}); "
        f"inertia elbow at k={elbow}"
    )
    return r.k, reason


def weak_structure(result: KResult, cfg: ModelConfig) -> str:
    """A sentence saying why the chosen K's clusters are weak, or "" when they are not."""
    problems = []
    if result.silhouette < WEAK_SILHOUETTE:
        problems.append(f"silhouette {result.silhouette:.3f} < {WEAK_SILHOUETTE}")
    if result.stability < cfg.min_stability:
        problems.append(f"split-half stability {result.stability:.3f} < model.min_stability {cfg.min_stability:g}")
    if not problems:
        return ""
    return (
        f"weak cluster structure at k={result.k} ({'; '.join(problems)}): the segments are not well separated or "
        f"change with the sample; read them as a rough partition, or fix K with model.k_final"
    )
