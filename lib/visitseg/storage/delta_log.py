"""The jar-free Delta writer, and what both writers share: partitions, retries, schema checks.

For sessions without Delta's jars, Spark's executors write the Parquet data files in parallel into a
staging folder; the driver moves exactly those files into the partition folder and commits them as ONE
Delta transaction with the `deltalake` package: an add action per file with its `numRecords` (read from
the Parquet footer, never from the data) and, through the partition filter, remove actions for the files
of the partition being replaced. Readers see the previous version or the new one, never a mix, and files
of a failed attempt are never referenced by the log.
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
from typing import Callable, Mapping, Sequence, TypeVar
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

from visitseg.core.arrow_types import to_arrow_schema
from visitseg.core.errors import DeltaTableError
from visitseg.core.spark import session_conf

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WriteResult:
    path: str
    writer: str
    version: int
    files: int
    rows: int


@dataclass(frozen=True)
class Txn:
    """Delta's idempotent-writer transaction id (the `txn` action): an application id and a version that
    grows with each of its writes. A write whose app already committed this version (or a later one) is
    skipped, so a replayed streaming micro-batch (app = the stream, version = the batch id) lands once.
    Both writers record it: Spark's Delta through its `txnAppId`/`txnVersion` options, the jar-free one
    through deltalake's `CommitProperties(app_transactions=...)`."""

    app_id: str
    version: int


_T = TypeVar("_T")


STAGING_DIR = "_visitseg_staging"  # leading underscore: ignored by Spark's file listing and by Delta readers


# A partition column maps to one value (every row holds it: `{"run_id": "r1"}`) or to the values the
# write replaces (`{"visit_date": ["2026-11-01", "2026-11-02"]}`: the rows hold some of them; the data
# of the others is removed too).
Partition = Mapping[str, "str | Sequence[str]"]


def fixed_values(partition: Partition) -> dict[str, str]:
    return {c: v for c, v in partition.items() if isinstance(v, str)}


def spread_values(partition: Partition) -> dict[str, list[str]]:
    return {c: list(v) for c, v in partition.items() if not isinstance(v, str)}


def write_with_deltalake(spark: SparkSession, df: DataFrame, path: str, partition: Partition, txn: Txn | None, appending: bool) -> WriteResult:
    uri = table_uri(path)
    fs, root = pafs.FileSystem.from_uri(uri)
    schema = delta_schema(df.schema)
    new_columns = check_same_schema(uri, schema)
    attempt = uuid.uuid4().hex
    staging = f"{root}/{STAGING_DIR}/{attempt}"
    fixed, spread = fixed_values(partition), list(spread_values(partition))
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
            filters = [(col, "=", value) for col, value in fixed_values(partition).items()]
            filters += [(col, "in", values) for col, values in spread_values(partition).items()]
            DeltaTable(uri).create_write_transaction(
                adds, mode="overwrite", schema=schema, partition_by=list(partition), partition_filters=filters, commit_properties=tagged
            )

    try:
        with_retries(attempt, deltalake_conflict, uri)
    except DeltaError as exc:
        raise DeltaTableError(f"{uri}: the Delta commit was refused, the table is unchanged: {exc}") from exc
    return commit_of(uri, attempt_id)[0]


def commit_of(uri: str, attempt_id: str) -> tuple[int, list[dict]]:
    """The version whose commit info names `attempt_id`, and its actions, read from the log's commit files
    themselves: with writers racing, deltalake's `history()` labelled entries with wrong versions (-1, or
    another writer's), and `version()` is the latest, not ours. The jar-free writer names the attempt in its
    commit info's custom metadata; Spark's Delta writer in its `userMetadata` (`native_tag`)."""
    fs, root = pafs.FileSystem.from_uri(uri)
    commits = [info.path for info in fs.get_file_info(pafs.FileSelector(f"{root}/_delta_log")) if COMMIT_FILE.match(os.path.basename(info.path))]
    for path in sorted(commits, reverse=True)[:HISTORY_TO_SEARCH]:
        with fs.open_input_stream(path) as f:
            actions = [json.loads(line) for line in f.read().decode().splitlines() if line.strip()]
        info = next((a["commitInfo"] for a in actions if "commitInfo" in a), {})
        if info.get(ATTEMPT_KEY) == attempt_id or info.get("userMetadata") == native_tag(attempt_id):
            return int(os.path.basename(path)[:20]), actions
    raise DeltaTableError(f"{uri}: committed, but no commit of attempt {attempt_id} among its last {HISTORY_TO_SEARCH} versions")


def native_tag(attempt_id: str) -> str:
    return f"{ATTEMPT_KEY}={attempt_id}"


def added(actions: list[dict]) -> tuple[int, int]:
    """(files, rows) a commit added, from its add actions' statistics."""
    adds = [a["add"] for a in actions if "add" in a]
    return len(adds), sum(json.loads(a.get("stats") or "{}").get("numRecords", 0) for a in adds)


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


def deltalake_conflict(exc: Exception) -> bool:
    return isinstance(exc, CommitFailedError) or (isinstance(exc, DeltaError) and "already exists" in str(exc))


# Spark Delta's optimistic-concurrency exceptions (io.delta.exceptions.*), named in the error text.
NATIVE_CONFLICTS = ("ConcurrentAppendException", "ConcurrentDeleteReadException", "ConcurrentDeleteDeleteException",
                    "ConcurrentTransactionException", "MetadataChangedException", "ProtocolChangedException")


def native_conflict(exc: Exception) -> bool:
    return any(name in str(exc) for name in NATIVE_CONFLICTS)


def check_same_schema(uri: str, schema: DeltaSchema) -> list[str]:
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


def delta_schema(schema: T.StructType) -> DeltaSchema:
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


def table_uri(path: str) -> str:
    """Local paths become absolute (deltalake and pyarrow need that); URIs with a scheme pass through."""
    return path if "://" in path else os.path.abspath(path)
