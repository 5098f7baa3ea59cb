"""The only module that reads or writes Delta tables: one interface, two writers.

* native — Spark's own Delta source (`format("delta")` with `replaceWhere` on the partition column; the
  same semantics on Delta 3.3 for Spark 3.5 and Delta 4.x for Spark 4), used on clusters that ship Delta
  Lake (EMR, Dataproc, Databricks, or `--packages` with the coordinates of `versions.delta_package`).
* deltalake — for sessions without the Delta jars (they cannot be fetched where Maven Central is out of
  reach, and no Python package ships them). Spark's executors write the Parquet data files in parallel
  into a staging folder; the driver moves exactly those files into the partition folder and commits them
  as ONE Delta transaction with the `deltalake` package: an add action per file with its `numRecords`
  (read from the Parquet footer, never from the data) and, through the partition filter, remove actions
  for the files of the partition being replaced. Readers see the previous version or the new one, never a
  mix, and files of a failed attempt are never referenced by the log.

Every table visitseg writes is partitioned by its run columns (`run_id`), and a write replaces one
partition: a rerun of the same run id leaves one copy of that run.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import time
import uuid
from dataclasses import dataclass
from typing import Callable, Iterator, Mapping, Sequence, TypeVar
from urllib.parse import quote, unquote

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake
from deltalake import Schema as DeltaSchema
from deltalake.exceptions import CommitFailedError, DeltaError
from deltalake.transaction import AddAction, create_table_with_add_actions
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from visitseg.arrow_types import from_arrow_schema, to_arrow_schema
from visitseg.errors import ConfigError, DeltaTableError, DeltaUnavailableError
from visitseg.spark import local_frame, session_conf, session_has_delta
from visitseg.versions import UnsupportedSparkError, delta_package

log = logging.getLogger(__name__)

_T = TypeVar("_T")
STAGING_DIR = "_visitseg_staging"  # leading underscore: ignored by Spark's file listing and by Delta readers
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
        return f"No Delta Lake release supports Spark {spark.version} (see visitseg.versions): {jar_free}"
    return (
        f"Start Spark with the Delta Lake jars of its line, here spark-submit --packages {package} "
        f"(Dataproc: the DELTA optional component; EMR: the delta-defaults classification; Databricks ships it), or {jar_free}"
    )


@dataclass(frozen=True)
class WriteResult:
    path: str
    writer: str
    version: int
    files: int
    rows: int


def choose_writer(spark: SparkSession, requested: str) -> str:
    """Resolve `output.delta_writer`: auto picks native when the session has Delta, else deltalake."""
    has_delta = session_has_delta(spark)
    if requested == "native" and not has_delta:
        raise DeltaUnavailableError(f"output.delta_writer = \"native\" but this Spark session has no Delta Lake. {native_hint(spark)}")
    if requested == "auto":
        return "native" if has_delta else "deltalake"
    return requested


# A partition column maps to one value (every row holds it: `{"run_id": "r1"}`) or to the values the
# write replaces (`{"visit_date": ["2026-11-01", "2026-11-02"]}`: the rows hold some of them; the data
# of the others is removed too).
Partition = Mapping[str, "str | Sequence[str]"]


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


@dataclass(frozen=True)
class Txn:
    """Delta's idempotent-writer transaction id (the `txn` action): an application id and a version that
    grows with each of its writes. A write whose app already committed this version (or a later one) is
    skipped, so a replayed streaming micro-batch (app = the stream, version = the batch id) lands once.
    Both writers record it: Spark's Delta through its `txnAppId`/`txnVersion` options, the jar-free one
    through deltalake's `CommitProperties(app_transactions=...)`."""

    app_id: str
    version: int


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
    started = time.perf_counter()
    with session_conf(spark, {**_no_dictionary(df.schema), **_open_writers(partition)}):
        if chosen == "native":
            result = _write_native(df, path, partition, txn, appending)
        else:
            result = _write_with_deltalake(spark, df, path, partition, txn, appending)
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


def _fixed(partition: Partition) -> dict[str, str]:
    return {c: v for c, v in partition.items() if isinstance(v, str)}


def _spread(partition: Partition) -> dict[str, list[str]]:
    return {c: list(v) for c, v in partition.items() if not isinstance(v, str)}


