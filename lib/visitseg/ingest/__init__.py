"""Input adapters: each turns one export format into the canonical hit table (`schemas.HIT_SCHEMA`)."""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession

from visitseg.config import Config
from visitseg.errors import ConfigError
from visitseg.ingest import events, ga4, ga360
from visitseg.visits import visit_features

ADAPTERS = {"ga360": ga360.read_hits, "ga4": ga4.read_hits, "events": events.read_hits}
# Formats whose rows already are visits aggregate them without going through the hit table (same result).
VISIT_READERS = {"ga360": ga360.read_visits}


def read_hits(spark: SparkSession, cfg: Config, facts: dict | None = None) -> DataFrame:
    """The canonical hit table of `cfg.input`, restricted to the configured date window. Rows an adapter
    ignores (counted, under input.max_invalid_fraction) are reported in `facts`, which the run records."""
    if cfg.input.format not in ADAPTERS:
        raise ConfigError(f"input.format: must be one of {', '.join(ADAPTERS)}, got {cfg.input.format!r}; pass --input-format")
    return ADAPTERS[cfg.input.format](spark, cfg, {} if facts is None else facts)


def read_visits(spark: SparkSession, cfg: Config, facts: dict | None = None) -> DataFrame:
    """The visit feature table of `cfg.input` (lazy; validate it with `visits.validate_visits`)."""
    if cfg.input.format in VISIT_READERS:
        return VISIT_READERS[cfg.input.format](spark, cfg)
    return visit_features(read_hits(spark, cfg, facts), cfg.run.run_id)


# Incremental scoring (`visitseg.incremental`) takes the adapters in parts: the raw rows of a micro-batch
# come from a stream, and hits held back from earlier batches join the new ones before visits are built.
RAW_JSON_SCHEMAS = {"ga360": ga360.GA360_JSON_SCHEMA, "ga4": ga4.GA4_JSON_SCHEMA, "events": None}
HITS_FROM_RAW = {"ga4": ga4.hits_from_raw, "events": events.hits_from_raw}  # raw rows → canonical hits
CUT_VISITS_AGAIN = {"ga4": ga4.cut_visits_again, "events": events.cut_visits_again}  # hits → the same hits, visits made whole
VISITS_FROM_RAW = {"ga360": ga360.visits_from_raw}  # formats whose rows are whole visits
