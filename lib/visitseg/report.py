"""The run's record: the `runs` row (`tables.RunRecord`) and `reports/<run_id>/model_report.json`, with the same facts."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import platform
from typing import Any

import pyarrow.fs as pafs
from pyspark.sql import SparkSession

from visitseg import __version__
from visitseg.config import Config
from visitseg.delta import table_uri
from visitseg.tables import RunRecord

PACKAGES = ("pyspark", "delta-spark", "deltalake", "pyarrow", "pandas", "numpy")

def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def run_record(spark: SparkSession, cfg: Config, started_at: dt.datetime, facts: dict[str, Any], stages: list[dict]) -> RunRecord:
    """The `runs` row: `facts` supplies the model's fields, the rest comes from the configuration and the process."""
    return RunRecord(
        run_id=cfg.run.run_id,
        started_at=started_at,
        finished_at=dt.datetime.now(dt.timezone.utc),
        input_format=cfg.input.format,
        input_path=cfg.input.path,
        grain=cfg.features.grain,
        **facts,
        stages_json=json.dumps(stages),
        config_json=cfg.to_json(),
        spark_version=spark.version,
        python_version=platform.python_version(),
        visitseg_version=__version__,
        packages_json=json.dumps(package_versions(), sort_keys=True),
    )


def write_json(path: str, document: dict[str, Any]) -> None:
    write_text(path, json.dumps(document, indent=2, default=str))


def write_text(path: str, text: str) -> None:
    """Write a small text file to a local path or a URI pyarrow understands (s3://, gs://, hdfs://)."""
    fs, target = pafs.FileSystem.from_uri(table_uri(path))
    fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
    with fs.open_output_stream(target) as out:
        out.write(text.encode())
