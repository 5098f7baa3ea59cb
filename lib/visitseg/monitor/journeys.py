"""Journeys: how a user's visits move between segments, the paths to a first purchase, and who each segment is.

A segment says what kind of visit a visit was; these tables answer the next questions, from the same
segmented visits (every visit with its cluster_id and segment) of a run or a score:

- `segment_transitions`: each visit followed by the same user's next visit, in visit start order (ties by
  visit_key, so the order never depends on how the rows were read). A "(first visit)" row leads to each
  user's first visit and a "(no return)" row follows the last, so every visit is counted once as a "from"
  and once as a "to". Visits without a user key belong to no journey and are left out.
- `paths_to_purchase`: for each user with a purchase visit, the segments of the last
  `journeys.max_path_length` visits up to and including the first purchase visit, counted per sequence.
- `segment_attributes`: per segment, channel, source / medium, device and country: the segment's share of
  each value against all visits' share, and the lift; the top `journeys.top_attributes` values per segment
  and attribute, the rest as "(other)".

Each table is one aggregation over the visits (a window by user for the first two) and a few rows per
segment, so its cost grows with the visits, not with the segments. Medians are exact (`percentile`) over
whole minutes and whole days, which bounds the values an aggregation buffer holds at any volume.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from visitseg.core.config import Config, JourneysConfig
from visitseg.features.schemas import conform
from visitseg.storage.tables import ATTRIBUTES, PATHS, TRANSITIONS, AttributeRow, PathRow, TransitionRow, schema_of

JOURNEY_TABLES = (TRANSITIONS, PATHS, ATTRIBUTES)
FIRST_VISIT = "(first visit)"
NO_RETURN = "(no return)"
NOT_SET = "(not set)"
OTHER = "(other)"
PATH_ARROW = " → "
# The visit attributes of `segment_attributes`: SQL over the visit_features columns, null as "(not set)".
ATTRIBUTE_VALUES = {
    "channel": "channel",
    "source_medium": f"concat(coalesce(source, '{NOT_SET}'), ' / ', coalesce(medium, '{NOT_SET}'))",
    "device": "device",
    "country": "country",
}


def in_start_order() -> Window:
    """A user's visits in start order; visits of the same start are ordered by key."""
    return Window.partitionBy("user_key").orderBy(F.col("visit_start_ts").asc_nulls_last(), F.col("visit_key"))


def whole_table() -> Window:
    """All rows of a small aggregated table, for totals and ranks over all of them."""
    return Window.partitionBy(F.lit(0))


def journeys(visits: DataFrame, cfg: Config, run_id: str) -> dict[str, DataFrame]:
    """The three tables of the segmented visits (visit_features columns with cluster_id and segment), lazily;
    none at user grain (a user row has no journey) or with journeys.enabled = false."""
    if cfg.features.grain != "visit" or not cfg.journeys.enabled:
        return {}
    return journey_tables(visits, cfg.journeys, run_id)


def journey_tables(visits: DataFrame, cfg: JourneysConfig, run_id: str) -> dict[str, DataFrame]:
    """The three tables of the segmented visits, lazily."""
    linked = visits.filter(F.col("user_key").isNotNull())
    return {
        TRANSITIONS: segment_transitions(linked, run_id),
        PATHS: paths_to_purchase(linked, cfg.max_path_length, run_id),
        ATTRIBUTES: segment_attributes(visits, cfg.top_attributes, run_id),
    }


def segment_transitions(visits: DataFrame, run_id: str) -> DataFrame:
    """One row per (from segment, to segment) pair seen, with the start and end rows (module docstring)."""
    this = F.struct(F.col("cluster_id").alias("id"), F.col("segment").alias("name"))
    windowed = visits.select(
        this.alias("this"), "visit_start_ts", (F.col("transactions") > 0).cast("double").alias("converted"),
        F.lag(this).over(in_start_order()).alias("previous"), F.lag("visit_start_ts").over(in_start_order()).alias("previous_start"),
        F.lead("visit_key").over(in_start_order()).isNull().alias("is_last"),
    )
    minutes = F.floor((F.unix_seconds(F.col("visit_start_ts")) - F.unix_seconds(F.col("previous_start"))) / 60)
    start = F.struct(F.lit(None).cast("int").alias("id"), F.lit(FIRST_VISIT).alias("name"))
    end = F.struct(F.lit(None).cast("int").alias("id"), F.lit(NO_RETURN).alias("name"))

    def step(source: Column, target: Column, gap: Column, converted: Column) -> Column:
        return F.struct(source.alias("source"), target.alias("target"), gap.alias("minutes"), converted.alias("converted"))

    into_this = step(F.coalesce(F.col("previous"), start), F.col("this"), minutes, F.col("converted"))
    after_last = F.when(F.col("is_last"), step(F.col("this"), end, F.lit(None).cast("long"), F.lit(None).cast("double")))
    steps = windowed.select(F.explode(F.filter(F.array(into_this, after_last), lambda s: s.isNotNull())).alias("s")).select("s.*")
    pairs = steps.groupBy("source", "target").agg(
        F.count(F.lit(1)).alias("transitions"),
        (F.percentile(F.col("minutes"), F.lit(0.5)) / 60).alias("median_hours_between"),
        F.avg("converted").alias("next_conversion_rate"),
    )
    from_visits = F.sum("transitions").over(Window.partitionBy(F.col("source")))
    return conform(
        pairs.select(
            F.lit(run_id).alias("run_id"),
            F.col("source.id").alias("from_cluster_id"), F.col("source.name").alias("from_segment"),
            F.col("target.id").alias("to_cluster_id"), F.col("target.name").alias("to_segment"),
            "transitions", (F.col("transitions") / from_visits).alias("share"), "median_hours_between", "next_conversion_rate",
        ),
        schema_of(TransitionRow),
    )


