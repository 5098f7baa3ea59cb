"""Diagnostics computed on Spark agree with scikit-learn on the same standardised data and labels."""

from __future__ import annotations

import numpy as np
import pytest
from pyspark.ml.clustering import KMeans
from pyspark.ml.evaluation import ClusteringEvaluator
from pyspark.ml.linalg import Vectors
from sklearn.metrics import adjusted_rand_score, calinski_harabasz_score, davies_bouldin_score, silhouette_score

from visitseg.model.metrics import adjusted_rand_index, cluster_stats, contingency_tables, silhouettes


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
    labels = np.array([r.prediction for r in rows])
    return predictions, model, X_out, labels


def test_davies_bouldin_and_calinski_harabasz_equal_sklearn(clustered):
    predictions, model, X, labels = clustered
    stats = cluster_stats(predictions, "features", 4, {3: "prediction"})[3]
    assert stats.davies_bouldin == pytest.approx(davies_bouldin_score(X, labels), rel=1e-6)
    assert stats.calinski_harabasz == pytest.approx(calinski_harabasz_score(X, labels), rel=1e-6)


def test_inertia_is_the_sum_of_squared_distances(clustered):
    predictions, model, X, labels = clustered
    stats = cluster_stats(predictions, "features", 4, {3: "prediction"})[3]
    expected = sum(((X[labels == c] - X[labels == c].mean(axis=0)) ** 2).sum() for c in np.unique(labels))
    assert stats.inertia == pytest.approx(expected, rel=1e-9)
    assert stats.inertia == pytest.approx(model.summary.trainingCost, rel=1e-9)
    assert stats.sizes.sum() == len(X) and stats.shares.sum() == pytest.approx(1.0)


def test_several_labellings_measured_together_each_equal_sklearn(clustered):
    """The sweep measures every K in one call: each labelling's metrics must equal scikit-learn's on its own."""
    predictions, _, X, _ = clustered
    labelled = predictions.select("features")
    for k in (2, 4, 5):
        labelled = KMeans(k=k, seed=3, predictionCol=f"p{k}").fit(predictions).transform(labelled)
    labelled = labelled.cache()
    stats = cluster_stats(labelled, "features", 4, {2: "p2", 4: "p4", 5: "p5"})
    rows = labelled.collect()
    for k in (2, 4, 5):
        labels = np.array([r[f"p{k}"] for r in rows])
        X_k = np.array([r.features.toArray() for r in rows])
        assert len(stats[k].sizes) == k and stats[k].sizes.sum() == len(X)
        assert stats[k].davies_bouldin == pytest.approx(davies_bouldin_score(X_k, labels), rel=1e-6)
        assert stats[k].calinski_harabasz == pytest.approx(calinski_harabasz_score(X_k, labels), rel=1e-6)
    labelled.unpersist()


def test_silhouettes_of_several_labellings_equal_sklearn_and_spark_squared_euclidean(clustered):
    """Every K's silhouette in one pass must equal scikit-learn's silhouette_score(metric="sqeuclidean") and
    Spark's own ClusteringEvaluator (the definition it reproduces), including a labelling with a singleton."""
    predictions, _, X, labels = clustered
    labelled = predictions.select("features", "prediction")
    for k in (2, 5):
        labelled = KMeans(k=k, seed=3, predictionCol=f"p{k}").fit(predictions).transform(labelled)
    rows = labelled.collect()
    X_rows = np.array([r.features.toArray() for r in rows])
    singleton = np.array([r.prediction for r in rows])
    singleton[0] = 3  # one row alone in a fourth cluster: its score is 0
    labelled = labelled.sparkSession.createDataFrame(
        [(r.features, int(r.prediction), int(r.p2), int(r.p5), int(s)) for r, s in zip(rows, singleton)], ["features", "p3", "p2", "p5", "p4"]
    ).cache()
    columns = {3: "p3", 2: "p2", 5: "p5", 4: "p4"}
    stats = cluster_stats(labelled, "features", 4, columns)
    got = silhouettes(labelled, "features", stats, columns)
    for k, column in columns.items():
        expected = silhouette_score(X_rows, np.array([r[column] for r in labelled.collect()]), metric="sqeuclidean")
        assert got[k] == pytest.approx(expected, rel=1e-6), k
        evaluator = ClusteringEvaluator(predictionCol=column, distanceMeasure="squaredEuclidean")
        assert got[k] == pytest.approx(evaluator.evaluate(labelled), rel=1e-9), k
    labelled.unpersist()


def test_adjusted_rand_index_from_spark_contingency_tables_equals_sklearn(spark):
    rng = np.random.default_rng(7)
    truth = rng.integers(0, 4, 500)
    noisy = np.where(rng.uniform(size=500) < 0.3, rng.integers(0, 5, 500), truth)  # 5 labels vs 4
    df = spark.createDataFrame([(int(a), int(b), int(a)) for a, b in zip(truth, noisy)], "a int, b int, same int").repartition(3)
    tables = contingency_tables(df, {1: ("a", "b"), 2: ("a", "same")})
    assert tables[1].sum() == 500 and tables[1].shape == (5, 5)
    assert adjusted_rand_index(tables[1]) == pytest.approx(adjusted_rand_score(truth, noisy), rel=1e-12)
    assert adjusted_rand_index(tables[2]) == pytest.approx(1.0)
    assert adjusted_rand_index(np.array([[7.0]])) == adjusted_rand_score([0] * 7, [0] * 7) == 1.0
