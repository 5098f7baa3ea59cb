"""The Delta layer: real tables on disk, read back through deltalake and through Spark."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys

import pyarrow.parquet as pq
import pytest
from chispa import assert_df_equality
from deltalake import DeltaTable
from pyspark.sql import types as T

from support import NO_DELTA_JARS
from visitseg.core.errors import ConfigError, DeltaTableError
from visitseg.core.spark import session_has_delta
from visitseg.storage import delta, delta_log

WRITERS = ["deltalake", "native"]

SCHEMA = T.StructType(
    [
        T.StructField("visit_key", T.StringType()),
        T.StructField("pageviews", T.LongType()),
        T.StructField("revenue", T.DoubleType()),
        T.StructField("visit_date", T.DateType()),
        T.StructField("hit_ts", T.TimestampType()),
        T.StructField("pages", T.ArrayType(T.StringType())),
        T.StructField("run_id", T.StringType()),
    ]
)
TS = dt.datetime(2026, 10, 1, 12, 30, tzinfo=dt.timezone.utc)


def rows(run_id: str, n: int, offset: int = 0) -> list[tuple]:
    return [
        (f"v{i}", i, float(i) / 2, dt.date(2026, 10, 1), TS, [f"/p{i}"], run_id) for i in range(offset, offset + n)
    ] + [(None, None, None, None, None, None, run_id)]


def write(spark, path, run_id, n, offset=0, writer="deltalake"):
    df = spark.createDataFrame(rows(run_id, n, offset), SCHEMA).repartition(3)
    return delta.replace_partition(spark, df, str(path), {"run_id": run_id}, writer=writer)


def log_actions(path, version: int) -> list[dict]:
    with open(os.path.join(path, "_delta_log", f"{version:020d}.json")) as f:
        return [json.loads(line) for line in f]


def test_a_table_reads_back_identically_through_deltalake_and_spark(spark, tmp_path, writer):
    result = write(spark, tmp_path / "t", "r1", 5, writer=writer)
    expected = spark.createDataFrame(rows("r1", 5), SCHEMA)

    assert (result.writer, result.version, result.rows) == (writer, 0, 6)
    through_spark = delta.read_table(spark, str(tmp_path / "t"))
    assert_df_equality(through_spark, expected, ignore_row_order=True, ignore_nullable=True)
    # As Python values, not pandas (whose nullable integers turn float, which Spark 3.5 refuses for LONG).
    read_back = DeltaTable(str(tmp_path / "t")).to_pyarrow_table().select(SCHEMA.names).to_pylist()
    through_deltalake = spark.createDataFrame([tuple(r.values()) for r in read_back], SCHEMA)
    assert_df_equality(through_deltalake, expected, ignore_row_order=True, ignore_nullable=True)


def test_each_added_file_carries_its_record_count(spark, tmp_path, writer):
    write(spark, tmp_path / "t", "r1", 10, writer=writer)
    adds = [a["add"] for a in log_actions(tmp_path / "t", 0) if "add" in a]
    assert len(adds) == 3  # one per Spark task; written by executors, not the driver
    assert sum(json.loads(a["stats"])["numRecords"] for a in adds) == 11
    assert all(a["partitionValues"] == {"run_id": "r1"} and a["path"].startswith("run_id=r1/") for a in adds)


def test_rewriting_a_partition_is_one_version_that_removes_the_old_files(spark, tmp_path, writer):
    path = tmp_path / "t"
    write(spark, path, "r1", 4, writer=writer)
    write(spark, path, "r2", 2, writer=writer)
    old_r1 = {a["add"]["path"] for a in log_actions(path, 0) if "add" in a}

    result = write(spark, path, "r1", 3, offset=100, writer=writer)

    assert result.version == 2
    actions = log_actions(path, 2)
    assert {a["remove"]["path"] for a in actions if "remove" in a} == old_r1
    new_files = {a["add"]["path"] for a in actions if "add" in a}
    assert new_files and not (new_files & old_r1)
    table = delta.read_table(spark, str(path))
    assert sorted(r.visit_key or "" for r in table.filter("run_id = 'r1'").collect()) == ["", "v100", "v101", "v102"]
    assert table.filter("run_id = 'r2'").count() == 3
    # the previous version is still readable as it was
    assert DeltaTable(str(path), version=1).to_pyarrow_table().num_rows == 5 + 3


def test_failure_between_spark_write_and_commit_leaves_previous_version(spark, tmp_path, monkeypatch):
    path = tmp_path / "t"
    write(spark, path, "r1", 4)

    def crash(*args, **kwargs):
        raise RuntimeError("driver died before the commit")

    monkeypatch.setattr(delta_log, "_commit", crash)  # our own commit step, after Spark wrote the files
    with pytest.raises(RuntimeError, match="before the commit"):
        write(spark, path, "r1", 7, offset=50)
    monkeypatch.undo()

    table = DeltaTable(str(path))
    assert table.version() == 0
    assert sorted(delta.read_table(spark, str(path)).toPandas().visit_key.dropna()) == ["v0", "v1", "v2", "v3"]
    assert not os.listdir(path / delta_log.STAGING_DIR)  # the attempt's staging files are cleaned up
    referenced = {os.path.basename(u) for u in table.file_uris()}
    on_disk = set(os.listdir(path / "run_id=r1"))
    assert referenced == on_disk  # the failed attempt's files, moved in before the commit, are removed again


def test_schema_change_is_refused_and_table_unchanged(spark, tmp_path, writer):
    path = tmp_path / "t"
    write(spark, path, "r1", 2, writer=writer)
    other = spark.createDataFrame([("x", "not a number", "r1")], "visit_key string, pageviews string, run_id string")
    with pytest.raises(DeltaTableError, match="table is unchanged"):
        delta.replace_partition(spark, other, str(path), {"run_id": "r1"}, writer=writer)
    assert DeltaTable(str(path)).version() == 0
    assert delta.read_table(spark, str(path)).count() == 3


def test_schema_preflight_names_the_clashing_table_before_anything_is_written(spark, tmp_path):
    write(spark, tmp_path / "mine", "r1", 2)
    other = T.StructType([T.StructField("visit_key", T.StringType()), T.StructField("run_id", T.StringType())])
    delta.check_schemas({str(tmp_path / "mine"): SCHEMA, str(tmp_path / "new"): other})  # same schema, or no table yet
    with pytest.raises(DeltaTableError, match=r"mine: the data's schema differs from the table's"):
        delta.check_schemas({str(tmp_path / "new"): other, str(tmp_path / "mine"): other})
    assert not (tmp_path / "new").exists()


def data_files(path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*.parquet") if "_delta_log" not in p.parts}


def test_vacuum_removes_what_reruns_replaced_and_refuses_an_unsafe_window(spark, tmp_path, writer):
    path = tmp_path / "t"
    for offset in (0, 10, 20):  # the same run id three times: two generations of files replaced
        write(spark, path, "r1", 4, offset=offset, writer=writer)
    write(spark, path, "r2", 2, writer=writer)
    referenced = {os.path.relpath(u, path) for u in DeltaTable(str(path)).file_uris()}
    assert referenced < data_files(path)
    with pytest.raises(ConfigError, match="below 168"):
        delta.vacuum(spark, str(path), retention_hours=0, writer=writer)
    assert delta.vacuum(spark, str(path), 0, force=True, dry_run=True, writer=writer).removed == len(data_files(path) - referenced)
    assert referenced < data_files(path)  # a dry run deletes nothing
    result = delta.vacuum(spark, str(path), retention_hours=0, force=True, writer=writer)
    assert result.removed > 0
    assert data_files(path) == referenced
    assert sorted(delta.read_table(spark, str(path)).toPandas().visit_key.dropna()) == ["v0", "v1", "v20", "v21", "v22", "v23"]
    assert delta.vacuum(spark, str(path), retention_hours=168, writer=writer).removed == 0  # the default window keeps a week of versions


def test_empty_frame_replaces_partition_with_nothing(spark, tmp_path, writer):
    path = tmp_path / "t"
    write(spark, path, "r1", 2, writer=writer)
    empty = spark.createDataFrame([], SCHEMA)
    result = delta.replace_partition(spark, empty, str(path), {"run_id": "r1"}, writer=writer)
    assert (result.version, result.files, result.rows) == (1, 0, 0)
    assert delta.read_table(spark, str(path)).count() == 0


def test_unsafe_partition_values_are_rejected(spark, tmp_path):
    df = spark.createDataFrame([("a", "x' OR '1'='1")], "visit_key string, run_id string")
    with pytest.raises(DeltaTableError, match="letters, digits"):
        delta.replace_partition(spark, df, str(tmp_path / "t"), {"run_id": "x' OR '1'='1"})
    assert not (tmp_path / "t").exists()


def test_reading_a_missing_table_names_the_path(spark, tmp_path):
    with pytest.raises(DeltaTableError, match="not a Delta table"):
        delta.read_table(spark, str(tmp_path / "nothing"))


def test_a_transaction_id_makes_a_replayed_write_a_no_op(spark, tmp_path, writer):
    """Incremental scoring's exactly-once: appends and replaces tagged (app id, version) land once each."""
    path = str(tmp_path / "t")
    first, second = spark.createDataFrame(rows("r1", 3), SCHEMA), spark.createDataFrame(rows("r1", 2, offset=10), SCHEMA)

    assert delta.committed_version(path, "app") is None
    assert delta.append(spark, first, path, {"run_id": "r1"}, writer, delta.Txn("app", 0)).rows == 4
    replayed = delta.append(spark, first, path, {"run_id": "r1"}, writer, delta.Txn("app", 0))
    assert (replayed.version, replayed.rows) == (0, 0)
    assert delta.append(spark, second, path, {"run_id": "r1"}, writer, delta.Txn("app", 1)).version == 1
    assert delta.append(spark, second, path, {"run_id": "r1"}, writer, delta.Txn("other-app", 0)).version == 2
    assert delta.committed_version(path, "app") == 1 and delta.committed_version(path, "other-app") == 0
    assert [(a["txn"]["appId"], a["txn"]["version"]) for a in log_actions(path, 1) if "txn" in a] == [("app", 1)]
    assert DeltaTable(path).to_pyarrow_table().num_rows == 4 + 3 + 3

    assert delta.replace_partition(spark, first, path, {"run_id": "r1"}, writer, delta.Txn("app", 1)).rows == 0  # an old version: skipped
    assert delta.replace_partition(spark, first, path, {"run_id": "r1"}, writer, delta.Txn("app", 2)).version == 3
    assert DeltaTable(path).to_pyarrow_table().num_rows == 4


