"""The feature table a job works on: its name, its persisted rows and how many there are."""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame


@dataclass(frozen=True)
class FeatureTable:
    name: str  # visit_features | user_features
    df: DataFrame  # persisted for as long as the stage that built it lasts (`pipelines.features.built_features`)
    rows: int
