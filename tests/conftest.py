"""One local-mode SparkSession for the whole test run, built by the project's own builder."""

from __future__ import annotations

import os

import pyspark
import pytest
from pyspark.sql import SparkSession

from visitseg.core.config import SparkConfig
from visitseg.core.spark import build_session
from visitseg.core.versions import delta_package


os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # no hostname lookup, no warning


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> SparkSession:
    warehouse = tmp_path_factory.mktemp("warehouse")
    session = build_session(
        SparkConfig(
            app_name="visitseg-tests",
            master="local[2]",  # the least parallelism that still catches distribution bugs
            shuffle_partitions=2,
            conf={
                "spark.ui.enabled": "false",
                "spark.sql.warehouse.dir": str(warehouse),
                "spark.default.parallelism": "2",
                "spark.rdd.compress": "false",
                "spark.sql.adaptive.coalescePartitions.initialPartitionNum": "2",
                "spark.driver.extraJavaOptions": "-XX:+UseParallelGC",
                # VISITSEG_TEST_DELTA=1 (where Maven is reachable): Spark's Delta source of this line, so
                # every table of the suite goes through the native writer and reader.
                **({"spark.jars.packages": delta_package(pyspark.__version__) or ""} if os.environ.get("VISITSEG_TEST_DELTA") == "1" else {}),
            },
        )
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
