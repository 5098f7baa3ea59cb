"""Preprocessing stages: clipping bounds, null fill, log1p, zero-variance drop, persistence."""

from __future__ import annotations

import numpy as np
import pytest
from pyspark.ml import PipelineModel

from visitseg.core.config import load_config
from visitseg.core.errors import InputSchemaError
from visitseg.model.preprocess import FEATURES, Winsorizer, fit_preprocessing, usable_features

VALUES = [float(v) for v in range(1, 20)] + [1000.0]  # one wild value


@pytest.fixture(scope="module")
def frame(spark):
    rows = [(i, v, 3.0, float(i % 2)) for i, v in enumerate(VALUES)] + [(99, None, 3.0, 1.0)]
    return spark.createDataFrame(rows, "id long, revenue double, constant double, flag double")


def prepared(df, **params):
    fitted = Winsorizer(inputCols=["revenue"], **params).fit(df)
    return [r[0] for r in fitted.transform(df).orderBy("id").select("revenue__prepared").collect()]


def test_zscore_clip_and_null_filled_with_mean(frame):
    mean, std = np.mean(VALUES), np.std(VALUES)
    got = prepared(frame, method="zscore", z=2.0)
    assert got[-2] == pytest.approx(mean + 2 * std)  # the wild value is clipped
    assert got[:19] == pytest.approx(VALUES[:19])  # the rest untouched
    assert got[-1] == pytest.approx(mean)  # the null becomes the mean


def test_quantile_clip(frame):
    got = prepared(frame, method="quantile", quantile=0.1)
    assert min(got) == 2.0 and max(got[:-1]) == 18.0  # the 10% and 90% points of 20 values


def test_log1p_without_clipping(frame):
    got = prepared(frame, method="none", log1pCols=["revenue"])
    assert got[:20] == pytest.approx(np.log1p(VALUES))
    assert got[-1] == pytest.approx(np.mean(np.log1p(VALUES)))  # the null becomes the mean of the logs


def test_log1p_before_clipping(frame):
    """The clip bounds are learnt on the log scale: the wild value is clipped there, not on the raw scale."""
    logs = np.log1p(VALUES)
    got = prepared(frame, method="zscore", z=2.0, log1pCols=["revenue"])
    assert got[-2] == pytest.approx(np.mean(logs) + 2 * np.std(logs))
    assert got[:19] == pytest.approx(logs[:19])


def test_zero_variance_features_are_dropped_and_unknown_ones_named(frame):
    features = ("revenue", "constant", "flag")
    assert usable_features(frame, features).kept == ("revenue", "flag")
    assert usable_features(frame, features).dropped == ("constant",)
    with pytest.raises(InputSchemaError, match=r"\['nope'\] are not numeric columns"):
        usable_features(frame, ("revenue", "nope"))


def test_pipeline_standardises_and_survives_save_and_load(frame, tmp_path):
    cfg = load_config([], ['model.features=["revenue", "flag"]', "model.winsor_method=none"]).model
    model = fit_preprocessing(frame, ("revenue", "flag"), (), cfg)
    out = np.array([r[FEATURES].toArray() for r in model.transform(frame).collect()])
    assert out.mean(axis=0) == pytest.approx([0.0, 0.0], abs=1e-9)
    assert out.std(axis=0, ddof=1) == pytest.approx([1.0, 1.0])  # Spark's StandardScaler uses the sample std
    model.write().overwrite().save(str(tmp_path / "m"))
    again = PipelineModel.load(str(tmp_path / "m"))
    reloaded = np.array([r[FEATURES].toArray() for r in again.transform(frame).collect()])
    np.testing.assert_array_equal(out, reloaded)
