"""The Delta layer: real tables on disk, read back through deltalake and through Spark."""

from __future__ import annotations

import datetime as dt
import json
import os
import re

import pyarrow.parquet as pq
import pytest
from chispa import assert_df_equality
from deltalake import DeltaTable
from pyspark.sql import types as T

from visitseg.storage import delta, delta_log
from visitseg.core.errors import ConfigError, DeltaTableError, DeltaUnavailableError
from visitseg.core.spark import session_has_delta
from visitseg.core.versions import DELTA_PACKAGES, delta_package

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


def write(spark, path, run_id, n, offset=0):
    df = spark.createDataFrame(rows(run_id, n, offset), SCHEMA).repartition(3)
    return delta.replace_partition(spark, df, str(path), {"run_id": run_id}, writer="deltalake")


def log_actions(path, version: int) -> list[dict]:
    with open(os.path.join(path, "_delta_log", f"{version:020d}.json")) as f:
        return [json.loads(line) for line in f]


def test_jar_free_table_reads_back_identically_through_deltalake_and_spark(spark, tmp_path):
    result = write(spark, tmp_path / "t", "r1", 5)
    expected = spark.createDataFrame(rows("r1", 5), SCHEMA)

    assert (result.writer, result.version, result.rows) == ("deltalake", 0, 6)
    through_spark = delta.read_table(spark, str(tmp_path / "t"))
    assert_df_equality(through_spark, expected, ignore_row_order=True, ignore_nullable=True)
    # As Python values, not pandas (whose nullable integers turn float, which Spark 3.5 refuses for LONG).
    read_back = DeltaTable(str(tmp_path / "t")).to_pyarrow_table().select(SCHEMA.names).to_pylist()
    through_deltalake = spark.createDataFrame([tuple(r.values()) for r in read_back], SCHEMA)
    assert_df_equality(through_deltalake, expected, ignore_row_order=True, ignore_nullable=True)


def test_each_added_file_carries_its_record_count(spark, tmp_path):
    write(spark, tmp_path / "t", "r1", 10)
    adds = [a["add"] for a in log_actions(tmp_path / "t", 0) if "add" in a]
    assert len(adds) == 3  # one per Spark task; written by executors, not the driver
    assert sum(json.loads(a["stats"])["numRecords"] for a in adds) == 11
    assert all(a["partitionValues"] == {"run_id": "r1"} and a["path"].startswith("run_id=r1/") for a in adds)


def test_rewriting_a_partition_is_one_version_that_removes_the_old_files(spark, tmp_path):
    path = tmp_path / "t"
    write(spark, path, "r1", 4)
    write(spark, path, "r2", 2)
    old_r1 = {a["add"]["path"] for a in log_actions(path, 0) if "add" in a}

    result = write(spark, path, "r1", 3, offset=100)

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


def test_schema_change_is_refused_and_table_unchanged(spark, tmp_path):
    path = tmp_path / "t"
    write(spark, path, "r1", 2)
    other = spark.createDataFrame([("x", "not a number", "r1")], "visit_key string, pageviews string, run_id string")
    with pytest.raises(DeltaTableError, match="table is unchanged"):
        delta.replace_partition(spark, other, str(path), {"run_id": "r1"}, writer="deltalake")
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


def test_vacuum_removes_what_reruns_replaced_and_refuses_an_unsafe_window(spark, tmp_path):
    path = tmp_path / "t"
    for offset in (0, 10, 20):  # the same run id three times: two generations of files replaced
        write(spark, path, "r1", 4, offset=offset)
    write(spark, path, "r2", 2)
    referenced = {os.path.relpath(u, path) for u in DeltaTable(str(path)).file_uris()}
    assert referenced < data_files(path)
    with pytest.raises(ConfigError, match="below 168"):
        delta.vacuum(spark, str(path), retention_hours=0)
    assert delta.vacuum(spark, str(path), retention_hours=0, force=True, dry_run=True).removed == len(data_files(path) - referenced)
    assert referenced < data_files(path)  # a dry run deletes nothing
    result = delta.vacuum(spark, str(path), retention_hours=0, force=True)
    assert result.removed > 0
    assert data_files(path) == referenced
    assert sorted(delta.read_table(spark, str(path)).toPandas().visit_key.dropna()) == ["v0", "v1", "v20", "v21", "v22", "v23"]
    assert delta.vacuum(spark, str(path), retention_hours=168).removed == 0  # the default window keeps a week of versions


def test_empty_frame_replaces_partition_with_nothing(spark, tmp_path):
    path = tmp_path / "t"
    write(spark, path, "r1", 2)
    empty = spark.createDataFrame([], SCHEMA)
    result = delta.replace_partition(spark, empty, str(path), {"run_id": "r1"}, writer="deltalake")
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


