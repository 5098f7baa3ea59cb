"""The only module that reads or writes Delta tables: one interface, two writers.

* native — Spark's own Delta source (`format("delta")` with `replaceWhere` on the partition column; the
  same semantics on Delta 3.3 for Spark 3.5 and Delta 4.x for Spark 4), used on clusters that ship Delta
  Lake (EMR, Dataproc, Databricks, or `--packages` with the coordinates of `versions.delta_package`).
* deltalake — for sessions without the Delta jars: Spark writes the Parquet files, the driver commits
  them as one Delta transaction with the `deltalake` package (`delta_log`).

Every table visitseg writes is partitioned by its run columns (`run_id`), and a write replaces one
partition: a rerun of the same run id leaves one copy of that run.
"""

from __future__ import annotations

import logging
import os
import re
import time
import uuid
from dataclasses import dataclass
from typing import Iterator, Mapping

import pyarrow as pa
import pyarrow.fs as pafs
from deltalake import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from visitseg.core.arrow_types import from_arrow_schema
from visitseg.core.errors import ConfigError, DeltaTableError, DeltaUnavailableError
from visitseg.core.spark import local_frame, session_conf, session_has_delta
from visitseg.core.versions import UnsupportedSparkError, delta_package
from visitseg.storage.delta_log import (
    STAGING_DIR, Partition, Txn, WriteResult, added, check_same_schema, commit_of, deltalake_conflict, delta_schema, fixed_values,
    native_conflict, native_tag, spread_values, table_uri, with_retries, write_with_deltalake,
)

log = logging.getLogger(__name__)

SAFE_PARTITION_VALUE = re.compile(r"^[A-Za-z0-9_.-]+$")
# Reader features the jar-free reader cannot honour: it reads the Parquet files the log lists, as they are.
UNSUPPORTED_READER_FEATURES = {"deletionVectors", "columnMapping", "v2Checkpoint"}


def native_hint(spark: SparkSession) -> str:
    """How to get Spark's Delta source on this session's Spark line, or do without it."""
    jar_free = "set output.delta_writer = \"deltalake\" (or \"auto\") to commit through the deltalake package."
    try:
        package = delta_package(spark.version)
    except UnsupportedSparkError:
        package = None
    if package is None:
        return f"No Delta Lake release supports Spark {spark.version} (see visitseg.core.versions): {jar_free}"
    return (
        f"Start Spark with the Delta Lake jars of its line, here spark-submit --packages {package} "
        f"(Dataproc: the DELTA optional component; EMR: the delta-defaults classification; Databricks ships it), or {jar_free}"
    )


def choose_writer(spark: SparkSession, requested: str) -> str:
    """Resolve `output.delta_writer`: auto picks native when the session has Delta, else deltalake."""
    has_delta = session_has_delta(spark)
    if requested == "native" and not has_delta:
        raise DeltaUnavailableError(f"output.delta_writer = \"native\" but this Spark session has no Delta Lake. {native_hint(spark)}")
    if requested == "auto":
        return "native" if has_delta else "deltalake"
    return requested


def replace_partition(
    spark: SparkSession, df: DataFrame, path: str, partition: Partition, writer: str = "auto", txn: Txn | None = None
) -> WriteResult:
    """Write `df` as the given partition(s) of the Delta table at `path`, replacing what they held.

    `df` must contain the partition columns (holding only the given values); the table is created on first use.
    With `txn`, a table that already holds that transaction (or a later one of its app) is left as it is.
    """
    return _write(spark, df, path, partition, writer, txn, appending=False)


def append(spark: SparkSession, df: DataFrame, path: str, partition: Partition, writer: str = "auto", txn: Txn | None = None) -> WriteResult:
    """Add `df`'s rows to the given partition(s), removing nothing; with `txn`, at most once (see `Txn`)."""
    return _write(spark, df, path, partition, writer, txn, appending=True)


def is_table(path: str) -> bool:
    return DeltaTable.is_deltatable(table_uri(path))


