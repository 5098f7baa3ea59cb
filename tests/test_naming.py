"""Stable ids and segment names from cluster profiles."""

from __future__ import annotations

from visitseg.config import load_config
from visitseg.naming import Profile, segment_names, stable_order

NAMING = load_config().naming


def p(raw, conversion=0.0, revenue=0.0, bounce=0.0, cart=0.0, pageviews=3.0, time=100.0, n=10):
    return Profile(raw, n, conversion, revenue, bounce, cart, pageviews, time)


def test_order_is_by_conversion_then_pageviews_whatever_kmeans_numbered():
    profiles = [p(0, conversion=0.9), p(1, pageviews=20), p(2, bounce=1.0, pageviews=1), p(3, cart=2, pageviews=8)]
    assert [x.raw_id for x in stable_order(profiles)] == [2, 3, 1, 0]
    assert [x.raw_id for x in stable_order(list(reversed(profiles)))] == [2, 3, 1, 0]


def test_names_follow_the_documented_rules():
    ordered = [
        p(0, bounce=0.9, pageviews=1, time=0),
        p(1, pageviews=4),
        p(2, pageviews=5, time=60),
        p(3, cart=2.5, pageviews=8),
        p(4, pageviews=22),
        p(5, pageviews=6, time=1000),
        p(6, conversion=0.95, revenue=100),
        p(7, conversion=1.0, revenue=400),
    ]
    assert segment_names(ordered, NAMING) == [
        "Bouncers", "Browsers", "Browsers 2", "Cart abandoners", "Researchers", "Researchers 2", "Buyers", "High-value buyers",
    ]


def test_a_single_buyer_cluster_is_just_buyers():
    assert segment_names([p(0), p(1, conversion=0.8, revenue=900)], NAMING) == ["Browsers", "Buyers"]


def test_thresholds_are_configurable():
    naming = load_config([], ["naming.researcher_pageviews=3"]).naming
    assert segment_names([p(0, pageviews=4)], naming) == ["Researchers"]
