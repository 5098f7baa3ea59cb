"""Stable ids and segment names true to the cluster profiles."""

from __future__ import annotations

from visitseg.core.config import load_config
from visitseg.model.naming import Profile, descriptive_name, segment_names, stable_order, told_apart

NAMING = load_config().naming


def p(raw, conversion=0.0, revenue=0.0, bounce=0.0, cart=0.0, pageviews=3.0, time=100.0, n=10, standardized=None):
    return Profile(raw, n, conversion, revenue, bounce, cart, pageviews, time, standardized or {})


def test_order_is_by_conversion_then_pageviews_whatever_kmeans_numbered():
    profiles = [p(0, conversion=0.9), p(1, pageviews=20), p(2, bounce=1.0, pageviews=1), p(3, cart=0.9, pageviews=8)]
    assert [x.raw_id for x in stable_order(profiles)] == [2, 3, 1, 0]
    assert [x.raw_id for x in stable_order(list(reversed(profiles)))] == [2, 3, 1, 0]


def test_archetypes_only_where_the_profile_meets_their_thresholds():
    z = {"pageviews": 0.0, "searches": 0.0}
    ordered = [
        p(0, bounce=0.9, pageviews=1, time=0, standardized=z),
        p(1, pageviews=4, standardized={"pageviews": 0.1, "searches": -0.2}),
        p(2, pageviews=5, time=60, standardized={"pageviews": 0.3, "searches": 0.4}),
        p(3, cart=0.8, pageviews=8, standardized=z),
        p(4, pageviews=22, standardized={"pageviews": 2.0, "searches": 0.0}),
        p(5, pageviews=6, time=1000, standardized={"pageviews": 0.4, "searches": 1.5}),
        p(6, conversion=0.95, revenue=100, standardized=z),
        p(7, conversion=1.0, revenue=400, standardized=z),
    ]
    assert segment_names(ordered, NAMING) == [
        "Bouncers", "Browsers (lower searches)", "Browsers (higher searches)", "Cart abandoners", "Researchers (higher page views)",
        "Researchers (lower page views)", "Buyers", "High-value buyers",
    ]


def test_several_clusters_of_one_name_are_split_at_the_widest_feature_again_and_again():
    centres = [{"pageviews": 0.0, "searches": 0.0}, {"pageviews": 0.1, "searches": 1.0}, {"pageviews": 2.0, "searches": 0.0}, {"pageviews": 0.0, "searches": 0.0}]
    assert told_apart(["Browsers", "Browsers", "Browsers", "Bouncers"], centres) == [
        "Browsers (lower page views, lower searches)", "Browsers (lower page views, higher searches)", "Browsers (higher page views)", "Bouncers",
    ]
    # Identical centres (never k-means output) still get different names, and no number.
    assert told_apart(["Browsers", "Browsers"], [{"pageviews": 1.0}, {"pageviews": 1.0}]) == ["Browsers (A)", "Browsers (B)"]


def test_no_wrong_archetype_for_a_profile_that_fits_none():
    # Half the visits bounce: not "Bouncers" (needs >= 0.8), nor "Browsers" (needs a bounce rate < 0.5).
    half_bounce = p(0, bounce=0.55, pageviews=1.2, standardized={"pageviews": -0.9, "engagement_time_sec": -1.2, "searches": 0.1})
    # Carts in most visits but converting at 30%: neither "Cart abandoners" (< 10%) nor "Buyers" (>= 50%).
    carts_and_some_buys = p(1, conversion=0.3, cart=0.9, pageviews=20, standardized={"cart_steps": 2.5, "transactions": 1.5})
    assert segment_names([half_bounce, carts_and_some_buys], NAMING) == ["Low engagement time, page views", "High cart steps, transactions"]


def test_descriptive_names_use_the_features_farthest_from_the_mean():
    assert descriptive_name({"searches": 3.0, "pageviews": 0.2, "product_views": -2.0}, NAMING) == "High searches"
    assert descriptive_name({"searches": 3.0, "product_views": 1.0}, NAMING) == "High searches, product views"
    assert descriptive_name({"searches": 0.1, "pageviews": -0.3}, NAMING) == "Below-average page views"
    assert descriptive_name({"searches": 0.1, "pageviews": -0.19}, NAMING) == "Average visits"


def test_a_single_buyer_cluster_is_just_buyers():
    assert segment_names([p(0), p(1, conversion=0.8, revenue=900)], NAMING) == ["Browsers", "Buyers"]


def test_thresholds_are_configurable():
    naming = load_config([], ["naming.researcher_pageviews=3"]).naming
    assert segment_names([p(0, pageviews=4)], naming) == ["Researchers"]
    assert segment_names([p(0, bounce=0.6)], load_config([], ["naming.bounce_rate=0.6"]).naming) == ["Bouncers"]
