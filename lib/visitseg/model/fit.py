"""Fitting: feature table → preprocessing → K sweep → final model → every row assigned, profiled and named.

Four steps, each with a small result: `prepare` (the feature vector), `select_model` (the sweep, the
chosen K, its fit and the method comparison), `profile` (every row assigned to its centre, one pass
grouped by cluster and day) and `name_segments` (stable ids and names, continued from the previous run).
`fit_segments` runs them in order and builds the run's tables. Nothing here writes a table: everything
returned is a lazy DataFrame or a small driver-side result (K centres, one row per K of diagnostics).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

import numpy as np
from pyspark import StorageLevel
from pyspark.ml import PipelineModel
from pyspark.ml.clustering import KMeansModel
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from visitseg.core.config import Config, ModelConfig, NamingConfig, RulesConfig
from visitseg.core.config_rules import DEFAULT_FEATURES
from visitseg.core.errors import EmptyInputError
from visitseg.core.spark import StageLog, persisted
from visitseg.features.grains import GRAINS, Grain
from visitseg.features.table import FeatureTable
from visitseg.model.assign import RAW_CLUSTER, with_nearest_centre, with_segments
from visitseg.model.compare import compare_methods
from visitseg.model.lineage import Previous, centres_in_previous_space, labels_agreement, lineage_rows, match
from visitseg.model.metrics import SILHOUETTE_DISTANCE
from visitseg.model.naming import Profile, segment_names, stable_order
from visitseg.model.preprocess import FEATURES, UsableFeatures, fit_preprocessing, usable_features
from visitseg.model.profiles import MEAN_STANDARDISED, cluster_profiles, column_measures, column_totals, daily_rows, numeric_columns, sums_by_cluster_and_day
from visitseg.model.rules import RULE_SEGMENTS, rule_segment
from visitseg.model.sweep import KResult, choose_k, deterministic_sample, fixed_layout, half, kmeans, sweep, weak_structure
from visitseg.storage.tables import (
    CENTERS, DIAGNOSTICS, KPIS_DAILY, LINEAGE, MIX_DAILY, CentreRow, DiagnosticsRow, KpiRow, LineageRow, MixRow, centres_frame, rows_frame,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prepared:
    """The feature table with its model vector (`FEATURES`), and the fitted preprocessing."""

    df: DataFrame
    features: UsableFeatures
    preprocessing: PipelineModel


@dataclass(frozen=True)
class Selection:
    """The sweep's outcome: the chosen K and why, its k-means fit, and what the run records of the sweep."""

    k: int
    reason: str
    weak_structure: str  # "" when the chosen K's clusters are well separated and stable
    results: list[KResult]
    sweep_rows: int
    sampled: bool
    kmeans: KMeansModel
    comparison: dict | None  # k-means vs rules on the sweep sample (`compare`); None at user grain


@dataclass(frozen=True)
class Profiled:
    """Every row assigned to a cluster, and the (cluster, day) pass over them."""

    assigned: DataFrame
    per_day: list[dict]  # `profiles.sums_by_cluster_and_day` rows
    profiles: dict[int, dict]  # raw cluster → `profiles.cluster_profiles` entry
    centres: dict[int, list[float]]  # raw cluster → its centre in standardised units
    numeric: list[str]  # the feature table's numeric columns, whose means the centres report


@dataclass(frozen=True)
class Named:
    """Each cluster's profile, id and name, in cluster_id order; the lineage matches on a retrain."""

    profiles: list[Profile]
    ids: list[int]
    names: list[str]
    matches: dict[int, tuple[int | None, float]] | None

    @property
    def segments(self) -> dict[int, tuple[int, str]]:
        """raw cluster → (cluster_id, segment name)"""
        return {p.raw_id: (cid, name) for cid, name, p in zip(self.ids, self.names, self.profiles)}


@dataclass(frozen=True)
class Segmentation:
    method: str  # kmeans | rules
    k: int  # segments written (the chosen K, or the non-empty rule segments)
    reason: str
    weak_structure: str  # the chosen K's (always "" for rules)
    selection: Selection
    features: UsableFeatures
    centres: list[CentreRow]  # cluster_id order
    diagnostics: list[DiagnosticsRow]  # K order
    kpis: list[KpiRow]  # per day and cluster
    model: PipelineModel
    segments: dict[int, tuple[int, str]]  # the model's raw cluster index → (cluster_id, segment name)
    tables: dict[str, DataFrame]  # labels, centres, diagnostics, daily mix and KPIs, lineage on a retrain
    segmented: DataFrame  # every row of the feature table with its cluster_id and segment (lazy), for the journeys
    column_totals: dict[str, tuple[int, float]]  # numeric column → (non-null count, sum) over every row, for drift's profile


