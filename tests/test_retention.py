"""Dropping old runs: `visitseg vacuum --drop-runs-before` and `output.keep_runs`."""

from __future__ import annotations

import datetime as dt

import pytest
from deltalake import DeltaTable
from pyspark.sql import types as T

from visitseg.storage import delta
from visitseg.cli import main
from visitseg.storage.retention import runs_to_drop

UTC = dt.timezone.utc
STARTS = {"a": dt.datetime(2026, 11, 1, tzinfo=UTC), "b": dt.datetime(2026, 11, 2, tzinfo=UTC), "c": dt.datetime(2026, 11, 3, tzinfo=UTC)}


def test_runs_to_drop_by_start_and_by_count():
    runs = [(r, t.timestamp()) for r, t in STARTS.items()]
    assert runs_to_drop(runs, dt.datetime(2026, 11, 2, tzinfo=UTC), 0) == ["a"]
    assert runs_to_drop(runs, None, 1) == ["a", "b"]
    assert runs_to_drop(runs, dt.datetime(2026, 11, 2, tzinfo=UTC), 1) == ["a", "b"]
    assert runs_to_drop(runs, None, 0) == [] and runs_to_drop(runs, None, 5) == []


def output_with_three_runs(spark, out):
    """`runs` (as much of it as dropping reads) and one more table, a model and a report folder per run."""
    runs = T.StructType([T.StructField("run_id", T.StringType()), T.StructField("started_at", T.TimestampType())])
    labels = T.StructType([T.StructField("visit_key", T.StringType()), T.StructField("run_id", T.StringType())])
    for run_id, started in STARTS.items():
        delta.replace_partition(spark, spark.createDataFrame([(run_id, started)], runs), str(out / "runs"), {"run_id": run_id})
        rows = [(f"v{i}", run_id) for i in range(3)]
        delta.replace_partition(spark, spark.createDataFrame(rows, labels), str(out / "visit_labels"), {"run_id": run_id})
        for folder in (out / "models" / run_id, out / "reports" / run_id):
            folder.mkdir(parents=True)
            (folder / "x").write_text(run_id)


def run_ids(out, table: str, version: int | None = None) -> list[str]:
    return sorted(set(DeltaTable(str(out / table), version=version).to_pyarrow_table().column("run_id").to_pylist()))


def test_drop_runs_before_removes_them_from_every_table_and_vacuum_then_frees_their_files(spark, tmp_path, capsys):
    out = tmp_path / "out"
    output_with_three_runs(spark, out)
    before = DeltaTable(str(out / "visit_labels")).version()

    assert main(["vacuum", "--output", str(out), "--drop-runs-before", "2026-11-02", "--dry-run"]) == 0
    assert "runs to drop: a" in capsys.readouterr().out and run_ids(out, "runs") == ["a", "b", "c"]

    assert main(["vacuum", "--output", str(out), "--drop-runs-before", "2026-11-02T12:00:00+00:00"]) == 0
    assert "runs dropped: a, b" in capsys.readouterr().out
    assert run_ids(out, "runs") == run_ids(out, "visit_labels") == ["c"]
    assert sorted(p.name for p in (out / "models").iterdir()) == ["c"] and sorted(p.name for p in (out / "reports").iterdir()) == ["c"]
    assert run_ids(out, "visit_labels", before) == ["a", "b", "c"]  # time travel still reads them within the retention window

    files = {p for p in (out / "visit_labels").rglob("*.parquet")}
    assert main(["vacuum", "--output", str(out), "--retain-hours", "0", "--force"]) == 0
    left = {p for p in (out / "visit_labels").rglob("*.parquet")}
    assert left and left < files and all(p.parent.name == "run_id=c" for p in left)


def test_keep_runs_keeps_the_newest(spark, tmp_path, capsys):
    out = tmp_path / "out"
    output_with_three_runs(spark, out)
    assert main(["vacuum", "--output", str(out), "--set", "output.keep_runs=2"]) == 0
    assert "runs dropped: a" in capsys.readouterr().out
    assert run_ids(out, "runs") == run_ids(out, "visit_labels") == ["b", "c"]


def test_a_bad_moment_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["vacuum", "--output", str(tmp_path), "--drop-runs-before", "last tuesday"])
    assert exit_.value.code == 2
    assert "not an ISO date or date-time: 'last tuesday'" in capsys.readouterr().err