def test_doubles_and_keys_are_written_without_a_dictionary_and_the_session_is_left_as_it_was(spark, tmp_path, writer):
    """Dictionary encoding is off for the columns whose values seldom repeat (doubles, nested ones too, and
    `*_key` strings) and stays on for the others; the writer's session settings do not outlive the write."""
    schema = T.StructType([
        T.StructField("visit_key", T.StringType()), T.StructField("segment", T.StringType()),
        T.StructField("distance", T.DoubleType()),
        T.StructField("nearest", T.ArrayType(T.StructType([T.StructField("cluster_id", T.IntegerType()), T.StructField("distance", T.DoubleType())]))),
        T.StructField("run_id", T.StringType()),
    ])
    data = [(f"v{i}", "buyers" if i % 2 else "browsers", i / 7, [(i % 3, i / 3), ((i + 1) % 3, i / 2)], "r1") for i in range(500)]
    before = {key: spark.conf.get(key, None) for key in ("spark.sql.parquet.outputTimestampType", "parquet.enable.dictionary#distance")}
    delta.replace_partition(spark, spark.createDataFrame(data, schema).coalesce(1), str(tmp_path / "t"), {"run_id": "r1"}, writer)
    assert {key: spark.conf.get(key, None) for key in before} == before
    (path,) = DeltaTable(str(tmp_path / "t")).file_uris()
    meta = pq.ParquetFile(path).metadata.row_group(0)
    encodings = {meta.column(i).path_in_schema: meta.column(i).encodings for i in range(meta.num_columns)}
    dictionary = {column for column, used in encodings.items() if any("DICTIONARY" in e for e in used)}
    # Spark's Delta source also writes the partition column into the file; the jar-free writer leaves it to the path.
    assert dictionary - {"run_id"} == {"segment", "nearest.list.element.cluster_id"}, encodings