def _check_partition(df: DataFrame, partition: Partition) -> None:
    missing = [c for c in partition if c not in df.columns]
    if missing or not partition:
        raise DeltaTableError(f"partition columns {missing or '(none given)'} are not columns of the data {df.columns}")
    types = {f.name: f.dataType.typeName() for f in df.schema.fields}
    wrong = [c for c in partition if types[c] not in ("string", "date") or (c in _fixed(partition) and types[c] != "string")]
    if wrong:
        raise DeltaTableError(f"partition columns {wrong} must be strings (or dates, for a list of values)")
    values = [*_fixed(partition).values(), *(v for vs in _spread(partition).values() for v in vs)]
    bad = [v for v in values if not SAFE_PARTITION_VALUE.match(v)]
    if bad or any(not vs for vs in _spread(partition).values()):  # the values go into replaceWhere and folder names
        raise DeltaTableError(f"partition values {bad or '(an empty list)'}: use letters, digits, '_', '-' or '.' only")


def _condition(partition: Partition) -> str:
    fixed = [f"`{col}` = '{value}'" for col, value in _fixed(partition).items()]
    spread = [f"`{col}` IN ({', '.join(repr(v) for v in values)})" for col, values in _spread(partition).items()]
    return " AND ".join(fixed + spread)


def _write_native(df: DataFrame, path: str, partition: Partition, txn: Txn | None, appending: bool) -> WriteResult:
    write = df.write.format("delta").partitionBy(*partition).option("mergeSchema", "true")  # only new columns get here (`check_schemas`)
    if txn is not None:
        write = write.option("txnAppId", txn.app_id).option("txnVersion", txn.version)
    write = write.mode("append") if appending else write.mode("overwrite").option("replaceWhere", _condition(partition))
    with_retries(lambda: write.save(path), _native_conflict, path)
    table = DeltaTable(table_uri(path))
    if appending:  # the rows of this commit, as Delta's own metrics count them
        metrics = table.history(1)[0].get("operationMetrics", {})
        return WriteResult(path, "native", table.version(), int(metrics.get("numFiles", 0)), int(metrics.get("numOutputRows", 0)))
    adds = table.get_add_actions(flatten=True).to_pylist()
    values = {c: [v] if isinstance(v, str) else [str(x) for x in v] for c, v in partition.items()}
    mine = [a for a in adds if all(str(a.get(f"partition.{c}")) in vs for c, vs in values.items())]
    return WriteResult(path, "native", table.version(), len(mine), int(sum(a.get("num_records") or 0 for a in mine)))


def _write_with_deltalake(spark: SparkSession, df: DataFrame, path: str, partition: Partition, txn: Txn | None, appending: bool) -> WriteResult:
    uri = table_uri(path)
    fs, root = pafs.FileSystem.from_uri(uri)
    schema = _delta_schema(df.schema)
    new_columns = _check_same_schema(uri, schema)
    attempt = uuid.uuid4().hex
    staging = f"{root}/{STAGING_DIR}/{attempt}"
    fixed, spread = _fixed(partition), list(_spread(partition))
    fixed_dir = "/".join(f"{col}={quote(value, safe='')}" for col, value in fixed.items())
    moved: list[str] = []  # data files already in the table's folder: removed again unless committed
    committed = False
    try:
        # The fixed columns are one value each: dropped here, put back as partition values. Spark writes
        # the spread columns as `col=value` folders, which become the files' partition values.
        _spark_write_parquet(spark, df.drop(*fixed), f"{uri}/{STAGING_DIR}/{attempt}", spread)
        written = sorted(
            (info for info in fs.get_file_info(pafs.FileSelector(staging, recursive=True)) if info.path.endswith(".parquet")),
            key=lambda info: info.path,
        )
        adds = []
        for info in written:
            rows = pq.read_metadata(info.path, filesystem=fs).num_rows
            if rows == 0:
                continue  # Spark writes an empty file for an empty partition; the log need not list it
            folders = os.path.relpath(os.path.dirname(info.path), staging).split("/") if spread else []
            values = {**fixed, **dict(unquote(f).split("=", 1) for f in folders)}
            partition_dir = "/".join([fixed_dir, *folders]).strip("/")
            relative = f"{partition_dir}/{attempt}-{os.path.basename(info.path)}"
            fs.create_dir(f"{root}/{partition_dir}")
            fs.move(info.path, f"{root}/{relative}")
            moved.append(f"{root}/{relative}")
            adds.append(
                AddAction(
                    path=relative,
                    size=info.size,
                    partition_values=values,
                    modification_time=int(time.time() * 1000),
                    data_change=True,
                    stats=json.dumps({"numRecords": rows}),
                )
            )
        if new_columns:
            log.info("delta: %s gets the new column(s) %s", uri, ", ".join(new_columns))
            _add_columns(uri, schema, list(partition))
        version = _commit(uri, schema, adds, partition, attempt, txn, appending)
        committed = True
    finally:
        if not committed:  # no table version lists them: they would be orphans forever
            for path_moved in moved:
                if fs.get_file_info(path_moved).type == pafs.FileType.File:
                    fs.delete_file(path_moved)
        fs.delete_dir_contents(staging, missing_dir_ok=True)
        _delete_if_exists(fs, staging)
    return WriteResult(path, "deltalake", version, len(adds), sum(json.loads(a.stats)["numRecords"] for a in adds))