def committed_version(path: str, app_id: str) -> int | None:
    """The newest version of `app_id`'s transactions that the table at `path` holds (None: none, or no table)."""
    uri = table_uri(path)
    return DeltaTable(uri).transaction_version(app_id) if DeltaTable.is_deltatable(uri) else None


def _write(spark: SparkSession, df: DataFrame, path: str, partition: Partition, writer: str, txn: Txn | None, appending: bool) -> WriteResult:
    _check_partition(df, partition)
    chosen = choose_writer(spark, writer)
    done = committed_version(path, txn.app_id) if txn is not None else None
    if txn is not None and done is not None and done >= txn.version:
        log.info("delta: %s already holds transaction %s version %d (of %d): not written again", path, txn.app_id, txn.version, done)
        return WriteResult(path, chosen, DeltaTable(table_uri(path)).version(), 0, 0)
    if chosen == "native":  # the jar-free writer checks inside its commit; Spark's would merge any schema given mergeSchema
        check_same_schema(table_uri(path), delta_schema(df.schema))
    started = time.perf_counter()
    with session_conf(spark, {**_no_dictionary(df.schema), **_open_writers(partition)}):
        if chosen == "native":
            result = _write_native(df, path, partition, txn, appending)
        else:
            result = write_with_deltalake(spark, df, path, partition, txn, appending)
    log.info(
        "delta: %s version %d written by the %s writer (%s): %d files, %d rows, %.1fs",
        path, result.version, result.writer, "append" if appending else "replace", result.files, result.rows, time.perf_counter() - started,
    )
    return result


def read_table(spark: SparkSession, path: str) -> DataFrame:
    """Read a Delta table as a Spark DataFrame, through Spark's Delta source when present, else the log."""
    if not DeltaTable.is_deltatable(table_uri(path)):
        raise DeltaTableError(f"{path}: not a Delta table (no _delta_log). Was the job that writes it run?")
    if session_has_delta(spark):
        return spark.read.format("delta").load(path)
    table = DeltaTable(table_uri(path))
    protocol = table.protocol()
    unsupported = UNSUPPORTED_READER_FEATURES & set(protocol.reader_features or [])
    if unsupported:
        raise DeltaTableError(
            f"{path}: uses Delta reader features {sorted(unsupported)}, which only Spark's Delta source can read. {native_hint(spark)}"
        )
    schema = from_arrow_schema(pa.schema(table.schema().to_arrow()))
    files = table.file_uris()
    if not files:
        return local_frame(spark, [], schema)
    # basePath makes Spark take partition values from the `col=value` folders the files live in;
    # the explicit schema keeps their types as the Delta log declares them.
    return spark.read.schema(schema).option("basePath", table_uri(path)).parquet(*files).select(*schema.names)


def _check_partition(df: DataFrame, partition: Partition) -> None:
    missing = [c for c in partition if c not in df.columns]
    if missing or not partition:
        raise DeltaTableError(f"partition columns {missing or '(none given)'} are not columns of the data {df.columns}")
    types = {f.name: f.dataType.typeName() for f in df.schema.fields}
    wrong = [c for c in partition if types[c] not in ("string", "date") or (c in fixed_values(partition) and types[c] != "string")]
    if wrong:
        raise DeltaTableError(f"partition columns {wrong} must be strings (or dates, for a list of values)")
    values = [*fixed_values(partition).values(), *(v for vs in spread_values(partition).values() for v in vs)]
    bad = [v for v in values if not SAFE_PARTITION_VALUE.match(v)]
    if bad or any(not vs for vs in spread_values(partition).values()):  # the values go into replaceWhere and folder names
        raise DeltaTableError(f"partition values {bad or '(an empty list)'}: use letters, digits, '_', '-' or '.' only")


def _condition(partition: Partition) -> str:
    fixed = [f"`{col}` = '{value}'" for col, value in fixed_values(partition).items()]
    spread = [f"`{col}` IN ({', '.join(repr(v) for v in values)})" for col, values in spread_values(partition).items()]
    return " AND ".join(fixed + spread)


