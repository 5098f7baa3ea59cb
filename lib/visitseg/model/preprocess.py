"""Preprocessing as fitted Spark ML stages: winsorise (+ optional log1p) → assemble → standardise.

`Winsorizer` is an Estimator whose fitted form is a plain `SQLTransformer` with the learnt bounds written
into its statement, so the fitted PipelineModel holds JVM stages only: it saves and loads with Spark's
own persistence, and scoring runs without Python in the executors.

`log1p_features` are log1p-transformed first (negative values floored at 0); the result is clipped to
mean ± z·std (`winsor_method = "zscore"`, default z = 5) or to the q and 1-q approximate quantiles
(`"quantile"`), all learnt on the transformed training values. A null value becomes that training mean
(the feature tables have no nulls by construction; this only guards hand-made inputs). Log first: real visit counts and amounts are zero-inflated and heavy-tailed, so the standard
deviation of the raw values is set by a few extreme visits and a raw z-clip barely clips at all (one
GA4 visit of 4.6 days stretched time on site over everything else).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from pyspark import keyword_only
from pyspark.ml import Estimator, Pipeline, PipelineModel
from pyspark.ml.feature import SQLTransformer, StandardScaler, VectorAssembler
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import HasInputCols
from pyspark.ml.util import DefaultParamsReadable, DefaultParamsWritable
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from visitseg.core.config import ModelConfig
from visitseg.core.errors import InputSchemaError
from visitseg.core.sql import double

log = logging.getLogger(__name__)

PREPARED_SUFFIX = "__prepared"
RAW_VECTOR = "raw_features"
FEATURES = "features"
QUANTILE_ACCURACY = 10_000


class Winsorizer(Estimator, HasInputCols, DefaultParamsReadable, DefaultParamsWritable):
    """Learns clip bounds (and null fill values) per column; fits to a SQLTransformer adding `<col>__prepared`."""

    method = Param(Params._dummy(), "method", "zscore | quantile | none", typeConverter=TypeConverters.toString)
    z = Param(Params._dummy(), "z", "clip at mean ± z·std (zscore)", typeConverter=TypeConverters.toFloat)
    quantile = Param(Params._dummy(), "quantile", "clip at the q and 1-q quantiles", typeConverter=TypeConverters.toFloat)
    log1pCols = Param(Params._dummy(), "log1pCols", "columns to log1p before clipping", typeConverter=TypeConverters.toListString)

    @keyword_only
    def __init__(self, *, inputCols=None, method="zscore", z=5.0, quantile=0.001, log1pCols=None):
        super().__init__()
        self._setDefault(method="zscore", z=5.0, quantile=0.001, log1pCols=[])
        kwargs = self._input_kwargs
        self._set(**{k: v for k, v in kwargs.items() if v is not None})

    def _fit(self, dataset: DataFrame) -> SQLTransformer:
        cols = self.getInputCols()
        method, z, q = self.getOrDefault("method"), self.getOrDefault("z"), self.getOrDefault("quantile")
        log1p = set(self.getOrDefault("log1pCols"))
        # Each value before clipping, as SQL text (null stays null): the double, or its log1p.
        # (greatest() skips nulls, so the log1p is guarded by an IF to keep a null a null.)
        transformed = {
            c: f"IF(`{c}` IS NULL, NULL, log1p(greatest(CAST(`{c}` AS DOUBLE), CAST(0 AS DOUBLE))))" if c in log1p else f"CAST(`{c}` AS DOUBLE)"
            for c in cols
        }
        values = dataset.select(*[F.expr(v).alias(c) for c, v in transformed.items()])
        aggs = [F.avg(c).alias(f"{c}__mean") for c in cols] + [F.stddev_pop(c).alias(f"{c}__std") for c in cols]
        if method == "quantile":
            aggs += [F.percentile_approx(c, [q, 1 - q], QUANTILE_ACCURACY).alias(f"{c}__q") for c in cols]
        stats = values.agg(*aggs).first()
        selects = []
        for c in cols:
            mean, std = stats[f"{c}__mean"], stats[f"{c}__std"] or 0.0
            value = f"coalesce({transformed[c]}, {double(mean)})"
            if method == "zscore":
                value = f"least(greatest({value}, {double(mean - z * std)}), {double(mean + z * std)})"
            elif method == "quantile":
                low, high = stats[f"{c}__q"]
                value = f"least(greatest({value}, {double(low)}), {double(high)})"
            selects.append(f"{value} AS `{c}{PREPARED_SUFFIX}`")
        return SQLTransformer(statement=winsorizing_statement(selects))


_HEAD, _TAIL = "SELECT *, ", " FROM __THIS__"


def winsorizing_statement(selects: list[str]) -> str:
    """The fitted Winsorizer's SQL: every column, then one `expr AS `<col>__prepared`` per feature."""
    return f"{_HEAD}{', '.join(selects)}{_TAIL}"


