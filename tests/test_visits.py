"""Visit and user features from hand-built canonical hits; the grain and value guardrails."""

from __future__ import annotations

import datetime as dt

import pytest
from chispa import assert_df_equality
from support import utc

from visitseg.core.errors import DataQualityError, EmptyInputError, GrainError
from visitseg.features.schemas import HIT_SCHEMA, USER_FEATURES_SCHEMA, VISIT_FEATURES_SCHEMA
from visitseg.features.users import user_features
from visitseg.features.visits import valid_visits, validate_visits, visit_features

D1, D2 = dt.date(2026, 10, 1), dt.date(2026, 10, 3)
T0 = 1790000000


def h(key, user, day, seconds, number, hit_type, path=None, action=None, txn=None, revenue=None, channel="Direct", engagement_ms=None, engaged=None):
    return (key, user, day, utc(T0 + seconds), number, hit_type, path, action, None, txn, revenue, channel, "(direct)", "(none)",
            "desktop", "France", engagement_ms, engaged)


HITS = [
    # v1: 3 pages (2 distinct), a product view, an add-to-cart, one purchase recorded twice (same id and revenue)
    h("v1", "u1", D1, 0, 1, "PAGE", "/", channel="Email"),
    h("v1", "u1", D1, 60, 2, "PAGE", "/p/1", "product_view"),
    h("v1", "u1", D1, 90, 3, "EVENT", None, "add_to_cart"),
    h("v1", "u1", D1, 120, 4, "PAGE", "/p/1"),
    h("v1", "u1", D1, 150, 5, "TRANSACTION", None, "purchase", "T1", 20.0),
    h("v1", "u1", D1, 150, 6, "TRANSACTION", None, "purchase", "T1", 20.0),
    # v2: a bounce, on another day, for the same user
    h("v2", "u1", D2, 500, 1, "PAGE", "/"),
    # v3: events only, no page view
    h("v3", "u2", D1, 0, 2, "EVENT", None, "product_view", channel="Referral"),
    h("v3", "u2", D1, 10, 1, "EVENT", None, None, channel="Social"),  # earlier hit wins the attributes
    # v4 (GA4-like): two purchases without a real id (each counts), a search and a checkout step; the
    # session_engaged flag turns true on the second event, so not a bounce
    h("v4", "u3", D1, 0, 1, "PAGE", "/", "search", engagement_ms=3000, engaged=False),
    h("v4", "u3", D1, 5, 2, "EVENT", None, "checkout", engagement_ms=4000, engaged=True),
    h("v4", "u3", D1, 8, 3, "TRANSACTION", None, "purchase", None, 7.0, engagement_ms=0, engaged=True),
    h("v4", "u3", D1, 9, 4, "TRANSACTION", None, "purchase", None, 8.0, engagement_ms=0, engaged=True),
    # v5 (GA4-like, no flag): one page view with 12 s of engagement is engaged by GA4's fallback rule
    h("v5", "u4", D1, 0, 1, "PAGE", "/", engagement_ms=12000),
    # v6 (GA4-like): the flag is authoritative: never engaged, though 30 s of engagement time
    h("v6", "u4", D2, 0, 1, "PAGE", "/", engagement_ms=30000, engaged=False),
    h("v6", "u4", D2, 20, 2, "PAGE", "/x", engagement_ms=0, engaged=False),
]


def visit_row(key, user, day, start, channel, pv, hits, uniq, tos, txn, rev, funnel, engagement, bounce):
    """funnel: (searches, product_views, add_to_carts, checkouts, shipping_infos, payment_infos)."""
    per_pv = max(pv, 1)
    cart_steps = funnel[2] + funnel[3] + funnel[4] + funnel[5]
    return (key, user, day, utc(T0 + start), channel, "(direct)", "(none)", "desktop", "France",
            pv, hits, uniq, tos, txn, rev, tos / per_pv, hits / per_pv, *funnel, cart_steps, engagement, bounce, "r1")


