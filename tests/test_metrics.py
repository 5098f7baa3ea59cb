"""The sweep's diagnostics agree with scikit-learn and Spark ML's ClusteringEvaluator on the same standardised data and labels."""

from __future__ import annotations

import numpy as np
import pytest
from pyspark.ml.clustering import KMeans
from pyspark.ml.evaluation import ClusteringEvaluator
from pyspark.ml.linalg import Vectors
from sklearn.metrics import adjusted_rand_score, calinski_harabasz_score, davies_bouldin_score, silhouette_score

from visitseg.model.metrics import adjusted_rand_index, cluster_stats, contingency_table, silhouette


@pytest.fixture(scope="module")
def clustered(spark):
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(centre, 1.0, (70, 4)) for centre in ([0, 0, 0, 0], [5, 5, 0, 1], [0, 6, 3, -2])])
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    df = spark.createDataFrame([(Vectors.dense(row),) for row in X.tolist()], ["features"]).repartition(3)
    model = KMeans(k=3, seed=1, maxIter=50, tol=1e-9).fit(df)
    predictions = model.transform(df).cache()
    rows = predictions.collect()
    X_out = np.array([r.features.toArray() for r in rows])
    labels = np.array([r.prediction for r in rows], dtype=int)
    return predictions, model, X_out, labels


def test_davies_bouldin_and_calinski_harabasz_equal_sklearn(clustered):
    _, _, X, labels = clustered
    stats = cluster_stats(X, labels, 3)
    assert stats.davies_bouldin == pytest.approx(davies_bouldin_score(X, labels), rel=1e-9)
    assert stats.calinski_harabasz == pytest.approx(calinski_harabasz_score(X, labels), rel=1e-9)


def test_inertia_is_spark_ml_training_cost(clustered):
    _, model, X, labels = clustered
    stats = cluster_stats(X, labels, 3)
    expected = sum(((X[labels == c] - X[labels == c].mean(axis=0)) ** 2).sum() for c in np.unique(labels))
    assert stats.inertia == pytest.approx(expected, rel=1e-9)
    assert stats.inertia == pytest.approx(model.summary.trainingCost, rel=1e-9)
    assert stats.sizes.sum() == len(X) and stats.shares.sum() == pytest.approx(1.0)


def test_an_empty_cluster_counts_zero_and_the_metrics_use_the_others(clustered):
    _, _, X, labels = clustered
    stats = cluster_stats(X, labels, 5)  # clusters 3 and 4 hold no row
    assert list(stats.sizes[3:]) == [0, 0] and stats.shares.min() == 0.0
    assert stats.davies_bouldin == pytest.approx(davies_bouldin_score(X, labels), rel=1e-9)
    assert stats.calinski_harabasz == pytest.approx(calinski_harabasz_score(X, labels), rel=1e-9)


def test_silhouette_equals_sklearn_and_spark_squared_euclidean(clustered):
    """The silhouette must equal scikit-learn's silhouette_score(metric="sqeuclidean") and Spark's own
    ClusteringEvaluator (the definition it reproduces), including a labelling with a singleton."""
    predictions, _, X, labels = clustered
    singleton = labels.copy()
    singleton[0] = 3  # one row alone in a fourth cluster: its score is 0
    for k, labelling in ((3, labels), (4, singleton)):
        got = silhouette(X, labelling, cluster_stats(X, labelling, k))
        assert got == pytest.approx(silhouette_score(X, labelling, metric="sqeuclidean"), rel=1e-6), k
        frame = predictions.sparkSession.createDataFrame(
            [(Vectors.dense(row), int(label)) for row, label in zip(X.tolist(), labelling)], ["features", "prediction"]
        )
        evaluator = ClusteringEvaluator(distanceMeasure="squaredEuclidean")
        assert got == pytest.approx(evaluator.evaluate(frame), rel=1e-9), k


def test_one_cluster_has_silhouette_zero(clustered):
    _, _, X, labels = clustered
    ones = np.zeros(len(X), dtype=int)
    assert silhouette(X, ones, cluster_stats(X, ones, 1)) == 0.0


def test_adjusted_rand_index_from_contingency_tables_equals_sklearn():
    rng = np.random.default_rng(7)
    truth = rng.integers(0, 4, 500)
    noisy = np.where(rng.uniform(size=500) < 0.3, rng.integers(0, 5, 500), truth)  # 5 labels vs 4
    table = contingency_table(truth, noisy)
    assert table.sum() == 500 and table.shape == (5, 5)
    assert table[2, 3] == np.sum((truth == 2) & (noisy == 3))
    assert adjusted_rand_index(table) == pytest.approx(adjusted_rand_score(truth, noisy), rel=1e-12)
    assert adjusted_rand_index(contingency_table(truth, truth)) == pytest.approx(1.0)
    assert adjusted_rand_index(np.array([[7.0]])) == adjusted_rand_score([0] * 7, [0] * 7) == 1.0
