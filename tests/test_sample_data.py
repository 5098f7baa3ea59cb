"""The sample generator: deterministic by seed whatever the partitioning, with the planted mix and drift."""

from __future__ import annotations

from chispa import assert_df_equality
from pyspark.sql import functions as F

from visitseg.ingest import sample_data


def test_same_seed_same_rows_whatever_the_partitioning(spark):
    one = sample_data.ga360_sessions(sample_data.planted_visits(spark, 500, 10, seed=3, partitions=1), seed=3)
    many = sample_data.ga360_sessions(sample_data.planted_visits(spark, 500, 10, seed=3, partitions=7), seed=3)
    assert_df_equality(one, many, ignore_row_order=True)
    other = sample_data.planted_visits(spark, 500, 10, seed=4).select("segment")
    assert other.collect() != sample_data.planted_visits(spark, 500, 10, seed=3).select("segment").collect()


def test_planted_mix_and_daily_drift(spark):
    visits = sample_data.planted_visits(spark, 20_000, 10, seed=42)
    shares = {r.segment: r.share for r in visits.groupBy("segment").agg((F.count("*") / 20_000).alias("share")).collect()}
    assert set(shares) == set(sample_data.SEGMENTS)
    assert abs(shares["bouncer"] - 0.30) < 0.02 and abs(shares["researcher"] - 0.12) < 0.015
    first, last = (
        visits.filter(F.col("start_sec") < F.unix_timestamp(F.lit(str(sample_data.START_DATE + d)).cast("timestamp")) + 86400)
        .filter(F.col("start_sec") >= F.unix_timestamp(F.lit(str(sample_data.START_DATE + d)).cast("timestamp")))
        .agg(F.avg((F.col("segment") == "bouncer").cast("double")))
        .first()[0]
        for d in (sample_data.dt.timedelta(0), sample_data.dt.timedelta(9))
    )
    assert first - last > 0.05  # bouncers fall from 35% to 25% over the range


def test_hits_per_visit_match_the_plan(spark):
    visits = sample_data.planted_visits(spark, 300, 3, seed=1)
    flat = sample_data.flat_events(visits, seed=1)
    planned = visits.agg(F.sum(F.col("n_hits") - F.col("checkouts"))).first()[0]
    assert flat.count() == planned
    assert abs(visits.agg(F.avg("n_hits")).first()[0] - sample_data.MEAN_HITS_PER_VISIT) < 0.6
