"""Every output table: its name, its typed row class (the schema is derived from it), and the one writer.

All tables are Delta tables under the output folder. The run's tables are partitioned by `run_id` and a
run replaces its own partition, so a rerun of a run id leaves one copy of it; `session_scores` (written
by `visitseg score`) is partitioned by (model_run_id, visit_date), so scoring the same days with the same
model again replaces them. A table's schema never changes under it: `delta.check_schemas` refuses a write
of another schema before the first table of a job is written.

| table | written by | schema |
|---|---|---|
| visit_features / user_features | run, features | `features.schemas` (built by Spark) |
| session_clusters / user_clusters | run | the grain's label columns, cluster_id, segment, distance_to_centroid, margin, run_id |
| cluster_centers | run | `CentreRow` (its count and mean columns follow the grain and the feature table) |
| k_diagnostics | run | `DiagnosticsRow` |
| cluster_mix_daily | run | `MixRow` |
| segment_kpis_daily | run, score | `KpiRow` |
| runs | run (last) | `RunRecord` |
| cluster_lineage | run (a retrain) | `LineageRow` |
| session_scores | score | `SessionScore` (built by Spark) |
| feature_profiles | run, score | `FeatureProfileRow` |
| drift | run, score (with a reference run) | `DriftRow` |
| segment_transitions | run, score (visit grain, journeys.enabled) | `TransitionRow` |
| paths_to_purchase | run, score (the same) | `PathRow` |
| segment_attributes | run, score (the same) | `AttributeRow` |
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import typing
from typing import Annotated, Any, Sequence

from pyspark.sql import Column, DataFrame, Row, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from visitseg.core.spark import StageLog, local_frame
from visitseg.storage import delta

RUN_ID = "run_id"  # the partition column of every run table

RUNS = "runs"
CENTERS = "cluster_centers"
DIAGNOSTICS = "k_diagnostics"
MIX_DAILY = "cluster_mix_daily"
KPIS_DAILY = "segment_kpis_daily"
SESSION_SCORES = "session_scores"
LINEAGE = "cluster_lineage"
FEATURE_PROFILES = "feature_profiles"
DRIFT = "drift"
TRANSITIONS = "segment_transitions"
PATHS = "paths_to_purchase"
ATTRIBUTES = "segment_attributes"

Int32 = Annotated[int, T.IntegerType()]  # a field whose column is INT, not BIGINT


@dataclasses.dataclass(frozen=True)
class RunRecord:
    """One `runs` row: the run's facts, its configuration (redacted) and its software versions."""

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


@dataclasses.dataclass(frozen=True)
class DiagnosticsRow:
    """One `k_diagnostics` row: the sweep's figures for one K."""

    run_id: str
    k: Int32
    inertia: float
    silhouette: float
    silhouette_distance: str
    davies_bouldin: float
    calinski_harabasz: float
    min_cluster_share: float
    max_cluster_share: float
    stability: float  # split-half adjusted Rand index
    sweep_rows: int
    sampled: bool
    fit_seconds: float
    chosen: bool


@dataclasses.dataclass(frozen=True)
class MixRow:
    """One `cluster_mix_daily` row: a segment's visits on one day."""

    visit_date: dt.date
    cluster_id: Int32
    segment: str
    n_visits: int
    pct: float  # share of that day's visits
    run_id: str


@dataclasses.dataclass(frozen=True)
class KpiRow:
    """One `segment_kpis_daily` row: a segment's visits and KPIs on one day."""

    visit_date: dt.date
    cluster_id: Int32
    segment: str
    n_visits: int
    share: float  # of that day's visits
    conversion_rate: float | None
    revenue_per_visit: float | None
    bounce_rate: float | None
    run_id: str

    def mix(self) -> MixRow:
        """The `cluster_mix_daily` row of the same segment and day (that table's columns since its first run)."""
        return MixRow(self.visit_date, self.cluster_id, self.segment, self.n_visits, self.share, self.run_id)


# The per-row KPIs of `segment_kpis_daily`: the grain's profile expressions of these names.
DAILY_KPIS = ("conversion_rate", "revenue_per_visit", "bounce_rate")


@dataclasses.dataclass(frozen=True)
class LineageRow:
    """One `cluster_lineage` row: which cluster of the previous run a cluster of this run continues."""

    run_id: str
    cluster_id: Int32
    previous_run_id: str
    previous_cluster_id: Int32 | None  # null: a new cluster
    centroid_shift: float | None  # to the matched centre (else the nearest), previous run's standardised units
    share: float
    previous_share: float | None
    adjusted_rand_index: float | None  # the two runs' labels on the visits both labelled
    shared_visits: int  # how many visits that is (null ARI when 0)


