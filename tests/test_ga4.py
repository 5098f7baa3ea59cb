"""GA4 adapter: event parameters, visit key, page paths, e-commerce fields, hit numbering."""

from __future__ import annotations

import datetime as dt

import pytest
from chispa import assert_df_equality
from support import make_config, utc, write_json_lines

from visitseg.core.errors import InputSchemaError
from visitseg.ingest import read_hits
from visitseg.features.schemas import HIT_SCHEMA

T0 = 1790000000


def param(key, string_value=None, int_value=None):
    return {"key": key, "value": {"string_value": string_value, "int_value": int_value, "float_value": None, "double_value": None}}


def event(name, seconds, session_id=77, location=None, user="u1", date="20261001", txn=None, revenue=None, items=(), medium="cpc"):
    params = [param("ga_session_id", int_value=str(session_id)), param("engagement_time_msec", int_value="900")]
    if location:
        params.append(param("page_location", string_value=location))
    return {
        "event_date": date,
        "event_timestamp": str(int(seconds * 1_000_000)),  # microseconds, as a string in the JSON export
        "event_name": name,
        "user_pseudo_id": user,
        "event_params": params,
        "ecommerce": {"transaction_id": txn, "purchase_revenue": revenue},
        "items": [{"item_id": i} for i in items],
        "device": {"category": "mobile"},
        "geo": {"country": "Japan"},
        "traffic_source": {"name": "spring", "medium": medium, "source": "google"},
    }


EVENTS = [
    # listed out of time order on purpose: hit numbers follow time, not file order
    event("purchase", T0 + 90, location="https://shop.example.com/thanks", txn="T9", revenue=42.0, items=["SKU-1"]),
    event("page_view", T0, location="https://shop.example.com/?utm=x"),
    event("view_item", T0 + 10, items=["SKU-1", "SKU-2"]),
    event("page_view", T0 + 20, location="https://shop.example.com/p/sku-1?ref=home#top"),
    event("add_to_cart", T0 + 30, items=["SKU-1"]),
    event("page_view", T0 + 5000, session_id=78, location="https://shop.example.com/p/sku-1"),
    event("page_view", T0 + 100, user="u2", session_id=77, location="https://shop.example.com/", date="20261002", medium="(none)"),
]


def row(key, user, seconds, number, hit_type, path, action, product, txn=None, revenue=None, day=dt.date(2026, 10, 1), channel="Paid Search", medium="cpc"):
    # Each event of the helper carries engagement_time_msec = 900 and no session_engaged flag.
    return (key, user, day, utc(seconds), number, hit_type, path, action, product, txn, revenue, channel, "google", medium, "mobile", "Japan", 900, None)


def test_events_become_canonical_hits(spark, tmp_path):
    hits = read_hits(spark, make_config("ga4", write_json_lines(tmp_path / "events.json", EVENTS)))
    expected = spark.createDataFrame(
        [
            row("u1-77", "u1", T0, 1, "PAGE", "/", None, None),
            row("u1-77", "u1", T0 + 10, 2, "EVENT", None, "product_view", "SKU-1"),
            row("u1-77", "u1", T0 + 20, 3, "PAGE", "/p/sku-1", None, None),
            row("u1-77", "u1", T0 + 30, 4, "EVENT", None, "add_to_cart", "SKU-1"),
            row("u1-77", "u1", T0 + 90, 5, "TRANSACTION", None, "purchase", "SKU-1", "T9", 42.0),
            row("u1-78", "u1", T0 + 5000, 1, "PAGE", "/p/sku-1", None, None),
            row("u2-77", "u2", T0 + 100, 1, "PAGE", "/", None, None, day=dt.date(2026, 10, 2), channel="Direct", medium="(none)"),
        ],
        HIT_SCHEMA,
    )
    assert_df_equality(hits, expected, ignore_row_order=True, ignore_nullable=True)


def test_date_window_is_inclusive_start_exclusive_end(spark, tmp_path):
    path = write_json_lines(tmp_path / "events.json", EVENTS)
    cfg = make_config("ga4", path, overrides=["input.date_from=2026-10-02", "input.date_to=2026-10-03"])
    assert [r.visit_key for r in read_hits(spark, cfg).collect()] == ["u2-77"]


def test_missing_event_params_is_named(spark, tmp_path):
    spark.read.json(write_json_lines(tmp_path / "e.json", EVENTS)).drop("event_params").write.parquet(str(tmp_path / "p"))
    with pytest.raises(InputSchemaError, match="event_params is missing"):
        read_hits(spark, make_config("ga4", str(tmp_path / "p")))
