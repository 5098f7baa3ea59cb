"""Drift monitoring: feature profiles of every run, and their comparison with a reference run.

`feature_profiles` holds, per run and numeric feature column: count, nulls, mean, quantiles, and the
run's own bins (inner edges and counts). A later run compares itself with a reference run through these
rows alone, so the reference's data is never read again.

Binning. A feature's bins are cut at its deciles (percentiles of a hash sample of at most about 100,000
rows, whose values the bins then count: `bin_counts` are of that sample, while `count`, `nulls` and
`mean` are exact, over every row), with
tied edges merged into one (count features have many ties: half the visits may have 1 page view) and the
outer edges at -inf and +inf, so every value, however far out, falls into a bin. Bin i holds the values
in (edge[i-1], edge[i]]; nulls are counted apart (`nulls`), never binned. A run is compared with the
reference on the REFERENCE's bins: the current values are counted into them in the same pass that
profiles them (the same sample).

Metrics, with empty bins smoothed (each bin's count + 0.5, so a bin that one run leaves empty gives a
large but finite value, not infinity):
  * PSI, the population stability index: sum over bins of (p - q) * ln(p / q); 0.1 is a moderate shift,
    0.25 (the default threshold) a large one;
  * the Jensen–Shannon distance (base 2, in [0, 1]): sqrt of the mean KL divergence of p and q from
    their average (scipy's `jensenshannon` gives the same);
  * per segment: the change of its share of the visits, and of its conversion rate; for the whole mix
    the total-variation distance (half the summed absolute share changes).
Thresholds are under `[monitor]`; a metric above its threshold is `drifted`.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from visitseg.core.config import MonitorConfig
from visitseg.core.errors import ConfigError
from visitseg.core.spark import session_conf
from visitseg.model.profiles import numeric_columns
from visitseg.monitor.daily import SegmentStats
from visitseg.storage import delta
from visitseg.storage.tables import CENTERS, DRIFT, FEATURE_PROFILES, RUN_ID, DriftRow, FeatureProfileRow, newest_run, rows_frame

log = logging.getLogger(__name__)

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)  # what `feature_profiles.quantiles` holds, in this order
BIN_PROBABILITIES = tuple(round(i / 10, 1) for i in range(1, 10))  # deciles: at most 10 bins
SMOOTHING = 0.5  # added to every bin's count before comparing
PERCENTILE_SAMPLE = 100_000  # rows the percentiles are taken from, at most about (see `profile_features`)

def profile_features(
    df: DataFrame, columns: Sequence[str], reference: Mapping[str, FeatureProfileRow], rows: int,
    totals: Mapping[str, tuple[int, float]], run_id: str, key: str | None = None,
) -> tuple[list[FeatureProfileRow], dict[str, list[int]]]:
    """The profile of each column of `df` (`rows` rows, keep it persisted), and its counts in the
    reference's bins (for the columns the reference profiled).

    Counts, nulls and means are exact: `totals` (column → non-null count and sum) come from the caller's
    pass over every row (`profiles.column_totals`), so profiling has no such pass of its own. Percentiles
    (quantiles and bin edges) and bin counts are those of a hash sample of at most about PERCENTILE_SAMPLE
    rows, chosen by `key` so that it is the same rows whatever the partitioning, and counted on the driver
    with numpy: a sample of bounded size, whatever the input's. Sketching percentiles over every row in
    Spark cost as much as the aggregation itself, for shares a 100,000-row sample gives within about 0.3%
    (docs/performance.md). Inputs of at most PERCENTILE_SAMPLE rows are profiled whole."""
    every = max(1, math.ceil(rows / PERCENTILE_SAMPLE)) if key else 1
    sample = df.filter(F.pmod(F.xxhash64(key), F.lit(every)) == 0) if every > 1 else df
    with session_conf(df.sparkSession, {"spark.sql.execution.arrow.pyspark.enabled": "true"}):
        values = sample.select(*[F.col(c).cast("double").alias(c) for c in columns]).toPandas()
    profiles, in_reference = [], {}
    for c in columns:
        present = values[c].dropna().to_numpy()
        # The smallest value with at least a share p of the values at or below it (`inverted_cdf`), the
        # definition of Spark's percentile_approx: each percentile is a value of the data.
        percentiles = np.quantile(present, [*QUANTILES, *BIN_PROBABILITIES], method="inverted_cdf").tolist() if len(present) else [None] * (len(QUANTILES) + len(BIN_PROBABILITIES))
        edges = merged_edges(percentiles[len(QUANTILES):])
        count, total = totals[c]
        mean = float(total) / count if count else None
        profiles.append(FeatureProfileRow(run_id, c, count, rows - count, mean, percentiles[: len(QUANTILES)], edges, bin_counts(present, edges)))
        if c in reference:
            in_reference[c] = bin_counts(present, reference[c].bin_edges)
    return profiles, in_reference


def merged_edges(percentiles: Sequence[float | None]) -> list[float]:
    """Increasing inner edges from the decile values: ties merged, nulls and non-finite values dropped."""
    return sorted({float(p) for p in percentiles if p is not None and math.isfinite(p)})


def bin_counts(values: np.ndarray, edges: Sequence[float]) -> list[int]:
    """How many of `values` fall in each bin, 0 … len(edges): bin i holds (edge[i-1], edge[i]] of
    -inf < edges < +inf (the index of a value is the number of edges below it)."""
    index = np.searchsorted(np.asarray(edges, dtype=float), values, side="left")
    return np.bincount(index, minlength=len(edges) + 1).tolist()


def smoothed(counts: Sequence[int]) -> np.ndarray:
    c = np.asarray(counts, dtype=float) + SMOOTHING
    return c / c.sum()


def psi(current: Sequence[int], reference: Sequence[int]) -> float:
    p, q = smoothed(current), smoothed(reference)
    return float(np.sum((p - q) * np.log(p / q)))


def js_distance(current: Sequence[int], reference: Sequence[int]) -> float:
    p, q = smoothed(current), smoothed(reference)
    m = (p + q) / 2
    divergence = 0.5 * np.sum(p * np.log2(p / m)) + 0.5 * np.sum(q * np.log2(q / m))
    return float(math.sqrt(max(divergence, 0.0)))


def drift_rows(
    run_id: str,
    reference_run_id: str,
    reference: Mapping[str, FeatureProfileRow],
    in_reference_bins: Mapping[str, list[int]],
    segments: Mapping[int, SegmentStats],
    reference_segments: Mapping[int, SegmentStats],
    monitor: MonitorConfig,
) -> list[DriftRow]:
    """The `drift` rows of a run against its reference."""
    rows = []

    def add(kind: str, name: str, metric: str, value: float, threshold: float) -> None:
        rows.append(DriftRow(run_id, reference_run_id, kind, name, metric, value, threshold, abs(value) > threshold))

    for feature, counts in sorted(in_reference_bins.items()):
        add("feature", feature, "psi", psi(counts, reference[feature].bin_counts), monitor.psi)
        add("feature", feature, "js_distance", js_distance(counts, reference[feature].bin_counts), monitor.js_distance)
    if segments and reference_segments:
        changes = []
        for cluster_id in sorted(set(segments) | set(reference_segments)):
            now, before = segments.get(cluster_id), reference_segments.get(cluster_id)
            label = f"{cluster_id} {(now or before).name}"
            change = (now.share if now else 0.0) - (before.share if before else 0.0)
            changes.append(change)
            add("segment_mix", label, "share_change", change, monitor.share_change)
            if now and before and now.conversion_rate is not None and before.conversion_rate is not None:
                add("kpi", label, "conversion_rate_change", now.conversion_rate - before.conversion_rate, monitor.conversion_change)
        add("segment_mix", "all segments", "total_variation", 0.5 * sum(abs(c) for c in changes), monitor.total_variation)
    return rows


def summary(rows: Sequence[DriftRow]) -> str:
    """One line for `runs` and the log: how many metrics drifted, and which."""
    drifted = [f"{r.name} {r.metric} {r.value:.3f} > {r.threshold}" for r in rows if r.drifted]
    if not rows:
        return "no reference run"
    return f"{len(drifted)} of {len(rows)} metrics drifted against run {rows[0].reference_run_id}" + (f": {'; '.join(drifted)}" if drifted else "")


@dataclass(frozen=True)
class Reference:
    """The run a run or score is compared with, and the output folder whose tables hold its profiles."""

    output: str
    run_id: str | None  # None: no run to compare with (a first run)


@dataclass(frozen=True)
class Monitoring:
    """What a run or score writes for monitoring: its profiles, and its drift against the reference."""

    profiles: list[FeatureProfileRow]
    rows: list[DriftRow]  # none without a reference

    @property
    def drifted(self) -> list[DriftRow]:
        return [r for r in self.rows if r.drifted]

    @property
    def summary(self) -> str:
        return summary(self.rows)

    def frames(self, spark: SparkSession) -> dict[str, DataFrame]:
        """The `feature_profiles` and (with a reference) `drift` tables to write."""
        frames = {FEATURE_PROFILES: rows_frame(spark, self.profiles, FeatureProfileRow)}
        if self.rows:
            frames[DRIFT] = rows_frame(spark, self.rows, DriftRow)
        return frames


def monitor(
    spark: SparkSession, features: DataFrame, n_rows: int, run_id: str, key: str, reference: Reference,
    segments: Mapping[int, SegmentStats], totals: Mapping[str, tuple[int, float]], thresholds: MonitorConfig,
) -> Monitoring:
    """Profile the numeric columns of `features` (persisted, `n_rows` rows, keyed by `key`), and compare them
    and `segments` with the reference run's profiles and clusters, read from the tables of its output
    (a score's model may live in another), never from its data."""
    profiles_before = _profiles_of(spark, reference.output, reference.run_id) if reference.run_id else {}
    if reference.run_id and not profiles_before:
        log.warning("drift: %s/feature_profiles holds no profile of run %s (written by an older visitseg?): no drift to compute", reference.output, reference.run_id)
    columns = numeric_columns(features.schema)
    profiles, in_reference_bins = profile_features(features, columns, profiles_before, n_rows, totals, run_id, key)
    rows = []
    if profiles_before:
        segments_before = _segments_of(spark, reference.output, reference.run_id)
        rows = drift_rows(run_id, reference.run_id, profiles_before, in_reference_bins, segments, segments_before, thresholds)
    result = Monitoring(profiles, rows)
    (log.warning if result.drifted else log.info)("drift: %s", result.summary)
    return result


def reference_run(spark: SparkSession, output: str, baseline_run_id: str, default: str | None) -> Reference:
    """`monitor.baseline_run_id` when set, checked to have profiles in `output`; else `default`."""
    if baseline_run_id:
        if not _profiles_of(spark, output, baseline_run_id):  # {} too when the output has no such table
            raise ConfigError(f"monitor.baseline_run_id = {baseline_run_id!r}: {output}/feature_profiles holds no profile of that run")
        return Reference(output, baseline_run_id)
    return Reference(output, default)


def previous_run_id(spark: SparkSession, output: str, grain: str, run_id: str) -> str | None:
    """The newest other run at this grain in the output's `runs`: a run's default reference."""
    newest = newest_run(spark, output, (F.col("grain") == grain) & (F.col(RUN_ID) != run_id), (RUN_ID,))
    return newest[RUN_ID] if newest is not None else None


def _profiles_of(spark: SparkSession, out: str, run_id: str) -> dict[str, FeatureProfileRow]:
    if FEATURE_PROFILES not in delta.tables_under(out):
        return {}
    rows = delta.read_table(spark, f"{out}/{FEATURE_PROFILES}").filter(F.col(RUN_ID) == run_id).collect()  # one row per feature
    return {r["feature"]: FeatureProfileRow(run_id, r["feature"], r["count"], r["nulls"], r["mean"], list(r["quantiles"]), list(r["bin_edges"]), list(r["bin_counts"])) for r in rows}


def _segments_of(spark: SparkSession, out: str, run_id: str) -> dict[int, SegmentStats]:
    if CENTERS not in delta.tables_under(out):
        return {}
    rows = delta.read_table(spark, f"{out}/{CENTERS}").filter(F.col(RUN_ID) == run_id).select("cluster_id", "segment", "share", "conversion_rate").collect()
    return {r["cluster_id"]: SegmentStats(r["segment"], r["share"], r["conversion_rate"]) for r in rows}
