"""Journeys: how a user's visits move between segments, the paths to a first purchase, and who each segment is.

A segment says what kind of visit a visit was; these tables answer the next questions, from the same
segmented visits (every visit with its cluster_id) of a run or a score:

- `segment_transitions`: each visit followed by the same user's next visit, in visit start order (ties by
  visit_key, so the order never depends on how the rows were read). A "(first visit)" row leads to each
  user's first visit and a "(no return)" row follows the last, so every visit is counted once as a "from"
  and once as a "to". Visits without a user key belong to no journey and are left out.
- `paths_to_purchase`: for each user with a purchase visit, the segments of the last
  `journeys.max_path_length` visits up to and including the first purchase visit, counted per sequence.
- `segment_attributes`: per segment, channel, source / medium, device and country: the segment's share of
  each value against all visits' share, and the lift; the top `journeys.top_attributes` values per segment
  and attribute, the rest as "(other)".

Cost, measured at 10M GA360 hits (1.27M visits, `scripts/benchmark.py --vs journeys.enabled=false`; the
steps in docs/performance.md): one window walks each user's visits in start order and computes per visit
everything the tables need (the previous visit's segment, the minutes since it, and at a first purchase
the path and the days since the first visit), as integers: cluster ids, not names, which the driver puts
on the few result rows. GA360's visit rows are already persisted in that order (`features.visits.
in_user_order`), so the window shuffles and sorts nothing. That slim frame is persisted while three
aggregations read it. Medians are exact (`percentile`) over whole minutes and whole days, which bounds
the values an aggregation buffer holds at any volume.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Mapping

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from visitseg.core.config import Config, JourneysConfig
from visitseg.core.spark import persisted
from visitseg.features.visits import user_order
from visitseg.storage.tables import ATTRIBUTES, PATHS, TRANSITIONS, AttributeRow, PathRow, TransitionRow, rows_frame

log = logging.getLogger(__name__)

JOURNEY_TABLES = (TRANSITIONS, PATHS, ATTRIBUTES)
FIRST_VISIT = "(first visit)"
NO_RETURN = "(no return)"
NOT_SET = "(not set)"
OTHER = "(other)"
PATH_ARROW = " → "
START, END = -1, -2  # the cluster ids of "(first visit)" and "(no return)" while the tables are counted
# The visit attributes of `segment_attributes`: SQL over the visit_features columns, null as "(not set)".
ATTRIBUTE_VALUES = {
    "channel": "channel",
    "source_medium": f"concat(coalesce(source, '{NOT_SET}'), ' / ', coalesce(medium, '{NOT_SET}'))",
    "device": "device",
    "country": "country",
}


@dataclass(frozen=True)
class JourneyRows:
    """The rows of the three tables: small (bounded by K, the attributes' top values and the buyers' paths)."""

    transitions: list[TransitionRow]
    paths: list[PathRow]
    attributes: list[AttributeRow]

    def frames(self, spark: SparkSession) -> dict[str, DataFrame]:
        return {
            TRANSITIONS: rows_frame(spark, self.transitions, TransitionRow),
            PATHS: rows_frame(spark, self.paths, PathRow),
            ATTRIBUTES: rows_frame(spark, self.attributes, AttributeRow),
        }


def journeys(visits: DataFrame, cfg: Config, run_id: str, names: Mapping[int, str]) -> JourneyRows | None:
    """The three tables of the segmented visits (visit_features columns with cluster_id; `names`: cluster_id
    → segment), computed now; None at user grain (a user row has no journey) or with journeys.enabled = false."""
    if cfg.features.grain != "visit" or not cfg.journeys.enabled:
        return None
    return journey_tables(visits, cfg.journeys, run_id, names)


def journey_tables(visits: DataFrame, cfg: JourneysConfig, run_id: str, names: Mapping[int, str]) -> JourneyRows:
    """The three tables (module docstring), as typed rows. Their three aggregations run as
    concurrent Spark jobs over the persisted frame: each is a few short stages, and together they keep
    both cores busy while the driver plans and compiles the next (0.7 s less at 10M GA360 hits)."""
    with persisted(ordered_visits(visits, cfg.max_path_length), StorageLevel.MEMORY_AND_DISK) as ordered:
        linked = ordered.filter(F.col("linked"))
        with ThreadPoolExecutor(3) as pool:
            counted = pool.submit(transition_counts, linked)
            paths = pool.submit(lambda: path_counts(linked).collect())
            attributes = pool.submit(lambda: attribute_counts(ordered, cfg.top_attributes).collect())
            transition_table = transition_rows(counted.result(), names, run_id)
            path_table = path_rows(paths.result(), names, run_id)
            attribute_table = [AttributeRow(run_id, r.cluster_id, names[r.cluster_id], *r[1:]) for r in attributes.result()]
    log.info("journeys: %d transitions between segments, %d paths to a first purchase, %d attribute rows",
             len(transition_table), len(path_table), len(attribute_table))
    return JourneyRows(transition_table, path_table, attribute_table)


def ordered_visits(visits: DataFrame, max_length: int) -> DataFrame:
    """Per visit, in one window over each user's visits (`user_order`): its cluster, conversion and attribute
    values, the user's previous visit's cluster and the minutes since it, and at the user's first purchase
    visit the clusters of the last `max_length` visits, whether earlier ones were cut, and the days since
    the first visit. A visit without a user is a user of its own here, and `linked` is false."""
    user, cluster = F.col("user_key"), F.col("cluster_id")
    partition, order = user_order()
    in_order = Window.partitionBy(*partition).orderBy(*order)
    purchase = F.col("transactions") > 0
    first_purchase = purchase & (F.coalesce(F.sum(purchase.cast("int")).over(in_order.rowsBetween(Window.unboundedPreceding, -1)), F.lit(0)) == 0)
    started = F.unix_seconds(F.col("visit_start_ts"))
    # The path as offsets, not a collect_list over a sliding frame, which aggregates again at every row.
    path = F.filter(F.array(*[F.lag(cluster, back).over(in_order) for back in range(max_length - 1, 0, -1)], cluster), lambda c: c.isNotNull())
    first_date = F.first("visit_date").over(in_order.rowsBetween(Window.unboundedPreceding, Window.currentRow))
    return visits.select(
        user.isNotNull().alias("linked"), cluster.alias("cluster_id"), purchase.cast("double").alias("converted"),
        F.lag(cluster).over(in_order).alias("previous"),
        F.floor((started - F.lag(started).over(in_order)) / 60).alias("minutes"),
        F.when(first_purchase, path).alias("path"),
        F.when(first_purchase, F.row_number().over(in_order) > max_length).alias("earlier_visits"),
        F.when(first_purchase, F.datediff(F.col("visit_date"), first_date)).alias("days"),
        *[F.coalesce(F.expr(sql), F.lit(NOT_SET)).alias(name) for name, sql in ATTRIBUTE_VALUES.items()],
    )


def transition_counts(ordered: DataFrame) -> list[tuple[int, int, int, float | None, float | None]]:
    """(source, target, transitions, median minutes, next conversion) per pair of cluster ids, START and END
    included: a few rows, from one plain aggregation of columns. A segment's END count is its visits (the
    transitions into it) less the transitions out of it, since every visit but a user's last has one
    successor: no pass of its own. (One aggregation of the visits exploded into structs of their one or two
    steps, with `percentile` among its functions, cost 3.5 s at 10M GA360 hits; three plain aggregations,
    1.3–1.5 s; this one, 0.8 s.)"""
    source, target = F.coalesce(F.col("previous"), F.lit(START)).alias("source"), F.col("cluster_id").alias("target")
    into = ordered.groupBy(source, target).agg(
        F.count(F.lit(1)).alias("n"), F.percentile(F.col("minutes"), F.lit(0.5)).alias("minutes"), F.avg("converted").alias("converted")
    ).collect()
    ends: dict[int, int] = {}
    for r in into:
        ends[r.target] = ends.get(r.target, 0) + r.n
        if r.source != START:
            ends[r.source] = ends.get(r.source, 0) - r.n
    return [(r.source, r.target, r.n, r.minutes, r.converted) for r in into] + [(c, END, n, None, None) for c, n in ends.items() if n]


def transition_rows(counted: list[tuple[int, int, int, float | None, float | None]], names: Mapping[int, str], run_id: str) -> list[TransitionRow]:
    """Named rows, with each pair's share of its source's transitions (= of the segment's visits, or of the users from START)."""
    def named(cluster_id: int) -> tuple[int | None, str]:
        return (None, FIRST_VISIT) if cluster_id == START else (None, NO_RETURN) if cluster_id == END else (cluster_id, names[cluster_id])

    out_of = {}
    for source, _, n, _, _ in counted:
        out_of[source] = out_of.get(source, 0) + n
    return [
        TransitionRow(run_id, *named(source), *named(target), n, n / out_of[source], None if minutes is None else minutes / 60, converted)
        for source, target, n, minutes, converted in sorted(counted)
    ]


def path_counts(ordered: DataFrame) -> DataFrame:
    """(path of cluster ids, earlier visits cut, buyers, median days to purchase) per path: at most the buyers."""
    buyers = ordered.filter(F.col("path").isNotNull())
    return buyers.groupBy("path", "earlier_visits").agg(
        F.count(F.lit(1)).alias("users"), F.percentile(F.col("days"), F.lit(0.5)).alias("median_days_to_purchase")
    )


def path_rows(counted: list, names: Mapping[int, str], run_id: str) -> list[PathRow]:
    """Most buyers first, then by the path as written, then uncut before cut."""
    buyers = sum(r.users for r in counted)
    written = [(("…" + PATH_ARROW if r.earlier_visits else "") + PATH_ARROW.join(names[c] for c in r.path), r) for r in counted]
    written.sort(key=lambda w: (-w[1].users, w[0], w[1].earlier_visits))
    return [
        PathRow(run_id, rank, path, [names[c] for c in r.path], list(r.path), r.earlier_visits, r.users, r.users / buyers, r.median_days_to_purchase)
        for rank, (path, r) in enumerate(written, start=1)
    ]


def attribute_counts(ordered: DataFrame, top: int) -> DataFrame:
    """Each segment's top values of each attribute, and "(other)", with visits, shares and lift."""
    pairs = F.array(*[F.struct(F.lit(name).alias("attribute"), F.col(name).alias("value")) for name in ATTRIBUTE_VALUES])
    counts = ordered.select("cluster_id", F.explode(pairs).alias("a")).groupBy("cluster_id", "a.attribute", "a.value").agg(F.count(F.lit(1)).alias("visits"))
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
        "cluster_id", "attribute", F.when(kept, F.col("value")).otherwise(F.lit(OTHER)).alias("value"), F.least(F.col("rank"), F.lit(top + 1)).alias("rank"),
    ).agg(
        F.sum("visits").alias("visits"), F.sum("all_visits_of_value").alias("all_visits_of_value"),
        F.max("segment_visits").alias("segment_visits"), F.max("all_visits").alias("all_visits"),  # one value per group
    )
    segment_share = F.col("visits") / F.col("segment_visits")
    overall_share = F.col("all_visits_of_value") / F.col("all_visits")
    return buckets.select(
        "cluster_id", "attribute", "value", F.col("rank").cast("int"), "visits",
        segment_share.alias("segment_share"), overall_share.alias("overall_share"), (segment_share / overall_share).alias("lift"),
    )
