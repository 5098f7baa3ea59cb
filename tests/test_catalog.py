"""`output.catalog_database`: every output table by name in the session's catalog, with the latest-run
views, registered again without harm, and readable from a second Spark process sharing the metastore."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from deltalake import DeltaTable

from support import NO_DELTA_JARS, delta_jars, one_k
from visitseg.cli import main
from visitseg.core.errors import ConfigError
from visitseg.core.spark import session_has_delta
from visitseg.ingest import sample_data
from visitseg.storage.catalog import register_tables

N_VISITS = 600
K_RANGE = one_k(3)  # what is tested is the registration, not the sweep


def counts_by_segment(output: Path, run_id: str) -> dict[str, int]:
    """Read with deltalake and pandas, independently of Spark's catalog."""
    labels = DeltaTable(str(output / "session_clusters")).to_pyarrow_table().to_pandas()
    return labels[labels.run_id == run_id].groupby("segment").size().to_dict()


@pytest.fixture(scope="module")
def registered(spark, tmp_path_factory):
    if not session_has_delta(spark):
        pytest.skip(NO_DELTA_JARS)
    root = tmp_path_factory.mktemp("catalog")
    sample_data.write_sample(spark, "ga360", str(root / "input"), N_VISITS, days=3, seed=5)
    for run_id in ("r1", "r2"):
        args = ["run", "--input-format", "ga360", "--input", str(root / "input"), "--output", str(root / "out"), "--set", f"run.run_id={run_id}"]
        assert main([*args, *K_RANGE, "--set", "output.catalog_database=vs_test"]) == 0
    return root


def test_every_table_and_both_views_are_in_the_database(spark, registered):
    names = {t.name for t in spark.catalog.listTables("vs_test")}
    assert {"session_clusters", "visit_features", "cluster_centers", "k_diagnostics", "runs"} <= names
    assert {"latest_session_segments", "latest_segment_profiles"} <= names
    got = {r["segment"]: r["n"] for r in spark.sql("SELECT segment, count(*) AS n FROM vs_test.latest_session_segments GROUP BY segment").collect()}
    assert got == counts_by_segment(registered / "out", "r2")
    assert {r.run_id for r in spark.sql("SELECT DISTINCT run_id FROM vs_test.latest_segment_profiles").collect()} == {"r2"}
    assert spark.sql("SELECT count(DISTINCT run_id) AS n FROM vs_test.session_clusters").first()["n"] == 2  # the table sees every run
    channels = spark.sql("SELECT count(*) AS n FROM vs_test.latest_session_segments WHERE channel IS NOT NULL").first()["n"]
    assert channels == sum(counts_by_segment(registered / "out", "r2").values())


def test_registering_again_changes_nothing_and_another_output_is_refused(spark, registered, tmp_path):
    before = sorted(t.name for t in spark.catalog.listTables("vs_test"))
    register_tables(spark, str(registered / "out"), "vs_test")
    assert sorted(t.name for t in spark.catalog.listTables("vs_test")) == before
    other = tmp_path / "other"
    (other / "runs").mkdir(parents=True)
    spark.range(1).withColumnRenamed("id", "x").write.format("delta").save(str(other / "runs"))
    with pytest.raises(ConfigError, match="vs_test.runs is registered at"):
        register_tables(spark, str(other), "vs_test")


def test_a_bad_database_name_is_refused_before_anything_is_written(tmp_path):
    code = main(["run", "--input-format", "ga360", "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"), "--set", "output.catalog_database=bad name"])
    assert code == 2
    assert not (tmp_path / "out").exists()


QUERY = """
import json, sys
from pyspark.sql import SparkSession
builder = SparkSession.builder.master("local[1]").config("spark.sql.catalogImplementation", "hive")
for key, value in json.loads(sys.argv[1]).items():
    builder = builder.config(key, value)
spark = builder.getOrCreate()
rows = spark.sql("SELECT segment, count(*) AS n FROM visitseg.latest_session_segments GROUP BY segment").collect()
print(json.dumps({r["segment"]: r["n"] for r in rows}))
"""


def test_a_second_spark_process_with_the_same_metastore_queries_the_view(spark, tmp_path):
    """The run registers into a Hive metastore (Derby, in tmp_path); a new process with the same metastore
    and only the SQL text of the issue gets the counts of `session_clusters`."""
    if not delta_jars():
        pytest.skip(NO_DELTA_JARS)
    sample_data.write_sample(spark, "ga360", str(tmp_path / "input"), N_VISITS, days=3, seed=6)
    conf = {
        "spark.jars": ",".join(delta_jars()),
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.sql.warehouse.dir": str(tmp_path / "warehouse"),
        "spark.hadoop.javax.jdo.option.ConnectionURL": f"jdbc:derby:;databaseName={tmp_path / 'metastore_db'};create=true",
        "spark.ui.enabled": "false",
    }
    sets = [a for key, value in {**conf, "spark.sql.catalogImplementation": "hive"}.items() for a in ("--set", f"spark.conf.{key}={json.dumps(value)}")]
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"}
    run = subprocess.run(
        [sys.executable, "-c", "import sys; from visitseg.cli import main; sys.exit(main(sys.argv[1:]))", "run", "--input-format", "ga360",
         "--input", str(tmp_path / "input"), "--output", str(tmp_path / "out"), "--set", "run.run_id=hive1", "--set", "spark.master=local[2]",
         "--set", "output.catalog_database=visitseg", *K_RANGE, *sets],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    query = subprocess.run([sys.executable, "-c", QUERY, json.dumps(conf)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert query.returncode == 0, query.stderr[-3000:]
    got = json.loads(query.stdout.strip().splitlines()[-1])
    expected = counts_by_segment(tmp_path / "out", "hive1")
    assert got == expected and sum(got.values()) > 0
