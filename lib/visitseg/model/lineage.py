"""Segment ids that keep their meaning across retrains: the new clusters matched to the previous run's.

The new run's clusters and the previous run's are compared in one space, the previous run's: the
previous run's saved preprocessing (log1p, winsorising, standardising) is applied to the new run's visits,
and each new cluster's mean there is its centre. The pairing that minimises the summed Euclidean distance
between new and previous centres is the optimal assignment (the Hungarian algorithm, scipy's
`linear_sum_assignment`). A new cluster paired with a previous one no farther than
`model.lineage_max_shift` (standardised units of the previous run) keeps its id and name; any other new
cluster gets a new id, above every id the previous run used. The `cluster_lineage` table records each
new cluster's match, shift and shares, and the adjusted Rand index of the two runs' labels on the visits
both runs labelled.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from scipy.optimize import linear_sum_assignment

from visitseg.core.config import ModelConfig
from visitseg.core.errors import ConfigError, ModelNotFoundError
from visitseg.features.grains import GRAINS
from visitseg.model.assign import RAW_CLUSTER
from visitseg.model.naming import told_apart
from visitseg.model.saved_model import STANDARDISED
from visitseg.model.metrics import adjusted_rand_index
from visitseg.model.saved_model import MODEL_FACTS, SavedModel, load_model
from visitseg.storage import delta
from visitseg.storage.tables import CENTERS, RUN_ID, LineageRow, newest_run

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Previous:
    """What lineage needs of the previous run: its model and its clusters' ids, names and shares."""

    model: SavedModel
    shares: dict[int, float]  # cluster_id → share
    labels: DataFrame  # its labels table rows (visit_key, cluster_id)

    def centres(self) -> dict[int, np.ndarray]:
        """Its k-means centres by cluster id, in its own standardised space."""
        return {self.model.segments[raw][0]: c for raw, c in enumerate(self.model.centres) if raw in self.model.segments}

    def continued(self, ordered: list, names: list[str], matches: dict[int, tuple[int | None, float]]) -> tuple[list[int], list[str]]:
        """Ids and names of the new clusters (`ordered` profiles, their fresh `names`): a continued cluster
        takes its previous id and name; a new one the next id above the previous run's, and its fresh name,
        told apart (`naming.told_apart`) from the continued cluster that already holds it."""
        previous_names = dict(self.model.segments.values())
        next_id = max(previous_names) + 1
        ids, final = [], []
        holders = {previous_names[matches[p.raw_id][0]]: p for p in ordered if matches[p.raw_id][0] is not None}
        taken = set(holders)
        for profile, name in zip(ordered, names):
            old, _ = matches[profile.raw_id]
            if old is not None:
                ids.append(old)
                final.append(previous_names[old])
                continue
            ids.append(next_id)
            if name in holders:
                name = told_apart([name, name], [holders[name].standardized, profile.standardized])[1]
            if name in taken:  # the qualified name is a continued cluster's too
                name = f"{name} (new)"
            final.append(name)
            taken.add(name)
            next_id += 1
        return ids, final


def previous_run(spark: SparkSession, output: str, run_id: str, grain: str, model: ModelConfig) -> Previous | None:
    """`model.previous_run`, else the newest other k-means run at the same grain in the output; None when
    there is none (a first run) or lineage does not apply (rule segments, user grain)."""
    if model.method != "kmeans" or grain != "visit":
        return None
    kmeans_runs = (F.col("method") == "kmeans") & (F.col("grain") == grain)
    if model.previous_run:
        chosen = newest_run(spark, output, kmeans_runs & (F.col(RUN_ID) == model.previous_run), (RUN_ID, "model_path"))
        if chosen is None:
            raise ConfigError(f"model.previous_run = {model.previous_run!r}: no k-means {grain} run of that id in {output}/runs")
    else:
        chosen = newest_run(spark, output, kmeans_runs & (F.col(RUN_ID) != run_id), (RUN_ID, "model_path"))
        if chosen is None:
            return None
    previous_id, model_path = chosen[RUN_ID], chosen["model_path"]
    try:
        saved = load_model(model_path)
    except ModelNotFoundError:
        log.warning("lineage: the model of run %s has no %s (written by an older visitseg); segment ids start afresh", previous_id, MODEL_FACTS)
        return None
    labels_table, key = GRAINS[grain].labels_table, GRAINS[grain].key
    centers = delta.read_table(spark, f"{output}/{CENTERS}").filter(F.col(RUN_ID) == previous_id).select("cluster_id", "share").collect()
    labels = delta.read_table(spark, f"{output}/{labels_table}").filter(F.col(RUN_ID) == previous_id).select(key, "cluster_id")
    return Previous(saved, {r["cluster_id"]: r["share"] for r in centers}, labels)


