"""Fitting: feature table → preprocessing → K sweep → final model → the run's output DataFrames.

Nothing here writes tables (`visitseg.pipeline` does, with the schemas of `visitseg.tables`); everything
returned is either a lazy DataFrame or a small driver-side result (K rows of centres, one row per K of
diagnostics). Assigning rows to the fitted centres is `visitseg.scoring`, shared with `visitseg score`.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

import numpy as np
from pyspark import StorageLevel
from pyspark.ml import PipelineModel
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from visitseg.config import DEFAULT_FEATURES, Config
from visitseg.daily import STANDARDIZED, cluster_profiles, column_measures, column_totals, daily_rows, numeric_columns, sums_by_cluster_and_day
from visitseg.errors import EmptyInputError
from visitseg.features import FeatureTable
from visitseg.grains import GRAINS, Grain
from visitseg.compare import compare_methods
from visitseg.lineage import Previous, centres_in_previous_space, labels_agreement, lineage_frame, lineage_rows, match
from visitseg.naming import Profile, segment_names, stable_order
from visitseg.preprocess import FEATURES, fit_preprocessing, usable_features
from visitseg.rules import RULE_SEGMENTS, rule_segment
from visitseg.scoring import RAW_CLUSTER, with_nearest_centre, with_segments
from visitseg.spark import StageLog, local_frame, persisted
from visitseg.tables import centers_schema, diagnostics_frame, kpis_frame, mix_frame
from visitseg.sweep import KResult, choose_k, deterministic_sample, fixed_layout, half, kmeans, sweep, weak_structure

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Segmentation:
    method: str  # kmeans | rules
    k: int  # segments written (the chosen K, or the non-empty rule segments)
    reason: str
    weak_structure: str  # "" when the chosen K's clusters are well separated and stable (always "" for rules)
    comparison: dict | None  # k-means vs rules on the sweep sample (`compare`); None at user grain
    results: list[KResult]
    sweep_rows: int
    sampled: bool
    features: tuple[str, ...]
    dropped_features: tuple[str, ...]
    centres: list[dict]  # one dict per cluster, cluster_id order (also the cluster_centers rows)
    labels: DataFrame
    mix: DataFrame  # cluster_mix_daily
    kpis: DataFrame  # segment_kpis_daily
    centers: DataFrame
    diagnostics: DataFrame
    model: PipelineModel
    segments: dict[int, tuple[int, str]]  # the model's raw cluster index → (cluster_id, segment name)
    lineage: DataFrame | None  # cluster_lineage, on a retrain
    column_totals: dict[str, tuple[int, float]]  # numeric column → (non-null count, sum) over every row, for drift's profile


def model_features(cfg: Config) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The features to cluster and the features to log1p (the pipeline log1ps those of them it keeps).
    The visit defaults do not exist at user grain: there a default list stands for the user defaults."""
    grain = GRAINS[cfg.features.grain]
    features, log1p = cfg.model.features, cfg.model.log1p_features
    if features == DEFAULT_FEATURES:
        features = grain.default_features
    if log1p == DEFAULT_FEATURES:
        log1p = grain.default_features
    return features, log1p