@dataclasses.dataclass(frozen=True)
class NearestCentroid:
    cluster_id: Int32
    distance: float


@dataclasses.dataclass(frozen=True)
class SessionScore:
    """One `session_scores` row (built by Spark, `model.assign.score_visits`; the class gives the schema)."""

    visit_key: str
    user_key: str
    visit_date: dt.date
    cluster_id: Int32
    segment: str
    distance_to_centroid: float
    margin: float
    nearest_centroids: list[NearestCentroid]  # every centre, nearest first (BigQuery ML's NEAREST_CENTROIDS_DISTANCE)
    model_run_id: str
    score_run_id: str


@dataclasses.dataclass(frozen=True)
class TransitionRow:
    """One `segment_transitions` row (`monitor.journeys`): a user's visit of one segment
    followed by a visit of another. The start row's from- and the end row's to-cluster are null."""

    run_id: str
    from_cluster_id: Int32 | None
    from_segment: str  # or "(first visit)"
    to_cluster_id: Int32 | None
    to_segment: str  # or "(no return)"
    transitions: int
    share: float  # of the from-segment's visits (of the users, from "(first visit)")
    median_hours_between: float | None  # start to start, at minute resolution; null for the start and end rows
    next_conversion_rate: float | None  # share of the to-visits with a transaction; null for "(no return)"


@dataclasses.dataclass(frozen=True)
class PathRow:
    """One `paths_to_purchase` row: buyers' segment sequences up to their first purchase visit."""

    run_id: str
    rank: Int32  # 1 = the most users
    path: str  # "A → B → Buyers"; "… → " first when earlier visits were cut (journeys.max_path_length)
    segments: list[str]
    cluster_ids: list[Int32]
    earlier_visits: bool  # the user had visits before the path's first
    users: int
    share_of_buyers: float
    median_days_to_purchase: float  # from the user's first visit's visit_date to the purchase visit's


@dataclasses.dataclass(frozen=True)
class AttributeRow:
    """One `segment_attributes` row: how common a channel, source / medium, device or country is
    in a segment against all visits."""

    run_id: str
    cluster_id: Int32
    segment: str
    attribute: str  # channel | source_medium | device | country
    value: str  # "(not set)" for a null; "(other)" for the values below the top journeys.top_attributes
    rank: Int32  # by the segment's visits; "(other)" last
    visits: int  # the segment's visits with this value
    segment_share: float  # of the segment's visits
    overall_share: float  # of all visits
    lift: float  # segment_share / overall_share


@dataclasses.dataclass(frozen=True)
class FeatureProfileRow:
    """One `feature_profiles` row: a numeric feature's distribution in one run (see `monitor.drift`)."""

    run_id: str
    feature: str
    count: int  # non-null values
    nulls: int
    mean: float | None
    quantiles: list[float]  # at drift.QUANTILES
    bin_edges: list[float]  # inner edges, increasing; the outer ones are -inf and +inf
    bin_counts: list[int]  # len(bin_edges) + 1 counts, of the hash sample


@dataclasses.dataclass(frozen=True)
class DriftRow:
    """One `drift` row: one metric of a run against its reference run."""

    run_id: str
    reference_run_id: str
    kind: str  # feature | segment_mix | kpi
    name: str  # the feature, the segment ("<id> <name>"), or "all segments"
    metric: str  # psi | js_distance | share_change | total_variation | conversion_rate_change
    value: float
    threshold: float
    drifted: bool


@dataclasses.dataclass(frozen=True)
class CentreRow:
    """One `cluster_centers` row. Two parts of it are columns named by the data: `size` is the grain's
    count column (n_visits or n_users), and `means` has one `<column>` per numeric feature-table column."""

    run_id: str
    cluster_id: int
    segment: str
    size: int
    share: float
    conversion_rate: float
    revenue_per_visit: float
    bounce_rate: float
    cart_rate: float
    means: dict[str, float]  # numeric column → its mean in the cluster, in the feature table's order
    standardized: dict[str, float]  # model feature → the centre in standardised units
    features: list[str]

    def columns(self, count_col: str) -> dict[str, Any]:
        """The row as the table's columns, in order (also the JSON report's cluster entries)."""
        return {
            "run_id": self.run_id, "cluster_id": self.cluster_id, "segment": self.segment, count_col: self.size,
            "share": self.share, "conversion_rate": self.conversion_rate, "revenue_per_visit": self.revenue_per_visit,
            "bounce_rate": self.bounce_rate, "cart_rate": self.cart_rate, **self.means,
            "standardized": self.standardized, "features": self.features,
        }


