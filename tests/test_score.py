"""`visitseg score`: a saved model applied to visits, no refit; read back from real Delta tables."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from deltalake import DeltaTable

from pyspark.ml import PipelineModel
from pyspark.ml.functions import vector_to_array
from pyspark.sql import functions as F

from visitseg.ingest import sample_data
from visitseg.cli import main
from visitseg.model.preprocess import FEATURES
from visitseg.model.saved_model import MODEL_FACTS, STANDARDISED, load_model

N_VISITS = 900
SCORE_COLUMNS = ["visit_key", "user_key", "visit_date", "cluster_id", "segment", "distance_to_centroid", "margin", "nearest_centroids",
                 "model_run_id", "score_run_id"]
DAYS = 4


def table(path, version=None) -> pd.DataFrame:
    return DeltaTable(str(path), version=version).to_pyarrow_table().to_pandas()


@pytest.fixture(scope="module")
def trained(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("score")
    sample_data.write_sample(spark, "ga360", str(root / "input"), N_VISITS, days=DAYS, seed=5, file_format="json")
    args = ["run", "--input-format", "ga360", "--input", str(root / "input"), "--output", str(root / "out"),
            "--set", "run.run_id=train", "--set", "model.k_min=2", "--set", "model.k_max=6"]
    assert main(args) == 0
    return root


def score(root, *extra: str, model: str = "latest", run_id: str = "s1", output: str | None = None) -> int:
    return main(["score", "--model", model, "--input-format", "ga360", "--input", str(root / "input"),
                 "--output", output or str(root / "out"), "--set", f"run.run_id={run_id}", *extra])


def test_scoring_the_training_visits_gives_the_training_labels(trained):
    assert score(trained) == 0
    scores = table(trained / "out" / "session_scores")
    assert list(scores.columns) == SCORE_COLUMNS and len(scores) == N_VISITS
    labels = table(trained / "out" / "session_clusters")
    both = scores.merge(labels, on="visit_key", suffixes=("", "_train"), validate="one_to_one")
    assert len(both) == N_VISITS
    assert (both.cluster_id == both.cluster_id_train).all() and (both.segment == both.segment_train).all()
    assert np.allclose(both.distance_to_centroid, both.distance_to_centroid_train, rtol=0, atol=1e-12)
    assert np.allclose(both.margin, both.margin_train, rtol=0, atol=1e-12)
    assert set(scores.model_run_id) == {"train"} and set(scores.score_run_id) == {"s1"}


def test_nearest_centroids_lists_every_centre_nearest_first(trained):
    assert score(trained) == 0
    scores = table(trained / "out" / "session_scores")
    k = len(table(trained / "out" / "cluster_centers"))
    for row in scores.head(200).itertuples():
        pairs = list(row.nearest_centroids)
        distances = [p["distance"] for p in pairs]
        assert len(pairs) == k and sorted(p["cluster_id"] for p in pairs) == list(range(k))
        assert distances == sorted(distances)
        assert (pairs[0]["cluster_id"], pairs[0]["distance"]) == (row.cluster_id, row.distance_to_centroid)
        assert pairs[1]["distance"] - pairs[0]["distance"] == pytest.approx(row.margin, abs=1e-12)


def test_the_standardised_features_are_the_saved_pipelines_bit_for_bit(spark, trained, tmp_path):
    """Scoring applies the fitted values kept in visitseg_model.json as column expressions; Spark ML's own
    transform of the saved PipelineModel is the independent reference, and every double must be identical.
    A model saved before those values were in its facts loads them from the PipelineModel, the same."""
    path = trained / "out" / "models" / "train"
    model = load_model(str(path))
    features = spark.read.parquet(*DeltaTable(str(trained / "out" / "visit_features")).file_uris())
    ours = model.standardised(features).select("visit_key", F.col(STANDARDISED).alias("ours"))
    pipeline = PipelineModel.load(str(path))
    theirs = PipelineModel(stages=pipeline.stages[:-1]).transform(features).select("visit_key", vector_to_array(F.col(FEATURES)).alias("theirs"))
    both = ours.join(theirs, "visit_key").toPandas()
    assert len(both) == N_VISITS and len(both.ours[0]) == len(pipeline.stages[1].getInputCols())
    assert all(np.array_equal(np.array(a), np.array(b)) for a, b in zip(both.ours, both.theirs))
    assert np.array_equal(model.centres, np.array(pipeline.stages[-1].clusterCenters()))

    older = tmp_path / "older"
    shutil.copytree(path, older)
    facts = json.loads((older / MODEL_FACTS).read_text())
    del facts["fitted"]
    (older / MODEL_FACTS).write_text(json.dumps(facts))
    assert load_model(str(older)).fitted == model.fitted


def test_scoring_again_replaces_and_a_window_replaces_only_its_days(trained):
    assert score(trained, run_id="first") == 0
    assert score(trained, run_id="again") == 0
    scores = table(trained / "out" / "session_scores")
    assert len(scores) == N_VISITS and scores.visit_key.is_unique and set(scores.score_run_id) == {"again"}

    days = sorted(scores.visit_date.unique())
    assert score(trained, "--set", f"input.date_from={days[1]}", "--set", f"input.date_to={days[2]}", run_id="one-day") == 0
    scores = table(trained / "out" / "session_scores")
    assert len(scores) == N_VISITS and scores.visit_key.is_unique
    assert scores.groupby("visit_date").score_run_id.unique().map(list).to_dict() == {
        d: ["one-day"] if d == days[1] else ["again"] for d in days
    }


def test_the_model_keeps_the_training_feature_settings(trained):
    """A --set of a feature setting on `score` does not change how visits are built: the saved model's
    configuration wins, so scoring sees visits as the model was trained on them."""
    facts = json.loads((trained / "out" / "models" / "train" / "visitseg_model.json").read_text())
    assert facts["run_id"] == "train" and len(facts["segments"]) == len(table(trained / "out" / "cluster_centers"))
    assert score(trained, "--set", "features.grain=user", run_id="user") == 0
    scores = table(trained / "out" / "session_scores")
    assert len(scores) == N_VISITS and set(scores.score_run_id) == {"user"}


def test_a_missing_model_is_a_named_error_and_writes_nothing(trained, tmp_path, capsys):
    out = tmp_path / "empty"
    assert score(trained, model="latest", output=str(out)) == 2
    assert "ConfigError: --model latest" in capsys.readouterr().err and not out.exists()
    assert score(trained, model=str(tmp_path / "nowhere")) == 2
    assert "no visitseg_model.json there" in capsys.readouterr().err
