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
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from visitseg.core.config_rules import DEFAULT_FEATURES, validate
from visitseg.core.errors import ConfigError
from visitseg.core.redact import redacted, secret_values

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib



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
    distinct_z: float = 0.5  # other clusters: "High/Low <feature>" for features at least this far from the mean (sd) ...
    average_z: float = 0.2  # ... "Above/Below-average <feature>" from this far; nearer on every feature: "Average visits"


@dataclass(frozen=True)
class JourneysConfig:
    """The journey tables of a visit-grain run or score (README: "Journeys"): transitions, paths, attributes."""

    enabled: bool = True
    max_path_length: int = 4  # paths_to_purchase: the last this many visits up to the first purchase visit
    top_attributes: int = 5  # segment_attributes: the values kept per segment and attribute; the rest is "(other)"


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
    # The driver JVM's options when visitseg starts the JVM itself (a local run, not spark-submit) and
    # spark.conf sets no spark.driver.extraJavaOptions. Parallel GC: a short batch run on a small heap
    # spends less CPU in it than in G1's concurrent work (docs/performance.md: 78.4 against 83.9 s at 1M hits).
    local_java_options: str = "-XX:+UseParallelGC"
    # Where the JVM a local command starts keeps its class-data archive (`core.class_archive`); "" = none.
    class_archives: str = "~/.cache/visitseg/class-archives"
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
    journeys: JourneysConfig = field(default_factory=JourneysConfig)
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
    validate(cfg)
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