def test_a_write_spread_over_more_days_than_open_writers_keeps_every_row_once(spark, tmp_path, writer):
    """A task keeps one open file per day up to OPEN_WRITERS and sorts the rows of later days (Spark's
    concurrent writers, `_open_writers`): both paths hold every row once, one file per day, and the
    session's settings are its own again afterwards."""
    days = [dt.date(2026, 10, 1) + dt.timedelta(days=d) for d in range(delta.OPEN_WRITERS + 8)]
    schema = T.StructType([T.StructField("visit_key", T.StringType()), T.StructField("visit_date", T.DateType()), T.StructField("run_id", T.StringType())])
    data = [(f"v{i}", days[(i * 7) % len(days)], "r1") for i in range(len(days) * 5)]  # the days interleaved, as scores arrive
    keys = ("spark.sql.optimizer.plannedWrite.enabled", "spark.sql.maxConcurrentOutputFileWriters")
    before = {key: spark.conf.get(key, None) for key in keys}

    result = delta.replace_partition(spark, spark.createDataFrame(data, schema).coalesce(1), str(tmp_path / "t"),
                                     {"run_id": "r1", "visit_date": [str(d) for d in days]}, writer)

    assert {key: spark.conf.get(key, None) for key in keys} == before
    assert (result.files, result.rows) == (len(days), len(data))
    assert_df_equality(delta.read_table(spark, str(tmp_path / "t")).select(*schema.names), spark.createDataFrame(data, schema),
                       ignore_row_order=True, ignore_nullable=True)


