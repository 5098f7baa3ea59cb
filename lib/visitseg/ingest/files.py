"""Reading raw input files (or BigQuery tables) into a DataFrame, whatever the storage format."""

from __future__ import annotations

import glob
import os

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from visitseg.config import InputConfig
from visitseg.errors import ConfigError, EmptyInputError, InputSchemaError

EXTENSIONS = {".parquet": "parquet", ".json": "json", ".jsonl": "json", ".ndjson": "json", ".csv": "csv", ".avro": "avro"}


def detect_file_format(path: str) -> str:
    """The storage format from the path's extension, or from the files inside a local folder."""
    candidates = [path]
    if "://" not in path and os.path.isdir(path):
        # Spark skips names starting with "_" or "." (e.g. _SUCCESS, _planted/); so does the detection.
        candidates = sorted(
            found
            for found in glob.glob(os.path.join(path, "**", "*"), recursive=True)
            if not any(part.startswith(("_", ".")) for part in os.path.relpath(found, path).split(os.sep))
        )
    for candidate in candidates:
        name = os.path.basename(candidate).lower()
        for suffix in (".gz", ".bz2", ".snappy"):
            name = name.removesuffix(suffix)
        for extension, file_format in EXTENSIONS.items():
            if name.endswith(extension):
                return file_format
    raise ConfigError(
        f"input.file_format: cannot tell the format of {path!r} from file extensions; "
        f"set --set input.file_format=parquet (or json, csv, avro, bigquery)"
    )


def read_raw(spark: SparkSession, cfg: InputConfig, json_schema: T.StructType | None = None) -> DataFrame:
    """Read `cfg.path` in `cfg.file_format`. JSON is read with `json_schema` (no inference pass over the data)."""
    if not cfg.path:
        raise ConfigError("input.path: no input given; pass --input PATH")
    file_format = cfg.file_format if cfg.file_format != "auto" else detect_file_format(cfg.path)
    try:
        if file_format == "parquet":
            return spark.read.parquet(cfg.path)
        if file_format == "json":
            reader = spark.read.schema(json_schema) if json_schema is not None else spark.read
            return reader.option("mode", "FAILFAST").json(cfg.path)
        if file_format == "csv":
            # Every column as text: the adapters cast, so a malformed value becomes a counted null, not a crash.
            return spark.read.option("header", True).option("inferSchema", False).csv(cfg.path)
        if file_format == "avro":
            return spark.read.format("avro").load(cfg.path)
        # BigQuery through the spark-bigquery connector; the adapter's date filter is pushed down by it.
        return spark.read.format("bigquery").option("table", cfg.path).load()
    except AnalysisException as exc:
        message = str(exc)
        if "PATH_NOT_FOUND" in message or "Path does not exist" in message:
            raise EmptyInputError(f"input {cfg.path!r}: no such file or folder") from None
        if "DATA_SOURCE_NOT_FOUND" in message or "Failed to find data source" in message:
            package = {
                "avro": "org.apache.spark:spark-avro_2.13:<your Spark version>",
                "bigquery": "com.google.cloud.spark:spark-bigquery-with-dependencies_2.13:<version>",
            }[file_format]
            raise InputSchemaError(
                f"input.file_format = {file_format!r} needs a Spark connector this session lacks; "
                f"add it with spark-submit --packages {package}, or convert the input to Parquet"
            ) from None
        if "UNABLE_TO_INFER_SCHEMA" in message:
            raise EmptyInputError(f"input {cfg.path!r}: holds no {file_format} data files") from None
        raise
