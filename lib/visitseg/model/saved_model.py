"""The saved model: what `visitseg score` needs from a training run, in DIR/models/<run_id>/.

Spark ML's own copy of the fitted pipeline (metadata/ and stages/), and beside it `visitseg_model.json`:
the run's facts, its segment ids and names, and the fitted values (winsorising select list, scaler means
and deviations, centres), which scoring applies as column expressions without loading Spark ML's model.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pyarrow.fs as pafs
from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame

from visitseg import __version__
from visitseg.core.config import Config, with_values
from visitseg.core.errors import ConfigError, ModelNotFoundError
from visitseg.core.sql import double
from visitseg.model.preprocess import winsorizing_selects
from visitseg.storage.delta_log import table_uri
from visitseg.storage.files import write_json

STANDARDISED = "standardised_features"  # array<double>: the features as the model's k-means saw them


MODEL_FACTS = "visitseg_model.json"  # beside Spark ML's own metadata/ and stages/ folders


@dataclass(frozen=True)
class Fitted:
    """The fitted preprocessing and k-means centres of a model as plain values, kept in `visitseg_model.json`
    beside Spark ML's own copy. Scoring applies them as column expressions, so `visitseg score` does not
    load the PipelineModel: Spark ML's loader runs a dozen small Spark jobs, 4-6 s in a fresh JVM.
    JSON keeps every double exactly (Python writes the shortest repr that reads back to the same double)."""

    prepared: list[str]  # the winsorising SQL's select list: one `expr AS `<col>__prepared`` per feature
    columns: list[str]  # the assembler's inputs: those `<col>__prepared` columns, in the model's order
    with_mean: bool
    with_std: bool
    mean: list[float]
    std: list[float]
    centres: list[list[float]]  # k-means centres in standardised units, by raw cluster index


def fitted_values(pipeline: PipelineModel) -> Fitted:
    """The values of a fitted `fit` pipeline (preprocess.py), checked to have its stages."""
    shape = [type(stage).__name__ for stage in pipeline.stages]
    if shape != MODEL_STAGES:
        raise ConfigError(f"a model whose stages are {shape}, not {MODEL_STAGES}; retrain it with this visitseg ({__version__})")
    sql, assembler, scaler, kmeans = pipeline.stages
    return Fitted(
        winsorizing_selects(sql.getStatement()), list(assembler.getInputCols()), bool(scaler.getWithMean()), bool(scaler.getWithStd()),
        scaler.mean.toArray().tolist(), scaler.std.toArray().tolist(), [c.tolist() for c in kmeans.clusterCenters()],
    )


@dataclass(frozen=True)
class SavedModel:
    run_id: str
    grain: str
    method: str
    segments: dict[int, tuple[int, str]]  # raw k-means index → (cluster_id, segment name)
    config: dict[str, Any]  # the training run's configuration, redacted
    fitted: Fitted

    @property
    def centres(self) -> np.ndarray:
        return np.array(self.fitted.centres)

    def standardised(self, features: DataFrame) -> DataFrame:
        """`features` with STANDARDISED: the saved preprocessing's output as an array column. The
        winsorising SQL runs as saved (its select list, through `selectExpr`); the assembler and scaler
        are applied through their fitted parameters as SQL arithmetic (one parsed expression), exactly as Spark's
        StandardScalerModel computes each value ((x - mean) * (1 / std), 0 where std is 0), which gives
        the same doubles bit for bit (`tests/test_score.py`) without building a vector per row and
        converting it back to an array: that took 2.0 of the 2.3 s of assigning 1.27M visits, a cost
        `visitseg score` pays twice. Prepared columns of another model already in `features` (a
        retrain's lineage) are replaced."""
        f = self.fitted
        values = []
        for column, shift, spread in zip(f.columns, f.mean, f.std):
            value = f"CAST(`{column}` AS DOUBLE)"
            if f.with_mean:
                value = f"({value} - {double(shift)})"
            if f.with_std:
                value = f"({value} * {double(0.0 if spread == 0 else 1.0 / spread)})"
            values.append(value)
        return features.drop(*f.columns).selectExpr("*", *f.prepared).selectExpr("*", f"array({', '.join(values)}) AS {STANDARDISED}")


TRAINING_SECTIONS = ("events", "features", "model", "rules", "naming")


def scoring_config(cfg: Config, training: Mapping[str, Any]) -> Config:
    """The training run's feature and model settings (`training`, its saved configuration), with this
    invocation's input window, output, run id and Spark settings: visits are built exactly as the model
    saw them in training."""
    return with_values(cfg, **{section: training[section] for section in TRAINING_SECTIONS})


def save_model(path: str, model: SavedModel, pipeline: PipelineModel) -> None:
    """Spark ML's copy of `pipeline` (for anyone loading it with Spark ML), and `visitseg_model.json`: the
    run's facts and the fitted values, which are what `visitseg score` reads."""
    pipeline.write().overwrite().save(path)
    facts = {"run_id": model.run_id, "grain": model.grain, "method": model.method, "config": model.config,
             "segments": [{"raw_cluster": raw, "cluster_id": cid, "segment": name} for raw, (cid, name) in sorted(model.segments.items())],
             "fitted": dataclasses.asdict(model.fitted)}
    write_json(f"{path}/{MODEL_FACTS}", facts)


def load_model(path: str) -> SavedModel:
    """The saved model at `path`: its facts file alone, no Spark job. A model saved before the fitted
    values were in its facts is read through Spark ML's loader."""
    facts = model_facts(path)
    segments = {s["raw_cluster"]: (s["cluster_id"], s["segment"]) for s in facts["segments"]}
    try:
        fitted = Fitted(**facts["fitted"]) if "fitted" in facts else fitted_values(PipelineModel.load(path))
    except ConfigError as e:
        raise ConfigError(f"--model {path}: {e}") from None
    return SavedModel(facts["run_id"], facts["grain"], facts["method"], segments, facts["config"], fitted)


MODEL_STAGES = ["SQLTransformer", "VectorAssembler", "StandardScalerModel", "KMeansModel"]  # what `fit` saves (preprocess.py)


def model_facts(path: str) -> dict[str, Any]:
    """The model's own facts (`visitseg_model.json`: run id, segments, the training configuration), checked
    to be a model `visitseg score` can use; a plain file read, no Spark job."""
    fs, root = pafs.FileSystem.from_uri(table_uri(path))
    try:
        with fs.open_input_stream(f"{root}/{MODEL_FACTS}") as f:
            facts = json.loads(f.read())
    except FileNotFoundError:  # only "not there": a forbidden or throttled read is raised with its cause
        raise ModelNotFoundError(
            f"--model {path}: no {MODEL_FACTS} there; give DIR/models/<run_id> of a run written by visitseg {__version__} "
            f"or later (or `latest`), or rerun that training"
        ) from None
    if facts["method"] != "kmeans" or facts["grain"] != "visit":
        raise ConfigError(
            f"--model {path}: a {facts['method']} model at {facts['grain']} grain; `visitseg score` scores visits with "
            f"k-means models (rule segments need no model: `visitseg run --set model.method=rules`)"
        )
    return facts
