"""Every output table: its name, its schema, the typed record behind the `runs` row, and the one writer.

All tables are Delta tables under the output folder. The run's tables are partitioned by `run_id` and a
run replaces its own partition, so a rerun of a run id leaves one copy of it; `session_scores` (written
by `visitseg score`) is partitioned by (model_run_id, visit_date), so scoring the same days with the same
model again replaces them. A table's schema never changes under it: `delta.check_schemas` refuses a write
of another schema before the first table of a job is written.

| table | written by | schema |
|---|---|---|
| visit_features / user_features | run, features | `schemas.VISIT_FEATURES_SCHEMA` / `schemas.USER_FEATURES_SCHEMA` |
| session_clusters / user_clusters | run | the grain's label columns, cluster_id, segment, distance_to_centroid, margin, run_id |
| cluster_centers | run | `centers_schema` |
| k_diagnostics | run | `DIAGNOSTICS_SCHEMA` |
| cluster_mix_daily | run | `MIX_DAILY_SCHEMA` |
| segment_kpis_daily | run | `KPIS_DAILY_SCHEMA` |
| runs | run (last) | `RUNS_SCHEMA`, from `RunRecord` |
| cluster_lineage | run (a retrain) | `LINEAGE_SCHEMA` |
| session_scores | score | `SESSION_SCORES_SCHEMA` |
| feature_profiles | run | `FEATURE_PROFILES_SCHEMA` |
| drift | run (with a reference run) | `DRIFT_SCHEMA` |
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import typing
from typing import Annotated, Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from visitseg import delta
from visitseg.config import Config
from visitseg.grains import Grain
from visitseg.metrics import SILHOUETTE_DISTANCE
from visitseg.schemas import RUN_ID
from visitseg.spark import StageLog, local_frame
from visitseg.sweep import KResult

RUNS = "runs"
CENTERS = "cluster_centers"
DIAGNOSTICS = "k_diagnostics"
MIX_DAILY = "cluster_mix_daily"
KPIS_DAILY = "segment_kpis_daily"
SESSION_SCORES = "session_scores"
LINEAGE = "cluster_lineage"
FEATURE_PROFILES = "feature_profiles"
DRIFT = "drift"

# The per-row KPIs of `segment_kpis_daily`: the grain's profile expressions of these names.
DAILY_KPIS = ("conversion_rate", "revenue_per_visit", "bounce_rate")

Int32 = Annotated[int, T.IntegerType()]  # a field whose column is INT, not BIGINT


@dataclasses.dataclass(frozen=True)
class RunRecord:
    """One `runs` row: the run's facts, its configuration (redacted) and its software versions.
    RUNS_SCHEMA is derived from these fields, so the row and the table cannot drift apart."""

    run_id: str
    started_at: dt.datetime
    finished_at: dt.datetime
    input_format: str
    input_path: str
    grain: str
    method: str  # kmeans | rules
    n_rows: int
    chosen_k: Int32
    k_reason: str
    weak_structure: str | None  # null, or why the chosen K's clusters are weak
    comparison_json: str | None  # k-means vs rules: separation and split stability (compare.py)
    sweep_rows: int
    sweep_sampled: bool
    features: list[str]
    dropped_features: list[str]
    model_path: str
    delta_writer: str
    stages_json: str  # [{"stage", "rows_in", "rows_out", "seconds", ...}]
    config_json: str
    spark_version: str
    python_version: str
    visitseg_version: str
    packages_json: str
    drift_summary: str | None  # "N of M metrics drifted against run R: …", or "no reference run"

    def as_row(self) -> tuple:
        return dataclasses.astuple(self)


_SPARK_TYPES = {str: T.StringType(), int: T.LongType(), bool: T.BooleanType(), float: T.DoubleType(), dt.datetime: T.TimestampType()}


def _spark_type(hint: Any) -> T.DataType:
    if typing.get_origin(hint) is Annotated:
        return typing.get_args(hint)[1]
    if typing.get_origin(hint) is list:
        return T.ArrayType(_spark_type(typing.get_args(hint)[0]))
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if args:  # X | None: every column is nullable anyway
        return _spark_type(args[0])
    return _SPARK_TYPES[hint]


def schema_of(record: type) -> T.StructType:
    hints = typing.get_type_hints(record, include_extras=True)
    return T.StructType([T.StructField(f.name, _spark_type(hints[f.name])) for f in dataclasses.fields(record)])


RUNS_SCHEMA = schema_of(RunRecord)


def runs_frame(spark: SparkSession, record: RunRecord) -> DataFrame:
    return local_frame(spark, [record.as_row()], RUNS_SCHEMA)


def newest_first(runs: DataFrame) -> DataFrame:
    """`runs` rows, the newest first: by finished_at, ties by run_id, so "the newest run" never depends on
    the order the rows were read in (the report page, `score --model latest` and lineage all pick it so)."""
    return runs.orderBy(F.desc("finished_at"), F.desc(RUN_ID))


def centers_schema(grain: Grain, numeric: list[str]) -> T.StructType:
    d = T.DoubleType()
    fields = [
        T.StructField("run_id", T.StringType()),
        T.StructField("cluster_id", T.IntegerType()),
        T.StructField("segment", T.StringType()),
        T.StructField(grain.count_col, T.LongType()),
        *[T.StructField(c, d) for c in ("share", "conversion_rate", "revenue_per_visit", "bounce_rate", "cart_rate")],
        *[T.StructField(c, d) for c in numeric],
        T.StructField("standardized", T.MapType(T.StringType(), d)),
        T.StructField("features", T.ArrayType(T.StringType())),
    ]
    return T.StructType(fields)


DIAGNOSTICS_SCHEMA = T.StructType(
    [
        T.StructField("run_id", T.StringType()),
        T.StructField("k", T.IntegerType()),
        T.StructField("inertia", T.DoubleType()),
        T.StructField("silhouette", T.DoubleType()),
        T.StructField("silhouette_distance", T.StringType()),
        T.StructField("davies_bouldin", T.DoubleType()),
        T.StructField("calinski_harabasz", T.DoubleType()),
        T.StructField("min_cluster_share", T.DoubleType()),
        T.StructField("max_cluster_share", T.DoubleType()),
        T.StructField("stability", T.DoubleType()),  # split-half adjusted Rand index
        T.StructField("sweep_rows", T.LongType()),
        T.StructField("sampled", T.BooleanType()),
        T.StructField("fit_seconds", T.DoubleType()),
        T.StructField("chosen", T.BooleanType()),
    ]
)


def diagnostics_frame(spark: SparkSession, results: list[KResult], k: int, rows: int, sampled: bool, run_id: str) -> DataFrame:
    return local_frame(
        spark,
        [
            (run_id, r.k, r.inertia, r.silhouette, SILHOUETTE_DISTANCE, r.davies_bouldin, r.calinski_harabasz,
             r.min_cluster_share, r.max_cluster_share, r.stability, rows, sampled, r.seconds, r.k == k)
            for r in results
        ],
        DIAGNOSTICS_SCHEMA,
    )


MIX_DAILY_SCHEMA = T.StructType(
    [
        T.StructField("visit_date", T.DateType()),
        T.StructField("cluster_id", T.IntegerType()),
        T.StructField("segment", T.StringType()),
        T.StructField("n_visits", T.LongType()),
        T.StructField("pct", T.DoubleType()),  # share of that day's visits
        T.StructField("run_id", T.StringType()),
    ]
)
KPIS_DAILY_SCHEMA = T.StructType(
    [
        T.StructField("visit_date", T.DateType()),
        T.StructField("cluster_id", T.IntegerType()),
        T.StructField("segment", T.StringType()),
        T.StructField("n_visits", T.LongType()),
        T.StructField("share", T.DoubleType()),  # of that day's visits
        *[T.StructField(name, T.DoubleType()) for name in DAILY_KPIS],
        T.StructField("run_id", T.StringType()),
    ]
)


def kpis_frame(spark: SparkSession, rows: list[tuple]) -> DataFrame:
    """`segment_kpis_daily` from `daily.daily_rows`."""
    return local_frame(spark, rows, KPIS_DAILY_SCHEMA)


def mix_frame(spark: SparkSession, rows: list[tuple]) -> DataFrame:
    """`cluster_mix_daily`: the KPI rows' counts and shares only (the table's columns since its first run)."""
    return local_frame(spark, [(*r[:5], r[-1]) for r in rows], MIX_DAILY_SCHEMA)


LINEAGE_SCHEMA = T.StructType(
    [
        T.StructField("run_id", T.StringType()),
        T.StructField("cluster_id", T.IntegerType()),
        T.StructField("previous_run_id", T.StringType()),
        T.StructField("previous_cluster_id", T.IntegerType()),  # null: a new cluster
        T.StructField("centroid_shift", T.DoubleType()),  # to the matched centre (else the nearest), previous run's standardised units
        T.StructField("share", T.DoubleType()),
        T.StructField("previous_share", T.DoubleType()),
        T.StructField("adjusted_rand_index", T.DoubleType()),  # the two runs' labels on the visits both labelled
        T.StructField("shared_visits", T.LongType()),  # how many visits that is (null ARI when 0)
    ]
)

NEAREST_CENTROIDS = T.ArrayType(T.StructType([T.StructField("cluster_id", T.IntegerType()), T.StructField("distance", T.DoubleType())]))
SESSION_SCORES_SCHEMA = T.StructType(
    [
        T.StructField("visit_key", T.StringType()),
        T.StructField("user_key", T.StringType()),
        T.StructField("visit_date", T.DateType()),
        T.StructField("cluster_id", T.IntegerType()),
        T.StructField("segment", T.StringType()),
        T.StructField("distance_to_centroid", T.DoubleType()),
        T.StructField("margin", T.DoubleType()),
        T.StructField("nearest_centroids", NEAREST_CENTROIDS),  # every centre, nearest first (BigQuery ML's NEAREST_CENTROIDS_DISTANCE)
        T.StructField("model_run_id", T.StringType()),
        T.StructField("score_run_id", T.StringType()),
    ]
)


# `feature_profiles` and `drift`: see `drift` for the bins and metrics.
FEATURE_PROFILES_SCHEMA = T.StructType(
    [
        T.StructField("run_id", T.StringType()),
        T.StructField("feature", T.StringType()),
        T.StructField("count", T.LongType()),  # non-null values
        T.StructField("nulls", T.LongType()),
        T.StructField("mean", T.DoubleType()),
        T.StructField("quantiles", T.ArrayType(T.DoubleType())),  # at QUANTILES
        T.StructField("bin_edges", T.ArrayType(T.DoubleType())),  # inner edges, increasing; the outer ones are -inf and +inf
        T.StructField("bin_counts", T.ArrayType(T.LongType())),  # len(bin_edges) + 1 counts, of the hash sample (drift.py)
    ]
)

DRIFT_SCHEMA = T.StructType(
    [
        T.StructField("run_id", T.StringType()),
        T.StructField("reference_run_id", T.StringType()),
        T.StructField("kind", T.StringType()),  # feature | segment_mix | kpi
        T.StructField("name", T.StringType()),  # the feature, the segment ("<id> <name>"), or "all segments"
        T.StructField("metric", T.StringType()),  # psi | js_distance | share_change | total_variation | conversion_rate_change
        T.StructField("value", T.DoubleType()),
        T.StructField("threshold", T.DoubleType()),
        T.StructField("drifted", T.BooleanType()),
    ]
)


MONITORING_SCHEMAS = {FEATURE_PROFILES: FEATURE_PROFILES_SCHEMA, DRIFT: DRIFT_SCHEMA}


def write_run_table(spark: SparkSession, cfg: Config, stages: StageLog, name: str, df: DataFrame) -> delta.WriteResult:
    """Replace this run's partition of the Delta table `output.path/name`."""
    with stages(f"write {name}") as facts:
        result = delta.replace_partition(spark, df, f"{cfg.output.path}/{name}", {RUN_ID: cfg.run.run_id}, cfg.output.delta_writer)
        facts.update(rows_out=result.rows, version=result.version)
    return result
