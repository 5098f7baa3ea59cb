"""The GA360 hit-level reading, kept as a test oracle: explode each session's hits into the canonical hit
table, then aggregate them with `visit_features`. visitseg itself reads GA360 visits straight from the
session rows (`ingest.ga360.read_visits`); the tests hold the two equal.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from visitseg.core.config import Config
from visitseg.features.schemas import PAGE, PURCHASE
from visitseg.features.validate import check_unique_keys
from visitseg.ingest.common import null_if_not_set, to_hit_table
from visitseg.ingest.ga360 import ACTION_CODES, MICROS, read_sessions


def ga360_hits(spark: SparkSession, cfg: Config, facts: dict | None = None) -> DataFrame:
    """Canonical hits from a GA360 export; fails on duplicate (fullVisitorId, visitId) sessions. Every row is a hit: none is ignored, so `facts` gets nothing."""
    sessions = read_sessions(spark, cfg.input)
    check_unique_keys(sessions, ["visit_key"], "ga360 sessions (fullVisitorId-visitId)")
    return hits_from_sessions(sessions)


def hits_from_sessions(sessions: DataFrame) -> DataFrame:
    """Explode the nested hits (sessions without hits have nothing to segment and are dropped)."""
    hit = F.col("hit")
    is_transaction = hit["transaction"]["transactionRevenue"].isNotNull()
    code = hit["eCommerceAction"]["action_type"]
    action = F.when(is_transaction, F.lit(PURCHASE)).otherwise(F.coalesce(*[F.when(code == c, F.lit(name)) for c, name in ACTION_CODES.items()]))
    exploded = sessions.select("*", F.explode("hits").alias("hit")).drop("hits")
    return to_hit_table(
        exploded.select(
            "visit_key",
            "user_key",
            "visit_date",
            F.timestamp_micros(F.col("visit_start_sec") * 1_000_000 + hit["time"].cast("long") * 1000).alias("hit_ts"),
            hit["hitNumber"].cast("long").alias("hit_number"),
            hit["type"].alias("hit_type"),
            F.when(hit["type"] == PAGE, hit["page"]["pagePath"]).alias("page_path"),
            action.alias("ecommerce_action"),
            F.get(hit["product"], 0)["productSKU"].alias("product_id"),
            F.when(is_transaction, null_if_not_set(hit["transaction"]["transactionId"])).alias("transaction_id"),
            F.when(is_transaction, hit["transaction"]["transactionRevenue"].cast("double") / MICROS).alias("revenue"),
            "channel",
            "source",
            "medium",
            "device",
            "country",
            F.lit(None).alias("engagement_ms"),
            F.lit(None).alias("session_engaged"),
        )
    )
