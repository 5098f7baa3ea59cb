"""One local-mode SparkSession for the whole test run, built by the project's own builder."""

from __future__ import annotations

import os

import pytest
from pyspark.sql import SparkSession

from support import NO_DELTA_JARS, delta_jars
from visitseg.core.config import SparkConfig
from visitseg.core.spark import build_session, session_has_delta


os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # no hostname lookup, no warning
# The fresh processes tests start (`visitseg` runs, a second Spark process) live a minute or two on a tiny
# input: their JIT's optimising compiler costs more CPU than it saves, and the suite is CPU-bound on 2 cores.
# C1 alone cut such tests by 10-65% (a time-zone pair 118 -> 40 s). The worker's own session below lives
# for the whole run and keeps full tiered compilation: C1 alone made in-session tests up to 2x slower.
os.environ.setdefault("SPARK_SUBMIT_OPTS", "-XX:TieredStopAtLevel=1")
FULL_JIT = "-XX:TieredStopAtLevel=4"  # spark.driver.extraJavaOptions comes after SPARK_SUBMIT_OPTS; the last flag wins


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
                "spark.driver.extraJavaOptions": f"-XX:+UseParallelGC {FULL_JIT}",
                # Delta rebuilds a table's state in 50 tasks by default; the tests' logs are a few commits.
                "spark.databricks.delta.snapshotPartitions": "2",
                # Spark's Delta source of this line, as clusters have it: in-process jobs write through the
                # native writer (output.delta_writer = auto); the Delta layer's tests use both writers.
                **({"spark.jars": ",".join(delta_jars())} if delta_jars() else {}),
            },
        )
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(params=["deltalake", "native"])
def writer(request, spark) -> str:
    """A test that takes it runs once per Delta writer: the jar-free one and Spark's own Delta source."""
    if request.param == "native" and not session_has_delta(spark):
        pytest.skip(NO_DELTA_JARS)
    return request.param