def model_features(model: ModelConfig, grain: Grain) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The features to cluster and the features to log1p (the pipeline log1ps those of them it keeps).
    The visit defaults do not exist at user grain: there a default list stands for the user defaults."""
    features, log1p = model.features, model.log1p_features
    if features == DEFAULT_FEATURES:
        features = grain.default_features
    if log1p == DEFAULT_FEATURES:
        log1p = grain.default_features
    return features, log1p


def prepare(table: FeatureTable, model: ModelConfig, grain: Grain) -> Prepared:
    """Fit the preprocessing on the feature table and add the model vector. Not persisted: the transform is
    a few column expressions over the persisted feature table, and caching every row again with its vector
    ran a 1 GB driver out of heap at 12.7M visits."""
    features, log1p = model_features(model, grain)
    usable = usable_features(table.df, features)
    preprocessing = fit_preprocessing(table.df, usable.kept, log1p, model)
    return Prepared(preprocessing.transform(table.df).select(*table.df.columns, FEATURES), usable, preprocessing)


def select_model(prepared: Prepared, rows: int, grain: Grain, model: ModelConfig, rules: RulesConfig, seed: int, stages: StageLog) -> Selection:
    """The K sweep on the deterministic sample in one fixed layout (the fits depend on data and seed
    only), the chosen K's fit, and on visits the comparison with the rule segments. The sample is
    persisted from the sweep to the comparison, and released on the way out."""
    with contextlib.ExitStack() as held:
        with stages("sweep") as facts:
            sample = deterministic_sample(prepared.df, grain.key, model.sweep_sample_rows, rows, seed)
            sampled = sample is not prepared.df
            sample = held.enter_context(persisted(fixed_layout(sample, grain.key), StorageLevel.MEMORY_AND_DISK))
            sweep_rows = sample.count()
            k_max = sweep_k_max(sample, sweep_rows, model)
            fitted = sweep(sample, grain.key, model, seed, k_max)
            k, reason = choose_k(fitted.results, model)
            log.info("model: chose %s", reason)
            facts.update(rows_in=sweep_rows, sampled=sampled, k=k)
        with stages("final model") as facts:
            # The sweep's fit at the chosen K is the model; only a model.k_final outside the sweep is fitted here.
            final = fitted.models[k] if k in fitted.models else kmeans(model, k, seed).fit(sample)
            chosen = next((r for r in fitted.results if r.k == k), None)
            weak = weak_structure(chosen, model) if chosen else ""
            if weak:
                log.warning("model: %s", weak)
            facts.update(rows_in=sweep_rows, k=k, iterations=final.summary.numIter, weak_structure=bool(weak))
        comparison = None
        if grain.key == "visit_key":  # the rules segment visits
            with stages("compare methods") as facts:
                halves = fitted.half_models.get(k) or tuple(kmeans(model, k, seed).fit(half(sample, grain.key, seed, h)) for h in (0, 1))
                stability = chosen.stability if chosen else float("nan")  # a model.k_final outside the sweep: not measured
                comparison = compare_methods(sample, grain.key, seed, prepared.features.kept, final, halves, stability, rule_segment(rules))
                for method, figures in comparison.items():
                    log.info(
                        "model: %s gives %d segments, mean eta² %.3f, split stability %.3f, profile shift %.3f sd",
                        method, figures["segments"], figures["mean_eta_squared"], figures["split_stability_ari"], figures["profile_shift"],
                    )
                facts.update(rows_in=sweep_rows)
    return Selection(k, reason, weak, fitted.results, sweep_rows, sampled, final, comparison)


def sweep_k_max(sample: DataFrame, rows: int, model: ModelConfig) -> int:
    """The largest K the sample can take: k-means cannot find more centres than there are distinct points
    (Spark's block solver then fails with an index error), and the silhouette needs K < rows."""
    shapes = sample.select(vector_to_array(F.col(FEATURES)).alias("x")).distinct().count()
    k_max = min(model.k_max, rows - 1, shapes)
    if k_max < model.k_min or model.k_final > shapes:
        raise_too_few(rows, shapes, model)
    if k_max < model.k_max:
        log.warning("model: only %d rows (%d distinct feature vectors) to sweep, so K stops at %d instead of %d", rows, shapes, k_max, model.k_max)
    return k_max


def profile(prepared: Prepared, table: FeatureTable, selection: Selection, grain: Grain, rules: RulesConfig | None) -> Profiled:
    """Assign every row (to its nearest centre, or to its rule segment) and profile the clusters in one pass
    grouped by (cluster, day), which also gives the daily tables. Not persisted: recomputing the distances
    (a few column expressions on the persisted table) for the profile and the labels is cheaper than
    caching every column again. With `rules` (model.method = rules) the rows get their rule segment."""
    if rules is not None:
        # No centroid is fitted: distance and margin stay null; the profile's centre is the segment mean.
        no_distance = F.lit(None).cast("double")
        assigned = prepared.df.select("*", rule_segment(rules).alias(RAW_CLUSTER), no_distance.alias("distance_to_centroid"), no_distance.alias("margin"))
    else:
        assigned = with_nearest_centre(prepared.df, np.array(selection.kmeans.clusterCenters()))
    numeric = numeric_columns(table.df.schema)
    measures = {**grain.profile, **column_measures(numeric)}
    per_day = sums_by_cluster_and_day(assigned, grain.date_col, measures, len(prepared.features.kept))
    by_raw = cluster_profiles(per_day, measures)
    if rules is not None:
        centres = {raw: r[MEAN_STANDARDISED] for raw, r in by_raw.items()}
    else:
        centres = {i: list(c) for i, c in enumerate(selection.kmeans.clusterCenters()) if i in by_raw}
    return Profiled(assigned, per_day, by_raw, centres, numeric)


def name_segments(profiled: Profiled, features: tuple[str, ...], model: ModelConfig, naming: NamingConfig, previous: Previous | None) -> Named:
    """Ids and names: rule segments keep their fixed ones; k-means clusters are ordered stably and named from
    their profiles, and on a retrain a cluster that continues one of the previous run's keeps its id and name."""
    profiles = [_profile(raw, r, dict(zip(features, profiled.centres[raw]))) for raw, r in profiled.profiles.items()]
    if model.method == "rules":  # fixed ids and names: a rule segment means the same on every run
        ordered = sorted(profiles, key=lambda p: p.raw_id)
        return Named(ordered, [p.raw_id for p in ordered], [RULE_SEGMENTS[p.raw_id] for p in ordered], None)
    ordered = stable_order(profiles)
    ids, names = list(range(len(ordered))), segment_names(ordered, naming)
    if previous is None:
        return Named(ordered, ids, names, None)
    matches = match(centres_in_previous_space(profiled.assigned, previous.model), previous.centres(), model.lineage_max_shift)
    ids, names = previous.continued(ordered, names, matches)
    ordered, ids, names = map(list, zip(*sorted(zip(ordered, ids, names), key=lambda t: t[1])))
    kept = sum(old is not None for old, _ in matches.values())
    log.info("lineage: %d of %d clusters continue a cluster of run %s; ids %s", kept, len(ids), previous.model.run_id, ids)
    return Named(ordered, ids, names, matches)


def fit_segments(spark: SparkSession, cfg: Config, table: FeatureTable, stages: StageLog, previous: Previous | None = None) -> Segmentation:
    """Preprocessing, the K sweep and the final model on the feature table, then every row assigned,
    profiled and named, and the run's tables built (lazily, or from driver-side rows)."""
    grain, run_id, rules = GRAINS[cfg.features.grain], cfg.run.run_id, cfg.model.method == "rules"
    with stages("preprocess") as facts:
        prepared = prepare(table, cfg.model, grain)
        facts.update(rows_in=table.rows, features=len(prepared.features.kept), dropped=",".join(prepared.features.dropped) or "none")
    selection = select_model(prepared, table.rows, grain, cfg.model, cfg.rules, cfg.run.seed, stages)
    with stages("assign and profile") as facts:
        profiled = profile(prepared, table, selection, grain, cfg.rules if rules else None)
        named = name_segments(profiled, prepared.features.kept, cfg.model, cfg.naming, previous)
        centres = centre_rows(named, profiled, prepared.features.kept, run_id)
        facts.update(rows_out=sum(p.n for p in named.profiles), clusters=len(centres))
    segmented = with_segments(profiled.assigned, named.segments)
    labels = segmented.select(
        *grain.label_columns, "cluster_id", "segment", "distance_to_centroid", "margin", F.lit(run_id).alias("run_id")
    )
    kpis = daily_rows(profiled.per_day, {raw: cid for raw, (cid, _) in named.segments.items()}, dict(zip(named.ids, named.names)), run_id)
    diagnostics = diagnostics_rows(selection, run_id)  # with rules: the comparison's sweep
    tables = {
        grain.labels_table: labels,
        CENTERS: centres_frame(spark, centres, grain.count_col, profiled.numeric),
        DIAGNOSTICS: rows_frame(spark, diagnostics, DiagnosticsRow),
        MIX_DAILY: rows_frame(spark, [k.mix() for k in kpis], MixRow),
        KPIS_DAILY: rows_frame(spark, kpis, KpiRow),
    }
    if named.matches is not None:
        with stages("lineage") as facts:
            rows = lineage_of(labels, named, previous, run_id, grain.key)
            tables[LINEAGE] = rows_frame(spark, rows, LineageRow)
            facts.update(rows_out=len(rows), adjusted_rand_index=rows[0].adjusted_rand_index, shared_visits=rows[0].shared_visits)
    reason = f"{len(centres)} rule segments by funnel depth and engagement (model.method = rules); k-means for the comparison: {selection.reason}" if rules else selection.reason
    return Segmentation(
        method=cfg.model.method,
        k=len(centres) if rules else selection.k,
        reason=reason,
        weak_structure="" if rules else selection.weak_structure,
        selection=selection,
        features=prepared.features,
        centres=centres,
        diagnostics=diagnostics,
        kpis=kpis,
        model=PipelineModel(stages=[*prepared.preprocessing.stages, selection.kmeans]),
        segments=named.segments,
        tables=tables,
        segmented=segmented,
        column_totals=column_totals(profiled.per_day, profiled.numeric),
    )


def lineage_of(labels: DataFrame, named: Named, previous: Previous, run_id: str, key: str) -> list[LineageRow]:
    """`cluster_lineage` rows of a retrain: each cluster's match, shift and shares, and the two runs' agreement."""
    agreement = labels_agreement(labels, previous.labels, key)
    total = sum(p.n for p in named.profiles)
    shares = {cid: p.n / total for cid, p in zip(named.ids, named.profiles)}
    id_of_raw = {raw: cid for raw, (cid, _) in named.segments.items()}
    return lineage_rows(run_id, previous.model.run_id, named.matches, id_of_raw, shares, previous.shares, agreement)


def diagnostics_rows(selection: Selection, run_id: str) -> list[DiagnosticsRow]:
    return [
        DiagnosticsRow(run_id, r.k, r.inertia, r.silhouette, SILHOUETTE_DISTANCE, r.davies_bouldin, r.calinski_harabasz,
                       r.min_cluster_share, r.max_cluster_share, r.stability, selection.sweep_rows, selection.sampled, r.seconds, r.k == selection.k)
        for r in selection.results
    ]


def centre_rows(named: Named, profiled: Profiled, features: tuple[str, ...], run_id: str) -> list[CentreRow]:
    total = sum(p.n for p in named.profiles)
    return [
        CentreRow(
            run_id=run_id, cluster_id=cluster_id, segment=name, size=p.n, share=p.n / total, conversion_rate=p.conversion_rate,
            revenue_per_visit=p.revenue_per_visit, bounce_rate=p.bounce_rate, cart_rate=p.cart_rate,
            means={c: float(profiled.profiles[p.raw_id][f"mean_{c}"]) for c in profiled.numeric},
            standardized={f: float(v) for f, v in zip(features, profiled.centres[p.raw_id])}, features=list(features),
        )
        for cluster_id, name, p in zip(named.ids, named.names, named.profiles)
    ]


def raise_too_few(rows: int, shapes: int, model: ModelConfig) -> None:
    k = model.k_final or model.k_min
    raise EmptyInputError(
        f"model: {rows:,} rows with {shapes:,} distinct feature vectors cannot be split into {k} clusters "
        f"(model.{'k_final' if model.k_final else 'k_min'}); give more input (a wider date window), lower that "
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