def _write_native(df: DataFrame, path: str, partition: Partition, txn: Txn | None, appending: bool) -> WriteResult:
    """Spark's Delta source. The commit is tagged with an attempt id (`userMetadata`), so the version and
    the files reported are this write's own, whatever other writers commit at the same time."""
    attempt = uuid.uuid4().hex
    write = df.write.format("delta").partitionBy(*partition).option("mergeSchema", "true")  # only new columns get here (`check_schemas`)
    write = write.option("userMetadata", native_tag(attempt))
    if txn is not None:
        write = write.option("txnAppId", txn.app_id).option("txnVersion", txn.version)
    write = write.mode("append") if appending else write.mode("overwrite").option("replaceWhere", _condition(partition))
    with_retries(lambda: write.save(path), native_conflict, path)
    version, actions = commit_of(table_uri(path), attempt)
    return WriteResult(path, "native", version, *added(actions))


def _no_dictionary(schema: T.StructType) -> dict[str, str]:
    """Parquet writer settings that turn dictionary encoding off for the columns whose values seldom
    repeat: doubles (distances, rates, amounts; nested ones too) and the `*_key` identifiers. Parquet
    tries a dictionary for every column and falls back to plain encoding once it overflows, having encoded
    each value twice (docs/performance.md: a third of the scores write's time)."""
    return {f"parquet.enable.dictionary#{path}": "false" for path in _plain_columns(schema)}


OPEN_WRITERS = 32  # Parquet files a write task keeps open at once, one per partition value (see `_open_writers`)


def _open_writers(partition: Partition) -> dict[str, str]:
    """Spark settings that let each write task keep one open Parquet file per partition value (up to
    OPEN_WRITERS), where rows spread over values (a score's days), instead of sorting the task's rows by
    partition first: Spark's planner adds that sort to every partitioned write (`plannedWrite`), and it
    spilled whole score writes to disk (docs/performance.md). Past the limit the writer sorts the rest."""
    if not spread_values(partition):
        return {}
    return {"spark.sql.optimizer.plannedWrite.enabled": "false", "spark.sql.maxConcurrentOutputFileWriters": str(OPEN_WRITERS)}


def _plain_columns(schema: T.StructType, prefix: str = "") -> Iterator[str]:
    for field in schema.fields:
        kind = field.dataType
        if isinstance(kind, T.ArrayType):  # Spark writes an array as <name>.list.element
            kind, path = kind.elementType, f"{prefix}{field.name}.list.element"
        else:
            path = f"{prefix}{field.name}"
        if isinstance(kind, T.StructType):
            yield from _plain_columns(kind, f"{path}.")
        elif isinstance(kind, T.DoubleType) or (isinstance(kind, T.StringType) and field.name.endswith("_key")):
            yield path


def check_schemas(tables: Mapping[str, T.StructType]) -> None:
    """Before a job writes its first table: every existing target table (path → the schema of the data
    meant for it) must have that schema, so a clash stops the job with nothing written, not halfway."""
    for path, schema in tables.items():
        check_same_schema(table_uri(path), delta_schema(schema))


def delete_partitions(spark: SparkSession, path: str, column: str, values: list[str], writer: str = "auto") -> int:
    """Remove the partitions `column IN values` from the table at `path` in one transaction (the data files
    stay until a vacuum past the retention window, so time travel still reads them). Returns the version."""
    bad = [v for v in values if not SAFE_PARTITION_VALUE.match(v)]
    if bad or not values:
        raise DeltaTableError(f"{path}: partition values {bad or '(none given)'} to delete: use letters, digits, '_', '-' or '.' only")
    predicate = f"{column} IN ({', '.join(repr(v) for v in values)})"
    uri = table_uri(path)
    if choose_writer(spark, writer) == "native":
        with_retries(lambda: spark.sql(f"DELETE FROM delta.`{uri}` WHERE {predicate}").collect(), native_conflict, path)
    else:
        with_retries(lambda: DeltaTable(uri).delete(predicate), deltalake_conflict, path)
    version = DeltaTable(uri).version()
    log.info("delta: %s version %d: deleted %s", path, version, predicate)
    return version


