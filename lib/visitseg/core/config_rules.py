"""What a valid configuration is: the values each key accepts, checked while `config.load_config` builds it.

Apart from `config.py` so that the dataclasses stay a readable list of keys and defaults.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import zoneinfo
from typing import Any

from visitseg.core.errors import ConfigError

INPUT_FORMATS = ("ga360", "ga4", "events")
FILE_FORMATS = ("auto", "parquet", "json", "csv", "avro", "bigquery")
TIMESTAMP_UNITS = {"s": 1000, "ms": 1, "us": 0.001}  # epoch unit of events.timestamp_col → multiplier to milliseconds
GRAIN_NAMES = ("visit", "user")
DELTA_WRITERS = ("auto", "native", "deltalake")
WINSOR_METHODS = ("zscore", "quantile", "none")
KMEANS_SOLVERS = ("block", "row", "auto")
METHODS = ("kmeans", "rules")
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# Real visits' counts and amounts are zero-inflated and heavy-tailed (docs/real-data.md): log1p them all.
DEFAULT_FEATURES = ("pageviews", "unique_pages", "engagement_time_sec", "product_views", "searches", "cart_steps", "transactions", "transaction_revenue")
# Their counterparts at user grain: the same behaviour summed over a user's visits, plus how many visits.
USER_DEFAULT_FEATURES = ("sessions", "total_views", "engagement_time_sec", "product_views", "searches", "cart_steps", "transactions", "revenue")


def _one_of(key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{key}: must be one of {', '.join(allowed)}, got {value!r}")


def _positive(key: str, value: float) -> None:
    if value <= 0:
        raise ConfigError(f"{key}: must be > 0, got {value}")


def _known_zone(name: str) -> bool:
    """An IANA zone name; any name where Python has no zone database (Spark's own JVM then decides)."""
    try:
        return zoneinfo.ZoneInfo(name) is not None
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return not zoneinfo.available_timezones()


def parse_date(key: str, value: str) -> dt.date:
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            raise ValueError
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{key}: must be a date written YYYY-MM-DD, got {value!r}") from None


def validate(cfg: Any) -> None:
    """Raise a ConfigError naming the first key whose value cannot work, and what it accepts. `cfg` is a
    `config.Config` (not imported here: `config` imports this module to validate what it builds)."""
    if cfg.run.run_id and not RUN_ID_PATTERN.match(cfg.run.run_id):
        raise ConfigError(
            f"run.run_id: must be 1-64 letters, digits, '_', '-' or '.', starting with a letter or digit, "
            f"got {cfg.run.run_id!r}"
        )
    if cfg.input.format:
        _one_of("input.format", cfg.input.format, INPUT_FORMATS)
    _one_of("input.file_format", cfg.input.file_format, FILE_FORMATS)
    _one_of("events.timestamp_unit", cfg.events.timestamp_unit, tuple(TIMESTAMP_UNITS))
    if not _known_zone(cfg.input.timezone):
        raise ConfigError(f"input.timezone: must be an IANA time zone such as UTC or Europe/Berlin, got {cfg.input.timezone!r}")
    if not 0 <= cfg.input.max_invalid_fraction <= 1:
        raise ConfigError(f"input.max_invalid_fraction: must be between 0 and 1, got {cfg.input.max_invalid_fraction}")
    date_from = parse_date("input.date_from", cfg.input.date_from) if cfg.input.date_from else None
    date_to = parse_date("input.date_to", cfg.input.date_to) if cfg.input.date_to else None
    if date_from and date_to and date_to <= date_from:
        raise ConfigError(f"input.date_to: must be after input.date_from (date_to is exclusive), got date_from={cfg.input.date_from}, date_to={cfg.input.date_to}")
    _positive("events.session_gap_minutes", cfg.events.session_gap_minutes)
    for name in ("timestamp_col", "visitor_col", "event_col", "item_col", "transaction_col"):
        if not getattr(cfg.events, name):
            raise ConfigError(f"events.{name}: must name a column of the event log, got ''")
    _one_of("features.grain", cfg.features.grain, GRAIN_NAMES)
    _one_of("output.delta_writer", cfg.output.delta_writer, DELTA_WRITERS)
    if cfg.output.keep_runs < 0:
        raise ConfigError(f"output.keep_runs: must be >= 0 (0 = keep every run), got {cfg.output.keep_runs}")
    if cfg.output.catalog_database and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,127}", cfg.output.catalog_database):
        raise ConfigError(f"output.catalog_database: must be a database name of letters, digits and '_', got {cfg.output.catalog_database!r}")
    if cfg.spark.shuffle_partitions < 0:
        raise ConfigError(f"spark.shuffle_partitions: must be >= 0 (0 = Spark's default), got {cfg.spark.shuffle_partitions}")
    _validate_model(cfg.model)
    if cfg.model.method == "rules" and cfg.features.grain != "visit":
        raise ConfigError("model.method = \"rules\": the rules segment visits; use features.grain = \"visit\" or model.method = \"kmeans\"")
    _positive("rules.researcher_product_views", cfg.rules.researcher_product_views)
    for name, value in dataclasses.asdict(cfg.naming).items():
        _positive(f"naming.{name}", value)
    if cfg.naming.average_z >= cfg.naming.distinct_z:
        raise ConfigError(f"naming.average_z: must be below naming.distinct_z ({cfg.naming.distinct_z}), got {cfg.naming.average_z}")
    _positive("journeys.max_path_length", cfg.journeys.max_path_length)
    _positive("journeys.top_attributes", cfg.journeys.top_attributes)
    for name, value in dataclasses.asdict(cfg.monitor).items():
        if name != "baseline_run_id":
            _positive(f"monitor.{name}", value)


