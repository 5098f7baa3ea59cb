"""The one SparkSession builder outside tests, and per-stage progress logging.

Delta Lake is switched on only when its jars can actually be loaded: production clusters ship them
(or receive them through `--packages io.delta:delta-spark_2.13:…`), while machines without Maven access
cannot fetch them, and setting the Delta extension without the jars breaks the session at start-up.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import math
import sys
import time
from typing import Any, Iterator, Mapping, Sequence

import pandas as pd
import pyarrow as pa
from pyspark import SparkConf, SparkContext, StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from visitseg.core import class_archive
from visitseg.core.arrow_types import to_arrow_schema
from visitseg.core.class_archive import ClassArchive
from visitseg.core.config import SparkConfig
from visitseg.core.redact import SECRET_KEY
from visitseg.core.versions import spark_line

log = logging.getLogger(__name__)

DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"


def build_session(cfg: SparkConfig) -> SparkSession:
    """Create (or join, under spark-submit) the session, with Delta configured when its jars exist. A JVM
    it starts maps the class archive when one exists, but never writes one (`command_session` does)."""
    return _session(cfg, write_class_archive=False)[0]


@contextlib.contextmanager
def command_session(cfg: SparkConfig) -> Iterator[SparkSession]:
    """The session of one visitseg command, stopped when the command ends (unless it was running before:
    a caller's own). A JVM the command starts without a class archive writes one at its exit, which
    this waits for (`class_archive.publish`)."""
    owns = SparkSession.getActiveSession() is None
    spark, archive = _session(cfg, write_class_archive=owns)
    try:
        yield spark
    finally:
        if owns:
            spark.stop()
            if archive is not None and not archive.exists:
                class_archive.publish(archive, SparkContext._gateway.proc)  # type: ignore[union-attr]


def _session(cfg: SparkConfig, write_class_archive: bool) -> tuple[SparkSession, ClassArchive | None]:
    if "PYSPARK_GATEWAY_PORT" in os.environ:
        # Under spark-submit the JVM is already up: join it first, so that SparkConf() loads the submit-time
        # settings (--jars, --packages, --conf). Without this, SparkConf() started empty, the Delta jars of
        # `--jars` went unseen and the run fell back to the jar-free writer (found by tests/test_cluster.py).
        SparkContext._ensure_initialized()
    conf = SparkConf()  # with the submit-time settings under spark-submit; empty in a plain Python process
    launching = starts_jvm()  # the JVM starts below, with this conf
    conf.setAppName(cfg.app_name)
    if cfg.master:
        conf.setMaster(cfg.master)
    if cfg.driver_memory:
        conf.set("spark.driver.memory", cfg.driver_memory)
    archive = None
    if launching and not conf.contains("spark.driver.extraJavaOptions"):
        # Read when PySpark launches the JVM below; under spark-submit the driver is already running.
        archive = class_archive.for_local_jvm(cfg.class_archives, conf)
        if archive is not None and not archive.exists and not write_class_archive:
            archive = None
        options = " ".join(filter(None, [cfg.local_java_options, archive.java_options() if archive else ""]))
        if options:
            conf.set("spark.driver.extraJavaOptions", options)
    if cfg.shuffle_partitions:
        conf.set("spark.sql.shuffle.partitions", str(cfg.shuffle_partitions))
    conf.set("spark.sql.session.timeZone", "UTC")  # visit dates and hit times are UTC throughout
    conf.set("spark.ui.showConsoleProgress", "false")  # progress goes to the log, stage by stage
    # Let adaptive execution coalesce the partitions of persisted tables too (else 200 tiny files a table).
    conf.set("spark.sql.optimizer.canChangeCachedPlanOutputPartitioning", "true")
    # Spark's own masking (UI, event log, plans) covers the same credential-like names as visitseg's.
    conf.set("spark.redaction.regex", f"(?i){SECRET_KEY}")
    for key, value in cfg.conf.items():
        conf.set(key, value)
    if launching and (conf.get("spark.master") or "local").startswith("local"):
        # visitseg starts a local JVM itself: its Python workers (Spark's own, used to deserialise the few
        # small tables built on the driver) must run this interpreter, not whatever `python3` is on the
        # PATH — PySpark refuses a worker of another minor version (seen: a 3.10 venv, python3 = 3.11).
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    if delta_jars_available(conf) and not conf.get("spark.sql.extensions"):
        conf.set("spark.sql.extensions", DELTA_EXTENSION)
        conf.set("spark.sql.catalog.spark_catalog", DELTA_CATALOG)
    spark = SparkSession.builder.config(conf=conf).getOrCreate()
    log.info(
        "Spark %s session %s, master %s, driver garbage collectors %s, Delta jars %s",
        spark.version,
        cfg.app_name,
        spark.sparkContext.master,
        driver_collector(spark),
        "present" if session_has_delta(spark) else "absent (jar-free Delta writer will be used)",
    )
    if archive is not None:
        log.info("class archive: %s %s", "started from" if archive.exists else "the JVM writes at its exit", archive.path)
    return spark, archive


def driver_collector(spark: SparkSession) -> str:
    """The driver JVM's garbage collector, by the names the JVM gives its generations: "PS MarkSweep, PS
    Scavenge" (Parallel), "G1 Old Generation, G1 Young Generation" (G1), "Copy, MarkSweepCompact" (Serial)."""
    beans = spark.sparkContext._jvm.java.lang.management.ManagementFactory.getGarbageCollectorMXBeans()  # type: ignore[union-attr]
    return ", ".join(sorted(bean.getName() for bean in beans))


def starts_jvm() -> bool:
    """True when the next session starts its JVM in this process (not spark-submit's, not a running one)."""
    return "PYSPARK_GATEWAY_PORT" not in os.environ and SparkContext._gateway is None


def delta_jars_available(conf: SparkConf) -> bool:
    """True when the Delta jars are on the driver classpath or requested through --packages/--jars."""
    requested = " ".join(conf.get(key, "") or "" for key in ("spark.jars.packages", "spark.jars"))
    if "delta-spark" in requested or "delta-core" in requested or "io.delta" in requested:
        return True
    spark_home = os.environ.get("SPARK_HOME") or os.path.dirname(__import__("pyspark").__file__)
    return bool(glob.glob(os.path.join(spark_home, "jars", "delta-spark_*.jar")))


def session_has_delta(spark: SparkSession) -> bool:
    """True when `format("delta")` works in this session (extension set and classes loadable)."""
    if DELTA_EXTENSION not in (spark.conf.get("spark.sql.extensions", "") or ""):
        return False
    try:
        jvm = spark.sparkContext._jvm  # type: ignore[union-attr]
        jvm.org.apache.spark.util.Utils.classForName("io.delta.tables.DeltaTable", False, False)
    except Exception:  # py4j raises a generic error when the class is missing
        return False
    return True


class StageLog:
    """Runs named stages: labels their Spark jobs in the UI, logs rows and seconds, keeps the figures.

    Usage: `with stages("aggregate visits") as facts: facts["rows_out"] = n`. The kept records go to the
    run report, so counts are only those a stage already materialises (each extra count() is a Spark job).
    """

    def __init__(self, spark: SparkSession) -> None:
        self.spark = spark
        self.records: list[dict] = []

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[dict]:
        facts: dict = {}
        self.spark.sparkContext.setJobDescription(f"visitseg: {name}")
        log.info("stage %s: started", name)
        started = time.perf_counter()
        try:
            yield facts
        finally:
            self.spark.sparkContext.setJobDescription(None)  # type: ignore[arg-type]
        facts["seconds"] = round(time.perf_counter() - started, 3)
        self.records.append({"stage": name, **facts})
        figures = ", ".join(f"{k} {v:,}" if type(v) is int else f"{k} {v}" for k, v in facts.items())
        log.info("stage %s: done, %s", name, figures)


@contextlib.contextmanager
def persisted(df: DataFrame, level: StorageLevel) -> Iterator[DataFrame]:
    """`df` persisted at `level` for the `with` block, and unpersisted when it ends, by an error too: a
    failed stage must not leave executors holding its blocks (a long-lived session would keep them)."""
    cached = cache_layout(df).persist(level)
    try:
        yield cached
    finally:
        cached.unpersist()


# Input bytes (Spark's estimate: the files' compressed size) per partition of a table persisted on Spark 3.5.
# Rows decompress to several times that; Spark 4's adaptive execution aims at 64 MB of rows.
CACHED_INPUT_BYTES_PER_PARTITION = 16 * 1024 * 1024


def cache_layout(df: DataFrame) -> DataFrame:
    """`df` in as many partitions as its size needs, for persisting on Spark 3.5.

    Spark 3.5 leaves the last stage of a persisted plan at `spark.sql.shuffle.partitions` (200): its
    adaptive execution does not coalesce a cached plan's final shuffle, and Spark 4's does. Every later pass
    over the visits then ran 200 tasks, nearly all empty: 3,878 tasks against Spark 4's 103 in a 500-visit
    `visitseg run`, 82 s against 34 s. A coalesce is narrow: each task still aggregates one shuffle partition
    at a time, so no task holds more state, and it never adds partitions. The count comes from Spark's own
    size estimate of the plan (no job runs), and is at least the cores', so no core idles. Where the
    estimate asks for as many as the shuffle's (or knows no size: a table built on the driver), `df` stays."""
    spark = df.sparkSession
    if spark_line(spark.version) >= (4, 0):
        return df
    estimate = int(df._jdf.queryExecution().optimizedPlan().stats().sizeInBytes())  # a plan statistic: no job runs
    partitions = max(spark.sparkContext.defaultParallelism, math.ceil(estimate / CACHED_INPUT_BYTES_PER_PARTITION))
    if partitions >= int(spark.conf.get("spark.sql.shuffle.partitions") or 200):
        return df
    return df.coalesce(partitions)


@contextlib.contextmanager
def session_conf(spark: SparkSession, settings: Mapping[str, str]) -> Iterator[None]:
    """Session settings for the `with` block only, restored after it (by an error too). Spark copies the
    session's settings into the Hadoop configuration of each write, where the Parquet writer reads its own."""
    previous = {key: spark.conf.get(key, None) for key in settings}
    for key, value in settings.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)


