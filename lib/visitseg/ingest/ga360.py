"""GA360: the BigQuery Google Analytics 360 export (`ga_sessions_*`), one row per session with nested hits.

Quirks handled here: INT64 fields arrive as strings in BigQuery's JSON export; `hits.time` is milliseconds
since `visitStartTime` (epoch seconds); `transactionRevenue` is in micros (1,000,000 = one currency unit);
`date` is YYYYMMDD in the view's time zone; `eCommerceAction.action_type` is a code in a string.

A transaction is a hit carrying `transaction.transactionRevenue` (GA repeats the transaction id on the
following order-confirmation hit without revenue; that hit is no second transaction).

Session metrics follow the export's own `totals` where the rows have them (every real export does):
pageviews, hits, transactions, revenue (`totalTransactionRevenue`) and bounce (`totals.bounces`) are
then GA's numbers, which is what GA's reports show. Measured on the shared real day, the hits alone
give the same numbers except for 2 sessions' revenue (GA's totals are 4.00 and 8.00 USD below the sum
of their two transaction hits, which repeat one id) and 7 sessions' bounce (two interaction hits, yet
`totals.bounces` = 1). Rows without `totals` (hand-made inputs) fall back to the hit-derived values.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from visitseg.core.config import InputConfig
from visitseg.ingest.common import NOT_SET, in_yyyymmdd_window, null_if_not_set, struct_type, try_long, yyyymmdd_to_date
from visitseg.ingest.files import read_raw
from visitseg.features.schemas import ADD_TO_CART, CHECKOUT, FUNNEL_COUNTS, PAGE, PRODUCT_VIEW
from visitseg.features.validate import field_type, require_columns
from visitseg.features.visits import finish_visits, in_user_order

_S = T.StringType()


# The fields visitseg reads, as BigQuery's JSON export writes them (INT64 as strings).
GA360_JSON_SCHEMA = struct_type(
    fullVisitorId=_S,
    visitId=_S,
    visitStartTime=_S,
    date=_S,
    channelGrouping=_S,
    totals=struct_type(hits=_S, pageviews=_S, bounces=_S, transactions=_S, totalTransactionRevenue=_S, transactionRevenue=_S),
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
# The `totals` fields read, each where the input has it: a field an export lacks (properties differ, and
# so do days of one property) falls back on its own source, never to 0 (`visits_from_sessions`).
# transactionRevenue is GA's deprecated revenue total, the fallback of totalTransactionRevenue.
TOTALS = ("hits", "pageviews", "bounces", "transactions", "totalTransactionRevenue", "transactionRevenue")

# eCommerceAction.action_type codes (GA360 export schema): 2 detail view, 3 add to cart, 5 checkout.
# Code 6 (purchase) is not used: the transaction hit (with revenue) is the purchase, see the module doc.
ACTION_CODES = {"2": PRODUCT_VIEW, "3": ADD_TO_CART, "5": CHECKOUT}
MICROS = 1_000_000


def read_visits(spark: SparkSession, window: InputConfig, run_id: str) -> DataFrame:
    """The visit feature table straight from the session rows, equal to `visit_features(read_hits(…))`.

    A GA360 row already is one visit with its hits nested: exploding the hits only to group them back
    shuffles and sorts every hit (the string-valued first-hit attributes and distinct counts force a
    sort-based aggregate). Here each measure is an array expression on the row — no shuffle at all.
    Duplicate sessions surface as duplicate visit keys in the visit grain check.

    The rows are then shuffled, visit rows only (an eighth of the hits): an input split holds ~1M sessions
    at 100M hits, too big a block to cache in a 1 GB heap (it ran out of memory). They are hash-partitioned
    by user and sorted in start order (`in_user_order`), so the journeys walk them without a shuffle or
    sort of their own; the grain check then shuffles the visit keys alone.
    """
    return in_user_order(visits_from_sessions(read_sessions(spark, window), run_id))


def read_sessions(spark: SparkSession, window: InputConfig) -> DataFrame:
    return sessions_from_raw(read_raw(spark, window, GA360_JSON_SCHEMA), window)


def visits_from_raw(raw: DataFrame, window: InputConfig, run_id: str) -> DataFrame:
    """Visit rows of export rows already read (a micro-batch of `pipelines.incremental`): a GA360 daily
    table holds sessions GA has closed, so each row is a whole visit as it arrives."""
    return visits_from_sessions(sessions_from_raw(raw, window), run_id)


def sessions_from_raw(raw: DataFrame, window: InputConfig) -> DataFrame:
    present = [name for name in TOTALS if field_type(raw.schema, f"totals.{name}") is not None]
    require_columns(raw, {**REQUIRED, **{f"totals.{name}": "integer" for name in present}}, "ga360 input")
    # Every `totals` field, null where the input lacks it, so one plan serves every export's layout.
    if present:
        fields = F.struct(*[(F.col(f"totals.{n}") if n in present else F.lit(None)).cast("string").alias(n) for n in TOTALS])
        totals = F.when(F.col("totals").isNotNull(), fields)
    else:
        totals = F.lit(None).cast(GA360_JSON_SCHEMA["totals"].dataType)
    return sessions_in_window(raw.withColumn("totals", totals), window)


def sessions_in_window(raw: DataFrame, window: InputConfig) -> DataFrame:
    """One row per session inside the date window, with the visit key and visit attributes."""
    user, visit, day, start = F.col("fullVisitorId").cast("string"), F.col("visitId").cast("string"), yyyymmdd_to_date(F.col("date")), try_long("visitStartTime")
    # A session without its ids, or with a malformed date or start time, is no visit: its key stays null,
    # so it is counted and excluded (`features.visits.validate_visits`).
    is_a_visit = user.isNotNull() & visit.isNotNull() & day.isNotNull() & start.isNotNull()
    return raw.filter(in_yyyymmdd_window(F.col("date"), window)).select(
        F.when(is_a_visit, F.concat_ws("-", user, visit)).alias("visit_key"),
        user.alias("user_key"),
        day.alias("visit_date"),
        start.alias("visit_start_sec"),
        null_if_not_set(F.col("channelGrouping")).alias("channel"),
        null_if_not_set(F.col("trafficSource.source")).alias("source"),
        null_if_not_set(F.col("trafficSource.medium")).alias("medium"),
        null_if_not_set(F.col("device.deviceCategory")).alias("device"),
        null_if_not_set(F.col("geoNetwork.country")).alias("country"),
        F.col("totals"),
        F.col("hits"),
    )


def visits_from_sessions(sessions: DataFrame, run_id: str) -> DataFrame:
    """Visit features from the nested hits (GA's `totals` where present), with the definitions of
    `visits.visit_features`."""
    hits, totals = F.col("hits"), F.col("totals")
    hit_ms = hits["time"].cast("array<bigint>")
    # Distinct (type, path) pairs, then the PAGE ones among them: the same count as distinct paths of PAGE
    # hits, without a lambda (higher-order functions are interpreted and cost ~3x more at 10M hits).
    pairs = F.array_distinct(F.arrays_zip(hits["type"], hits["page"]["pagePath"]).cast("array<struct<type:string,path:string>>"))
    page_without_path = F.struct(F.lit(PAGE).alias("type"), F.lit(None).cast("string").alias("path"))
    unique_pages = _count_equal(pairs["type"], PAGE) - F.when(F.array_contains(pairs, page_without_path), 1).otherwise(0)
    start_micros = F.col("visit_start_sec") * 1_000_000
    has_totals = totals.isNotNull()

    def from_totals(names: tuple[str, ...], derived: Column) -> Column:
        # Each total falls back on its own: GA's field, its deprecated twin, then the hits. GA leaves a
        # total null where it is 0, where the hits give 0 too; an export that lacks the field gets the hits'.
        return F.coalesce(*[totals[name].cast("long") for name in names], derived)

    transactions, revenue_micros = _transactions(hits["transaction"])
    visits = sessions.filter(F.size(hits["type"]) > 0).select(
        "visit_key", "user_key", "visit_date", "channel", "source", "medium", "device", "country",
        F.timestamp_micros(start_micros + F.array_min(hit_ms) * 1000).alias("visit_start_ts"),
        F.timestamp_micros(start_micros + F.array_max(hit_ms) * 1000).alias("last_hit_ts"),
        from_totals(("hits",), _length(hits["type"])).alias("hits"),  # a leaf field: Parquet reads one column
        from_totals(("pageviews",), _count_equal(hits["type"], PAGE)).alias("pageviews"),
        unique_pages.alias("unique_pages"),
        from_totals(("transactions",), transactions).alias("transactions"),
        (from_totals(("totalTransactionRevenue", "transactionRevenue"), revenue_micros) / MICROS).alias("transaction_revenue"),
        *[
            (_count_equal(hits["eCommerceAction"]["action_type"], code) if code else F.lit(0)).alias(name)
            for name, code in _FUNNEL_CODES.items()
        ],
        F.lit(None).cast("long").alias("engagement_ms"),
        # totals.bounces is 1 on a bounce and null otherwise: a session with totals and no bounce was engaged.
        F.when(has_totals, F.coalesce(totals["bounces"].cast("long"), F.lit(0)) == 0).alias("engaged"),
    )
    return finish_visits(visits, run_id)


# Each funnel count of the visit table and the action code it counts (None: GA360 has no such step).
_CODE_OF_STEP = {step: code for code, step in ACTION_CODES.items()}
_FUNNEL_CODES = {name: _CODE_OF_STEP.get(step) for step, name in FUNNEL_COUNTS.items()}


def _transactions(transaction: Column) -> tuple[Column, Column]:
    """(count, revenue in micros) of a session's transaction hits, by the rule of `visits.visit_features`:
    hits with revenue, de-duplicated by (id, revenue) where the id is real. The arrays are small after
    array_distinct, so the lambdas here cost little."""
    every = F.arrays_zip(transaction["transactionId"].alias("id"), transaction["transactionRevenue"].cast("array<double>").alias("revenue"))
    real_id = lambda t: t["id"].isNotNull() & ~t["id"].isin(*NOT_SET)  # noqa: E731
    with_id = F.filter(F.array_distinct(every), lambda t: t["revenue"].isNotNull() & real_id(t))
    without_id = F.filter(every, lambda t: t["revenue"].isNotNull() & ~real_id(t))
    revenue = F.aggregate(F.concat(with_id, without_id), F.lit(0.0), lambda total, t: total + t["revenue"])
    return (_length(with_id) + _length(without_id)), revenue


def _count_equal(values: Column, value: str) -> Column:
    """How many elements of an array column equal `value` (array_remove drops exactly those)."""
    return _length(values) - _length(F.array_remove(values, value))


def _length(values: Column) -> Column:
    """Array length as a non-null long, the feature schema's type (the arrays are never null here: rows
    without hits are filtered out first)."""
    return F.coalesce(F.size(values), F.lit(0)).cast("long")


