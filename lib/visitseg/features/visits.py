"""Canonical hits → the visit feature table, exactly one row per visit.

Every measure comes from a single aggregation grouped by `visit_key`, so no join can multiply visits;
the grain is still checked before anything is written (`validate_visits`). Definitions:

* pageviews — hits of type PAGE; hits — all hits; unique_pages — distinct page paths of PAGE hits
* time_on_site_sec — seconds between the visit's first and last hit (0 for one-hit visits)
* transactions — PURCHASE hits (one per transaction record), de-duplicated by (transaction id, revenue)
  only where the hit has a real id: GA4 exports write "(not set)" or null ids on real purchases, and each
  of those counts. GA360 counts two records of one id with different revenues as two transactions, and
  so does this rule.
* transaction_revenue — revenue of those transactions (0 when none)
* time_on_site_sec_per_pageview, hits_per_pageview — divided by max(pageviews, 1)
* searches, product_views, add_to_carts, checkouts, shipping_infos, payment_infos — hits at that funnel step
* cart_steps — add_to_carts + checkouts + shipping_infos + payment_infos (see `schemas.CART_STEPS`)
* engagement_time_sec — GA4's engagement_time_msec summed; time_on_site_sec where the source has none
* is_bounce — the visit was not engaged. GA4: no event of the visit has `session_engaged` = "1"; where
  no event carries the flag, GA4's own rule (>= 10 s of engagement time, >= 2 page views or a purchase).
  Sources without an engagement signal (flat logs): a single hit. (GA360's reader takes
  `totals.bounces`, see `ingest.ga360`.)
* user_key, visit_date, channel, source, medium, device, country — from the visit's first hit
"""

from __future__ import annotations

import logging

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from visitseg.features.schemas import (
    CART_STEPS,
    FUNNEL_COUNTS,
    PAGE,
    PURCHASE,
    VISIT_AMOUNT_COLUMNS,
    VISIT_COUNT_COLUMNS,
    VISIT_FEATURES_SCHEMA,
    conform,
)
from visitseg.core.errors import DataQualityError
from visitseg.core.sql import sum_of
from visitseg.features.validate import check_rows, check_unique_keys

log = logging.getLogger(__name__)

ATTRIBUTES = ("user_key", "visit_date", "channel", "source", "medium", "device", "country")
# GA4 counts a session as engaged when it lasted this long (the property default), among other rules.
ENGAGED_SECONDS = 10


def visit_features(hits: DataFrame, run_id: str) -> DataFrame:
    """One row per visit of the canonical hit table, with the columns of VISIT_FEATURES_SCHEMA."""
    is_page = F.col("hit_type") == PAGE
    is_purchase = F.col("ecommerce_action") == PURCHASE
    with_id = F.collect_set(F.when(is_purchase & F.col("transaction_id").isNotNull(), F.struct("transaction_id", "revenue")))
    without_id = is_purchase & F.col("transaction_id").isNull()
    first_hit = F.min_by(F.struct(*ATTRIBUTES), F.struct("hit_ts", "hit_number"))
    visits = hits.groupBy("visit_key").agg(
        first_hit.alias("first"),
        F.min("hit_ts").alias("visit_start_ts"),
        F.max("hit_ts").alias("last_hit_ts"),
        F.count(F.lit(1)).alias("hits"),
        F.count(F.when(is_page, 1)).alias("pageviews"),
        F.size(F.collect_set(F.when(is_page, F.col("page_path")))).alias("unique_pages"),
        (F.size(with_id) + F.count(F.when(without_id, 1))).alias("transactions"),
        (_sum_revenue(with_id) + F.coalesce(F.sum(F.when(without_id, F.col("revenue"))), F.lit(0.0))).alias("transaction_revenue"),
        *[F.count(F.when(F.col("ecommerce_action") == step, 1)).alias(name) for step, name in FUNNEL_COUNTS.items()],
        F.sum("engagement_ms").alias("engagement_ms"),
        F.max("session_engaged").alias("session_engaged"),
    )
    # The session_engaged flag decides where the visit has one; GA4's own rule where it only has engagement
    # times; null (a single hit is a bounce, in finish_visits) where the source has neither.
    engaged = F.when(F.col("session_engaged").isNotNull(), F.col("session_engaged")).when(
        F.col("engagement_ms").isNotNull(),
        (F.col("engagement_ms") >= ENGAGED_SECONDS * 1000) | (F.col("pageviews") >= 2) | (F.col("transactions") > 0),
    )
    return finish_visits(
        visits.select("*", *[F.col(f"first.{c}").alias(c) for c in ATTRIBUTES], engaged.alias("engaged")), run_id
    )


def _sum_revenue(transactions: Column) -> Column:
    """The revenue of an array of (transaction_id, revenue) structs (null revenue counts as 0)."""
    return F.aggregate(transactions, F.lit(0.0), lambda total, t: total + F.coalesce(t["revenue"], F.lit(0.0)))


