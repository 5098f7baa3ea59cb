"""Reading raw input files (or BigQuery tables) into a DataFrame, whatever the storage format."""

from __future__ import annotations

import contextlib
import glob
import gzip
import json
import os
import re
from typing import Iterator

import pyarrow.parquet as pq
from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from visitseg.core.config import InputConfig
from visitseg.core.errors import ConfigError, EmptyInputError, InputSchemaError

EXTENSIONS = {".parquet": "parquet", ".json": "json", ".jsonl": "json", ".ndjson": "json", ".csv": "csv", ".avro": "avro"}


def detect_file_format(path: str) -> str:
    """The storage format from the path's extension, or from the files inside a local folder."""
    if "://" not in path and not glob.glob(path):
        raise EmptyInputError(f"input {path!r}: no such file or folder; check the --input path")
    candidates = local_files(path) if os.path.isdir(path) else [path]  # a URI is never a local folder
    formats = {candidate: found for candidate in candidates if (found := _format_of(candidate))}
    kinds = sorted(set(formats.values()))
    if len(kinds) > 1:
        examples = ", ".join(f"{os.path.basename(next(c for c, f in formats.items() if f == kind))} ({kind})" for kind in kinds)
        raise ConfigError(
            f"input {path!r}: mixes file formats ({examples}); Spark reads one format per input. "
            f"Keep one format per folder, or point --input at the files of one format"
        )
    if kinds:
        return kinds[0]
    raise ConfigError(
        f"input.file_format: cannot tell the format of {path!r} from file extensions; "
        f"set --set input.file_format=parquet (or json, csv, avro, bigquery)"
    )


def _format_of(path: str) -> str | None:
    name = os.path.basename(path).lower()
    for suffix in (".gz", ".bz2", ".snappy"):
        name = name.removesuffix(suffix)
    return next((file_format for extension, file_format in EXTENSIONS.items() if name.endswith(extension)), None)


def read_raw(spark: SparkSession, cfg: InputConfig, json_schema: T.StructType | None = None) -> DataFrame:
    """Read `cfg.path` in `cfg.file_format`. JSON is read with `json_schema` (no inference pass over the data)."""
    if not cfg.path:
        raise ConfigError("input.path: no input given; pass --input PATH")
    file_format = cfg.file_format if cfg.file_format != "auto" else detect_file_format(cfg.path)
    if file_format == "parquet":
        check_same_columns(cfg.path)
    with input_errors(cfg.path):  # Parquet footers are read here already, to learn the schema
        return _read(spark, cfg, file_format, json_schema)


def read_stream(spark: SparkSession, cfg: InputConfig, json_schema: T.StructType | None = None) -> DataFrame:
    """A streaming read of the folder `cfg.path` (Spark's file source, which remembers the files it has
    read in the query's checkpoint). A stream needs its schema up front: it is the schema a batch read of
    the files there now gets, so both see the same columns."""
    if "://" not in cfg.path and not os.path.isdir(cfg.path):
        raise ConfigError(f"--incremental: input {cfg.path!r} is not a folder; incremental scoring watches a folder that new files arrive in")
    file_format = cfg.file_format if cfg.file_format != "auto" else detect_file_format(cfg.path)
    if file_format not in ("parquet", "json", "csv", "avro"):
        raise ConfigError(f"--incremental: input.file_format {file_format!r} is no file format; incremental scoring reads files as they arrive")
    schema = read_raw(spark, cfg, json_schema).schema
    reader = spark.readStream.schema(schema).format(file_format).option("maxFileAge", NEVER_TOO_OLD)
    if file_format == "json":
        reader = reader.option("mode", "FAILFAST")
    if file_format == "csv":
        reader = reader.option("header", True)
    return reader.load(cfg.path)


# The file source skips files older than `maxFileAge` (7 days by default) relative to the newest file it
# has seen, after the first batch: a day re-exported or copied late, with an old modification time, would
# then be silently missed.
NEVER_TOO_OLD = "36500d"


