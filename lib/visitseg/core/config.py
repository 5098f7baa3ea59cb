"""Typed, frozen job configuration.

The dataclass defaults below are the single source of truth for default values; `conf/defaults.toml`
mirrors them for people to read and a test keeps the two equal. A configuration is built by
`load_config(paths, overrides)`: defaults, then each TOML file in order, then `--set section.key=value`
overrides. Everything is validated while it is built, so a typo fails before Spark starts, with a
message that names the key and what it accepts.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import sys
import typing
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from visitseg.core.errors import ConfigError
from visitseg.core.redact import redacted, secret_values

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

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


@dataclass(frozen=True)
class RunConfig:
    run_id: str = ""  # empty: a UTC timestamp such as 20261123T101500Z is generated at start
    seed: int = 42


@dataclass(frozen=True)
class InputConfig:
    format: str = ""  # ga360 | ga4 | events; usually given as --input-format
    path: str = ""  # usually given as --input
    file_format: str = "auto"  # auto = from the file extension
    date_from: str = ""  # YYYY-MM-DD, inclusive; empty = no lower bound
    date_to: str = ""  # YYYY-MM-DD, exclusive; empty = no upper bound
    max_invalid_fraction: float = 0.01  # rows ignored as invalid (unmapped event values, events of no visit) above this share fail the run
    timezone: str = "UTC"  # event logs: the zone whose calendar dates visit_date and the date window use (GA exports carry their own date)


@dataclass(frozen=True)
class EventsConfig:
    """Column mapping and sessionisation of flat event logs (Retailrocket layout by default)."""

    timestamp_col: str = "timestamp"
    timestamp_unit: str = "ms"  # epoch ms | s | us
    visitor_col: str = "visitorid"
    event_col: str = "event"
    item_col: str = "itemid"
    transaction_col: str = "transactionid"
    revenue_col: str = ""  # optional; Retailrocket has none
    # The event values of each funnel step; "" = the log has no such step.
    view_value: str = "view"
    add_to_cart_value: str = "addtocart"
    transaction_value: str = "transaction"
    search_value: str = ""
    checkout_value: str = ""
    add_shipping_info_value: str = ""
    add_payment_info_value: str = ""
    session_gap_minutes: float = 30.0


@dataclass(frozen=True)
class FeaturesConfig:
    grain: str = "visit"  # visit | user


@dataclass(frozen=True)
class ModelConfig:
    method: str = "kmeans"  # kmeans | rules (funnel segments by thresholds; k-means still runs for the comparison)
    features: tuple[str, ...] = DEFAULT_FEATURES
    log1p_features: tuple[str, ...] = DEFAULT_FEATURES  # log1p before clipping; must be a subset of features
    winsor_method: str = "zscore"  # zscore | quantile | none
    winsor_z: float = 5.0
    winsor_quantile: float = 0.001  # clip below q and above 1 - q
    k_min: int = 4  # fewer segments cannot tell bouncers, browsers, shoppers and buyers apart
    k_max: int = 10
    k_final: int = 0  # 0 = choose automatically
    previous_run: str = ""  # run whose segment ids a retrain keeps (lineage); "" = the newest other k-means run in the output
    lineage_max_shift: float = 1.0  # a new cluster farther than this from its matched previous centre (standardised units) gets a new id
    max_iter: int = 40
    tol: float = 1e-4
    init_steps: int = 2
    n_init: int = 1  # k-means runs per K in the sweep (seeds seed, seed+1, …); the lowest training cost wins
    refit_seeds: int = 2  # more seeds for a K that looks like a poor local optimum (README: "The model"); 0 = never
    solver: str = "block"  # block: distances by matrix products (dense data, 3-4x faster here); row; auto
    sweep_sample_rows: int = 50_000  # a fit costs per row and per job: 50,000 rows halve 100,000's sweep, same K (docs/performance.md)
    sweep_parallelism: int = 8  # fits at once (driver threads sharing the executors, like CrossValidator's parallelism)
    min_cluster_share: float = 0.005  # buyers are ~1-2% of real visits: a smaller floor would hide them
    max_cluster_share: float = 0.6  # automatic K prefers Ks whose largest segment holds at most this share
    min_stability: float = 0.8  # ... and whose split-half adjusted Rand index is at least this


@dataclass(frozen=True)
class RulesConfig:
    """Thresholds of the rule-based segments (`model.method = "rules"`, README: "Rule-based segments")."""

    researcher_product_views: int = 2  # "Product researchers": product views + searches at least this


@dataclass(frozen=True)
class NamingConfig:
    """Thresholds of the rule that names clusters from their profiles (README: "Segment names")."""

    buyer_conversion_rate: float = 0.5  # "Buyers": share of visits with a transaction at least this
    high_value_revenue_ratio: float = 1.5  # revenue per visit vs. the lowest buyer cluster's
    bounce_rate: float = 0.8  # "Bouncers": bounce rate at least this
    cart_rate: float = 0.5  # "Cart abandoners": share of visits with a cart step at least this ...
    abandoner_max_conversion_rate: float = 0.1  # ... and conversion below this (also caps "Researchers")
    researcher_pageviews: float = 15.0  # "Researchers": mean pageviews or time on site at least this
    researcher_time_on_site_sec: float = 900.0
    browser_pageviews: float = 2.0  # "Browsers": mean pageviews at least this ...
    browser_max_bounce_rate: float = 0.5  # ... and bounce rate below this


@dataclass(frozen=True)
class MonitorConfig:
    """Drift thresholds (README: "Drift monitoring"): a metric above its threshold is `drifted`."""

    baseline_run_id: str = ""  # the reference run of `drift`; "" = the previous run
    psi: float = 0.25  # population stability index of a feature, on the reference's decile bins
    js_distance: float = 0.1  # Jensen–Shannon distance (base 2) of a feature, same bins
    share_change: float = 0.05  # a segment's share of the visits, absolute change
    total_variation: float = 0.1  # the whole segment mix: half the summed absolute share changes
    conversion_change: float = 0.05  # a segment's conversion rate, absolute change


@dataclass(frozen=True)
class OutputConfig:
    path: str = ""  # usually given as --output
    delta_writer: str = "auto"  # auto | native | deltalake
    redact_keys: tuple[str, ...] = ()  # more key names whose values are masked in logs and outputs (`redact`)
    keep_runs: int = 0  # `visitseg vacuum` drops all but the newest this many runs from every table; 0 = keep every run
    catalog_database: str = ""  # register every table as <database>.<table> in the session's catalog, with latest-run views; "" = off


@dataclass(frozen=True)
class SparkConfig:
    app_name: str = "visitseg"
    master: str = ""  # empty = spark-submit's master, or local[*] outside spark-submit
    shuffle_partitions: int = 0  # 0 = Spark's default (adaptive execution coalesces)
    driver_memory: str = ""  # only honoured when visitseg starts the JVM itself
    conf: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Config:
    run: RunConfig = field(default_factory=RunConfig)
    input: InputConfig = field(default_factory=InputConfig)
    events: EventsConfig = field(default_factory=EventsConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    rules: RulesConfig = field(default_factory=RulesConfig)
    naming: NamingConfig = field(default_factory=NamingConfig)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    spark: SparkConfig = field(default_factory=SparkConfig)

    def to_dict(self) -> dict[str, Any]:
        """Every value, secrets included: for building sessions and copies, never for writing out."""
        return dataclasses.asdict(self)

    def redacted(self) -> dict[str, Any]:
        """Every value, credential-like ones masked (`redact`): what may be logged or written."""
        return redacted(self.to_dict(), self.output.redact_keys)

    def secrets(self) -> list[str]:
        return secret_values(self.to_dict(), self.output.redact_keys)

    def to_json(self) -> str:
        """The redacted configuration as JSON (`runs.config_json`, the start-up log line)."""
        return json.dumps(self.redacted(), sort_keys=True, default=list)


def load_config(paths: Iterable[str | Path] = (), overrides: Iterable[str] = ()) -> Config:
    """Defaults, then each TOML file, then `section.key=value` overrides; validated."""
    values = Config().to_dict()
    for path in paths:
        try:
            loaded = tomllib.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file {path}: not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path}: not valid TOML ({exc})") from None
        _merge(values, loaded, source=str(path))
    for override in overrides:
        _merge(values, _parse_override(override), source=f"--set {override}")
    return _build(values)


def with_values(cfg: Config, **sections: Mapping[str, Any]) -> Config:
    """A copy of `cfg` with some keys replaced, validated like a file (used by the CLI's named flags)."""
    values = cfg.to_dict()
    _merge(values, {name: dict(keys) for name, keys in sections.items()}, source="command line")
    return _build(values)


def _parse_override(text: str) -> dict[str, Any]:
    key, sep, raw = text.partition("=")
    parts = key.strip().split(".", 2)  # section.key, or section.table.entry such as spark.conf.spark.x.y
    if not sep or len(parts) < 2 or not all(parts):
        raise ConfigError(f"--set {text!r}: expected section.key=value, e.g. --set model.k_max=8")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw  # bare words such as `user` are strings
    if len(parts) == 3:
        return {parts[0]: {parts[1]: {parts[2]: value}}}
    return {parts[0]: {parts[1]: value}}


def _merge(values: dict[str, Any], loaded: Mapping[str, Any], source: str) -> None:
    for section, keys in loaded.items():
        if section not in values:
            raise ConfigError(f"{source}: unknown section [{section}]; known sections: {', '.join(values)}")
        if not isinstance(keys, Mapping):
            raise ConfigError(f"{source}: [{section}] must be a table of keys, got {keys!r}")
        for key, value in keys.items():
            if key not in values[section]:
                known = ", ".join(values[section])
                raise ConfigError(f"{source}: unknown key {section}.{key}; keys of [{section}]: {known}")
            if isinstance(values[section][key], dict):
                if not isinstance(value, Mapping):
                    raise ConfigError(f"{source}: {section}.{key} must be a table of strings, got {value!r}")
                values[section][key] = {**values[section][key], **value}
            else:
                values[section][key] = value


def _build(values: dict[str, Any]) -> Config:
    sections = {}
    for section_field in dataclasses.fields(Config):
        cls = section_field.default_factory  # type: ignore[misc]
        hints = typing.get_type_hints(cls)
        kwargs = {
            name: _coerce(f"{section_field.name}.{name}", hints[name], value)
            for name, value in values[section_field.name].items()
        }
        sections[section_field.name] = cls(**kwargs)
    cfg = Config(**sections)
    _validate(cfg)
    return cfg


def _coerce(key: str, hint: Any, value: Any) -> Any:
    origin = typing.get_origin(hint)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: must be an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: must be a number, got {value!r}")
        return float(value)
    if hint is str:
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            return value.isoformat()  # TOML reads an unquoted 2026-01-01 as a date
        if not isinstance(value, str):
            raise ConfigError(f"{key}: must be a string, got {value!r}")
        return value
    if origin is tuple:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{key}: must be a list of strings, got {value!r}")
        return tuple(value)
    if origin is dict:
        if not all(isinstance(k, str) and isinstance(v, (str, int, float, bool)) for k, v in value.items()):
            raise ConfigError(f"{key}: must map strings to strings, got {value!r}")
        return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in value.items()}
    raise AssertionError(f"unsupported config type {hint} for {key}")  # a programming error, not a user one


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


def _validate(cfg: Config) -> None:
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
    for name, value in dataclasses.asdict(cfg.monitor).items():
        if name != "baseline_run_id":
            _positive(f"monitor.{name}", value)


def _validate_model(m: ModelConfig) -> None:
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