def finish_visits(visits: DataFrame, run_id: str) -> DataFrame:
    """The derived columns and the schema, from one row per visit holding the visit attributes and
    visit_start_ts, last_hit_ts, hits, pageviews, unique_pages, transactions, transaction_revenue (null = 0),
    the funnel counts, engagement_ms (null = no such signal) and engaged (null = no such signal).
    Shared by every way of aggregating visits, so the definitions live once."""
    per_pageview = F.greatest(F.col("pageviews"), F.lit(1))
    time_on_site = F.coalesce((F.unix_micros("last_hit_ts") - F.unix_micros("visit_start_ts")) / 1_000_000, F.lit(0.0))
    columns = visits.select(
        "visit_key",
        *ATTRIBUTES[:2],
        "visit_start_ts",
        *ATTRIBUTES[2:],
        "pageviews",
        "hits",
        "unique_pages",
        time_on_site.alias("time_on_site_sec"),
        "transactions",
        F.coalesce(F.col("transaction_revenue"), F.lit(0.0)).alias("transaction_revenue"),
        (time_on_site / per_pageview).alias("time_on_site_sec_per_pageview"),
        (F.col("hits") / per_pageview).alias("hits_per_pageview"),
        *FUNNEL_COUNTS.values(),
        sum_of(F.col(c) for c in CART_STEPS).alias("cart_steps"),
        F.coalesce(F.col("engagement_ms") / 1000, time_on_site).alias("engagement_time_sec"),
        (~F.coalesce(F.col("engaged"), F.col("hits") > 1)).alias("is_bounce"),
        F.lit(run_id).alias("run_id"),
    )
    return conform(columns, VISIT_FEATURES_SCHEMA)


def validate_visits(visits: DataFrame, max_invalid_fraction: float) -> dict[str, int]:
    """Fail on repeated visit keys and negative measures; count the input rows that belong to no visit.

    An adapter leaves a row's visit key null where the row cannot belong to a visit (no user or session id,
    a malformed date or time): such rows end up in visit rows of a null key, whose `hits` count them. They
    are excluded (`valid_visits`) and reported; above `max_invalid_fraction` of the input they fail the run,
    since then the mapping or the export is wrong, not a few rows. Returns {"rows": valid visits, "hits":
    their hits, "invalid_hits": input rows in no visit}."""
    invalid = F.col("visit_key").isNull()
    counts = check_rows(
        visits.withColumn("invalid_hits", F.when(invalid, F.col("hits")).otherwise(F.lit(0))),
        ["visit_key"],
        not_null=[],
        non_negative=[*VISIT_COUNT_COLUMNS, *VISIT_AMOUNT_COLUMNS],
        what="visit features",
        sums=["hits", "invalid_hits"],
        counted={"invalid_rows": invalid},
    )
    rows, invalid_hits = counts["rows"] - counts["invalid_rows"], counts["invalid_hits"]
    if invalid_hits:
        share = invalid_hits / counts["hits"]
        message = (
            f"visit features: {invalid_hits:,} of {counts['hits']:,} input rows ({share:.2%}) belong to no visit: they lack the user or "
            f"session id (GA4: user_pseudo_id, the ga_session_id event parameter; GA360: fullVisitorId, visitId) or have a malformed date or time"
        )
        if share > max_invalid_fraction or not rows:
            raise DataQualityError(f"{message}. Fix the export, or raise input.max_invalid_fraction (now {max_invalid_fraction}) to exclude them")
        log.warning("%s; excluded, as they are under input.max_invalid_fraction = %s", message, max_invalid_fraction)
    check_unique_keys(valid_visits(visits), ["visit_key"], "visit features")
    return {"rows": rows, "hits": counts["hits"] - invalid_hits, "invalid_hits": invalid_hits}


def valid_visits(visits: DataFrame) -> DataFrame:
    """The visits of `visits`, without the rows of input rows that belong to no visit (`validate_visits`)."""
    return visits.filter(F.col("visit_key").isNotNull())


def user_order() -> tuple[list[Column], list[Column]]:
    """(partition, order) of a user's visits in start order, ties by visit_key (so the order never depends on
    how the rows were read); a visit without a user is a user of its own. The journeys walk visits in this
    window (`monitor.journeys`), and GA360's visit rows are persisted in this layout (`in_user_order`)."""
    user = F.col("user_key")
    return [user, F.when(user.isNull(), F.col("visit_key"))], [F.col("visit_start_ts").asc_nulls_last(), F.col("visit_key")]


def in_user_order(visits: DataFrame) -> DataFrame:
    """`visits` hash-partitioned by user and sorted in `user_order`. Persisted so, a user-order window over
    the rows (or anything derived from them column by column) needs no shuffle and no sort of its own: Spark
    keeps a cached plan's partitioning and ordering. At 10M GA360 hits that moves the journeys' ~3 s
    shuffle and sort of 1.27M visits into the feature read, where the rows are shuffled anyway."""
    partition, order = user_order()
    return visits.repartition(partition[0]).sortWithinPartitions(*partition, *order)