def winsorizing_selects(statement: str) -> list[str]:
    """The select list of `winsorizing_statement` (its inverse), for applying it with `selectExpr`, which
    needs no temporary view. Each item ends with its `<col>__prepared` alias, so it splits there; a
    statement of any other form is an error, not a guess."""
    body = statement[len(_HEAD):-len(_TAIL)] if statement.startswith(_HEAD) and statement.endswith(_TAIL) else ""
    selects = re.split(rf"(?<={re.escape(PREPARED_SUFFIX)}`), ", body)
    if not body or winsorizing_statement(selects) != statement:
        raise ValueError(f"not a Winsorizer statement: {statement[:200]!r}")
    return selects


@dataclass(frozen=True)
class UsableFeatures:
    kept: tuple[str, ...]
    dropped: tuple[str, ...]  # zero variance on the training data


def usable_features(df: DataFrame, features: tuple[str, ...]) -> UsableFeatures:
    """Check the configured features exist and are numeric; drop (with a warning) those with zero variance."""
    numeric = {f.name for f in df.schema.fields if f.dataType.typeName() in ("long", "integer", "double", "float", "short", "decimal")}
    missing = [c for c in features if c not in numeric]
    if missing:
        raise InputSchemaError(
            f"model.features: {missing} are not numeric columns of the feature table; available: {sorted(numeric)}"
        )
    spread = df.agg(*[(F.max(c) - F.min(c)).alias(c) for c in features]).first()
    dropped = tuple(c for c in features if not spread[c])  # null (no rows) or 0 (constant)
    if dropped:
        log.warning("model: dropping zero-variance features %s (constant on the training data)", list(dropped))
    kept = tuple(c for c in features if c not in dropped)
    if not kept:
        raise InputSchemaError(f"model.features: every feature is constant on the training data {list(features)}; nothing to cluster")
    return UsableFeatures(kept, dropped)


def preprocessing_pipeline(features: tuple[str, ...], log1p: tuple[str, ...], cfg: ModelConfig) -> Pipeline:
    log1p = [c for c in log1p if c in features]
    return Pipeline(
        stages=[
            Winsorizer(inputCols=list(features), method=cfg.winsor_method, z=cfg.winsor_z, quantile=cfg.winsor_quantile, log1pCols=log1p),
            VectorAssembler(inputCols=[f"{c}{PREPARED_SUFFIX}" for c in features], outputCol=RAW_VECTOR, handleInvalid="error"),
            StandardScaler(inputCol=RAW_VECTOR, outputCol=FEATURES, withMean=True, withStd=True),
        ]
    )


def fit_preprocessing(df: DataFrame, features: tuple[str, ...], log1p: tuple[str, ...], cfg: ModelConfig) -> PipelineModel:
    """`log1p`: the features (of `features`) to log1p before clipping (`fit.model_features`)."""
    return preprocessing_pipeline(features, log1p, cfg).fit(df)
