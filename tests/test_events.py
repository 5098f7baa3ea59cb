"""Flat event logs: column mapping, casting, and sessionisation edge cases."""

from __future__ import annotations

import datetime as dt

import pytest
from chispa import assert_df_equality
from support import make_config

from visitseg.core.errors import DataQualityError, InputSchemaError
from visitseg.core.spark import session_conf
from visitseg.ingest import read_hits

MIN = 60_000
T0 = 1_790_000_000_000  # 2026-09-21T14:13:20Z, in ms
MIDNIGHT = 1_790_035_200_000  # 2026-09-22T00:00:00Z


def write_csv(spark, tmp_path, rows, header=("timestamp", "visitorid", "event", "itemid", "transactionid")):
    path = str(tmp_path / "events")
    spark.createDataFrame([tuple("" if v is None else str(v) for v in r) for r in rows], list(header)).coalesce(1).write.option("header", True).csv(path)
    return path


EVENTS = [
    # user 1: listed out of order; the 2nd event is exactly 30 min after the 1st (same visit),
    # the 3rd is 30 min + 1 ms after the 2nd (a new visit)
    (T0 + 60 * MIN + 1, 1, "transaction", 5, 900),
    (T0, 1, "view", 5, None),
    (T0 + 30 * MIN, 1, "addtocart", 5, None),
    (T0 + 60 * MIN + 1, 1, "view", 6, None),  # same millisecond as the transaction: view sorts first
    # user 2: a single event, interleaved in time with user 1
    (T0 + 1, 2, "view", 7, None),
    # user 3: a visit across midnight counts on the day it started
    (MIDNIGHT - 10 * MIN, 3, "view", 8, None),
    (MIDNIGHT + 10 * MIN, 3, "view", 9, None),
]


def test_sessionisation_edge_cases(spark, tmp_path):
    hits = read_hits(spark, make_config("events", write_csv(spark, tmp_path, EVENTS)))
    got = hits.select("visit_key", "user_key", "visit_date", "hit_number", "hit_type", "page_path", "ecommerce_action", "product_id", "transaction_id")
    d21 = dt.date(2026, 9, 21)  # user 3's visit runs into the 22nd but started on the 21st
    expected = spark.createDataFrame(
        [
            (f"1-{T0}", "1", d21, 1, "PAGE", "/item/5", "product_view", "5", None),
            (f"1-{T0}", "1", d21, 2, "EVENT", None, "add_to_cart", "5", None),
            (f"1-{T0 + 60 * MIN + 1}", "1", d21, 1, "PAGE", "/item/6", "product_view", "6", None),
            (f"1-{T0 + 60 * MIN + 1}", "1", d21, 2, "TRANSACTION", None, "purchase", "5", "900"),
            (f"2-{T0 + 1}", "2", d21, 1, "PAGE", "/item/7", "product_view", "7", None),
            (f"3-{MIDNIGHT - 10 * MIN}", "3", d21, 1, "PAGE", "/item/8", "product_view", "8", None),
            (f"3-{MIDNIGHT - 10 * MIN}", "3", d21, 2, "PAGE", "/item/9", "product_view", "9", None),
        ],
        got.schema,
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_gap_is_configurable(spark, tmp_path):
    path = write_csv(spark, tmp_path, EVENTS)
    hits = read_hits(spark, make_config("events", path, overrides=["events.session_gap_minutes=31"]))
    assert hits.filter("user_key = '1'").select("visit_key").distinct().count() == 1
    hits = read_hits(spark, make_config("events", path, overrides=["events.session_gap_minutes=29.99"]))
    assert hits.filter("user_key = '1'").select("visit_key").distinct().count() == 3


def test_column_mapping(spark, tmp_path):
    header = ("ts", "user", "kind", "sku", "order")
    path = write_csv(spark, tmp_path, [(T0, "a", "detail", "x", None), (T0 + MIN, "a", "buy", "x", "o1")], header)
    cfg = make_config(
        "events", path,
        overrides=["events.timestamp_col=ts", "events.visitor_col=user", "events.event_col=kind", "events.item_col=sku",
                   "events.transaction_col=order", "events.view_value=detail", "events.transaction_value=buy"],
    )
    got = [(r.hit_number, r.ecommerce_action, r.transaction_id) for r in read_hits(spark, cfg).orderBy("hit_number").collect()]
    assert got == [(1, "product_view", None), (2, "purchase", "o1")]


def test_unparsable_timestamps_fail_with_counts(spark, tmp_path):
    path = write_csv(spark, tmp_path, [(T0, 1, "view", 5, None), ("yesterday", 2, "view", 5, None), ("", 3, "view", 5, None)])
    with pytest.raises(DataQualityError, match=r"2 rows with null ts_ms \(e.g. 2/None, 3/None\)"):
        read_hits(spark, make_config("events", path))


def test_missing_mapped_column_is_named(spark, tmp_path):
    path = write_csv(spark, tmp_path, [(T0, 1, "view", 5)], header=("timestamp", "visitorid", "event", "itemid"))
    with pytest.raises(InputSchemaError, match="transactionid is missing"):
        read_hits(spark, make_config("events", path))


def test_visit_dates_are_the_input_time_zones_whatever_the_sessions(spark, tmp_path):
    """2026-09-22T03:00Z is the 22nd in UTC and the 21st in Los Angeles: visit_date follows input.timezone,
    never spark.sql.session.timeZone (which library callers may have set to anything)."""
    late = MIDNIGHT + 3 * 60 * MIN
    path = write_csv(spark, tmp_path, [(late, 1, "view", 5, None), (late + MIN, 1, "view", 6, None)])

    def dates(session_zone: str, input_zone: str) -> set:
        with session_conf(spark, {"spark.sql.session.timeZone": session_zone}):
            hits = read_hits(spark, make_config("events", path, overrides=[f"input.timezone={input_zone}"]))
            return {r.visit_date for r in hits.select("visit_date").distinct().collect()}

    assert dates("UTC", "UTC") == dates("America/Los_Angeles", "UTC") == {dt.date(2026, 9, 22)}
    assert dates("UTC", "America/Los_Angeles") == dates("Asia/Tokyo", "America/Los_Angeles") == {dt.date(2026, 9, 21)}
    window = make_config("events", path, overrides=["input.date_from=2026-09-22"])
    with session_conf(spark, {"spark.sql.session.timeZone": "America/Los_Angeles"}):
        assert read_hits(spark, window).count() == 2  # the date window uses the same calendar
