"""The segment KPIs of scored visits, per day, and each segment's totals for drift's segment-mix metrics.

A score writes `segment_kpis_daily` of its visits as a run writes its own: one pass grouped by (raw
cluster, day) over the assigned visits (`model.profiles`), which also gives the days whose partitions the
score replaces and the feature columns' counts and sums for drift's profile.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from visitseg.features.grains import GRAINS
from visitseg.model.profiles import column_measures, column_totals, daily_rows, sums_by_cluster_and_day
from visitseg.model.saved_model import STANDARDISED, SavedModel
from visitseg.storage.tables import KpiRow


@dataclass(frozen=True)
class SegmentStats:
    name: str
    share: float
    conversion_rate: float | None


def scored_daily_rows(assigned: DataFrame, numeric: list[str], model: SavedModel, run_id: str) -> tuple[list[KpiRow], dict[str, tuple[int, float]]]:
    """`segment_kpis_daily` rows of the visits a score assigns (`assign.assigned_visits` rows), and the
    `column_totals` of the feature table's `numeric` columns, from one pass. No standardised sums: a score
    has no centres to profile."""
    grain = GRAINS["visit"]
    per_day = sums_by_cluster_and_day(assigned, grain.date_col, {**grain.profile, **column_measures(numeric)}, 0, F.col(STANDARDISED))
    ids = {raw: cid for raw, (cid, _) in model.segments.items()}
    return daily_rows(per_day, ids, dict(model.segments.values()), run_id), column_totals(per_day, numeric)


def segment_stats(daily: Sequence[KpiRow], total: int) -> dict[int, SegmentStats]:
    """Each segment's share of `total` rows and its conversion rate, from its `segment_kpis_daily` rows:
    the days' rates weighted by their visits."""
    n: dict[int, int] = {}
    converted: dict[int, float] = {}
    names: dict[int, str] = {}
    for row in daily:
        names[row.cluster_id] = row.segment
        n[row.cluster_id] = n.get(row.cluster_id, 0) + row.n_visits
        converted[row.cluster_id] = converted.get(row.cluster_id, 0.0) + (row.conversion_rate or 0.0) * row.n_visits
    return {c: SegmentStats(names[c], n[c] / total, converted[c] / n[c]) for c in sorted(n)}
