"""Cache hygiene: what a stage persists is released when the stage ends, by an error too."""

from __future__ import annotations

import pytest
from pyspark import StorageLevel

from visitseg.core.spark import persisted


def test_persisted_releases_the_cache_when_the_block_fails(spark):
    df = spark.range(10)
    with pytest.raises(ZeroDivisionError):
        with persisted(df, StorageLevel.MEMORY_AND_DISK) as cached:
            assert cached.count() == 10 and cached.is_cached
            1 / 0
    assert not df.is_cached and df.storageLevel == StorageLevel.NONE
