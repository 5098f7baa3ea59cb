"""Nearest centre, distance and margin agree with numpy and with KMeansModel.predict."""

from __future__ import annotations

import numpy as np
import pytest
from pyspark.ml.clustering import KMeans
from pyspark.ml.linalg import Vectors

from visitseg.model.assign import RAW_CLUSTER, with_nearest_centre


def test_distance_and_margin(spark):
    rng = np.random.default_rng(3)
    X = rng.normal(0, 3, (200, 3))
    df = spark.createDataFrame([(i, Vectors.dense(r)) for i, r in enumerate(X.tolist())], ["id", "features"])
    model = KMeans(k=4, seed=2).fit(df)
    centres = np.array(model.clusterCenters())
    rows = with_nearest_centre(model.transform(df), centres).orderBy("id").collect()

    d = np.sqrt(((X[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2))
    nearest = np.sort(d, axis=1)
    assert [r[RAW_CLUSTER] for r in rows] == [r.prediction for r in rows] == list(d.argmin(axis=1))
    assert [r.distance_to_centroid for r in rows] == pytest.approx(nearest[:, 0].tolist())
    assert [r.margin for r in rows] == pytest.approx((nearest[:, 1] - nearest[:, 0]).tolist())
