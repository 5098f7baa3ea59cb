"""The K rule, ranks and the elbow, on hand-made sweep results; the sweep's best-of-n_init fits."""

from __future__ import annotations

import numpy as np
from pyspark.ml.linalg import Vectors

from visitseg.core.config import load_config
from visitseg.model.preprocess import FEATURES
from visitseg.model.sweep import KResult, _ranks, choose_k, elbow_k, fixed_layout, half, kmeans, poor_optima, sweep


def result(k, inertia, sil, db, ch, min_share=0.1, max_share=0.5, stability=1.0):
    return KResult(k, inertia, sil, db, ch, min_share, max_share, 1.0, stability)


RESULTS = [
    result(2, 1000, 0.50, 0.90, 100),
    result(3, 500, 0.70, 0.50, 300),
    result(4, 200, 0.80, 0.40, 400),
    result(5, 180, 0.60, 0.60, 350),
    result(6, 170, 0.90, 0.30, 500, min_share=0.001),  # best on every metric but a cluster below 0.5%
]


def test_best_combined_rank_among_ks_with_big_enough_clusters():
    k, reason = choose_k(RESULTS, load_config().model)
    assert k == 4
    assert "best for 3 of 3 metrics, combined rank 5.5" in reason and "smallest cluster >= 0.5%" in reason
    assert "silhouette 0.8000 rank 1" in reason and "stability 1.000 rank 2.5" in reason


def test_two_metrics_agreeing_outvote_a_third_that_grows_with_k():
    growing_ch = [
        result(4, 300, 0.86, 0.41, 315), result(5, 200, 0.94, 0.30, 830), result(6, 180, 0.92, 0.42, 868),
        result(7, 170, 0.89, 0.59, 900),
    ]
    k, reason = choose_k(growing_ch, load_config().model)
    assert k == 5 and "best for 2 of 3 metrics" in reason


def test_min_cluster_share_can_be_lowered():
    assert choose_k(RESULTS, load_config([], ["model.min_cluster_share=0.0"]).model)[0] == 6


def test_k_final_overrides():
    assert choose_k(RESULTS, load_config([], ["model.k_final=3"]).model) == (3, "k=3 set by model.k_final")


def test_ties_go_to_the_k_nearest_the_elbow():
    tied = [result(2, 1000, 0.5, 0.5, 100), result(3, 300, 0.6, 0.6, 100), result(4, 250, 0.6, 0.5, 90), result(5, 240, 0.5, 0.6, 110)]
    # ranks: k=2: 3.5+1.5+2.5=7.5; k=3: 1.5+3.5+2.5=7.5; k=4: 1.5+1.5+4=7; k=5: 3.5+3.5+1=8
    assert choose_k(tied, load_config().model)[0] == 4
    even = [result(2, 1000, 0.5, 0.5, 100), result(3, 300, 0.5, 0.5, 100), result(4, 250, 0.5, 0.5, 100)]
    assert elbow_k(even) == 3
    assert choose_k(even, load_config().model)[0] == 3


def test_conditions_are_dropped_stability_first_and_the_reason_says_so():
    small = [result(4, 100, 0.5, 0.5, 10, min_share=0.001), result(5, 50, 0.6, 0.4, 20, min_share=0.001)]
    k, reason = choose_k(small, load_config().model)
    assert k == 5
    assert "among Ks with largest cluster <= 60.0% (no K met every condition, so dropped: smallest cluster >= 0.5%, stability >= 0.8)" in reason
    unstable = [result(4, 100, 0.9, 0.3, 30, stability=0.5), result(5, 50, 0.6, 0.4, 20, stability=0.95)]
    assert choose_k(unstable, load_config().model)[0] == 5  # the best metrics, but fits on two halves disagree
    all_unstable = [result(4, 100, 0.9, 0.3, 30, stability=0.5), result(5, 50, 0.6, 0.4, 20, stability=0.6)]
    k, reason = choose_k(all_unstable, load_config().model)
    assert k == 4 and "so dropped: stability >= 0.8)" in reason
    everything = [result(4, 100, 0.9, 0.3, 30, min_share=0.001, max_share=0.9, stability=0.1)]
    assert "among all Ks (no K met every condition, so dropped: largest" in choose_k(everything, load_config().model)[1]