def check_same_columns(path: str) -> None:
    """Every Parquet file of a local input has the same top-level columns. Spark takes the schema from
    one file, so a day whose export lacks a column would either fail without naming the file or read as
    nulls, depending on which file Spark picks. Footers only: one small read per file."""
    columns = {f: names for f in local_files(path, ".parquet") if (names := _columns(f)) is not None}
    if len(columns) < 2:
        return
    every = set.union(*columns.values())
    for f, names in columns.items():
        if names != every:
            raise InputSchemaError(
                f"input file {f}: lacks column(s) {', '.join(sorted(every - names))} that other files of {path} have. "
                f"Re-export that file with the full schema, or leave it out of --input"
            )


def local_files(path: str, *suffixes: str) -> list[str]:
    """The data files of a local input (a file, a glob or a folder) as Spark lists them (inside a folder,
    names starting with "_" or "." are skipped, e.g. _SUCCESS, _planted/), ending with one of the
    suffixes if any are given; none for a URI."""
    if "://" in path:
        return []
    if os.path.isdir(path):
        found = [
            f for f in glob.glob(os.path.join(path, "**", "*"), recursive=True)
            if not any(part.startswith(("_", ".")) for part in os.path.relpath(f, path).split(os.sep))
        ]
    else:
        found = glob.glob(path)
    return sorted(f for f in found if os.path.isfile(f) and (not suffixes or f.lower().endswith(suffixes)))


def _first_malformed_json(path: str) -> str | None:
    """The first local JSON file with a line that does not parse (Spark 3.5's error does not name it).
    Only run once a read has failed, so the scan costs nothing on good input."""
    for name in local_files(path, ".json", ".jsonl", ".ndjson", ".json.gz", ".jsonl.gz", ".ndjson.gz"):
        opener = gzip.open if name.endswith(".gz") else open
        with opener(name, "rb") as lines:
            for line in lines:
                try:
                    if line.strip():
                        json.loads(line)
                except ValueError:
                    return name
    return None


def _columns(path: str) -> set[str] | None:
    try:
        return set(pq.read_schema(path).names)
    except (OSError, ValueError):  # not Parquet at all: Spark's read says so, naming the file
        return None


def _read(spark: SparkSession, cfg: InputConfig, file_format: str, json_schema: T.StructType | None) -> DataFrame:
    try:
        if file_format == "parquet":
            # Nested fields may differ between days (a GA360 day whose `totals` lacks a field): merged, a
            # field some files lack reads as null in those, whichever file Spark would take the schema from.
            return spark.read.option("mergeSchema", "true").parquet(cfg.path)
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


# Spark's words (3.5 and 4.x) for a file it found but cannot decode: a corrupt Parquet footer, a truncated
# or malformed JSON line. They surface at the first action, not at `spark.read`.
UNREADABLE_FILE = (
    "FAILED_READ_FILE",
    "CANNOT_READ_FILE_FOOTER",
    "Could not read footer",
    "is not a Parquet file",
    "Malformed records are detected",
    "MALFORMED_RECORD_IN_PARSING",
    "Encountered error while reading file",
)
_FILE_IN_MESSAGE = re.compile(r"(?:file|path)[=: ]+((?:file:|s3a?://|gs://|hdfs://|abfss?://)?/?[^\s,}]+?\.[A-Za-z0-9]+(?:\.(?:gz|bz2|snappy))?)(?=[\s,.}]|$)")


@contextlib.contextmanager
def input_errors(path: str) -> Iterator[None]:
    """Around the first Spark action over the input: a file Spark cannot decode becomes a named error
    that names the file, instead of a Java stack trace."""
    try:
        yield
    except Exception as exc:  # Py4JJavaError or a pyspark error class, depending on the Spark line
        message = str(exc)
        if not any(sign in message for sign in UNREADABLE_FILE):
            raise
        found = _FILE_IN_MESSAGE.search(message)
        where = found.group(1) if found else (_first_malformed_json(path) or path)
        raise InputSchemaError(
            f"input file {where}: cannot be read (corrupt, truncated or not in the expected format). "
            f"Remove or re-export that file and rerun; nothing was written"
        ) from None