def test_new_columns_after_the_tables_own_are_added_and_old_rows_read_them_as_null(spark, tmp_path, writer):
    """Additive schema evolution (a newer visitseg adds a column to a table, as `runs.drift_summary`)."""
    path = str(tmp_path / "t")
    delta.replace_partition(spark, spark.createDataFrame([("a", "r1")], "visit_key string, run_id string"), path, {"run_id": "r1"}, writer)
    wider = spark.createDataFrame([("b", "r2", 1.5)], "visit_key string, run_id string, score double")
    delta.replace_partition(spark, wider, path, {"run_id": "r2"}, writer)
    expected = spark.createDataFrame([("a", "r1", None), ("b", "r2", 1.5)], "visit_key string, run_id string, score double")
    assert_df_equality(delta.read_table(spark, path).select(*expected.columns), expected, ignore_row_order=True, ignore_nullable=True)
    assert DeltaTable(path).schema().to_arrow().names == ["visit_key", "run_id", "score"]


@pytest.mark.parametrize("first,writer", [("deltalake", "native"), ("native", "deltalake")])
def test_a_table_written_by_one_writer_is_appended_to_replaced_and_vacuumed_by_the_other(spark, tmp_path, first, writer):
    """A user moving from a laptop (jar-free) to a cluster (Spark's Delta source), or back, keeps their output."""
    if not session_has_delta(spark):
        pytest.skip(NO_DELTA_JARS)
    path = tmp_path / "t"
    write(spark, path, "r1", 3, writer=first)
    write(spark, path, "r2", 2, writer=first)
    appended = delta.append(spark, spark.createDataFrame(rows("r2", 2, offset=50), SCHEMA), str(path), {"run_id": "r2"}, writer)
    replaced = write(spark, path, "r1", 1, offset=90, writer=writer)
    assert (appended.version, replaced.version) == (2, 3)
    keys = sorted(r.visit_key or "" for r in delta.read_table(spark, str(path)).collect())
    assert keys == ["", "", "", "v0", "v1", "v50", "v51", "v90"]
    assert delta.vacuum(spark, str(path), retention_hours=0, force=True, writer=writer).removed >= 3  # r1's first files (and checksums)
    referenced = {os.path.relpath(u, path) for u in DeltaTable(str(path)).file_uris()}
    assert data_files(path) == referenced
    assert sorted(r.visit_key or "" for r in delta.read_table(spark, str(path)).collect()) == keys


def test_runs_are_deleted_in_one_version_by_either_writer(spark, tmp_path, writer):
    path = tmp_path / "t"
    for run_id in ("r1", "r2", "r3"):
        write(spark, path, run_id, 2, writer="deltalake")
    version = delta.delete_partitions(spark, str(path), "run_id", ["r1", "r3"], writer)
    assert version == 3
    assert sorted({r.run_id for r in delta.read_table(spark, str(path)).collect()}) == ["r2"]
    assert DeltaTable(str(path), version=2).to_pyarrow_table().num_rows == 9  # time travel still reads the runs


def test_the_native_writer_without_jars_says_how_to_get_them_and_writes_nothing(tmp_path):
    """A fresh process without Delta's jars (this session has them), as on a laptop: exit 2, the advice, no table."""
    sessions = tmp_path / "in" / "s.json"
    sessions.parent.mkdir()
    sessions.write_text("{}\n")
    args = ["features", "--input-format", "ga360", "--input", str(sessions), "--output", str(tmp_path / "out"), "--set", "output.delta_writer=native"]
    done = subprocess.run([sys.executable, "-c", "import sys; from visitseg.cli import main; sys.exit(main(sys.argv[1:]))", *args],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "DeltaUnavailableError" in done.stderr and "--packages io.delta" in done.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
