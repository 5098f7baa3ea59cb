"""GA360: the BigQuery Google Analytics 360 export (`ga_sessions_*`), one row per session with nested hits.

Quirks handled here: INT64 fields arrive as strings in BigQuery's JSON export; `hits.time` is milliseconds
since `visitStartTime` (epoch seconds); `transactionRevenue` is in micros (1,000,000 = one currency unit);
`date` is YYYYMMDD in the view's time zone; `eCommerceAction.action_type` is a code in a string.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from visitseg.config import Config
from visitseg.ingest.common import in_yyyymmdd_window, null_if_not_set, struct_type, to_hit_table, yyyymmdd_to_date
from visitseg.ingest.files import read_raw
from visitseg.schemas import ADD_TO_CART, CHECKOUT, PAGE, PRODUCT_VIEW, PURCHASE
from visitseg.validate import check_unique_keys, require_columns

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


def read_hits(spark: SparkSession, cfg: Config) -> DataFrame:
    """Canonical hits from a GA360 export; fails on duplicate (fullVisitorId, visitId) sessions."""
    raw = read_raw(spark, cfg.input, GA360_JSON_SCHEMA)
    require_columns(raw, REQUIRED, "ga360 input")
    sessions = sessions_in_window(raw, cfg)
    check_unique_keys(sessions, ["visit_key"], "ga360 sessions (fullVisitorId-visitId)")
    return hits_from_sessions(sessions)


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
