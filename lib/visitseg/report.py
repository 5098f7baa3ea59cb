"""The run's record: the `runs` table row and `reports/<run_id>/model_report.json`, with the same facts."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import platform
from typing import Any

import pyarrow.fs as pafs
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from visitseg import __version__
from visitseg.config import Config
from visitseg.delta import table_uri

PACKAGES = ("pyspark", "delta-spark", "deltalake", "pyarrow", "pandas", "numpy")

RUNS_SCHEMA = T.StructType(
    [
        T.StructField("run_id", T.StringType()),
        T.StructField("started_at", T.TimestampType()),
        T.StructField("finished_at", T.TimestampType()),
        T.StructField("input_format", T.StringType()),
        T.StructField("input_path", T.StringType()),
        T.StructField("grain", T.StringType()),
        T.StructField("method", T.StringType()),  # kmeans | rules
        T.StructField("n_rows", T.LongType()),
        T.StructField("chosen_k", T.IntegerType()),
        T.StructField("k_reason", T.StringType()),
        T.StructField("weak_structure", T.StringType()),  # null, or why the chosen K's clusters are weak
        T.StructField("comparison_json", T.StringType()),  # k-means vs rules: separation and split stability (compare.py)
        T.StructField("sweep_rows", T.LongType()),
        T.StructField("sweep_sampled", T.BooleanType()),
        T.StructField("features", T.ArrayType(T.StringType())),
        T.StructField("dropped_features", T.ArrayType(T.StringType())),
        T.StructField("model_path", T.StringType()),
        T.StructField("delta_writer", T.StringType()),
        T.StructField("stages_json", T.StringType()),  # [{"stage", "rows_in", "rows_out", "seconds", ...}]
        T.StructField("config_json", T.StringType()),
        T.StructField("spark_version", T.StringType()),
        T.StructField("python_version", T.StringType()),
        T.StructField("visitseg_version", T.StringType()),
        T.StructField("packages_json", T.StringType()),
    ]
)


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def run_record(spark: SparkSession, cfg: Config, started_at: dt.datetime, facts: dict[str, Any], stages: list[dict]) -> dict[str, Any]:
    """One dict with every column of RUNS_SCHEMA (facts supplies the model's columns)."""
    return {
        "run_id": cfg.run.run_id,
        "started_at": started_at,
        "finished_at": dt.datetime.now(dt.timezone.utc),
        "input_format": cfg.input.format,
        "input_path": cfg.input.path,
        "grain": cfg.features.grain,
        **facts,
        "stages_json": json.dumps(stages),
        "config_json": cfg.to_json(),
        "spark_version": spark.version,
        "python_version": platform.python_version(),
        "visitseg_version": __version__,
        "packages_json": json.dumps(package_versions(), sort_keys=True),
    }


def runs_frame(spark: SparkSession, record: dict[str, Any]) -> DataFrame:
    return spark.createDataFrame([tuple(record[name] for name in RUNS_SCHEMA.names)], RUNS_SCHEMA)


def write_json(path: str, document: dict[str, Any]) -> None:
    write_text(path, json.dumps(document, indent=2, default=str))


def write_text(path: str, text: str) -> None:
    """Write a small text file to a local path or a URI pyarrow understands (s3://, gs://, hdfs://)."""
    fs, target = pafs.FileSystem.from_uri(table_uri(path))
    fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
    with fs.open_output_stream(target) as out:
        out.write(text.encode())
