"""Which runs an output keeps: `visitseg vacuum --drop-runs-before` and `output.keep_runs`.

A dropped run leaves every table in one transaction per table, the `runs` table first, so that a run
listed in `runs` always has all its tables (a failure halfway leaves tables holding a run that `runs` no
longer lists, which the next drop of that run id removes). Its model and report folders go last. The data
files stay on disk, readable by time travel, until a vacuum past the retention window removes them.
"""

from __future__ import annotations

import datetime as dt
import logging

import pyarrow.fs as pafs
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from visitseg.storage import delta
from visitseg.core.errors import ConfigError
from visitseg.storage.tables import RUN_ID

log = logging.getLogger(__name__)


def runs_to_drop(runs: list[tuple[str, float]], before: dt.datetime | None, keep: int) -> list[str]:
    """Run ids (from (run_id, started_at as epoch seconds) pairs) that started before `before`, or are not
    among the newest `keep` runs (keep = 0: no such limit)."""
    newest_first = sorted(runs, key=lambda r: (r[1], r[0]), reverse=True)
    drop = {run_id for run_id, started in runs if before is not None and started < before.timestamp()}
    if keep:
        drop |= {run_id for run_id, _ in newest_first[keep:]}
    return sorted(drop)


def drop_runs(spark: SparkSession, output: str, before: dt.datetime | None, keep: int, dry_run: bool = False, writer: str = "auto") -> list[str]:
    """Drop the runs `runs_to_drop` picks from every table under `output`; returns their ids."""
    tables = delta.tables_under(output)
    if "runs" not in tables:
        raise ConfigError(f"{output}/runs does not exist: there are no runs to drop; give the --output folder of a run")
    started = F.col("started_at").cast("double")  # epoch seconds: no time zone to get wrong on the driver
    listed = [(r[RUN_ID], r["s"]) for r in delta.read_table(spark, f"{output}/runs").select(RUN_ID, started.alias("s")).collect()]
    doomed = runs_to_drop(listed, before, keep)
    log.info("retention: %d of %d runs to drop%s: %s", len(doomed), len(listed), " (dry run)" if dry_run else "", ", ".join(doomed) or "none")
    if not doomed or dry_run:
        return doomed
    for name in ["runs", *(t for t in tables if t != "runs")]:
        delta.delete_partitions(spark, f"{output}/{name}", RUN_ID, doomed, writer)
    fs, root = pafs.FileSystem.from_uri(delta.table_uri(output))
    for run_id in doomed:
        for folder in (f"{root}/models/{run_id}", f"{root}/reports/{run_id}"):
            if fs.get_file_info(folder).type == pafs.FileType.Directory:
                fs.delete_dir(folder)
    return doomed
