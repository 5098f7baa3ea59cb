"""The features stage: canonical hits → validated visit (or user) feature table → Delta.

Feature rows are persisted once and reused by validation, the write and (in `visitseg run`) the model,
so the hits are read and aggregated a single time.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Iterator

from pyspark import StorageLevel
from pyspark.sql import SparkSession

from visitseg.core.config import Config
from visitseg.features.table import FeatureTable
from visitseg.ingest import read_visits
from visitseg.ingest.files import input_errors
from visitseg.core.spark import StageLog, persisted
from visitseg.features.users import user_features
from visitseg.features.validate import check_rows, check_unique_keys
from visitseg.features.visits import valid_visits, validate_visits

log = logging.getLogger(__name__)


@contextlib.contextmanager
def built_features(spark: SparkSession, cfg: Config, stages: StageLog) -> Iterator[FeatureTable]:
    """Read, aggregate and validate the feature table at the configured grain; nothing is written.
    Its rows stay persisted for the `with` block (the write and the model reuse them), then are released."""
    with stages("read hits") as facts:
        visits = read_visits(spark, cfg, facts)
        facts["input"] = f"{cfg.input.format} {cfg.input.path}"
    # DISK_ONLY: at 12.7M visits, caching partitions of ~400k visit rows with MEMORY_AND_DISK ran the
    # default 1 GB heap out of memory; on disk (and in the OS page cache) any size fits.
    with persisted(visits, StorageLevel.DISK_ONLY) as visits:
        with stages("aggregate visits") as facts:
            with input_errors(cfg.input.path):  # the first action: where unreadable files show up
                counts = validate_visits(visits, cfg.input.max_invalid_fraction)
            facts.update(rows_in=counts["hits"] + counts["invalid_hits"], rows_out=counts["rows"], invalid_input_rows=counts["invalid_hits"])
        if cfg.features.grain == "visit":
            yield FeatureTable("visit_features", valid_visits(visits), counts["rows"])
            return
        with persisted(user_features(valid_visits(visits), cfg.run.run_id), StorageLevel.DISK_ONLY) as users:
            with stages("aggregate users") as facts:
                checked = check_rows(users, ["user_key"], not_null=["user_key"], non_negative=["sessions"], what="user features", sums=["sessions"])
                facts.update(rows_in=checked["sessions"], rows_out=checked["rows"])
                check_unique_keys(users, ["user_key"], "user features")
            visits.unpersist()  # early: the users are materialised, the visits' blocks are no longer read
            yield FeatureTable("user_features", users, facts["rows_out"])