# Delta's own default and floor (delta.deletedFileRetentionDuration, Spark's retentionDurationCheck): a
# reader or writer of an older version may still need a file removed less than a week ago.
SAFE_RETENTION_HOURS = 168


@dataclass(frozen=True)
class VacuumResult:
    path: str
    removed: int  # files deleted (or that would be, on a dry run)


def vacuum(spark: SparkSession, path: str, retention_hours: int, force: bool = False, dry_run: bool = False, writer: str = "auto") -> VacuumResult:
    """Delete the files of a Delta table that no version inside the retention window references: the
    files each rerun of a run id replaced, and the data files of attempts that never committed. Below
    SAFE_RETENTION_HOURS only with `force`, as Delta itself insists. `writer` picks the engine as for
    writes: Spark's VACUUM (native) or deltalake's; both read the same log, so either cleans either's table."""
    if retention_hours < SAFE_RETENTION_HOURS and not force:
        raise ConfigError(
            f"vacuum: --retain-hours {retention_hours} is below {SAFE_RETENTION_HOURS} (7 days); a job still reading "
            f"an older version of the table could lose files. Pass --force if no job reads or writes {path} now"
        )
    uri = table_uri(path)
    if not DeltaTable.is_deltatable(uri):
        raise DeltaTableError(f"{path}: not a Delta table (no _delta_log)")
    _remove_stale_staging(uri, retention_hours)
    if choose_writer(spark, writer) == "native":
        # Spark's VACUUM returns the table's path, not the files it deletes: its DRY RUN lists them. It lists
        # the folders in spark.sql.sources.parallelPartitionDiscovery.parallelism tasks, 10,000 by default:
        # 40 s of empty tasks on a laptop for a table of a few run folders. One task per folder is enough.
        settings = {
            "spark.databricks.delta.retentionDurationCheck.enabled": str(not force).lower(),
            "spark.sql.sources.parallelPartitionDiscovery.parallelism": str(_listing_parallelism(spark, uri)),
        }
        with session_conf(spark, settings):
            removed = spark.sql(f"VACUUM delta.`{uri}` RETAIN {retention_hours} HOURS DRY RUN").count()
            if not dry_run:
                spark.sql(f"VACUUM delta.`{uri}` RETAIN {retention_hours} HOURS").collect()
    else:
        removed = len(
            DeltaTable(uri).vacuum(retention_hours=retention_hours, dry_run=dry_run, enforce_retention_duration=not force, full=True)
        )
    log.info("vacuum: %s, %d files %s", path, removed, "would be removed" if dry_run else "removed")
    return VacuumResult(path, removed)


def _listing_parallelism(spark: SparkSession, uri: str) -> int:
    """The tasks that list a table's folders: one per top-level folder (a visitseg table's are its run
    partitions), at least the session's default parallelism, at most Spark's default of 10,000."""
    fs, root = pafs.FileSystem.from_uri(uri)
    folders = sum(1 for info in fs.get_file_info(pafs.FileSelector(root)) if info.type == pafs.FileType.Directory)
    return min(10_000, max(spark.sparkContext.defaultParallelism, folders))


def tables_under(path: str) -> list[str]:
    """The Delta tables directly under a folder (local or a URI pyarrow understands), by name."""
    fs, root = pafs.FileSystem.from_uri(table_uri(path))
    folders = fs.get_file_info(pafs.FileSelector(root, allow_not_found=True))
    names = sorted(os.path.basename(f.path) for f in folders if f.type == pafs.FileType.Directory)
    return [name for name in names if DeltaTable.is_deltatable(f"{table_uri(path)}/{name}")]


def _remove_stale_staging(uri: str, retention_hours: int) -> None:
    """Staging folders of attempts killed before they cleaned up (a live attempt's is younger)."""
    fs, root = pafs.FileSystem.from_uri(uri)
    oldest = time.time() - retention_hours * 3600
    for info in fs.get_file_info(pafs.FileSelector(f"{root}/{STAGING_DIR}", allow_not_found=True)):
        if info.mtime is not None and info.mtime.timestamp() < oldest:
            fs.delete_dir(info.path) if info.type == pafs.FileType.Directory else fs.delete_file(info.path)