def _spark_write_parquet(spark: SparkSession, df: DataFrame, target: str, partition_by: list[str]) -> None:
    # Delta stores timestamps as INT64 microseconds; Spark's Parquet default (INT96) is not valid Delta.
    with session_conf(spark, {"spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS"}):
        df.write.mode("errorifexists").option("compression", "snappy").partitionBy(*partition_by).parquet(target)


def _no_dictionary(schema: T.StructType) -> dict[str, str]:
    """Parquet writer settings that turn dictionary encoding off for the columns whose values seldom
    repeat: doubles (distances, rates, amounts; nested ones too) and the `*_key` identifiers.
    Parquet tries a dictionary for every column and falls back to plain encoding once it overflows, after
    encoding each value twice: writing `session_scores` (1.27M visits, a distance per centre) took 8.9 s
    with dictionaries and 2.9 s without, and its files were smaller (78 MB against 84)."""
    return {f"parquet.enable.dictionary#{path}": "false" for path in _plain_columns(schema)}


OPEN_WRITERS = 32  # Parquet files a write task keeps open at once, one per partition value (see `_open_writers`)


def _open_writers(partition: Partition) -> dict[str, str]:
    """Spark settings that let each write task keep one open Parquet file per partition value (up to
    OPEN_WRITERS), where rows spread over values (a score's days), instead of sorting the task's rows by
    partition first. Spark's planner adds that sort to every partitioned write (`plannedWrite`); turned
    off, the writer itself chooses concurrent files and sorts only the rows of values past the limit.
    Writing `session_scores` (1.27M visits, about ten days a task) sorted 386 MB, spilling it all to disk:
    that stage took 7.2 s, and 3.8-4.5 s without the sort. At scale a task holds one day or two (the
    scores are shuffled by day), so few files are open at once."""
    if not _spread(partition):
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


def _commit(uri: str, schema: DeltaSchema, adds: list[AddAction], partition: Partition, attempt_id: str, txn: Txn | None, appending: bool) -> int:
    """Commit the added files as one transaction that also removes the partition's previous files (unless
    `appending`), and return its version (found by the attempt id in its commit info: other writers may have
    committed since)."""
    app_transactions = [Transaction(txn.app_id, txn.version)] if txn is not None else None
    tagged = CommitProperties(custom_metadata={ATTEMPT_KEY: attempt_id}, app_transactions=app_transactions)

    def attempt() -> None:
        if not DeltaTable.is_deltatable(uri):
            create_table_with_add_actions(uri, schema, adds, mode="error", partition_by=list(partition), commit_properties=tagged)
        elif appending:
            DeltaTable(uri).create_write_transaction(adds, mode="append", schema=schema, partition_by=list(partition), commit_properties=tagged)
        else:
            filters = [(col, "=", value) for col, value in _fixed(partition).items()]
            filters += [(col, "in", values) for col, values in _spread(partition).items()]
            DeltaTable(uri).create_write_transaction(
                adds, mode="overwrite", schema=schema, partition_by=list(partition), partition_filters=filters, commit_properties=tagged
            )

    try:
        with_retries(attempt, _deltalake_conflict, uri)
    except DeltaError as exc:
        raise DeltaTableError(f"{uri}: the Delta commit was refused, the table is unchanged: {exc}") from exc
    return _version_of(uri, attempt_id)