def test_one_row_per_visit_with_documented_measures(spark):
    visits = visit_features(spark.createDataFrame(HITS, HIT_SCHEMA), "r1")
    expected = spark.createDataFrame(
        [
            visit_row("v1", "u1", D1, 0, "Email", 3, 6, 2, 150.0, 1, 20.0, (0, 1, 1, 0, 0, 0), 150.0, False),
            visit_row("v2", "u1", D2, 500, "Direct", 1, 1, 1, 0.0, 0, 0.0, (0, 0, 0, 0, 0, 0), 0.0, True),
            visit_row("v3", "u2", D1, 0, "Referral", 0, 2, 0, 10.0, 0, 0.0, (0, 1, 0, 0, 0, 0), 10.0, False),
            visit_row("v4", "u3", D1, 0, "Direct", 1, 4, 1, 9.0, 2, 15.0, (1, 0, 0, 1, 0, 0), 7.0, False),
            visit_row("v5", "u4", D1, 0, "Direct", 1, 1, 1, 0.0, 0, 0.0, (0, 0, 0, 0, 0, 0), 12.0, False),
            visit_row("v6", "u4", D2, 0, "Direct", 2, 2, 2, 20.0, 0, 0.0, (0, 0, 0, 0, 0, 0), 30.0, True),
        ],
        VISIT_FEATURES_SCHEMA,
    )
    assert_df_equality(visits, expected, ignore_row_order=True, ignore_nullable=True)
    assert validate_visits(visits, 0.01) == {"rows": 6, "hits": 16, "invalid_hits": 0}


def test_user_features(spark):
    visits = visit_features(spark.createDataFrame(HITS, HIT_SCHEMA), "r1")
    users = user_features(visits, "r1")
    expected = spark.createDataFrame(
        [
            # user, sessions, views, product views, add-to-carts, searches, cart steps, transactions, revenue,
            # engagement s, time on site s, bounced sessions, views/session, purchase ratio, days, first, last, recency
            ("u1", 2, 4, 1, 1, 0, 1, 1, 20.0, 150.0, 150.0, 1, 2.0, 0.5, 2, D1, D2, 0, "r1"),
            ("u2", 1, 0, 1, 0, 0, 0, 0, 0.0, 10.0, 10.0, 0, 0.0, 0.0, 1, D1, D1, 2, "r1"),
            ("u3", 1, 1, 0, 0, 1, 1, 2, 15.0, 7.0, 9.0, 0, 1.0, 1.0, 1, D1, D1, 2, "r1"),
            ("u4", 2, 3, 0, 0, 0, 0, 0, 0.0, 42.0, 20.0, 1, 1.5, 0.0, 2, D1, D2, 0, "r1"),
        ],
        USER_FEATURES_SCHEMA,
    )
    assert_df_equality(users, expected, ignore_row_order=True, ignore_nullable=True)


def test_grain_guardrail_catches_a_row_multiplying_join(spark):
    visits = visit_features(spark.createDataFrame(HITS, HIT_SCHEMA), "r1")
    # a lookup with two rows for one channel: joining it multiplies that channel's visits
    channels = spark.createDataFrame([("Email", "owned"), ("Email", "crm"), ("Direct", "none")], "channel string, family string")
    joined = visits.join(channels, on="channel", how="left").select(*VISIT_FEATURES_SCHEMA.names)
    assert joined.count() == 7  # the join did multiply v1
    with pytest.raises(GrainError, match=r"1 keys \(visit_key\) occur more than once, e.g. v1"):
        validate_visits(joined, 0.01)


def test_negative_counts_fail_with_keys(spark):
    visits = visit_features(spark.createDataFrame(HITS, HIT_SCHEMA), "r1")
    broken = visits.withColumn("transaction_revenue", visits.transaction_revenue - 10)
    with pytest.raises(DataQualityError, match=r"4 rows with negative transaction_revenue \(e.g. v[2356], v[2356]"):
        validate_visits(broken, 0.01)


def test_hits_of_no_visit_are_counted_and_excluded_up_to_the_bound(spark):
    """An adapter leaves the key null for rows that belong to no visit; their hits count as invalid input."""
    visits = visit_features(spark.createDataFrame(HITS, HIT_SCHEMA), "r1").replace("v1", None, subset=["visit_key"])  # v1 has 6 of 16 hits
    assert validate_visits(visits, 0.5) == {"rows": 5, "hits": 10, "invalid_hits": 6}
    assert sorted(r.visit_key for r in valid_visits(visits).collect()) == ["v2", "v3", "v4", "v5", "v6"]
    with pytest.raises(DataQualityError, match=r"6 of 16 input rows \(37.50%\) belong to no visit.*input.max_invalid_fraction \(now 0.3\)"):
        validate_visits(visits, 0.3)


def test_no_visits_is_an_empty_input_error(spark):
    empty = visit_features(spark.createDataFrame([], HIT_SCHEMA), "r1")
    with pytest.raises(EmptyInputError, match="no rows"):
        validate_visits(empty, 0.01)
