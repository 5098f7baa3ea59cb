"""Visit features → user features, one row per user (`features.grain = user`).

The user's funnel and engagement are the sums over their visits, so the visit grain's default features
have a user counterpart (sessions, views, engagement time, product views, searches, cart steps,
transactions, revenue). Recency is counted in days from the last visit date in the data (so reruns on the same input agree),
not from today's date.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from visitseg.features.schemas import USER_FEATURES_SCHEMA, conform


def user_features(visits: DataFrame, run_id: str) -> DataFrame:
    """One row per user_key of the visit feature table, with the columns of USER_FEATURES_SCHEMA."""
    users = visits.groupBy("user_key").agg(
        F.count(F.lit(1)).alias("sessions"),
        F.sum("pageviews").alias("total_views"),
        F.sum("product_views").alias("product_views"),
        F.sum("add_to_carts").alias("add_to_carts"),
        F.sum("searches").alias("searches"),
        F.sum("cart_steps").alias("cart_steps"),
        F.sum("transactions").alias("transactions"),
        F.sum("transaction_revenue").alias("revenue"),
        F.sum("engagement_time_sec").alias("engagement_time_sec"),
        F.sum("time_on_site_sec").alias("time_on_site_sec"),
        F.count(F.when(F.col("is_bounce"), 1)).alias("bounced_sessions"),
        F.count(F.when(F.col("transactions") > 0, 1)).alias("converting_sessions"),
        F.count_distinct("visit_date").alias("active_days"),
        F.min("visit_date").alias("first_visit_date"),
        F.max("visit_date").alias("last_visit_date"),
    )
    reference = visits.agg(F.max("visit_date").alias("reference_date"))
    columns = (
        users.join(reference, how="cross")
        .select(
            "user_key",
            "sessions",
            "total_views",
            "product_views",
            "add_to_carts",
            "searches",
            "cart_steps",
            "transactions",
            "revenue",
            "engagement_time_sec",
            "time_on_site_sec",
            "bounced_sessions",
            (F.col("total_views") / F.col("sessions")).alias("views_per_session"),
            (F.col("converting_sessions") / F.col("sessions")).alias("purchase_ratio"),
            "active_days",
            "first_visit_date",
            "last_visit_date",
            F.datediff("reference_date", "last_visit_date").alias("recency_days"),
            F.lit(run_id).alias("run_id"),
        )
    )
    return conform(columns, USER_FEATURES_SCHEMA)
