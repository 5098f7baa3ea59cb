"""Flat event logs (the public Retailrocket `events.csv` layout by default): one row per event.

Columns are mapped through `[events]` in the config. Visits are cut by `events.session_gap_minutes` of
inactivity (see `features.sessionize`). Timestamps are epoch milliseconds (or `events.timestamp_unit`), UTC; the visit date is the UTC
date the visit started on, so a visit that crosses midnight counts on its first day. The date window is
applied to events before sessionising, so a visit that straddles a window edge is cut there.
"""

from __future__ import annotations

import datetime as dt
import logging

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from visitseg.core.config import EventsConfig, InputConfig
from visitseg.core.config_rules import TIMESTAMP_UNITS
from visitseg.core.errors import DataQualityError
from visitseg.ingest.common import in_date_window, local_date, to_hit_table
from visitseg.features.schemas import (
    ADD_PAYMENT_INFO,
    ADD_SHIPPING_INFO,
    ADD_TO_CART,
    CHECKOUT,
    EVENT,
    PAGE,
    PRODUCT_VIEW,
    PURCHASE,
    SEARCH,
    TRANSACTION,
)
from visitseg.features.sessionize import with_sessions
from visitseg.features.validate import check_rows, require_columns

log = logging.getLogger(__name__)


def hits_from_raw(raw: DataFrame, window: InputConfig, log_cfg: EventsConfig, facts: dict | None = None) -> DataFrame:
    """Canonical hits from log rows already read (a whole input, or a micro-batch of `pipelines.incremental`)."""
    events = mapped_events(raw, log_cfg)
    unmapped = ~F.coalesce(F.col("event").isin(*funnel_values(log_cfg).values()), F.lit(False))
    counts = check_rows(
        events, ["user_key", "ts_ms"], not_null=["user_key", "ts_ms"], non_negative=["revenue"], what="events input",
        checks=plausible_values(log_cfg), counted={"unmapped": unmapped},
    )
    if counts["unmapped"]:
        examples = refuse_unmapped(events.filter(unmapped), counts["unmapped"], counts["rows"], window.max_invalid_fraction)
        if facts is not None:
            facts.update(unmapped_events=counts["unmapped"], unmapped_examples=examples)
    hit_ts = F.timestamp_millis("ts_ms")
    in_window = events.withColumn("hit_ts", hit_ts).filter(in_date_window(local_date(hit_ts, window.timezone), window))
    return hits_from_events(in_window, log_cfg, window.timezone)


# Web analytics began long after this; an epoch in seconds read as milliseconds lands in January 1970.
EARLIEST_MS = 946_684_800_000  # 2000-01-01


def plausible_values(cfg: EventsConfig) -> dict[str, Column]:
    """Revenue must be a finite number. Timestamps outside [2000-01-01, tomorrow] mean the configured unit
    is wrong (or the rows are junk): without this check, seconds read as milliseconds squeeze every visit
    into one hit-long session."""
    tomorrow_ms = int((dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)).timestamp() * 1000)
    unit = cfg.timestamp_unit
    return {
        "non-finite revenue (NaN or infinity)": F.isnan("revenue") | (F.abs("revenue") == float("inf")),
        f"timestamps before 2000-01-01 as epoch {unit} (if they are seconds, set events.timestamp_unit = s)": F.col("ts_ms") < EARLIEST_MS,
        f"timestamps in the future as epoch {unit} (if they are microseconds, set events.timestamp_unit = us)": F.col("ts_ms") > tomorrow_ms,
    }


def refuse_unmapped(unmapped: DataFrame, n: int, rows: int, max_invalid_fraction: float) -> str:
    """Events whose value no funnel step maps are kept as plain hits. A few are normal (a log's other
    event types); above input.max_invalid_fraction they mean the mapping is wrong (case, vocabulary).
    Returns the most common of them with their counts, for the run's record."""
    top = unmapped.groupBy("event").count().orderBy(F.desc("count"), "event").limit(5).collect()
    examples = ", ".join(f"{r['event']!r} ({r['count']:,})" for r in top)
    message = (
        f"events input: {n:,} of {rows:,} events ({n / rows:.1%}) have an event value no funnel step maps "
        f"(e.g. {examples}), so they count as hits of no funnel step. Map them under [events] (view_value, add_to_cart_value, "
        f"transaction_value, …; values are case-sensitive)"
    )
    if n / rows > max_invalid_fraction:
        raise DataQualityError(f"{message}, or raise input.max_invalid_fraction (now {max_invalid_fraction})")
    log.warning("%s; ignored, as they are under input.max_invalid_fraction = %s", message, max_invalid_fraction)
    return examples