@pytest.mark.skipif("session_has_delta(__import__('pyspark').sql.SparkSession.getActiveSession())", reason="session has Delta jars")
def test_native_writer_without_jars_says_how_to_get_them(spark, tmp_path):
    df = spark.createDataFrame([("a", "r1")], "visit_key string, run_id string")
    package = delta_package(spark.version)
    advice = f"--packages {package}" if package else f"No Delta Lake release supports Spark {spark.version}"
    with pytest.raises(DeltaUnavailableError, match=re.escape(advice)):
        delta.replace_partition(spark, df, str(tmp_path / "t"), {"run_id": "r1"}, writer="native")
    assert not (tmp_path / "t").exists()
    assert delta.choose_writer(spark, "auto") == "deltalake"


def test_native_writer_replaces_partition(spark, tmp_path):
    if not session_has_delta(spark):
        pytest.skip(
            f"Spark's Delta source is not on this Spark {spark.version}'s classpath (Maven Central is unreachable here). "
            f"This test covers the native writer on every supported line ({', '.join(p for p in DELTA_PACKAGES.values() if p)}); "
            f"where Maven is reachable, `VISITSEG_TEST_DELTA=1 make test` runs the whole suite on each line with "
            f"Spark's Delta source (here --packages {delta_package(spark.version) or 'none: no Delta release for this Spark yet'})"
        )
    path = str(tmp_path / "t")
    df = spark.createDataFrame(rows("r1", 3), SCHEMA)
    first = delta.replace_partition(spark, df, path, {"run_id": "r1"}, writer="native")
    second = delta.replace_partition(spark, df.limit(2), path, {"run_id": "r1"}, writer="native")
    assert (first.writer, first.version, second.version) == ("native", 0, 1)
    assert delta.read_table(spark, path).count() == 2
    assert DeltaTable(path).to_pyarrow_table().num_rows == 2


@pytest.mark.parametrize("writer", ["deltalake", "native"])
def test_a_transaction_id_makes_a_replayed_write_a_no_op(spark, tmp_path, writer):
    """Incremental scoring's exactly-once: appends and replaces tagged (app id, version) land once each."""
    if writer == "native" and not session_has_delta(spark):
        pytest.skip(f"Spark's Delta source is not on this Spark {spark.version}'s classpath; see test_native_writer_replaces_partition")
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


def test_doubles_and_keys_are_written_without_a_dictionary_and_the_session_is_left_as_it_was(spark, tmp_path):
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
    delta.replace_partition(spark, spark.createDataFrame(data, schema).coalesce(1), str(tmp_path / "t"), {"run_id": "r1"}, "deltalake")
    assert {key: spark.conf.get(key, None) for key in before} == before
    (path,) = DeltaTable(str(tmp_path / "t")).file_uris()
    meta = pq.ParquetFile(path).metadata.row_group(0)
    encodings = {meta.column(i).path_in_schema: meta.column(i).encodings for i in range(meta.num_columns)}
    dictionary = {column for column, used in encodings.items() if any("DICTIONARY" in e for e in used)}
    assert dictionary == {"segment", "nearest.list.element.cluster_id"}, encodings


def test_a_write_spread_over_more_days_than_open_writers_keeps_every_row_once(spark, tmp_path):
    """A task keeps one open file per day up to OPEN_WRITERS and sorts the rows of later days (Spark's
    concurrent writers, `_open_writers`): both paths hold every row once, one file per day, and the
    session's settings are its own again afterwards."""
    days = [dt.date(2026, 10, 1) + dt.timedelta(days=d) for d in range(delta.OPEN_WRITERS + 8)]
    schema = T.StructType([T.StructField("visit_key", T.StringType()), T.StructField("visit_date", T.DateType()), T.StructField("run_id", T.StringType())])
    data = [(f"v{i}", days[(i * 7) % len(days)], "r1") for i in range(len(days) * 5)]  # the days interleaved, as scores arrive
    keys = ("spark.sql.optimizer.plannedWrite.enabled", "spark.sql.maxConcurrentOutputFileWriters")
    before = {key: spark.conf.get(key, None) for key in keys}

    result = delta.replace_partition(spark, spark.createDataFrame(data, schema).coalesce(1), str(tmp_path / "t"),
                                     {"run_id": "r1", "visit_date": [str(d) for d in days]}, "deltalake")

    assert {key: spark.conf.get(key, None) for key in keys} == before
    assert (result.files, result.rows) == (len(days), len(data))
    assert_df_equality(delta.read_table(spark, str(tmp_path / "t")).select(*schema.names), spark.createDataFrame(data, schema),
                       ignore_row_order=True, ignore_nullable=True)