def _version_of(uri: str, attempt_id: str) -> int:
    """The version whose commit info names `attempt_id`, read from the log's commit files themselves:
    with writers racing, deltalake's `history()` labelled entries with wrong versions (-1, or another
    writer's), and `version()` is the latest, not ours."""
    fs, root = pafs.FileSystem.from_uri(uri)
    commits = [info.path for info in fs.get_file_info(pafs.FileSelector(f"{root}/_delta_log")) if COMMIT_FILE.match(os.path.basename(info.path))]
    for path in sorted(commits, reverse=True)[:HISTORY_TO_SEARCH]:
        with fs.open_input_stream(path) as f:
            for line in f.read().decode().splitlines():
                if json.loads(line).get("commitInfo", {}).get(ATTEMPT_KEY) == attempt_id:
                    return int(os.path.basename(path)[:20])
    raise DeltaTableError(f"{uri}: committed, but no commit of attempt {attempt_id} among its last {HISTORY_TO_SEARCH} versions")


ATTEMPT_KEY = "visitseg.attempt"  # in the commit info of every jar-free commit: which attempt wrote it
HISTORY_TO_SEARCH = 100
COMMIT_FILE = re.compile(r"^\d{20}\.json$")


# Concurrent runs (different run ids) commit to the same tables. deltalake and Spark's Delta resolve
# commits to disjoint partitions themselves; what they refuse — the table created by another run between
# our check and our create, or a conflict they do not resolve — is retried from a fresh snapshot, with
# exponential backoff and jitter so that racing writers spread out.
COMMIT_ATTEMPTS = 6
FIRST_BACKOFF_SECONDS = 0.2


def with_retries(attempt: Callable[[], _T], is_conflict: Callable[[Exception], bool], what: str) -> _T:
    for n in range(1, COMMIT_ATTEMPTS + 1):
        try:
            return attempt()
        except Exception as exc:
            if n == COMMIT_ATTEMPTS or not is_conflict(exc):
                raise
            delay = FIRST_BACKOFF_SECONDS * 2 ** (n - 1) * (1 + random.random())
            log.warning("delta: %s: commit attempt %d of %d met a concurrent writer (%s); retrying in %.1fs",
                        what, n, COMMIT_ATTEMPTS, str(exc).splitlines()[0], delay)
            time.sleep(delay)
    raise AssertionError("unreachable")


def _deltalake_conflict(exc: Exception) -> bool:
    return isinstance(exc, CommitFailedError) or (isinstance(exc, DeltaError) and "already exists" in str(exc))


# Spark Delta's optimistic-concurrency exceptions (io.delta.exceptions.*), named in the error text.
NATIVE_CONFLICTS = ("ConcurrentAppendException", "ConcurrentDeleteReadException", "ConcurrentDeleteDeleteException",
                    "ConcurrentTransactionException", "MetadataChangedException", "ProtocolChangedException")


def _native_conflict(exc: Exception) -> bool:
    return any(name in str(exc) for name in NATIVE_CONFLICTS)


def check_schemas(tables: Mapping[str, T.StructType]) -> None:
    """Before a job writes its first table: every existing target table (path → the schema of the data
    meant for it) must have that schema, so a clash stops the job with nothing written, not halfway."""
    for path, schema in tables.items():
        _check_same_schema(table_uri(path), _delta_schema(schema))


def _check_same_schema(uri: str, schema: DeltaSchema) -> list[str]:
    """deltalake would commit files of another schema and silently change the table's; refuse instead.
    One change is allowed: new columns after the table's own (a newer visitseg adds a column to a table,
    e.g. `runs.drift_summary`); older rows read them as null. Returns the names of those new columns."""
    if not DeltaTable.is_deltatable(uri):
        return []
    existing = pa.schema(DeltaTable(uri).schema().to_arrow())
    wanted = pa.schema(schema.to_arrow())
    if existing.equals(wanted):
        return []
    if len(wanted) > len(existing) and pa.schema(list(wanted)[: len(existing)]).equals(existing):
        return wanted.names[len(existing):]
    raise DeltaTableError(
        f"{uri}: the data's schema differs from the table's, the table is unchanged. "
        f"Table: {_describe(existing)}. Data: {_describe(wanted)}. "
        f"Write to another output folder, or remove the table if it is disposable."
    )


