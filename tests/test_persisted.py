"""Cache hygiene: what a stage persists is released when the stage ends, by an error too; and it holds as
many partitions as its size needs on both Spark lines, not `spark.sql.shuffle.partitions` (Spark 3.5 does
not coalesce a cached plan's last shuffle: its 200 nearly empty tasks a pass doubled a small run's time)."""

from __future__ import annotations

import pytest
from chispa import assert_df_equality
from pyspark import StorageLevel
from pyspark.sql import functions as F

from visitseg.core.spark import persisted, session_conf

SHUFFLE = {"spark.sql.shuffle.partitions": "50", "spark.sql.adaptive.coalescePartitions.initialPartitionNum": "50"}


def test_persisted_releases_the_cache_when_the_block_fails(spark):
    df = spark.range(10)
    with pytest.raises(ZeroDivisionError):
        with persisted(df, StorageLevel.MEMORY_AND_DISK) as cached:
            assert cached.count() == 10 and cached.is_cached
            1 / 0
    assert not df.is_cached and df.storageLevel == StorageLevel.NONE
    assert not cached.is_cached


def test_a_small_aggregate_is_persisted_in_no_more_partitions_than_cores(spark):
    with session_conf(spark, SHUFFLE):
        grouped = spark.range(1000).groupBy((F.col("id") % 10).alias("k")).agg(F.count("*").alias("n"), F.sum("id").alias("total"))
        with persisted(grouped, StorageLevel.DISK_ONLY) as cached:
            assert cached.count() == 10
            assert cached.rdd.getNumPartitions() <= spark.sparkContext.defaultParallelism
            expected = spark.createDataFrame([(k, 100, sum(range(k, 1000, 10))) for k in range(10)], "k long, n long, total long")
            assert_df_equality(cached, expected, ignore_row_order=True, ignore_nullable=True)
