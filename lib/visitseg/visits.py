"""Canonical hits → the visit feature table, exactly one row per visit.

Every measure comes from a single aggregation grouped by `visit_key`, so no join can multiply visits;
the grain is still checked before anything is written (`validate_visits`). Definitions:

* pageviews — hits of type PAGE; hits — all hits; unique_pages — distinct page paths of PAGE hits
* time_on_site_sec — seconds between the visit's first and last hit (0 for one-hit visits)
* transactions — distinct transaction ids; transaction_revenue — revenue of purchase hits (0 when none)
* time_on_site_sec_per_pageview, hits_per_pageview — divided by max(pageviews, 1)
* product_views, add_to_carts — hits with that e-commerce action
* is_bounce — the visit has a single hit
* user_key, visit_date, channel, source, medium, device, country — from the visit's first hit
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from visitseg.schemas import (
    ADD_TO_CART,
    PAGE,
    PRODUCT_VIEW,
    VISIT_AMOUNT_COLUMNS,
    VISIT_COUNT_COLUMNS,
    VISIT_FEATURES_SCHEMA,
    conform,
)
from visitseg.validate import check_rows, check_unique_keys

ATTRIBUTES = ("user_key", "visit_date", "channel", "source", "medium", "device", "country")


def visit_features(hits: DataFrame, run_id: str) -> DataFrame:
    """One row per visit of the canonical hit table, with the columns of VISIT_FEATURES_SCHEMA."""
    is_page = F.col("hit_type") == PAGE
    first_hit = F.min_by(F.struct(*ATTRIBUTES), F.struct("hit_ts", "hit_number"))
    visits = hits.groupBy("visit_key").agg(
        first_hit.alias("first"),
        F.min("hit_ts").alias("visit_start_ts"),
        F.max("hit_ts").alias("last_hit_ts"),
        F.count(F.lit(1)).alias("hits"),
        F.count(F.when(is_page, 1)).alias("pageviews"),
        F.size(F.collect_set(F.when(is_page, F.col("page_path")))).alias("unique_pages"),
        F.size(F.collect_set("transaction_id")).alias("transactions"),
        F.sum("revenue").alias("transaction_revenue"),
        F.count(F.when(F.col("ecommerce_action") == PRODUCT_VIEW, 1)).alias("product_views"),
        F.count(F.when(F.col("ecommerce_action") == ADD_TO_CART, 1)).alias("add_to_carts"),
    )
    return finish_visits(visits.select("*", *[F.col(f"first.{c}").alias(c) for c in ATTRIBUTES]), run_id)


def finish_visits(visits: DataFrame, run_id: str) -> DataFrame:
    """The derived columns and the schema, from one row per visit holding the visit attributes and
    visit_start_ts, last_hit_ts, hits, pageviews, unique_pages, transactions, transaction_revenue (null = 0),
    product_views and add_to_carts. Shared by every way of aggregating visits, so the definitions live once."""
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
        "product_views",
        "add_to_carts",
        (F.col("hits") == 1).alias("is_bounce"),
        F.lit(run_id).alias("run_id"),
    )
    return conform(columns, VISIT_FEATURES_SCHEMA)


def validate_visits(visits: DataFrame) -> dict[str, int]:
    """Fail on null or repeated visit keys and negative measures; return {"rows": visits, "hits": hits}."""
    counts = check_rows(
        visits,
        ["visit_key"],
        not_null=["visit_key"],
        non_negative=[*VISIT_COUNT_COLUMNS, *VISIT_AMOUNT_COLUMNS],
        what="visit features",
        sums=["hits"],
    )
    check_unique_keys(visits, ["visit_key"], "visit features")
    return counts