def centers_schema(count_col: str, numeric: Sequence[str]) -> T.StructType:
    """`cluster_centers`' schema for a grain's count column and the feature table's numeric columns."""
    d = T.DoubleType()
    return T.StructType(
        [
            T.StructField("run_id", T.StringType()),
            T.StructField("cluster_id", T.IntegerType()),
            T.StructField("segment", T.StringType()),
            T.StructField(count_col, T.LongType()),
            *[T.StructField(c, d) for c in ("share", "conversion_rate", "revenue_per_visit", "bounce_rate", "cart_rate")],
            *[T.StructField(c, d) for c in numeric],
            T.StructField("standardized", T.MapType(T.StringType(), d)),
            T.StructField("features", T.ArrayType(T.StringType())),
        ]
    )


_SPARK_TYPES = {str: T.StringType(), int: T.LongType(), bool: T.BooleanType(), float: T.DoubleType(), dt.datetime: T.TimestampType(), dt.date: T.DateType()}


def _spark_type(hint: Any) -> T.DataType:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Annotated:
        return args[1]
    if origin is list:
        return T.ArrayType(_spark_type(args[0]))
    if origin is dict:
        return T.MapType(_spark_type(args[0]), _spark_type(args[1]))
    if dataclasses.is_dataclass(hint):
        return schema_of(hint)
    present = [a for a in args if a is not type(None)]
    if present:  # X | None: every column is nullable anyway
        return _spark_type(present[0])
    return _SPARK_TYPES[hint]


def schema_of(record: type) -> T.StructType:
    """The Spark schema of a row class: a column per field, in order; nested row classes become structs."""
    hints = typing.get_type_hints(record, include_extras=True)
    return T.StructType([T.StructField(f.name, _spark_type(hints[f.name])) for f in dataclasses.fields(record)])


def rows_frame(spark: SparkSession, rows: Sequence[Any], record: type) -> DataFrame:
    """A DataFrame of typed rows of `record` (a table's row class), with the schema derived from it."""
    wrong = [type(r).__name__ for r in rows if type(r) is not record]
    if wrong:
        raise TypeError(f"rows_frame of {record.__name__}: got rows of {sorted(set(wrong))}")
    return local_frame(spark, [dataclasses.astuple(r) for r in rows], schema_of(record))


def centres_frame(spark: SparkSession, rows: Sequence[CentreRow], count_col: str, numeric: Sequence[str]) -> DataFrame:
    schema = centers_schema(count_col, numeric)
    return local_frame(spark, [tuple(r.columns(count_col).values()) for r in rows], schema)


SCHEMAS = {
    RUNS: schema_of(RunRecord),
    DIAGNOSTICS: schema_of(DiagnosticsRow),
    MIX_DAILY: schema_of(MixRow),
    KPIS_DAILY: schema_of(KpiRow),
    LINEAGE: schema_of(LineageRow),
    SESSION_SCORES: schema_of(SessionScore),
    FEATURE_PROFILES: schema_of(FeatureProfileRow),
    DRIFT: schema_of(DriftRow),
    TRANSITIONS: schema_of(TransitionRow),
    PATHS: schema_of(PathRow),
    ATTRIBUTES: schema_of(AttributeRow),
}


def newest_run(spark: SparkSession, output: str, where: Column | None = None, columns: Sequence[str] = ()) -> Row | None:
    """The newest row of `output/runs` (optionally filtered by the Column `where`), by finished_at, ties
    by run_id, so "the newest run" never depends on the order the rows were read in; None when the output
    has no `runs` table or no row matches. `columns`: those of the row (default: every one). Every "newest run" question asks it: the report page,
    `score --model latest`, the previous run of a retrain and drift's reference run."""
    if RUNS not in delta.tables_under(output):
        return None
    runs = delta.read_table(spark, f"{output}/{RUNS}")
    if where is not None:
        runs = runs.filter(where)
    newest = runs.orderBy(F.desc("finished_at"), F.desc(RUN_ID)).select(*(columns or runs.columns)).limit(1).collect()
    return newest[0] if newest else None


def write_run_table(spark: SparkSession, output: str, run_id: str, writer: str, stages: StageLog, name: str, df: DataFrame) -> delta.WriteResult:
    """Replace run `run_id`'s partition of the Delta table `output/name`."""
    with stages(f"write {name}") as facts:
        result = delta.replace_partition(spark, df, f"{output}/{name}", {RUN_ID: run_id}, writer)
        facts.update(rows_out=result.rows, version=result.version)
    return result
