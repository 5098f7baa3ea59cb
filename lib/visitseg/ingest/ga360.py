"""GA360: the BigQuery Google Analytics 360 export (`ga_sessions_*`), one row per session with nested hits.

Quirks handled here: INT64 fields arrive as strings in BigQuery's JSON export; `hits.time` is milliseconds
since `visitStartTime` (epoch seconds); `transactionRevenue` is in micros (1,000,000 = one currency unit);
`date` is YYYYMMDD in the view's time zone; `eCommerceAction.action_type` is a code in a string.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from visitseg.config import Config
from visitseg.ingest.common import in_yyyymmdd_window, null_if_not_set, struct_type, to_hit_table, yyyymmdd_to_date
from visitseg.ingest.files import read_raw
from visitseg.schemas import ADD_TO_CART, CHECKOUT, PAGE, PRODUCT_VIEW, PURCHASE
from visitseg.validate import check_unique_keys, require_columns
from visitseg.visits import finish_visits

_S = T.StringType()


# The fields visitseg reads, as BigQuery's JSON export writes them (INT64 as strings).
GA360_JSON_SCHEMA = struct_type(
    fullVisitorId=_S,
    visitId=_S,
    visitStartTime=_S,
    date=_S,
    channelGrouping=_S,
    trafficSource=struct_type(source=_S, medium=_S),
    device=struct_type(deviceCategory=_S),
    geoNetwork=struct_type(country=_S),
    hits=T.ArrayType(
        struct_type(
            hitNumber=_S,
            time=_S,
            type=_S,
            page=struct_type(pagePath=_S),
            eCommerceAction=struct_type(action_type=_S),
            transaction=struct_type(transactionId=_S, transactionRevenue=_S),
            product=T.ArrayType(struct_type(productSKU=_S)),
        )
    ),
)

REQUIRED = {
    "fullVisitorId": "id",
    "visitId": "integer",
    "visitStartTime": "integer",
    "date": "string",
    "channelGrouping": "string",
    "trafficSource.source": "string",
    "trafficSource.medium": "string",
    "device.deviceCategory": "string",
    "geoNetwork.country": "string",
    "hits": "array",
    "hits.hitNumber": "integer",
    "hits.time": "integer",
    "hits.type": "string",
    "hits.page.pagePath": "string",
    "hits.eCommerceAction.action_type": "string",
    "hits.transaction.transactionId": "string",
    "hits.transaction.transactionRevenue": "number",
    "hits.product.productSKU": "string",
}

# eCommerceAction.action_type codes (GA360 export schema): 2 detail view, 3 add to cart, 5 checkout, 6 purchase.
ACTION_CODES = {"2": PRODUCT_VIEW, "3": ADD_TO_CART, "5": CHECKOUT, "6": PURCHASE}
MICROS = 1_000_000
VISIT_ACTIONS = {"2": "product_views", "3": "add_to_carts"}  # the action counts a visit row carries


def read_hits(spark: SparkSession, cfg: Config) -> DataFrame:
    """Canonical hits from a GA360 export; fails on duplicate (fullVisitorId, visitId) sessions."""
    sessions = read_sessions(spark, cfg)
    check_unique_keys(sessions, ["visit_key"], "ga360 sessions (fullVisitorId-visitId)")
    return hits_from_sessions(sessions)


def read_visits(spark: SparkSession, cfg: Config) -> DataFrame:
    """The visit feature table straight from the session rows, equal to `visit_features(read_hits(…))`.

    A GA360 row already is one visit with its hits nested: exploding the hits only to group them back
    shuffles and sorts every hit (the string-valued first-hit attributes and distinct counts force a
    sort-based aggregate). Here each measure is an array expression on the row — no shuffle at all.
    Duplicate sessions surface as duplicate visit keys in the visit grain check.

    The rows are then hash-partitioned by visit key, a shuffle of visit rows only (an eighth of the hits):
    an input split holds ~1M sessions at 100M hits, too big a block to cache in a 1 GB heap (it ran out
    of memory), and the grain check groups by visit key, so it needs no further shuffle.
    """
    return visits_from_sessions(read_sessions(spark, cfg), cfg.run.run_id).repartition("visit_key")


def read_sessions(spark: SparkSession, cfg: Config) -> DataFrame:
    raw = read_raw(spark, cfg.input, GA360_JSON_SCHEMA)
    require_columns(raw, REQUIRED, "ga360 input")
    return sessions_in_window(raw, cfg)


def sessions_in_window(raw: DataFrame, cfg: Config) -> DataFrame:
    """One row per session inside the date window, with the visit key and visit attributes."""
    return raw.filter(in_yyyymmdd_window(F.col("date"), cfg.input)).select(
        F.concat_ws("-", F.col("fullVisitorId").cast("string"), F.col("visitId").cast("string")).alias("visit_key"),
        F.col("fullVisitorId").cast("string").alias("user_key"),
        yyyymmdd_to_date(F.col("date")).alias("visit_date"),
        F.col("visitStartTime").cast("long").alias("visit_start_sec"),
        null_if_not_set(F.col("channelGrouping")).alias("channel"),
        null_if_not_set(F.col("trafficSource.source")).alias("source"),
        null_if_not_set(F.col("trafficSource.medium")).alias("medium"),
        null_if_not_set(F.col("device.deviceCategory")).alias("device"),
        null_if_not_set(F.col("geoNetwork.country")).alias("country"),
        F.col("hits"),
    )


def visits_from_sessions(sessions: DataFrame, run_id: str) -> DataFrame:
    """Visit features from the nested hits, with the definitions of `visits.visit_features`."""
    hits = F.col("hits")
    hit_ms = hits["time"].cast("array<bigint>")
    # Distinct (type, path) pairs, then the PAGE ones among them: the same count as distinct paths of PAGE
    # hits, without a lambda (higher-order functions are interpreted and cost ~3x more at 10M hits).
    pairs = F.array_distinct(F.arrays_zip(hits["type"], hits["page"]["pagePath"]).cast("array<struct<type:string,path:string>>"))
    page_without_path = F.struct(F.lit(PAGE).alias("type"), F.lit(None).cast("string").alias("path"))
    unique_pages = _count_equal(pairs["type"], PAGE) - F.when(F.array_contains(pairs, page_without_path), 1).otherwise(0)
    transaction_ids = F.array_remove(F.array_remove(hits["transaction"]["transactionId"], "(not set)"), "")
    revenue_micros = F.array_compact(hits["transaction"]["transactionRevenue"].cast("array<double>"))
    start_micros = F.col("visit_start_sec") * 1_000_000
    visits = sessions.filter(F.size(hits["type"]) > 0).select(
        "visit_key", "user_key", "visit_date", "channel", "source", "medium", "device", "country",
        F.timestamp_micros(start_micros + F.array_min(hit_ms) * 1000).alias("visit_start_ts"),
        F.timestamp_micros(start_micros + F.array_max(hit_ms) * 1000).alias("last_hit_ts"),
        _length(hits["type"]).alias("hits"),  # a leaf field, so Parquet reads one column, not every hit field
        _count_equal(hits["type"], PAGE).alias("pageviews"),
        unique_pages.alias("unique_pages"),
        _length(F.array_compact(F.array_distinct(transaction_ids))).alias("transactions"),
        (F.aggregate(revenue_micros, F.lit(0.0), lambda total, micros: total + micros) / MICROS).alias("transaction_revenue"),
        *[_count_equal(hits["eCommerceAction"]["action_type"], code).alias(name) for code, name in VISIT_ACTIONS.items()],
    )
    return finish_visits(visits, run_id)


def _count_equal(values: Column, value: str) -> Column:
    """How many elements of an array column equal `value` (array_remove drops exactly those)."""
    return _length(values) - _length(F.array_remove(values, value))


def _length(values: Column) -> Column:
    """Array length as a non-null long, the feature schema's type (the arrays are never null here: rows
    without hits are filtered out first)."""
    return F.coalesce(F.size(values), F.lit(0)).cast("long")


def hits_from_sessions(sessions: DataFrame) -> DataFrame:
    """Explode the nested hits (sessions without hits have nothing to segment and are dropped)."""
    hit = F.col("hit")
    action = F.coalesce(*[F.when(hit["eCommerceAction"]["action_type"] == code, F.lit(name)) for code, name in ACTION_CODES.items()])
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
            null_if_not_set(hit["transaction"]["transactionId"]).alias("transaction_id"),
            (hit["transaction"]["transactionRevenue"].cast("double") / MICROS).alias("revenue"),
            "channel",
            "source",
            "medium",
            "device",
            "country",
        )
    )