def paths_to_purchase(visits: DataFrame, max_length: int, run_id: str) -> DataFrame:
    """Buyers' segment sequences up to their first purchase visit, most users first (module docstring)."""
    by_user = Window.partitionBy("user_key")
    numbered = visits.select(
        "user_key", "cluster_id", "segment", "visit_date", (F.col("transactions") > 0).alias("purchase"),
        F.row_number().over(in_start_order()).alias("n"),
    )
    marked = numbered.select(
        "*",
        F.min(F.when(F.col("purchase"), F.col("n"))).over(by_user).alias("purchase_n"),
        F.min(F.when(F.col("n") == 1, F.col("visit_date"))).over(by_user).alias("first_date"),
    )
    in_path = marked.filter((F.col("n") <= F.col("purchase_n")) & (F.col("n") > F.col("purchase_n") - max_length))
    per_buyer = in_path.groupBy("user_key").agg(
        F.array_sort(F.collect_list(F.struct("n", "segment", "cluster_id"))).alias("steps"),
        F.max(F.col("purchase_n") > max_length).alias("earlier_visits"),
        F.max(F.when(F.col("n") == F.col("purchase_n"), F.datediff("visit_date", "first_date"))).alias("days"),
    )
    paths = per_buyer.groupBy(
        F.col("steps.segment").alias("segments"), F.col("steps.cluster_id").alias("cluster_ids"), "earlier_visits"
    ).agg(F.count(F.lit(1)).alias("users"), F.percentile(F.col("days"), F.lit(0.5)).alias("median_days_to_purchase"))
    path = F.concat(F.when(F.col("earlier_visits"), F.lit("…" + PATH_ARROW)).otherwise(F.lit("")), F.concat_ws(PATH_ARROW, "segments"))
    most_users_first = whole_table().orderBy(F.desc("users"), path, F.col("earlier_visits"))
    return conform(
        paths.select(
            F.lit(run_id).alias("run_id"), F.row_number().over(most_users_first).alias("rank"), path.alias("path"), "segments", "cluster_ids",
            "earlier_visits", "users", (F.col("users") / F.sum("users").over(whole_table())).alias("share_of_buyers"), "median_days_to_purchase",
        ),
        schema_of(PathRow),
    )


def segment_attributes(visits: DataFrame, top: int, run_id: str) -> DataFrame:
    """Each segment's top values of each attribute, and "(other)", with shares and lift (module docstring)."""
    pairs = F.array(*[F.struct(F.lit(name).alias("attribute"), F.coalesce(F.expr(sql), F.lit(NOT_SET)).alias("value")) for name, sql in ATTRIBUTE_VALUES.items()])
    counts = (
        visits.select("cluster_id", "segment", F.explode(pairs).alias("a"))
        .groupBy("cluster_id", "segment", "a.attribute", "a.value")
        .agg(F.count(F.lit(1)).alias("visits"))
    )
    in_segment = Window.partitionBy("cluster_id", "attribute")
    ranked = counts.select(
        "*",
        F.sum("visits").over(Window.partitionBy("attribute", "value")).alias("all_visits_of_value"),
        F.sum("visits").over(in_segment).alias("segment_visits"),
        F.sum("visits").over(Window.partitionBy("attribute")).alias("all_visits"),
        F.row_number().over(in_segment.orderBy(F.desc("visits"), F.col("value"))).alias("rank"),
    )
    kept = F.col("rank") <= top
    buckets = ranked.groupBy(
        "cluster_id", "segment", "attribute",
        F.when(kept, F.col("value")).otherwise(F.lit(OTHER)).alias("value"), F.least(F.col("rank"), F.lit(top + 1)).alias("rank"),
    ).agg(
        F.sum("visits").alias("visits"), F.sum("all_visits_of_value").alias("all_visits_of_value"),
        F.max("segment_visits").alias("segment_visits"), F.max("all_visits").alias("all_visits"),  # one value per group
    )
    segment_share = F.col("visits") / F.col("segment_visits")
    overall_share = F.col("all_visits_of_value") / F.col("all_visits")
    return conform(
        buckets.select(
            F.lit(run_id).alias("run_id"), "cluster_id", "segment", "attribute", "value", "rank", "visits",
            segment_share.alias("segment_share"), overall_share.alias("overall_share"), (segment_share / overall_share).alias("lift"),
        ),
        schema_of(AttributeRow),
    )