def _add_columns(uri: str, schema: DeltaSchema, partition_by: list[str]) -> None:
    """Give the table the new columns of `schema`, in a commit of its own that adds no data (deltalake's
    schema merge); Spark's Delta writer does the same through its `mergeSchema` option."""
    write_deltalake(uri, pa.schema(schema.to_arrow()).empty_table(), mode="append", schema_mode="merge", partition_by=partition_by)


def _describe(schema: pa.Schema) -> str:
    return ", ".join(f"{f.name} {f.type}" for f in schema)


def _delta_schema(schema: T.StructType) -> DeltaSchema:
    """A Spark schema in Delta terms, every field nullable (as Spark's own Delta writer declares them)."""
    arrow = to_arrow_schema(schema)
    return DeltaSchema.from_arrow(pa.schema([pa.field(f.name, _nullable(f.type), nullable=True) for f in arrow]))


def _nullable(data_type: pa.DataType) -> pa.DataType:
    if pa.types.is_struct(data_type):
        return pa.struct([pa.field(f.name, _nullable(f.type), nullable=True) for f in data_type])
    if pa.types.is_list(data_type) or pa.types.is_large_list(data_type):
        return pa.list_(pa.field("element", _nullable(data_type.value_type), nullable=True))
    if pa.types.is_map(data_type):
        return pa.map_(data_type.key_type, _nullable(data_type.item_type))
    return data_type


def _delete_if_exists(fs: pafs.FileSystem, path: str) -> None:
    if fs.get_file_info(path).type != pafs.FileType.NotFound:
        fs.delete_dir(path)


def delete_partitions(spark: SparkSession, path: str, column: str, values: list[str]) -> int:
    """Remove the partitions `column IN values` from the table at `path` in one transaction (the data files
    stay until a vacuum past the retention window, so time travel still reads them). Returns the version."""
    bad = [v for v in values if not SAFE_PARTITION_VALUE.match(v)]
    if bad or not values:
        raise DeltaTableError(f"{path}: partition values {bad or '(none given)'} to delete: use letters, digits, '_', '-' or '.' only")
    predicate = f"{column} IN ({', '.join(repr(v) for v in values)})"
    uri = table_uri(path)
    if session_has_delta(spark):
        with_retries(lambda: spark.sql(f"DELETE FROM delta.`{uri}` WHERE {predicate}").collect(), _native_conflict, path)
    else:
        with_retries(lambda: DeltaTable(uri).delete(predicate), _deltalake_conflict, path)
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


def vacuum(spark: SparkSession, path: str, retention_hours: int, force: bool = False, dry_run: bool = False) -> VacuumResult:
    """Delete the files of a Delta table that no version inside the retention window references: the
    files each rerun of a run id replaced, and the data files of attempts that never committed. Below
    SAFE_RETENTION_HOURS only with `force`, as Delta itself insists."""
    if retention_hours < SAFE_RETENTION_HOURS and not force:
        raise ConfigError(
            f"vacuum: --retain-hours {retention_hours} is below {SAFE_RETENTION_HOURS} (7 days); a job still reading "
            f"an older version of the table could lose files. Pass --force if no job reads or writes {path} now"
        )
    uri = table_uri(path)
    if not DeltaTable.is_deltatable(uri):
        raise DeltaTableError(f"{path}: not a Delta table (no _delta_log)")
    _remove_stale_staging(uri, retention_hours)
    if session_has_delta(spark) and not dry_run:
        spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", str(not force).lower())
        removed = spark.sql(f"VACUUM delta.`{uri}` RETAIN {retention_hours} HOURS").count()
    else:
        removed = len(
            DeltaTable(uri).vacuum(retention_hours=retention_hours, dry_run=dry_run, enforce_retention_duration=not force, full=True)
        )
    log.info("vacuum: %s, %d files %s", path, removed, "would be removed" if dry_run else "removed")
    return VacuumResult(path, removed)


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


def table_uri(path: str) -> str:
    """Local paths become absolute (deltalake and pyarrow need that); URIs with a scheme pass through."""
    return path if "://" in path else os.path.abspath(path)