def test_one_dominant_segment_is_not_eligible():
    dominant = [result(4, 100, 0.95, 0.2, 50, max_share=0.92), result(5, 80, 0.7, 0.5, 40, max_share=0.55)]
    assert choose_k(dominant, load_config().model)[0] == 5
    assert choose_k(dominant, load_config([], ["model.max_cluster_share=0.95"]).model)[0] == 4


def test_ranks_average_ties():
    np.testing.assert_array_equal(_ranks([3.0, 1.0, 3.0], higher_is_better=True), [1.5, 3.0, 1.5])
    np.testing.assert_array_equal(_ranks([3.0, 1.0, 2.0], higher_is_better=False), [3.0, 1.0, 2.0])


def test_n_init_keeps_the_lowest_cost_fit_of_each_k(spark):
    """Uniform data has many local optima, so different seeds really give different fits."""
    rows = np.random.default_rng(1).uniform(size=(300, 2))
    data = spark.createDataFrame([(i, Vectors.dense(r)) for i, r in enumerate(rows.tolist())], ["id", FEATURES]).coalesce(2).cache()
    cfg = load_config([], ["model.k_min=3", "model.k_max=5", "model.n_init=3"]).model
    fitted = sweep(data, "id", cfg, seed=11, k_max=5)
    results, models = fitted.results, fitted.models
    assert [r.k for r in results] == [3, 4, 5]
    seeds_differ = False
    for r in results:
        costs = {11 + a: kmeans(cfg, r.k, 11 + a).fit(data).summary.trainingCost for a in range(3)}
        seeds_differ |= len(set(costs.values())) > 1
        assert models[r.k].summary.trainingCost == min(costs.values())
        assert costs[models[r.k].getSeed()] == min(costs.values())
    assert seeds_differ
    data.unpersist()


def test_stability_is_the_adjusted_rand_index_of_fits_on_the_two_halves(spark):
    """Three well-separated blobs: every K=3 fit finds them (stability 1); K=5 splits them arbitrarily."""
    rng = np.random.default_rng(3)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    rows = np.concatenate([c + rng.normal(scale=0.5, size=(100, 2)) for c in centres])
    data = spark.createDataFrame([(f"v{i:03d}", Vectors.dense(r)) for i, r in enumerate(rows.tolist())], ["id", FEATURES])
    data = fixed_layout(data, "id").cache()
    results = sweep(data, "id", load_config([], ["model.k_min=3", "model.k_max=5"]).model, seed=1, k_max=5).results
    stability = {r.k: r.stability for r in results}
    assert stability[3] == 1.0
    assert stability[5] < 1.0
    halves = [half(data, "id", 1, which).count() for which in (0, 1)]
    assert sum(halves) == 300 and min(halves) > 100  # disjoint, covering, roughly even
    data.unpersist()


def test_a_k_stuck_level_with_the_one_before_and_far_above_the_next_is_a_poor_optimum():
    # The 2.7M-event sweep: K=5 ended at 76,044, barely below K=4, far above K=6.
    assert poor_optima({3: 140_000, 4: 77_950, 5: 76_044, 6: 22_626, 7: 21_500}) == [5]
    # A sharp elbow before the true K and a plateau after it are not suspects.
    assert poor_optima({3: 120_000, 4: 77_000, 5: 23_000, 6: 22_000, 7: 21_000}) == []
    assert poor_optima({4: 83_572, 5: 12_465, 6: 8_194, 7: 6_623, 8: 5_831, 9: 4_691, 10: 4_526}) == []  # 1M GA360 hits