def _validate_model(m: Any) -> None:
    """`m`: a `config.ModelConfig`."""
    if not m.features:
        raise ConfigError("model.features: must list at least one feature column")
    if len(set(m.features)) != len(m.features):
        raise ConfigError(f"model.features: lists a column twice: {list(m.features)}")
    # The default list only applies to the features it names, so `--set model.features=…` alone still works.
    stray = sorted(set(m.log1p_features) - set(m.features)) if m.log1p_features != DEFAULT_FEATURES else []
    if stray:
        raise ConfigError(f"model.log1p_features: {stray} are not in model.features {list(m.features)}")
    _one_of("model.method", m.method, METHODS)
    _one_of("model.winsor_method", m.winsor_method, WINSOR_METHODS)
    _one_of("model.solver", m.solver, KMEANS_SOLVERS)
    _positive("model.winsor_z", m.winsor_z)
    if not 0 < m.winsor_quantile < 0.5:
        raise ConfigError(f"model.winsor_quantile: must be > 0 and < 0.5, got {m.winsor_quantile}")
    if m.k_min < 2:
        raise ConfigError(f"model.k_min: must be >= 2, got {m.k_min}")
    if m.k_max < m.k_min:
        raise ConfigError(f"model.k_max: must be >= model.k_min ({m.k_min}), got {m.k_max}")
    if m.k_final and m.k_final < 2:
        raise ConfigError(f"model.k_final: must be 0 (choose automatically) or >= 2, got {m.k_final}")
    for name in ("max_iter", "init_steps", "n_init", "sweep_sample_rows", "sweep_parallelism", "tol", "lineage_max_shift"):
        _positive(f"model.{name}", getattr(m, name))
    if m.refit_seeds < 0:
        raise ConfigError(f"model.refit_seeds: must be >= 0 (0 = never refit), got {m.refit_seeds}")
    if not 0 <= m.min_cluster_share < 0.5:
        raise ConfigError(f"model.min_cluster_share: must be >= 0 and < 0.5, got {m.min_cluster_share}")
    if not m.min_cluster_share < m.max_cluster_share <= 1:
        raise ConfigError(f"model.max_cluster_share: must be > model.min_cluster_share and <= 1, got {m.max_cluster_share}")
    if not -1 <= m.min_stability <= 1:
        raise ConfigError(f"model.min_stability: must be an adjusted Rand index in [-1, 1], got {m.min_stability}")
