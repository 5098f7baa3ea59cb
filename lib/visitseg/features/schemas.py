"""Schemas as named constants: the canonical hit table every adapter produces, and the feature tables.

The canonical hit table has one row per hit (GA360 hit, GA4 event, or flat-log event). Visit attributes
(date, channel, device, country) are repeated on each hit; the visit table takes them from the first hit.
"""

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

# hit_type values
PAGE = "PAGE"
EVENT = "EVENT"
TRANSACTION = "TRANSACTION"

# ecommerce_action values: the funnel steps (GA360 eCommerceAction.action_type, GA4 event names and
# flat-log events map here). A PURCHASE hit is one transaction record: GA360's hit carrying the
# transaction revenue, GA4's `purchase` event, the flat log's transaction event.
SEARCH = "search"
PRODUCT_VIEW = "product_view"
ADD_TO_CART = "add_to_cart"
CHECKOUT = "checkout"
ADD_SHIPPING_INFO = "add_shipping_info"
ADD_PAYMENT_INFO = "add_payment_info"
PURCHASE = "purchase"
# The visit feature counting each funnel step's hits (PURCHASE is counted as `transactions`).
FUNNEL_COUNTS = {
    SEARCH: "searches",
    PRODUCT_VIEW: "product_views",
    ADD_TO_CART: "add_to_carts",
    CHECKOUT: "checkouts",
    ADD_SHIPPING_INFO: "shipping_infos",
    ADD_PAYMENT_INFO: "payment_infos",
}

HIT_SCHEMA = T.StructType(
    [
        T.StructField("visit_key", T.StringType(), False),
        T.StructField("user_key", T.StringType(), True),
        T.StructField("visit_date", T.DateType(), True),
        T.StructField("hit_ts", T.TimestampType(), True),
        T.StructField("hit_number", T.LongType(), True),
        T.StructField("hit_type", T.StringType(), True),
        T.StructField("page_path", T.StringType(), True),
        T.StructField("ecommerce_action", T.StringType(), True),
        T.StructField("product_id", T.StringType(), True),  # first product of the hit
        T.StructField("transaction_id", T.StringType(), True),
        T.StructField("revenue", T.DoubleType(), True),  # currency units (GA360 micros already divided)
        T.StructField("channel", T.StringType(), True),
        T.StructField("source", T.StringType(), True),
        T.StructField("medium", T.StringType(), True),
        T.StructField("device", T.StringType(), True),
        T.StructField("country", T.StringType(), True),
        T.StructField("engagement_ms", T.LongType(), True),  # GA4 engagement_time_msec; null elsewhere
        T.StructField("session_engaged", T.BooleanType(), True),  # GA4 session_engaged flag; null elsewhere
    ]
)


VISIT_FEATURES_SCHEMA = T.StructType(
    [
        T.StructField("visit_key", T.StringType(), False),
        T.StructField("user_key", T.StringType(), True),
        T.StructField("visit_date", T.DateType(), True),
        T.StructField("visit_start_ts", T.TimestampType(), True),
        T.StructField("channel", T.StringType(), True),
        T.StructField("source", T.StringType(), True),
        T.StructField("medium", T.StringType(), True),
        T.StructField("device", T.StringType(), True),
        T.StructField("country", T.StringType(), True),
        T.StructField("pageviews", T.LongType(), False),
        T.StructField("hits", T.LongType(), False),
        T.StructField("unique_pages", T.LongType(), False),
        T.StructField("time_on_site_sec", T.DoubleType(), False),
        T.StructField("transactions", T.LongType(), False),
        T.StructField("transaction_revenue", T.DoubleType(), False),
        T.StructField("time_on_site_sec_per_pageview", T.DoubleType(), False),
        T.StructField("hits_per_pageview", T.DoubleType(), False),
        *[T.StructField(name, T.LongType(), False) for name in FUNNEL_COUNTS.values()],
        T.StructField("cart_steps", T.LongType(), False),  # add_to_carts + checkouts + shipping_infos + payment_infos
        T.StructField("engagement_time_sec", T.DoubleType(), False),
        T.StructField("is_bounce", T.BooleanType(), False),
        T.StructField("run_id", T.StringType(), False),
    ]
)
VISIT_COUNT_COLUMNS = ("pageviews", "hits", "unique_pages", "transactions", *FUNNEL_COUNTS.values(), "cart_steps")
# The steps between viewing a product and buying it. One feature for all of them, because sites track
# different subsets (the GA4 sample has almost no add_to_cart events, yet thousands of checkout steps).
CART_STEPS = ("add_to_carts", "checkouts", "shipping_infos", "payment_infos")
VISIT_AMOUNT_COLUMNS = ("time_on_site_sec", "transaction_revenue", "engagement_time_sec")

USER_FEATURES_SCHEMA = T.StructType(
    [
        T.StructField("user_key", T.StringType(), False),
        T.StructField("sessions", T.LongType(), False),
        T.StructField("total_views", T.LongType(), False),
        T.StructField("product_views", T.LongType(), False),
        T.StructField("add_to_carts", T.LongType(), False),
        T.StructField("searches", T.LongType(), False),
        T.StructField("cart_steps", T.LongType(), False),
        T.StructField("transactions", T.LongType(), False),
        T.StructField("revenue", T.DoubleType(), False),
        T.StructField("engagement_time_sec", T.DoubleType(), False),
        T.StructField("time_on_site_sec", T.DoubleType(), False),
        T.StructField("bounced_sessions", T.LongType(), False),
        T.StructField("views_per_session", T.DoubleType(), False),
        T.StructField("purchase_ratio", T.DoubleType(), False),
        T.StructField("active_days", T.LongType(), False),
        T.StructField("first_visit_date", T.DateType(), True),
        T.StructField("last_visit_date", T.DateType(), True),
        T.StructField("recency_days", T.IntegerType(), True),
        T.StructField("run_id", T.StringType(), False),
    ]
)


def conform(df: DataFrame, schema: T.StructType) -> DataFrame:
    """Select exactly the schema's columns, in order, cast to its types: every stage's output contract."""
    return df.select(*[F.col(f.name).cast(f.dataType).alias(f.name) for f in schema.fields])
