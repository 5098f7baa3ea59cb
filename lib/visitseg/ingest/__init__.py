"""Input adapters: each turns one export format into the canonical hit table (`schemas.HIT_SCHEMA`)."""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession

from visitseg.config import Config
from visitseg.errors import ConfigError
from visitseg.ingest import events, ga4, ga360

ADAPTERS = {"ga360": ga360.read_hits, "ga4": ga4.read_hits, "events": events.read_hits}


def read_hits(spark: SparkSession, cfg: Config) -> DataFrame:
    """The canonical hit table of `cfg.input`, restricted to the configured date window."""
    if cfg.input.format not in ADAPTERS:
        raise ConfigError(f"input.format: must be one of {', '.join(ADAPTERS)}, got {cfg.input.format!r}; pass --input-format")
    return ADAPTERS[cfg.input.format](spark, cfg)
