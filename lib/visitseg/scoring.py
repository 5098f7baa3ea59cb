"""Assigning rows to fitted centres: used by `visitseg run` (its labels) and `visitseg score` (new visits).

For each row: the nearest centre, the Euclidean distance to it (standardised units) and the margin to the
second-nearest centre (small margin = a borderline row), what Spark ML's KMeansModel does not return.
Built-in column functions only: no Python UDF. Ties go to the lower centre index, as in
KMeansModel.predict. (Sorting an array of (distance, index) structs per row was 6x slower than sorting
plain doubles and picking the index separately; scoring, which returns that array, builds it from ranks.
The doubles are sorted with `sort_array`, which Spark compiles, not `array_sort`, which calls its
comparator function per pair: the session_scores write's first stage took 2.9 s against 5.5 s.)
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pyarrow.fs as pafs
from pyspark.ml import PipelineModel
from pyspark.ml.functions import vector_to_array
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from visitseg import __version__
from visitseg.config import Config, with_values
from visitseg.delta import table_uri
from visitseg.errors import ConfigError
from visitseg.metrics import double, squared_distance
from visitseg.preprocess import FEATURES, winsorizing_selects
from visitseg.report import write_json

# Spark's advice for HotSpot (the setting's own documentation): the session_scores plan's generated Java
# (K distances, K² rank comparisons, the nearest-first array) has methods over the JVM's 8,000-byte limit
# for JIT compilation, which then run interpreted for the whole write. With this limit Spark compiles such
# a plan operator by operator instead. The write's first stage took 2.9-3.3 s with it and 4.7 s without
# (15.8 s once `sort_array` made the method larger still). Set for score writes only: the feature
# aggregation's plans were no faster with it.
SCORES_CODEGEN = {"spark.sql.codegen.hugeMethodLimit": "8000"}
RAW_CLUSTER = "raw_cluster"
NEAREST_CENTROIDS = "nearest_centroids"
STANDARDISED = "standardised_features"  # array<double>: the features as the model's k-means saw them


def with_nearest_centre(df: DataFrame, centres: np.ndarray, cluster_ids: Sequence[int] | None = None, x: Column | None = None) -> DataFrame:
    """Adds raw_cluster (index into `centres`), distance_to_centroid and margin of the standardised
    features `x` (an array column; by default the `features` vector's values).
    With `cluster_ids` (the id of each centre) also `nearest_centroids`: every (cluster_id, distance), nearest first.
    The expressions are SQL text, parsed once per layer: built with Column operators they cost a Py4J
    round trip each, about 0.4 s of driver time per call at K = 5 (hundreds of calls for the K² ranks)."""
    names = [f"_d{i}" for i in range(len(centres))]
    nearest = f"least({', '.join(names)})"
    assigned = (
        df.withColumn("_x", vector_to_array(F.col(FEATURES)) if x is None else x)
        .selectExpr("*", *[f"sqrt({squared_distance('_x', centre)}) AS {name}" for name, centre in zip(names, centres)])
        .selectExpr(
            "*",
            f"CASE {' '.join(f'WHEN {n} = {nearest} THEN {i}' for i, n in enumerate(names))} END AS {RAW_CLUSTER}",
            f"{nearest} AS distance_to_centroid",
            f"sort_array(array({', '.join(names)}))[1] - {nearest} AS margin",
        )
    )
    if cluster_ids is not None:
        ranks = [f"_rank{j}" for j in range(len(names))]
        assigned = assigned.selectExpr("*", *[f"{rank} AS {name}" for rank, name in zip(_ranks(names, list(cluster_ids)), ranks)])
        pairs = [f"named_struct('cluster_id', {cid}, 'distance', {n})" for n, cid in zip(names, cluster_ids)]
        nearest_first = [f"CASE {' '.join(f'WHEN {r} = {p} THEN {pair}' for r, pair in zip(ranks, pairs))} END" for p in range(len(names))]
        assigned = assigned.selectExpr("*", f"array({', '.join(nearest_first)}) AS {NEAREST_CENTROIDS}").drop(*ranks)
    return assigned.drop("_x", *names)


def _ranks(names: Sequence[str], cluster_ids: Sequence[int]) -> list[str]:
    """SQL text of each centre's place in the nearest-first order (how many centres come before it; ties
    by cluster id): K² comparisons per row. Sorting an array of (distance, id) structs instead took most
    of the scoring time (a comparator evaluated on objects, per pair)."""

    def before(i: int, j: int) -> str:
        tie = "true" if cluster_ids[i] < cluster_ids[j] else "false"
        return f"CASE WHEN {names[i]} < {names[j]} OR ({names[i]} = {names[j]} AND {tie}) THEN 1 ELSE 0 END"

    return [" + ".join(["0", *(before(i, j) for i in range(len(names)) if i != j)]) for j in range(len(names))]


def with_segments(assigned: DataFrame, segments: Mapping[int, tuple[int, str]]) -> DataFrame:
    """Adds cluster_id and segment from raw_cluster (raw index → (cluster_id, segment name))."""
    raw_to_id = F.create_map(*[v for raw, (cid, _) in segments.items() for v in (F.lit(raw), F.lit(cid))])
    id_to_name = F.create_map(*[v for cid, name in segments.values() for v in (F.lit(cid), F.lit(name))])
    return assigned.withColumn("cluster_id", raw_to_id[F.col(RAW_CLUSTER)]).withColumn("segment", id_to_name[F.col("cluster_id")])


# --- the saved model: what `visitseg score` needs from the training run, in DIR/models/<run_id>/ ---

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
    except (FileNotFoundError, OSError):
        raise ConfigError(
            f"--model {path}: no {MODEL_FACTS} there; give DIR/models/<run_id> of a run written by visitseg {__version__} "
            f"or later (or `latest`), or rerun that training"
        ) from None
    if facts["method"] != "kmeans" or facts["grain"] != "visit":
        raise ConfigError(
            f"--model {path}: a {facts['method']} model at {facts['grain']} grain; `visitseg score` scores visits with "
            f"k-means models (rule segments need no model: `visitseg run --set model.method=rules`)"
        )
    return facts


def assigned_visits(features: DataFrame, model: SavedModel) -> DataFrame:
    """The visit feature rows with the saved preprocessing's STANDARDISED array, their nearest centre
    (raw_cluster, distance_to_centroid, margin, nearest_centroids), cluster_id and segment: what a score's
    `session_scores` rows and its segment KPIs both read. One plan for both: Spark prunes what each does
    not use, and the driver parses and analyses the long expressions once (0.5 s less in a fresh JVM)."""
    centres = model.centres
    ids = [model.segments[raw][0] for raw in range(len(centres))]
    return with_segments(with_nearest_centre(model.standardised(features), centres, ids, F.col(STANDARDISED)), model.segments)


def score_visits(assigned: DataFrame, model: SavedModel, score_run_id: str) -> DataFrame:
    """`session_scores` rows of `assigned_visits` rows."""
    # One task per day: `session_scores` is partitioned by day, and every task would otherwise write a
    # file into every day's folder (tasks x days files, each moved and listed in the commit one by one).
    return assigned.select(
        "visit_key", "user_key", "visit_date", "cluster_id", "segment", "distance_to_centroid", "margin", NEAREST_CENTROIDS,
        F.lit(model.run_id).alias("model_run_id"), F.lit(score_run_id).alias("score_run_id"),
    ).repartition("visit_date")

