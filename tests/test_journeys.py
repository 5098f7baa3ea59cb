"""The journey tables on visits built by hand: expected rows worked out by hand, and the pandas oracle agrees.

The visits cover a user with one visit, two visits of one user that start at the same second, a visit
that crosses midnight, a user whose first visit is a purchase, a path cut by journeys.max_path_length,
and a visit without a user key (in no journey, but in the attributes). The same visits persisted in user
order (GA360's layout) give the same tables, walked without a shuffle or sort.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from chispa import assert_df_equality
from pyspark.sql import types as T

import journeys_oracle as oracle
from visitseg.core.config import JourneysConfig
from visitseg.features.visits import in_user_order
from visitseg.monitor.journeys import journey_tables, ordered_visits
from visitseg.storage.tables import ATTRIBUTES, PATHS, TRANSITIONS, AttributeRow, PathRow, TransitionRow, schema_of

BROWSERS, CART, BUYERS = (0, "Browsers"), (1, "Cart abandoners"), (2, "Buyers")
SCHEMA = T.StructType([
    T.StructField("visit_key", T.StringType()), T.StructField("user_key", T.StringType()), T.StructField("visit_date", T.DateType()),
    T.StructField("visit_start_ts", T.TimestampType()), T.StructField("cluster_id", T.IntegerType()), T.StructField("segment", T.StringType()),
    T.StructField("transactions", T.LongType()), T.StructField("channel", T.StringType()), T.StructField("source", T.StringType()),
    T.StructField("medium", T.StringType()), T.StructField("device", T.StringType()), T.StructField("country", T.StringType()),
])


def at(day: int, hour: int, minute: int) -> dt.datetime:
    return dt.datetime(2024, 3, day, hour, minute)


def visit(key, user, day, start, segment, transactions, channel):
    return (key, user, dt.date(2024, 3, day), start, segment[0], segment[1], transactions, channel, "google", None, "desktop", "US")


VISITS = [
    visit("v1a", "u1", 1, at(1, 10, 0), BROWSERS, 0, "Organic"),
    visit("v1b", "u1", 1, at(1, 12, 30), CART, 0, "Organic"),
    visit("v1c", "u1", 3, at(3, 9, 0), BUYERS, 1, "Paid"),
    visit("v2a", "u2", 2, at(2, 8, 0), BROWSERS, 0, "Organic"),  # one visit
    visit("v3a", "u3", 2, at(2, 23, 50), BUYERS, 2, "Paid"),  # its first visit buys, and runs past midnight
    visit("v3b", "u3", 4, at(4, 8, 0), BROWSERS, 0, "Direct"),
    visit("v4b", "u4", 2, at(2, 10, 0), BUYERS, 1, "Paid"),  # the same start as v4a: ordered by key, after it
    visit("v4a", "u4", 2, at(2, 10, 0), CART, 0, "Organic"),
    visit("vx", None, 2, at(2, 11, 0), BROWSERS, 0, None),  # no user: no journey
]


@pytest.fixture(scope="module")
def tables(spark):
    # Written in the session's time zone, read back as the same instants: the medians are time-zone free.
    visits = spark.createDataFrame(VISITS, SCHEMA)
    names = dict([BROWSERS, CART, BUYERS])
    return visits, journey_tables(visits.drop("segment"), JourneysConfig(max_path_length=2, top_attributes=1), "r1", names).frames(spark)


def test_transitions_count_every_visit_once_as_from_and_once_as_to(spark, tables):
    _, journeys = tables
    expected = [
        ("r1", None, "(first visit)", 0, "Browsers", 2, 2 / 4, None, 0.0),
        ("r1", None, "(first visit)", 1, "Cart abandoners", 1, 1 / 4, None, 0.0),
        ("r1", None, "(first visit)", 2, "Buyers", 1, 1 / 4, None, 1.0),
        ("r1", 0, "Browsers", 1, "Cart abandoners", 1, 1 / 3, 150 / 60, 0.0),
        ("r1", 0, "Browsers", None, "(no return)", 2, 2 / 3, None, None),
        ("r1", 1, "Cart abandoners", 2, "Buyers", 2, 2 / 2, (0 + 2670) / 2 / 60, 1.0),  # 0 minutes (u4), 44.5 hours (u1)
        ("r1", 2, "Buyers", 0, "Browsers", 1, 1 / 3, 1930 / 60, 0.0),  # across midnight: 23:50 to 08:00 a day later
        ("r1", 2, "Buyers", None, "(no return)", 2, 2 / 3, None, None),
    ]
    assert_df_equality(journeys[TRANSITIONS], spark.createDataFrame(expected, schema_of(TransitionRow)), ignore_row_order=True, ignore_nullable=True)


def test_paths_end_at_the_first_purchase_and_say_when_earlier_visits_were_cut(spark, tables):
    _, journeys = tables
    expected = [
        ("r1", 1, "Buyers", ["Buyers"], [2], False, 1, 1 / 3, 0.0),  # the first visit bought
        ("r1", 2, "Cart abandoners → Buyers", ["Cart abandoners", "Buyers"], [1, 2], False, 1, 1 / 3, 0.0),  # tie in start: by key
        ("r1", 3, "… → Cart abandoners → Buyers", ["Cart abandoners", "Buyers"], [1, 2], True, 1, 1 / 3, 2.0),  # max_path_length 2
    ]
    assert_df_equality(journeys[PATHS], spark.createDataFrame(expected, schema_of(PathRow)), ignore_row_order=True, ignore_nullable=True)


def test_attributes_keep_the_top_values_and_fold_the_rest_into_other(spark, tables):
    _, journeys = tables
    expected = [  # channel: Organic 4, Paid 3, Direct 1, (not set) 1 of 9 visits
        ("r1", 0, "Browsers", "channel", "Organic", 1, 2, 2 / 4, 4 / 9, (2 / 4) / (4 / 9)),
        ("r1", 0, "Browsers", "channel", "(other)", 2, 2, 2 / 4, 2 / 9, (2 / 4) / (2 / 9)),  # Direct and (not set)
        ("r1", 1, "Cart abandoners", "channel", "Organic", 1, 2, 1.0, 4 / 9, 1.0 / (4 / 9)),
        ("r1", 2, "Buyers", "channel", "Paid", 1, 3, 1.0, 3 / 9, 1.0 / (3 / 9)),
    ]
    channel = journeys[ATTRIBUTES].filter("attribute = 'channel'")
    assert_df_equality(channel, spark.createDataFrame(expected, schema_of(AttributeRow)), ignore_row_order=True, ignore_nullable=True)
    source_medium = journeys[ATTRIBUTES].filter("attribute = 'source_medium'").select("segment", "value", "lift").collect()
    assert {(r.segment, r.value, r.lift) for r in source_medium} == {(s, "google / (not set)", 1.0) for s in ("Browsers", "Cart abandoners", "Buyers")}


def test_the_pandas_oracle_agrees_with_the_hand_worked_rows(tables):
    _, journeys = tables
    frame = pd.DataFrame(VISITS, columns=SCHEMA.names)
    frame["visit_start_ts"] = pd.to_datetime(frame.visit_start_ts)
    ordered = oracle.segmented(frame[["visit_key", "cluster_id", "segment"]], frame.drop(columns=["cluster_id", "segment"]))
    oracle.assert_same(journeys[TRANSITIONS].toPandas(), oracle.transitions(ordered), ["from_segment", "to_segment"])
    oracle.assert_same(journeys[PATHS].toPandas(), oracle.paths_to_purchase(ordered, 2), ["rank"])
    oracle.assert_same(journeys[ATTRIBUTES].toPandas(), oracle.segment_attributes(ordered, 1), ["cluster_id", "attribute", "rank"])



def test_visits_persisted_in_user_order_are_walked_without_a_shuffle_or_sort_and_give_the_same_tables(spark, tables):
    """GA360's visit rows are persisted in user order (`in_user_order`): the journeys' window then reads them
    as they lie. If Spark stopped seeing that layout, it would add an Exchange and a Sort here (slower, not wrong)."""
    _, expected = tables
    visits = in_user_order(spark.createDataFrame(VISITS, SCHEMA).drop("segment")).persist()
    try:
        visits.count()  # as the run's checks do first: a cached plan's layout is known once it has run (adaptive execution)
        plan = ordered_visits(visits, 2)._jdf.queryExecution().executedPlan().toString()
        above_the_cache = plan.split("InMemoryTableScan")[0]
        assert "Window" in above_the_cache and "Exchange" not in above_the_cache and "Sort [" not in above_the_cache, above_the_cache
        walked = journey_tables(visits, JourneysConfig(max_path_length=2, top_attributes=1), "r1", dict([BROWSERS, CART, BUYERS])).frames(spark)
        for name in (TRANSITIONS, PATHS, ATTRIBUTES):
            assert_df_equality(walked[name], expected[name], ignore_row_order=True)
    finally:
        visits.unpersist()
