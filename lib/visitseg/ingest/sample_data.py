"""Deterministic sample hits with planted behaviours, written by Spark in parallel in all three formats.

Every random draw is a hash of (seed, visit id, draw name), never a driver-side list or a stateful
generator, so the output is the same for a seed whatever the cluster size or partitioning, and it scales
from a few hundred visits (tests, `visitseg demo`) to hundreds of millions of hits.

Planted segments (and what separates them in the default features):
  bouncer        one page, one hit
  browser        3-6 pages, 60-70 s a page, no e-commerce events
  researcher     20-24 pages, 100-110 s a page
  cart_abandoner 6-10 pages, 30-40 s a page, 2-4 add-to-carts and a checkout, no purchase
  buyer          8-13 pages, 45-55 s a page, 1-2 add-to-carts, a checkout and one purchase of 80-120
The daily mix drifts: bouncers fall from 35% to 25% of visits over the date range while cart abandoners
and buyers grow, so `cluster_mix_daily` has a trend to show.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

SEGMENTS = ("bouncer", "browser", "researcher", "cart_abandoner", "buyer")
START_DATE = dt.date(2026, 10, 1)
VISITS_PER_USER = 3
UNIT = 2**53
CHANNELS = (  # channelGrouping, source, medium
    ("Organic Search", "google", "organic"),
    ("Direct", "(direct)", "(none)"),
    ("Paid Search", "google", "cpc"),
    ("Referral", "news.example.com", "referral"),
    ("Email", "newsletter", "email"),
)
DEVICES = ("desktop", "mobile", "tablet")
COUNTRIES = ("United States", "Germany", "France", "Japan", "Brazil")
VISITS_PER_FILE = 100_000  # output files of roughly 10-50 MB
MEAN_HITS_PER_VISIT = 7.9  # of the mix below, averaged over the drift (GA360/GA4; events lack checkouts: 7.6)


def uniform(seed: int, *parts: Column | str | int) -> Column:
    """A uniform draw in [0, 1) that depends only on the seed and the given parts."""
    cols = [F.lit(p) if isinstance(p, (str, int)) else p for p in parts]
    return F.pmod(F.xxhash64(F.lit(seed), *cols), F.lit(UNIT)) / F.lit(float(UNIT))


def pick(options: tuple, u: Column) -> Column:
    """The option at floor(u * len(options))."""
    index = F.floor(u * len(options)).cast("int")
    return F.element_at(F.array(*[F.lit(o) for o in options]), index + 1)


def visits_for_hits(n_hits: int) -> int:
    return max(1, round(n_hits / MEAN_HITS_PER_VISIT))


def planted_segment(draw: Column, drift: Column) -> Column:
    """The planted segment's index for a uniform `draw`: the mix drifts over the days (`drift` 0 → 1),
    bouncers giving way to cart abandoners and buyers."""
    shares = [0.35 - 0.10 * drift, F.lit(0.30), F.lit(0.12), 0.13 + 0.05 * drift, 0.10 + 0.05 * drift]
    segment = F.lit(len(SEGMENTS) - 1)
    cumulative = F.lit(0.0)
    bounds = []
    for share in shares[:-1]:
        cumulative = cumulative + share
        bounds.append(cumulative)
    for index in reversed(range(len(SEGMENTS) - 1)):
        segment = F.when(draw < bounds[index], F.lit(index)).otherwise(segment)
    return segment


def planted_visits(spark: SparkSession, n_visits: int, days: int, seed: int, partitions: int | None = None) -> DataFrame:
    """One row per planted visit: ids, timing, segment, counts of each hit kind, attributes."""
    visit_id = F.col("id")
    u = lambda name: uniform(seed, visit_id, name)  # noqa: E731 - a local shorthand
    day = F.floor(u("day") * days).cast("int")
    segment = planted_segment(u("segment"), day / F.lit(max(days - 1, 1)))
    size = u("size")
    pageviews = F.element_at(
        F.array(F.lit(1), 3 + F.floor(size * 4), 20 + F.floor(size * 5), 6 + F.floor(size * 5), 8 + F.floor(size * 6)),
        F.col("segment_index") + 1,
    )
    dwell = u("dwell")  # seconds per page
    seconds_per_page = F.element_at(
        F.array(F.lit(0.0), 60 + dwell * 10, 100 + dwell * 10, 30 + dwell * 10, 45 + dwell * 10), F.col("segment_index") + 1
    )
    carts = F.element_at(F.array(F.lit(0), F.lit(0), F.lit(0), 2 + F.floor(u("carts") * 3), 1 + F.floor(u("carts") * 2)), F.col("segment_index") + 1)
    user_n = F.floor(visit_id / VISITS_PER_USER).cast("long")
    slot = F.pmod(visit_id, F.lit(VISITS_PER_USER))
    # Visits of one user sit in separate 8-hour slots, so an inactivity gap never merges two of them.
    start_sec = (
        F.unix_timestamp(F.date_add(F.lit(START_DATE), day).cast("timestamp"))
        + slot * 8 * 3600
        + F.floor(u("start") * 4 * 3600)
    )
    channel_draw = u("channel")
    return (
        spark.range(0, n_visits, 1, partitions)
        .withColumn("segment_index", segment.cast("int"))
        .select(
            visit_id.alias("visit_n"),
            user_n.alias("user_n"),
            F.format_string("%019d", user_n).alias("full_visitor_id"),
            start_sec.cast("long").alias("start_sec"),
            F.col("segment_index"),
            F.element_at(F.array(*[F.lit(s) for s in SEGMENTS]), F.col("segment_index") + 1).alias("segment"),
            pageviews.cast("int").alias("pageviews"),
            F.greatest(F.lit(1), F.ceil(pageviews * (0.7 + 0.3 * u("unique")))).cast("int").alias("unique_pages"),
            seconds_per_page.alias("seconds_per_page"),
            carts.cast("int").alias("add_to_carts"),
            (F.col("segment_index") >= 3).cast("int").alias("checkouts"),
            (F.col("segment_index") == 4).cast("int").alias("purchases"),
            F.round(80 + u("revenue") * 40, 2).alias("revenue"),
            pick(tuple(c[0] for c in CHANNELS), channel_draw).alias("channel"),
            pick(tuple(c[1] for c in CHANNELS), channel_draw).alias("source"),
            pick(tuple(c[2] for c in CHANNELS), channel_draw).alias("medium"),
            pick(DEVICES, u("device")).alias("device"),
            pick(COUNTRIES, u("country")).alias("country"),
        )
        .withColumn("n_hits", F.col("pageviews") + F.col("add_to_carts") + F.col("checkouts") + F.col("purchases"))
        .withColumn("time_on_site_sec", F.floor((F.col("pageviews") - 1) * F.col("seconds_per_page")).cast("long"))
        .withColumn("visit_id", F.col("start_sec"))
    )


def hit_fields(visits_seed: int, i: Column) -> dict[str, Column]:
    """Columns of hit `i` (1-based) of a planted visit, usable both inside `transform` and after `explode`."""
    is_page = i <= F.col("pageviews")
    event_n = i - F.col("pageviews")  # 1.. for the e-commerce events after the pages
    kind = (
        F.when(is_page, F.lit("page"))
        .when(event_n <= F.col("add_to_carts"), F.lit("add_to_cart"))
        .when(event_n <= F.col("add_to_carts") + F.col("checkouts"), F.lit("checkout"))
        .otherwise(F.lit("purchase"))
    )
    page_n = F.pmod(i - 1, F.col("unique_pages"))
    item = F.pmod(F.xxhash64(F.lit(visits_seed), F.col("visit_n"), F.when(is_page, page_n).otherwise(F.lit(1))), F.lit(100_000))
    is_product_page = is_page & (F.pmod(page_n, F.lit(2)) == 1)
    last_page_ms = (F.col("pageviews") - 1) * F.col("seconds_per_page") * 1000
    return {
        "kind": kind,
        "hit_number": i.cast("long"),
        "time_ms": F.floor(F.when(is_page, (i - 1) * F.col("seconds_per_page") * 1000).otherwise(last_page_ms + event_n * 10_000)).cast("long"),
        "item": item.cast("long"),
        "page_path": F.when(is_product_page, F.format_string("/product/%d", item)).otherwise(F.format_string("/category/%d", item)),
        "is_product_page": is_product_page,
    }


def _visit_date_text() -> Column:
    return F.date_format(F.timestamp_seconds("start_sec"), "yyyyMMdd")


def ga360_sessions(visits: DataFrame, seed: int) -> DataFrame:
    """GA360 export rows (one per session, hits nested), built without a shuffle or an explode."""

    def hit(i: Column) -> Column:
        f = hit_fields(seed, i)
        kind, purchase = f["kind"], f["kind"] == "purchase"
        has_product = f["is_product_page"] | kind.isin("add_to_cart", "purchase")
        product = F.array(F.struct(F.format_string("SKU-%d", f["item"]).alias("productSKU")))
        return F.struct(
            f["hit_number"].alias("hitNumber"),
            f["time_ms"].alias("time"),
            F.when(kind == "page", "PAGE").when(purchase, "TRANSACTION").otherwise("EVENT").alias("type"),
            F.struct(F.when(kind == "page", f["page_path"]).alias("pagePath")).alias("page"),
            F.struct(
                F.when(f["is_product_page"], "2").when(kind == "add_to_cart", "3").when(kind == "checkout", "5").when(purchase, "6").otherwise("0").alias("action_type")
            ).alias("eCommerceAction"),
            F.struct(
                F.when(purchase, F.format_string("T%d", F.col("visit_n"))).alias("transactionId"),
                F.when(purchase, (F.col("revenue") * 1_000_000).cast("long")).alias("transactionRevenue"),
            ).alias("transaction"),
            F.when(has_product, product).otherwise(F.array().cast("array<struct<productSKU:string>>")).alias("product"),
        )

    return visits.select(
        F.col("full_visitor_id").alias("fullVisitorId"),
        F.col("visit_id").alias("visitId"),
        F.col("start_sec").alias("visitStartTime"),
        _visit_date_text().alias("date"),
        F.col("channel").alias("channelGrouping"),
        F.struct("source", "medium").alias("trafficSource"),
        F.struct(F.col("device").alias("deviceCategory")).alias("device"),
        F.struct("country").alias("geoNetwork"),
        # GA's session totals, consistent with the hits (GA writes null, not 0, for a zero total).
        F.struct(
            F.col("n_hits").cast("long").alias("hits"),
            F.col("pageviews").cast("long").alias("pageviews"),
            F.when(F.col("n_hits") == 1, F.lit(1).cast("long")).alias("bounces"),
            F.when(F.col("purchases") > 0, F.col("purchases").cast("long")).alias("transactions"),
            F.when(F.col("purchases") > 0, (F.col("revenue") * 1_000_000).cast("long")).alias("totalTransactionRevenue"),
        ).alias("totals"),
        F.transform(F.sequence(F.lit(1), F.col("n_hits")), hit).alias("hits"),
    )


def _exploded_hits(visits: DataFrame, seed: int) -> DataFrame:
    exploded = visits.select("*", F.explode(F.sequence(F.lit(1), F.col("n_hits"))).alias("i"))
    return exploded.select("*", *[c.alias(name) for name, c in hit_fields(seed, F.col("i")).items()])


def ga4_events(visits: DataFrame, seed: int) -> DataFrame:
    """GA4 export rows (one per event, parameters as key/value records)."""
    hits = _exploded_hits(visits, seed)
    kind = F.col("kind")
    purchase = kind == "purchase"

    def param(key: str, string_value: Column | None = None, int_value: Column | None = None) -> Column:
        return F.struct(
            F.lit(key).alias("key"),
            F.struct(
                (string_value if string_value is not None else F.lit(None)).cast("string").alias("string_value"),
                (int_value if int_value is not None else F.lit(None)).cast("long").alias("int_value"),
                F.lit(None).cast("double").alias("float_value"),
                F.lit(None).cast("double").alias("double_value"),
            ).alias("value"),
        )

    item = F.struct(F.format_string("SKU-%d", F.col("item")).alias("item_id"))
    return hits.select(
        _visit_date_text().alias("event_date"),
        ((F.col("start_sec") * 1000 + F.col("time_ms")) * 1000).alias("event_timestamp"),
        F.when(kind == "page", "page_view").when(kind == "checkout", "begin_checkout").otherwise(kind).alias("event_name"),
        F.col("full_visitor_id").alias("user_pseudo_id"),
        F.array(
            param("ga_session_id", int_value=F.col("visit_id")),
            param("page_location", string_value=F.concat(F.lit("https://shop.example.com"), F.col("page_path"))),
            param("engagement_time_msec", int_value=F.lit(1000)),
        ).alias("event_params"),
        F.struct(
            F.when(purchase, F.format_string("T%d", F.col("visit_n"))).alias("transaction_id"),
            F.when(purchase, F.col("revenue")).alias("purchase_revenue"),
        ).alias("ecommerce"),
        F.when(kind.isin("add_to_cart", "purchase") | F.col("is_product_page"), F.array(item)).otherwise(F.array().cast("array<struct<item_id:string>>")).alias("items"),
        F.struct(F.col("device").alias("category")).alias("device"),
        F.struct("country").alias("geo"),
        F.struct(F.lit("(organic)").alias("name"), "medium", "source").alias("traffic_source"),
    )


def flat_events(visits: DataFrame, seed: int) -> DataFrame:
    """Retailrocket-shaped events (timestamp ms, visitorid, event, itemid, transactionid); no checkout event."""
    hits = _exploded_hits(visits, seed).filter(F.col("kind") != "checkout")
    kind = F.col("kind")
    return hits.select(
        (F.col("start_sec") * 1000 + F.col("time_ms")).alias("timestamp"),
        F.col("user_n").alias("visitorid"),
        F.when(kind == "page", "view").when(kind == "add_to_cart", "addtocart").otherwise("transaction").alias("event"),
        F.col("item").alias("itemid"),
        F.when(kind == "purchase", F.col("visit_n")).alias("transactionid"),
    )


def planted_labels(visits: DataFrame, input_format: str) -> DataFrame:
    """visit_key (as visitseg builds it for the format), planted segment and visit date."""
    if input_format == "events":
        key = F.concat_ws("-", F.col("user_n").cast("string"), (F.col("start_sec") * 1000).cast("string"))
    else:
        key = F.concat_ws("-", F.col("full_visitor_id"), F.col("visit_id").cast("string"))
    return visits.select(key.alias("visit_key"), "segment", F.to_date(F.timestamp_seconds("start_sec")).alias("visit_date"))


FORMAT_BUILDERS = {"ga360": ga360_sessions, "ga4": ga4_events, "events": flat_events}


def write_sample(
    spark: SparkSession, input_format: str, path: str, n_visits: int, days: int = 28, seed: int = 42, file_format: str = "parquet"
) -> DataFrame:
    """Write planted hits in `input_format` to `path` and the planted labels to `path/_planted`.

    Returns the planted labels (read back from disk). Folders starting with `_` are skipped by Spark's
    readers, so `path` itself is a valid `--input`.
    """
    partitions = max(spark.sparkContext.defaultParallelism, n_visits // VISITS_PER_FILE)
    visits = planted_visits(spark, n_visits, days, seed, partitions)
    rows = FORMAT_BUILDERS[input_format](visits, seed)
    writer = rows.write.mode("overwrite")
    if file_format == "csv":
        writer.option("header", True).csv(path)
    elif file_format == "json":
        writer.json(path)
    else:
        writer.parquet(path)
    planted_labels(visits, input_format).write.mode("overwrite").parquet(f"{path}/_planted")
    return spark.read.parquet(f"{path}/_planted")
