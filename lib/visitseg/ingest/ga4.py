"""GA4: the BigQuery Google Analytics 4 export (`events_*`), one row per event.

A visit is `user_pseudo_id` + the `ga_session_id` event parameter. Quirks: `event_timestamp` is epoch
microseconds; parameters live in the repeated `event_params` key/value records; INT64 values arrive as
strings in BigQuery's JSON export; `event_date` is YYYYMMDD in the property's time zone.

Every `purchase` event is a transaction, whatever its `ecommerce.transaction_id`: the public sample
writes "(not set)" or null on real purchases (all 224 of one week), so ids only de-duplicate where they
are real (`visits.visit_features`). Engagement comes from GA4's own parameters: `engagement_time_msec`
(summed per visit) and `session_engaged`; a bounce is a session that was not engaged, as GA4 defines it.
A session that crosses midnight has one key (user + ga_session_id) on both days' events, so it is one
visit when both days are read; its date is the date of its first event.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from visitseg.core.config import InputConfig
from visitseg.ingest.common import channel_grouping, in_yyyymmdd_window, null_if_not_set, struct_type, to_hit_table, try_long, yyyymmdd_to_date
from visitseg.features.schemas import (
    ADD_PAYMENT_INFO,
    ADD_SHIPPING_INFO,
    ADD_TO_CART,
    CHECKOUT,
    EVENT,
    HIT_SCHEMA,
    PAGE,
    PRODUCT_VIEW,
    PURCHASE,
    SEARCH,
    TRANSACTION,
)
from visitseg.features.validate import require_columns

_S = T.StringType()


GA4_JSON_SCHEMA = struct_type(
    event_date=_S,
    event_timestamp=_S,
    event_name=_S,
    user_pseudo_id=_S,
    event_params=T.ArrayType(
        struct_type(key=_S, value=struct_type(string_value=_S, int_value=_S, float_value=T.DoubleType(), double_value=T.DoubleType()))
    ),
    ecommerce=struct_type(transaction_id=_S, purchase_revenue=T.DoubleType()),
    items=T.ArrayType(struct_type(item_id=_S)),
    device=struct_type(category=_S),
    geo=struct_type(country=_S),
    traffic_source=struct_type(name=_S, medium=_S, source=_S),
)

REQUIRED = {
    "event_date": "string",
    "event_timestamp": "integer",
    "event_name": "string",
    "user_pseudo_id": "id",
    "event_params": "array",
    "event_params.key": "string",
    "event_params.value.string_value": "string",
    "event_params.value.int_value": "integer",
    "ecommerce.transaction_id": "string",
    "ecommerce.purchase_revenue": "number",
    "items.item_id": "string",
    "device.category": "string",
    "geo.country": "string",
    "traffic_source.medium": "string",
    "traffic_source.source": "string",
}

EVENT_ACTIONS = {
    "view_search_results": SEARCH,
    "view_item": PRODUCT_VIEW,
    "add_to_cart": ADD_TO_CART,
    "begin_checkout": CHECKOUT,
    "add_shipping_info": ADD_SHIPPING_INFO,
    "add_payment_info": ADD_PAYMENT_INFO,
    "purchase": PURCHASE,
}
# Strips scheme and host from page_location, keeping the path (query string and fragment dropped).
URL_PATH = r"^(?:[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*)?([^?#]*)"


def event_param(name: str, field: str) -> Column:
    """The `field` of the event parameter called `name` (null when the event lacks it)."""
    return F.get(F.filter("event_params", lambda p: p["key"] == name), 0)["value"][field]


def hits_from_raw(raw: DataFrame, window: InputConfig) -> DataFrame:
    """Canonical hits from export rows already read (a whole input, or a micro-batch of `pipelines.incremental`)."""
    require_columns(raw, REQUIRED, "ga4 input")
    return hits_from_events(raw.filter(in_yyyymmdd_window(F.col("event_date"), window)))


def hits_from_events(events: DataFrame) -> DataFrame:
    name = F.col("event_name")
    action = F.coalesce(*[F.when(name == event, F.lit(act)) for event, act in EVENT_ACTIONS.items()])
    session_id = event_param("ga_session_id", "int_value").cast("string")
    user, day, micros = F.col("user_pseudo_id").cast("string"), yyyymmdd_to_date(F.col("event_date")), try_long("event_timestamp")
    # A visit is one user's session: an event without either (consent mode's cookieless pings, measurement
    # protocol hits without a session), or with a malformed date or time, belongs to none. Its key stays
    # null, so it is counted and excluded, never merged into another visit by the session id alone.
    in_a_visit = user.isNotNull() & session_id.isNotNull() & day.isNotNull() & micros.isNotNull()
    location = event_param("page_location", "string_value")
    path = F.regexp_extract(location, URL_PATH, 1)
    hits = events.select(
        F.when(in_a_visit, F.concat_ws("-", user, session_id)).alias("visit_key"),
        user.alias("user_key"),
        day.alias("visit_date"),
        F.timestamp_micros(micros).alias("hit_ts"),
        name.alias("event_name"),
        F.when(name == "page_view", PAGE).when(name == "purchase", TRANSACTION).otherwise(EVENT).alias("hit_type"),
        F.when(name == "page_view", F.when(path == "", "/").otherwise(path)).alias("page_path"),
        action.alias("ecommerce_action"),
        F.get(F.col("items"), 0)["item_id"].alias("product_id"),
        F.when(name == "purchase", null_if_not_set(F.col("ecommerce.transaction_id"))).alias("transaction_id"),
        F.when(name == "purchase", F.col("ecommerce.purchase_revenue").cast("double")).alias("revenue"),
        channel_grouping(F.col("traffic_source.source"), F.col("traffic_source.medium")).alias("channel"),
        null_if_not_set(F.col("traffic_source.source")).alias("source"),
        null_if_not_set(F.col("traffic_source.medium")).alias("medium"),
        null_if_not_set(F.col("device.category")).alias("device"),
        null_if_not_set(F.col("geo.country")).alias("country"),
        # 0 where the event has none: GA4 counts no engagement time for it (never "unknown").
        F.coalesce(event_param("engagement_time_msec", "int_value").cast("long"), F.lit(0)).alias("engagement_ms"),
        # "1"/"0" in the string value in BigQuery's export (some pipelines write an integer); null when absent.
        (F.coalesce(event_param("session_engaged", "string_value"), event_param("session_engaged", "int_value").cast("string")) == "1").alias(
            "session_engaged"
        ),
    )
    return number_hits(hits)


def number_hits(hits: DataFrame) -> DataFrame:
    """GA4 has no hit number: number events within the visit by time, ties broken by every other hit
    column, so only hits equal in all of them can swap numbers, which changes nothing downstream. Those
    are canonical columns only: the hits of a visit that arrived in pieces (incremental scoring) are
    numbered again, the same way."""
    ties = [f.name for f in HIT_SCHEMA.fields if f.name not in ("visit_key", "hit_ts", "hit_number")]
    order = Window.partitionBy("visit_key").orderBy("hit_ts", *[F.col(c).asc_nulls_first() for c in ties])
    return to_hit_table(hits.withColumn("hit_number", F.row_number().over(order)))
