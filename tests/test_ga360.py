"""GA360 adapter: nested hits with products, BigQuery's JSON quirks, the date window, duplicate sessions."""

from __future__ import annotations

import datetime as dt

import pytest
from chispa import assert_approx_df_equality, assert_df_equality
from support import make_config, utc, write_json_lines

from visitseg.core.errors import GrainError, InputSchemaError
from visitseg.ingest import sample_data
from ga360_oracle import ga360_hits
from visitseg.ingest import read_visits
from visitseg.features.schemas import HIT_SCHEMA
from visitseg.features.visits import visit_features

START = 1790000000  # 2026-09-21T14:13:20Z


def hit(number, time_ms, hit_type, path, action, products=(), transaction=(None, None)):
    return {
        "hitNumber": str(number),  # BigQuery's JSON export writes INT64 as strings
        "time": str(time_ms),
        "type": hit_type,
        "page": {"pagePath": path},
        "eCommerceAction": {"action_type": action},
        "transaction": {"transactionId": transaction[0], "transactionRevenue": transaction[1]},
        "product": [{"productSKU": sku} for sku in products],
    }


def session(visitor, visit_id, date, hits, channel="Organic Search", start=START):
    return {
        "fullVisitorId": visitor,
        "visitId": str(visit_id),
        "visitStartTime": str(start),
        "date": date,
        "channelGrouping": channel,
        "trafficSource": {"source": "google", "medium": "organic"},
        "device": {"deviceCategory": "desktop"},
        "geoNetwork": {"country": "Germany"},
        "hits": hits,
    }


SESSIONS = [
    session(
        "111",
        1001,
        "20261001",
        [
            hit(1, 0, "PAGE", "/home", "0"),
            hit(2, 30000, "PAGE", "/product/a", "2", products=["SKU-A", "SKU-B"]),
            hit(3, 45000, "EVENT", "/product/a", "3", products=["SKU-A"]),
            hit(4, 60500, "TRANSACTION", "/checkout", "6", products=["SKU-A"], transaction=("T1", "25500000")),
        ],
    ),
    session("222", 2002, "20261002", [hit(1, 0, "PAGE", "/home", "0")], channel="(not set)", start=START + 86400),
    session("333", 3003, "20260930", [hit(1, 0, "PAGE", "/old", "0")], start=START - 86400),
]


def expected_row(key, user, day, seconds, number, hit_type, path, action, product, txn, revenue, channel):
    source, medium = "google", "organic"
    return (key, user, day, utc(seconds), number, hit_type, path, action, product, txn, revenue, channel, source, medium, "desktop", "Germany", None, None)


def test_nested_hits_become_canonical_hits(spark, tmp_path):
    path = write_json_lines(tmp_path / "ga360" / "ga_sessions_20261001.json", SESSIONS)
    cfg = make_config("ga360", path, overrides=["input.date_from=2026-10-01"])

    hits = ga360_hits(spark, cfg)

    d1, d2 = dt.date(2026, 10, 1), dt.date(2026, 10, 2)
    expected = spark.createDataFrame(
        [
            expected_row("111-1001", "111", d1, START, 1, "PAGE", "/home", None, None, None, None, "Organic Search"),
            expected_row("111-1001", "111", d1, START + 30, 2, "PAGE", "/product/a", "product_view", "SKU-A", None, None, "Organic Search"),
            expected_row("111-1001", "111", d1, START + 45, 3, "EVENT", None, "add_to_cart", "SKU-A", None, None, "Organic Search"),
            expected_row("111-1001", "111", d1, START + 60.5, 4, "TRANSACTION", None, "purchase", "SKU-A", "T1", 25.5, "Organic Search"),
            expected_row("222-2002", "222", d2, START + 86400, 1, "PAGE", "/home", None, None, None, None, None),
        ],
        HIT_SCHEMA,
    )
    assert_df_equality(hits, expected, ignore_row_order=True, ignore_nullable=True)


def test_parquet_export_with_integer_columns(spark, tmp_path):
    json_path = write_json_lines(tmp_path / "in.json", SESSIONS[:1])
    typed = spark.read.json(json_path).selectExpr(
        "fullVisitorId", "cast(visitId as long) as visitId", "cast(visitStartTime as long) as visitStartTime", "date",
        "channelGrouping", "trafficSource", "device", "geoNetwork",
        "transform(hits, h -> named_struct('hitNumber', cast(h.hitNumber as long), 'time', cast(h.time as long), "
        "'type', h.type, 'page', h.page, 'eCommerceAction', h.eCommerceAction, "
        "'transaction', named_struct('transactionId', h.transaction.transactionId, "
        "'transactionRevenue', cast(h.transaction.transactionRevenue as long)), 'product', h.product)) as hits",
    )
    typed.write.parquet(str(tmp_path / "parquet"))
    hits = ga360_hits(spark, make_config("ga360", str(tmp_path / "parquet")))
    assert hits.count() == 4
    assert hits.agg({"revenue": "sum"}).first()[0] == pytest.approx(25.5)


