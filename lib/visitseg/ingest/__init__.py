"""Input adapters: one `Format` per export, turning its rows into the canonical hit table
(`features.schemas.HIT_SCHEMA`) or, for exports whose rows already are visits, into visit rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from visitseg.core.config import Config
from visitseg.core.errors import ConfigError
from visitseg.features.visits import visit_features
from visitseg.ingest import events, ga4, ga360
from visitseg.ingest.files import read_raw


@dataclass(frozen=True)
class Format:
    """One export format, as the pipelines use it. A format of hits (GA4, event logs) gives canonical hits,
    from which visits are built; the incremental scorer joins held-back hits to a micro-batch's and cuts
    the visits again. A format of visits (GA360: one row per session, hits nested) gives visit rows
    straight from its rows. The adapters take the config sections they read; this is where they are bound."""

    json_schema: T.StructType | None  # of its JSON files (None: inferred, the flat event log)
    hits_from_raw: Callable[[DataFrame, Config, dict | None], DataFrame] | None = None  # rows → canonical hits
    cut_visits_again: Callable[[DataFrame, Config], DataFrame] | None = None  # hits → the same hits, visits made whole
    visits_from_raw: Callable[[DataFrame, Config], DataFrame] | None = None  # whole-visit rows → visit rows
    read_visits: Callable[[SparkSession, Config], DataFrame] | None = None  # a visit format's own batch reader

    @property
    def by_hits(self) -> bool:
        return self.hits_from_raw is not None


def _ga4_hits(raw: DataFrame, cfg: Config, facts: dict | None) -> DataFrame:
    return ga4.hits_from_raw(raw, cfg.input)  # every row is a hit: none is ignored, so `facts` gets nothing


def _ga4_renumbered(hits: DataFrame, cfg: Config) -> DataFrame:
    return ga4.number_hits(hits)  # a GA4 visit is its ga_session_id: the visits stay, their hits are numbered anew


def _log_hits(raw: DataFrame, cfg: Config, facts: dict | None) -> DataFrame:
    return events.hits_from_raw(raw, cfg.input, cfg.events, facts)


def _log_sessions(hits: DataFrame, cfg: Config) -> DataFrame:
    return events.sessions_of(hits, cfg.events, cfg.input.timezone)  # the held-back and the new hits are one user stream again


def _ga360_visits(raw: DataFrame, cfg: Config) -> DataFrame:
    return ga360.visits_from_raw(raw, cfg.input, cfg.run.run_id)


def _ga360_read(spark: SparkSession, cfg: Config) -> DataFrame:
    return ga360.read_visits(spark, cfg.input, cfg.run.run_id)


FORMATS = {
    "ga360": Format(ga360.GA360_JSON_SCHEMA, visits_from_raw=_ga360_visits, read_visits=_ga360_read),
    "ga4": Format(ga4.GA4_JSON_SCHEMA, hits_from_raw=_ga4_hits, cut_visits_again=_ga4_renumbered),
    "events": Format(None, hits_from_raw=_log_hits, cut_visits_again=_log_sessions),
}


def format_of(name: str) -> Format:
    if name not in FORMATS:
        raise ConfigError(f"input.format: must be one of {', '.join(FORMATS)}, got {name!r}; pass --input-format")
    return FORMATS[name]


def read_hits(spark: SparkSession, cfg: Config, facts: dict | None = None) -> DataFrame:
    """The canonical hit table of `cfg.input` (a format of hits), restricted to the configured date window.
    Rows an adapter ignores (counted, under input.max_invalid_fraction) are reported in `facts`, which the
    run records."""
    fmt = format_of(cfg.input.format)
    if not fmt.by_hits:
        raise ConfigError(f"input.format = {cfg.input.format!r}: its rows are whole visits; read them with read_visits")
    return fmt.hits_from_raw(read_raw(spark, cfg.input, fmt.json_schema), cfg, {} if facts is None else facts)


def read_visits(spark: SparkSession, cfg: Config, facts: dict | None = None) -> DataFrame:
    """The visit feature table of `cfg.input` (lazy; validate it with `visits.validate_visits`)."""
    fmt = format_of(cfg.input.format)
    if fmt.read_visits is not None:
        return fmt.read_visits(spark, cfg)
    return visit_features(read_hits(spark, cfg, facts), cfg.run.run_id)