def centres_in_previous_space(assigned: DataFrame, previous: SavedModel) -> dict[int, np.ndarray]:
    """Each new raw cluster's mean, in the previous run's standardised space (one pass; K rows reach the driver)."""
    moved = previous.standardised(assigned)
    d = len(previous.fitted.columns)
    x = F.col(STANDARDISED)
    rows = moved.groupBy(RAW_CLUSTER).agg(*[F.avg(x[i]).alias(f"m{i}") for i in range(d)]).collect()
    return {int(r[RAW_CLUSTER]): np.array([r[f"m{i}"] for i in range(d)]) for r in rows}


def match(new: dict[int, np.ndarray], previous: dict[int, np.ndarray], max_shift: float) -> dict[int, tuple[int | None, float]]:
    """new raw cluster → (the previous cluster id it continues, or None; distance to its partner, or to the
    nearest previous centre when unpaired). Ties are broken by id order: the result depends on the centres only."""
    new_ids, old_ids = sorted(new), sorted(previous)
    cost = np.array([[float(np.linalg.norm(new[n] - previous[o])) for o in old_ids] for n in new_ids])
    rows, cols = linear_sum_assignment(cost)
    paired = {new_ids[r]: (old_ids[c], float(cost[r, c])) for r, c in zip(rows, cols)}
    result: dict[int, tuple[int | None, float]] = {}
    for i, n in enumerate(new_ids):
        if n in paired and paired[n][1] <= max_shift:
            result[n] = paired[n]
        else:
            result[n] = (None, float(cost[i].min()))
    return result


def lineage_rows(run_id: str, previous_run_id: str, matches: dict[int, tuple[int | None, float]], ids: dict[int, int],
                 shares: dict[int, float], previous_shares: dict[int, float], agreement: tuple[float | None, int]) -> list[LineageRow]:
    """`cluster_lineage` rows, by cluster_id; `agreement` is (ARI, shared visits)."""
    rows = [
        LineageRow(run_id, ids[raw], previous_run_id, old, shift, shares[ids[raw]], previous_shares.get(old) if old is not None else None, *agreement)
        for raw, (old, shift) in matches.items()
    ]
    return sorted(rows, key=lambda r: r.cluster_id)


def labels_agreement(labels: DataFrame, previous_labels: DataFrame, key: str) -> tuple[float | None, int]:
    """Adjusted Rand index of the two runs' cluster ids on the keys both labelled (None when none are
    shared), and how many keys that is: runs over different days share few (a visit across midnight)."""
    counts = (
        labels.select(key, F.col("cluster_id").alias("a"))
        .join(previous_labels.select(key, F.col("cluster_id").alias("b")), key)
        .groupBy("a", "b").count().collect()
    )
    if not counts:
        return None, 0
    a_index = {v: i for i, v in enumerate(sorted({r["a"] for r in counts}))}
    b_index = {v: i for i, v in enumerate(sorted({r["b"] for r in counts}))}
    table = np.zeros((len(a_index), len(b_index)))
    for r in counts:
        table[a_index[r["a"]], b_index[r["b"]]] = r["count"]
    return adjusted_rand_index(table), int(table.sum())