def test_duplicate_sessions_fail_with_counts_and_keys(spark, tmp_path):
    path = write_json_lines(tmp_path / "dup.json", SESSIONS + SESSIONS[:1])
    with pytest.raises(GrainError, match=r"1 keys \(visit_key\) occur more than once, e.g. 111-1001"):
        ga360_hits(spark, make_config("ga360", path))


def test_missing_nested_column_is_named(spark, tmp_path):
    broken = [dict(SESSIONS[0], hits=[{k: v for k, v in h.items() if k != "page"} for h in SESSIONS[0]["hits"]])]
    spark.read.json(write_json_lines(tmp_path / "b.json", broken)).write.parquet(str(tmp_path / "p"))
    with pytest.raises(InputSchemaError, match="hits.page.pagePath is missing"):
        ga360_hits(spark, make_config("ga360", str(tmp_path / "p")))


def test_wrong_type_is_named(spark, tmp_path):
    spark.read.json(write_json_lines(tmp_path / "b.json", SESSIONS)).selectExpr(
        "*", "array(1.5D) as channelGrouping2"
    ).drop("channelGrouping").withColumnRenamed("channelGrouping2", "channelGrouping").write.parquet(str(tmp_path / "p"))
    with pytest.raises(InputSchemaError, match="channelGrouping has type array<double>, expected string"):
        ga360_hits(spark, make_config("ga360", str(tmp_path / "p")))


EDGE_SESSIONS = SESSIONS + [
    session(  # repeated pages, hits out of time order, a "(not set)" and a repeated transaction id, a null time
        "444",
        4004,
        "20261003",
        [
            hit(1, 90000, "PAGE", "/a", "0"),
            hit(2, 1000, "PAGE", "/a", "2"),
            hit(3, 5000, "PAGE", "/b", "3"),
            hit(4, 7000, "EVENT", "/b", "3"),
            hit(5, 8000, "TRANSACTION", "/c", "6", transaction=("T7", "1000000")),
            hit(6, 9000, "TRANSACTION", "/c", "6", transaction=("T7", "2500000")),
            hit(7, 9500, "TRANSACTION", "/c", "6", transaction=("(not set)", None)),
            dict(hit(8, 0, "EVENT", None, None), time=None),
            hit(9, 9600, "PAGE", None, "0"),  # a page hit without a path is a pageview but not a page
        ],
    ),
    session("555", 5005, "20261003", []),  # no hits: nothing to segment, dropped by both paths
]


def test_visits_from_nested_rows_equal_visits_from_canonical_hits(spark, tmp_path):
    """The GA360 shortcut (no explode, no shuffle) must give exactly the canonical aggregation's rows."""
    cfg = make_config("ga360", write_json_lines(tmp_path / "edge.json", EDGE_SESSIONS), run={"run_id": "r1"})
    direct = read_visits(spark, cfg)
    assert_df_equality(direct, visit_features(ga360_hits(spark, cfg), "r1"), ignore_row_order=True)
    edge = direct.filter("visit_key = '444-4004'").first()
    # T7 twice with two revenues is two transactions (as GA's totals count them); the "(not set)" hit
    # carries no revenue, so it is no transaction record.
    assert (edge.hits, edge.pageviews, edge.unique_pages, edge.transactions, edge.product_views, edge.add_to_carts) == (9, 4, 2, 2, 1, 2)
    assert (edge.transaction_revenue, edge.time_on_site_sec) == (3.5, 89.0)
    assert direct.count() == 4  # 555 has no hits


def test_visits_from_nested_rows_equal_the_canonical_path_on_generated_data(spark, tmp_path):
    path = str(tmp_path / "gen")
    sample_data.write_sample(spark, "ga360", path, 2000, days=3, seed=5)
    cfg = make_config("ga360", path, run={"run_id": "r1"})
    assert_approx_df_equality(read_visits(spark, cfg), visit_features(ga360_hits(spark, cfg), "r1"), 1e-9, ignore_row_order=True)
