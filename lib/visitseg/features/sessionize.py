"""Cutting a user's event stream into visits by an inactivity gap, with window functions only.

A new visit starts at a user's first event and at every event that follows the previous one by MORE than
the gap; an event exactly `gap` after the previous one continues the visit. Events are ordered by time,
then by the tie-breaker columns, so out-of-order input and equal timestamps give the same visits on
every run. One window (partitioned by user, ordered by time) serves every column, so Spark sorts once.
"""

from __future__ import annotations

from typing import Sequence

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F


def with_sessions(df: DataFrame, user_col: str, ts_col: str, gap_seconds: float, tie_breakers: Sequence[str] = ()) -> DataFrame:
    """Add `visit_key` (user-startMillis), `visit_start_ts` and `hit_number` (1-based within the visit).

    Requires `user_col` (string) and `ts_col` (timestamp), neither null.
    """
    by_user = Window.partitionBy(user_col).orderBy(ts_col, *tie_breakers)
    so_far = by_user.rowsBetween(Window.unboundedPreceding, Window.currentRow)
    gap_micros = F.unix_micros(F.col(ts_col)) - F.unix_micros(F.lag(ts_col).over(by_user))
    starts_visit = gap_micros.isNull() | (gap_micros > F.lit(int(round(gap_seconds * 1_000_000))))
    return (
        df.withColumn("_row", F.row_number().over(by_user))
        .withColumn("_starts_visit", starts_visit)
        .withColumn("visit_start_ts", F.max(F.when(F.col("_starts_visit"), F.col(ts_col))).over(so_far))
        .withColumn("_start_row", F.max(F.when(F.col("_starts_visit"), F.col("_row"))).over(so_far))
        .withColumn("visit_key", F.concat_ws("-", F.col(user_col), F.unix_millis("visit_start_ts").cast("string")))
        .withColumn("hit_number", (F.col("_row") - F.col("_start_row") + 1).cast("long"))
        .drop("_row", "_starts_visit", "_start_row")
    )
