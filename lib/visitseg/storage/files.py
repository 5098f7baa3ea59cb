"""Small text files beside the tables (the JSON report, the report page, the saved model's facts), on a
local path or any URI pyarrow understands (s3://, gs://, hdfs://)."""

from __future__ import annotations

import json
from typing import Any

import pyarrow.fs as pafs

from visitseg.storage.delta_log import table_uri


def write_json(path: str, document: dict[str, Any]) -> None:
    write_text(path, json.dumps(document, indent=2, default=str))


def write_text(path: str, text: str) -> None:
    """Write a small text file to a local path or a URI pyarrow understands (s3://, gs://, hdfs://)."""
    fs, target = pafs.FileSystem.from_uri(table_uri(path))
    fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
    with fs.open_output_stream(target) as out:
        out.write(text.encode())