def fit_segments(spark: SparkSession, cfg: Config, table: FeatureTable, stages: StageLog, previous: Previous | None = None) -> Segmentation:
    """Preprocessing, the K sweep and the final model on the feature table, then every row assigned and
    profiled. With a `previous` run (a retrain), clusters that continue one of its clusters keep that
    cluster's id and name (`lineage`)."""
    grain = GRAINS[cfg.features.grain]
    seed, run_id = cfg.run.seed, cfg.run.run_id
    rules = cfg.model.method == "rules"
    with stages("preprocess") as facts:
        features, log1p = model_features(cfg)
        usable = usable_features(table.df, features)
        preprocessing = fit_preprocessing(table.df, usable.kept, log1p, cfg.model)
        # Not persisted: the transform is a few column expressions over the persisted feature table, and
        # caching every row again with its vector ran a 1 GB driver out of heap at 12.7M visits. KMeans'
        # block solver caches its own blocks; only the sweep sample (or small tables) is persisted.
        prepared = preprocessing.transform(table.df).select(*table.df.columns, FEATURES)
        facts.update(rows_in=table.rows, features=len(usable.kept), dropped=",".join(usable.dropped) or "none")

    # The sweep sample is persisted from the sweep to the method comparison, and released on the way out.
    with contextlib.ExitStack() as held:
        with stages("sweep") as facts:
            # The deterministic sample in one fixed layout (see `sweep`): the fits depend on data and seed only.
            sample = deterministic_sample(prepared, grain.key, cfg.model.sweep_sample_rows, table.rows, seed)
            sampled = sample is not prepared
            sample = held.enter_context(persisted(fixed_layout(sample, grain.key), StorageLevel.MEMORY_AND_DISK))
            sweep_rows = sample.count()
            # k-means cannot find more centres than there are distinct points (Spark's block solver then fails
            # with an index error), and the silhouette needs K < rows.
            shapes = sample.select(vector_to_array(F.col(FEATURES)).alias("x")).distinct().count()
            k_max = min(cfg.model.k_max, sweep_rows - 1, shapes)
            if k_max < cfg.model.k_min or cfg.model.k_final > shapes:
                raise_too_few(sweep_rows, shapes, cfg)
            if k_max < cfg.model.k_max:
                log.warning("model: only %d rows (%d distinct feature vectors) to sweep, so K stops at %d instead of %d", sweep_rows, shapes, k_max, cfg.model.k_max)
            fitted = sweep(sample, grain.key, cfg.model, seed, k_max)
            results, models = fitted.results, fitted.models
            k, reason = choose_k(results, cfg.model)
            log.info("model: chose %s", reason)
            facts.update(rows_in=sweep_rows, sampled=sampled, k=k)

        with stages("final model") as facts:
            # The sweep's fit at the chosen K is the model; only a model.k_final outside the sweep is fitted here.
            kmeans_model = models[k] if k in models else kmeans(cfg.model, k, seed).fit(sample)
            chosen = next((r for r in results if r.k == k), None)
            weak = weak_structure(chosen, cfg.model) if chosen else ""
            if weak:
                log.warning("model: %s", weak)
            facts.update(rows_in=sweep_rows, k=k, iterations=kmeans_model.summary.numIter, weak_structure=bool(weak))

        comparison = None
        if cfg.features.grain == "visit":  # the rules segment visits
            with stages("compare methods") as facts:
                halves = fitted.half_models.get(k) or tuple(kmeans(cfg.model, k, seed).fit(half(sample, grain.key, seed, h)) for h in (0, 1))
                stability = chosen.stability if chosen else float("nan")  # a model.k_final outside the sweep: not measured
                comparison = compare_methods(sample, grain.key, seed, usable.kept, kmeans_model, halves, stability, rule_segment(cfg.rules))
                for method, figures in comparison.items():
                    log.info(
                        "model: %s gives %d segments, mean eta² %.3f, split stability %.3f, profile shift %.3f sd",
                        method, figures["segments"], figures["mean_eta_squared"], figures["split_stability_ari"], figures["profile_shift"],
                    )
                facts.update(rows_in=sweep_rows)

    with stages("assign and profile") as facts:
        # Not persisted: recomputing the distances (a few column expressions on the persisted `prepared`)
        # for the profile (which also gives the daily tables, `daily`) and the labels is cheaper than
        # caching every column again.
        if rules:
            # No centroid is fitted: distance and margin stay null; the profile's centre is the segment mean.
            no_distance = F.lit(None).cast("double")
            assigned = prepared.select("*", rule_segment(cfg.rules).alias(RAW_CLUSTER), no_distance.alias("distance_to_centroid"), no_distance.alias("margin"))
        else:
            assigned = with_nearest_centre(prepared, np.array(kmeans_model.clusterCenters()))
        numeric = numeric_columns(table.df.schema)
        measures = {**grain.profile, **column_measures(numeric)}
        per_day = sums_by_cluster_and_day(assigned, grain.date_col, measures, len(usable.kept))
        by_raw = cluster_profiles(per_day, measures)
        model_centres = {i: list(c) for i, c in enumerate(kmeans_model.clusterCenters())}
        centre_of = {raw: (r[STANDARDIZED] if rules else model_centres[raw]) for raw, r in by_raw.items()}
        profiles = [_profile(raw, r, dict(zip(usable.kept, centre_of[raw]))) for raw, r in by_raw.items()]
        if rules:  # fixed ids and names: a rule segment means the same on every run
            ordered = sorted(profiles, key=lambda p: p.raw_id)
            ids, names = [p.raw_id for p in ordered], [RULE_SEGMENTS[p.raw_id] for p in ordered]
        else:
            ordered = stable_order(profiles)
            ids, names = list(range(len(ordered))), segment_names(ordered, cfg.naming)
        total = sum(p.n for p in ordered)
        matches = None
        if previous is not None and not rules:
            matches = match(centres_in_previous_space(assigned, previous.model), previous.centres(), cfg.model.lineage_max_shift)
            ids, names = previous.continued(ordered, names, matches)
            ordered, ids, names = map(list, zip(*sorted(zip(ordered, ids, names), key=lambda t: t[1])))
            kept = sum(old is not None for old, _ in matches.values())
            log.info("lineage: %d of %d clusters continue a cluster of run %s; ids %s", kept, len(ids), previous.model.run_id, ids)
        centres = [
            _centre_row(cluster_id, name, p, by_raw[p.raw_id], numeric, usable.kept, centre_of[p.raw_id], total, grain, run_id)
            for cluster_id, name, p in zip(ids, names, ordered)
        ]
        facts.update(rows_out=total, clusters=len(centres))

    segments = {p.raw_id: (cid, name) for cid, name, p in zip(ids, names, ordered)}
    id_of_raw = {raw: cid for raw, (cid, _) in segments.items()}
    labels = with_segments(assigned, segments).select(
        *grain.label_columns, "cluster_id", "segment", "distance_to_centroid", "margin", F.lit(run_id).alias("run_id")
    )
    daily = daily_rows(per_day, id_of_raw, dict(zip(ids, names)), run_id)
    lineage = None
    if matches is not None:
        with stages("lineage") as facts:
            agreement = labels_agreement(labels, previous.labels, grain.key)
            shares = {cid: p.n / total for cid, p in zip(ids, ordered)}
            rows = lineage_rows(run_id, previous.model.run_id, matches, id_of_raw, shares, previous.shares, agreement)
            lineage = lineage_frame(spark, rows)
            facts.update(rows_out=len(rows), adjusted_rand_index=agreement[0], shared_visits=agreement[1])
    if rules:
        reason = f"{len(centres)} rule segments by funnel depth and engagement (model.method = rules); k-means for the comparison: {reason}"
    return Segmentation(
        method=cfg.model.method,
        k=len(centres) if rules else k,
        reason=reason,
        weak_structure="" if rules else weak,
        comparison=comparison,
        results=results,
        sweep_rows=sweep_rows,
        sampled=sampled,
        features=usable.kept,
        dropped_features=usable.dropped,
        centres=centres,
        labels=labels,
        mix=mix_frame(spark, daily),
        kpis=kpis_frame(spark, daily),
        centers=local_frame(spark, centres, centers_schema(grain, numeric)),
        diagnostics=diagnostics_frame(spark, results, k, sweep_rows, sampled, run_id),  # with rules: the comparison's sweep
        model=PipelineModel(stages=[*preprocessing.stages, kmeans_model]),
        segments=segments,
        lineage=lineage,
        column_totals=column_totals(per_day, numeric),
    )