ARROW = {"spark.sql.execution.arrow.pyspark.enabled": "true", "spark.sql.execution.arrow.pyspark.fallback.enabled": "false"}


def local_frame(spark: SparkSession, rows: Sequence[Sequence[Any] | Mapping[str, Any]], schema: T.StructType) -> DataFrame:
    """A DataFrame of a few rows built on the driver (KPIs, profiles, drift, run records), handed to the
    JVM as Arrow data. `createDataFrame` of Python rows runs a Python worker to unpickle them: starting one
    cost about 1 s of a 47 s `visitseg score`, for tables of a few hundred rows.
    Spark 4 takes an Arrow table as it is. Spark 3.5 takes pandas only, and its Arrow conversion reads NaN as
    null: columns of Python objects keep integers exact, and rows holding a NaN go the slower, exact way."""
    names = schema.names
    records = [dict(row) if isinstance(row, Mapping) else dict(zip(names, row)) for row in rows]
    with session_conf(spark, ARROW):
        if spark_line(spark.version) >= (4, 0):
            return spark.createDataFrame(pa.Table.from_pylist(records, schema=to_arrow_schema(schema)), schema)
        if not any(_has_nan(value) for record in records for value in record.values()):
            return spark.createDataFrame(pd.DataFrame({n: pd.Series([r.get(n) for r in records], dtype=object) for n in names}), schema)
    return spark.createDataFrame(records, schema)


def bounded_to_pandas(df: DataFrame) -> pd.DataFrame:
    """A DataFrame whose size the job bounds itself (the sweep sample: at most `model.sweep_sample_rows`
    rows) on the driver, as Arrow batches: ~1 s for 100,000 rows of 29 numbers, against ~4 s as Rows."""
    with session_conf(df.sparkSession, ARROW):
        return df.toPandas()


def _has_nan(value: Any) -> bool:
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, Mapping):
        return any(_has_nan(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_has_nan(v) for v in value)
    return False
