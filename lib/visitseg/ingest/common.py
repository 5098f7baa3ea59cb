"""Pieces every adapter shares: the date window, channel grouping, and the canonical hit projection."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from visitseg.core.config import InputConfig
from visitseg.features.schemas import HIT_SCHEMA, conform


def struct_type(**fields: T.DataType) -> T.StructType:
    """A StructType from keyword arguments, for writing the export schemas compactly."""
    return T.StructType([T.StructField(name, data_type) for name, data_type in fields.items()])


def in_date_window(day: Column, cfg: InputConfig) -> Column:
    """True for dates inside [date_from, date_to); `day` is a DateType column."""
    condition = F.lit(True)
    if cfg.date_from:
        condition = condition & (day >= F.lit(cfg.date_from).cast("date"))
    if cfg.date_to:
        condition = condition & (day < F.lit(cfg.date_to).cast("date"))
    return condition


def in_yyyymmdd_window(day: Column, cfg: InputConfig) -> Column:
    """The date window on a YYYYMMDD string column (GA exports), compared as text so filters push down."""
    condition = F.lit(True)
    if cfg.date_from:
        condition = condition & (day >= F.lit(cfg.date_from.replace("-", "")))
    if cfg.date_to:
        condition = condition & (day < F.lit(cfg.date_to.replace("-", "")))
    return condition


def yyyymmdd_to_date(day: Column) -> Column:
    """The date of a YYYYMMDD string, null where it is none (a malformed export value): the same on every
    Spark line and ANSI setting, where `to_date` either fails the whole run or quietly gives null. Rows
    whose date is null belong to no visit; they are counted and excluded (`features.visits.validate_visits`)."""
    return F.try_to_timestamp(day, F.lit("yyyyMMdd")).cast("date")


def local_date(instant: Column, timezone: str) -> Column:
    """The calendar date of a timestamp in `timezone`, whatever the session's or the driver's time zone
    (`to_date` would follow spark.sql.session.timeZone): `from_utc_timestamp` shifts the instant by the
    zone's offset at that instant, and its micros since the epoch then count the local days."""
    shifted = F.unix_micros(F.from_utc_timestamp(instant, timezone))
    return F.date_from_unix_date(F.floor(shifted / MICROS_PER_DAY).cast("int"))


MICROS_PER_DAY = 86_400_000_000


def try_long(column: str) -> Column:
    """The column as a BIGINT, null where its text is no number (SQL `try_cast`: Column.try_cast is Spark 4 only)."""
    return F.expr(f"try_cast(`{column}` AS BIGINT)")


def channel_grouping(source: Column, medium: Column) -> Column:
    """A coarse default channel grouping from source/medium, as GA's rules name them."""
    m = F.lower(F.coalesce(medium, F.lit("")))
    s = F.lower(F.coalesce(source, F.lit("")))
    return (
        F.when((s == "(direct)") | (m.isin("(none)", "")), "Direct")
        .when(m == "organic", "Organic Search")
        .when(m.isin("cpc", "ppc", "paidsearch"), "Paid Search")
        .when(m.isin("display", "cpm", "banner"), "Display")
        .when(m == "email", "Email")
        .when(m == "affiliate", "Affiliates")
        .when(m == "social", "Social")
        .when(m == "referral", "Referral")
        .otherwise("(Other)")
    )


NOT_SET = ("(not set)", "")


def null_if_not_set(value: Column) -> Column:
    """GA writes "(not set)" where a value is missing; treat it as null."""
    return F.when(value.isin(*NOT_SET), F.lit(None)).otherwise(value)


def to_hit_table(df: DataFrame) -> DataFrame:
    """Project onto the canonical hit schema (the adapters' output contract)."""
    return conform(df, HIT_SCHEMA)