def raise_too_few(rows: int, shapes: int, cfg: Config) -> None:
    k = cfg.model.k_final or cfg.model.k_min
    raise EmptyInputError(
        f"model: {rows:,} rows with {shapes:,} distinct feature vectors cannot be split into {k} clusters "
        f"(model.{'k_final' if cfg.model.k_final else 'k_min'}); give more input (a wider date window), lower that "
        f"setting, or check the input: few distinct vectors often mean a wrong unit (timestamps in seconds) or unmapped event names"
    )


def _profile(raw_id: int, row: dict, standardized: dict[str, float]) -> Profile:
    return Profile(
        raw_id=raw_id,
        n=int(row["n"]),
        conversion_rate=float(row["conversion_rate"] or 0.0),
        revenue_per_visit=float(row["revenue_per_visit"] or 0.0),
        bounce_rate=float(row["bounce_rate"] or 0.0),
        cart_rate=float(row["cart_rate"] or 0.0),
        pageviews=float(row["pageviews"] or 0.0),
        time_on_site_sec=float(row["time_on_site_sec"] or 0.0),
        standardized={name: float(z) for name, z in standardized.items()},
    )


def _centre_row(cluster_id, name, profile: Profile, row, numeric, features, standardized, total, grain: Grain, run_id) -> dict:
    return {
        "run_id": run_id,
        "cluster_id": cluster_id,
        "segment": name,
        grain.count_col: profile.n,
        "share": profile.n / total,
        "conversion_rate": profile.conversion_rate,
        "revenue_per_visit": profile.revenue_per_visit,
        "bounce_rate": profile.bounce_rate,
        "cart_rate": profile.cart_rate,
        **{c: float(row[f"mean_{c}"]) for c in numeric},
        "standardized": {f: float(v) for f, v in zip(features, standardized)},
        "features": list(features),
    }
