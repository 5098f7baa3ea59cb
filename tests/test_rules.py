"""Rule-based segments and the k-means vs rules comparison, on hand-built visits."""

from __future__ import annotations

import numpy as np
import pytest
from chispa import assert_df_equality

from visitseg.model.compare import eta_squared, half_mean_shift, nearest_centre_shift
from visitseg.core.config import load_config
from visitseg.model.rules import RULE_SEGMENTS, rule_segment

COLUMNS = "visit_key string, transactions long, checkouts long, shipping_infos long, payment_infos long, add_to_carts long, is_bounce boolean, product_views long, searches long"


def test_each_visit_gets_the_deepest_funnel_step_it_reached(spark):
    visits = spark.createDataFrame(
        [
            ("buyer who bounced", 1, 0, 0, 0, 0, True, 0, 0),
            ("checkout", 0, 0, 1, 0, 3, False, 5, 0),
            ("cart", 0, 0, 0, 0, 1, True, 0, 0),  # a cart step outranks the bounce
            ("bounce with views", 0, 0, 0, 0, 0, True, 4, 0),
            ("researcher", 0, 0, 0, 0, 0, False, 1, 1),
            ("browser", 0, 0, 0, 0, 0, False, 1, 0),
        ],
        COLUMNS,
    )
    got = visits.select("visit_key", rule_segment(load_config().rules).alias("segment"))
    expected = spark.createDataFrame(
        [("buyer who bounced", 5), ("checkout", 4), ("cart", 3), ("bounce with views", 0), ("researcher", 2), ("browser", 1)],
        "visit_key string, segment int",
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)
    assert [RULE_SEGMENTS[i] for i in (5, 4, 3, 0, 2, 1)] == [
        "Buyers", "Checkout abandoners", "Cart abandoners", "Bounced", "Product researchers", "Engaged browsers"]
    higher = load_config([], ["rules.researcher_product_views=3"]).rules
    assert visits.filter("visit_key = 'researcher'").select(rule_segment(higher)).first()[0] == 1


def test_eta_squared_is_the_share_of_variance_the_segments_explain():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 3, 200)
    halves = rng.integers(0, 2, 200)
    X = np.column_stack([labels * 2.0 + rng.normal(size=200), rng.normal(size=200)])
    groups = [
        {"segment": s, "half": h, "n": int(m.sum()), "sum": X[m].sum(axis=0).tolist(), "sq": (X[m] ** 2).sum(axis=0).tolist()}
        for s in range(3) for h in range(2) for m in [(labels == s) & (halves == h)]
    ]
    # Independent: the between-group sum of squares over the total, per column, with numpy.
    expected = [
        sum((labels == s).sum() * (X[labels == s, j].mean() - X[:, j].mean()) ** 2 for s in range(3)) / ((X[:, j] - X[:, j].mean()) ** 2).sum()
        for j in range(2)
    ]
    np.testing.assert_allclose(eta_squared(groups), expected, rtol=1e-9)
    assert eta_squared(groups)[0] > 0.5 > 0.05 > eta_squared(groups)[1]  # the segments differ in column 0 only
    shift = max(np.linalg.norm(X[(labels == s) & (halves == 0)].mean(axis=0) - X[(labels == s) & (halves == 1)].mean(axis=0)) for s in range(3))
    assert half_mean_shift(groups) == pytest.approx(shift)


def test_profile_shift_of_kmeans_matches_each_centre_to_its_nearest():
    a = np.array([[0.0, 0.0], [5.0, 5.0]])
    b = np.array([[5.0, 4.0], [0.0, 0.5]])
    assert nearest_centre_shift(a, b) == pytest.approx(1.0)