def mapped_events(raw: DataFrame, cfg: EventsConfig) -> DataFrame:
    """The configured columns under fixed names, cast (text from CSV becomes numbers; junk becomes null)."""
    required = {cfg.timestamp_col: "number", cfg.visitor_col: "id", cfg.event_col: "string", cfg.item_col: "id", cfg.transaction_col: "id"}
    if cfg.revenue_col:
        required[cfg.revenue_col] = "number"
    require_columns(raw, required, "events input")
    revenue = _try_cast(f"`{cfg.revenue_col}`", "DOUBLE") if cfg.revenue_col else F.lit(None).cast("double")
    return raw.select(
        _try_cast(f"try_cast(`{cfg.timestamp_col}` AS DOUBLE) * {TIMESTAMP_UNITS[cfg.timestamp_unit]}", "BIGINT").alias("ts_ms"),
        _id_text(raw, cfg.visitor_col).alias("user_key"),
        F.col(cfg.event_col).cast("string").alias("event"),
        _id_text(raw, cfg.item_col).alias("product_id"),
        _id_text(raw, cfg.transaction_col).alias("transaction_id"),
        revenue.alias("revenue"),
    )


def _try_cast(sql: str, to: str) -> Column:
    """SQL try_cast: null where the value does not convert, whatever spark.sql.ansi.enabled says.
    (The SQL function exists on Spark 3.5 and 4.x; `Column.try_cast` only on 4.x.)"""
    return F.expr(f"try_cast({sql} AS {to})")


def _id_text(df: DataFrame, name: str) -> Column:
    """Ids as text; float ids (pandas writes integer columns with gaps as float) lose their '.0'."""
    if isinstance(df.schema[name].dataType, (T.FloatType, T.DoubleType, T.DecimalType)):
        return _try_cast(f"`{name}`", "BIGINT").cast("string")
    return F.when(F.col(name).cast("string") != "", F.col(name).cast("string"))


def funnel_values(cfg: EventsConfig) -> dict[str, str]:
    """Funnel step → the configured event value, for the steps this log has."""
    values = {
        SEARCH: cfg.search_value,
        PRODUCT_VIEW: cfg.view_value,
        ADD_TO_CART: cfg.add_to_cart_value,
        CHECKOUT: cfg.checkout_value,
        ADD_SHIPPING_INFO: cfg.add_shipping_info_value,
        ADD_PAYMENT_INFO: cfg.add_payment_info_value,
        PURCHASE: cfg.transaction_value,
    }
    return {step: value for step, value in values.items() if value}


def hits_from_events(events: DataFrame, cfg: EventsConfig, timezone: str) -> DataFrame:
    """Sessionise mapped events (ts_ms, hit_ts, user_key, event, product_id, transaction_id, revenue)."""
    event = F.col("event")
    action = F.coalesce(*[F.when(event == value, F.lit(step)) for step, value in funnel_values(cfg).items()])
    typed = events.select(
        "user_key",
        "hit_ts",
        F.when(event == cfg.view_value, PAGE).when(event == cfg.transaction_value, TRANSACTION).otherwise(EVENT).alias("hit_type"),
        # An item view is the log's page view; the item is the page.
        F.when(event == cfg.view_value, F.concat(F.lit("/item/"), F.col("product_id"))).alias("page_path"),
        action.alias("ecommerce_action"),
        "product_id",
        F.when(event == cfg.transaction_value, F.col("transaction_id")).alias("transaction_id"),
        F.when(event == cfg.transaction_value, F.col("revenue")).alias("revenue"),
    )
    return sessions_of(typed, cfg, timezone)


# The hit columns sessions are cut from: a canonical hit table holds them all, so its visits can be cut again.
TYPED_HITS = ("user_key", "hit_ts", "hit_type", "page_path", "ecommerce_action", "product_id", "transaction_id", "revenue")


def sessions_of(typed: DataFrame, cfg: EventsConfig, timezone: str) -> DataFrame:
    """Canonical hits, with visits cut by the inactivity gap, from the TYPED_HITS columns; a visit is dated
    by its start's calendar date in `timezone` (input.timezone)."""
    sessions = with_sessions(
        typed.select(*TYPED_HITS), "user_key", "hit_ts", cfg.session_gap_minutes * 60,
        tie_breakers=["hit_type", "ecommerce_action", "product_id", "transaction_id"],
    )
    return to_hit_table(
        sessions.select(
            "*",
            local_date(F.col("visit_start_ts"), timezone).alias("visit_date"),
            *[F.lit(None).cast("string").alias(c) for c in ("channel", "source", "medium", "device", "country")],
            F.lit(None).alias("engagement_ms"),
            F.lit(None).alias("session_engaged"),
        )
    )
