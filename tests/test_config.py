"""Configuration: defaults, files, overrides and validation messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from visitseg.core.config import Config, load_config
from visitseg.core.errors import ConfigError

CONF = Path(__file__).resolve().parents[1] / "conf"


def test_defaults_file_equals_the_dataclass_defaults():
    assert load_config([CONF / "defaults.toml"]) == Config()


@pytest.mark.parametrize("name", ["local.toml", "dataproc.toml", "emr.toml"])
def test_shipped_config_files_load(name):
    cfg = load_config([CONF / "defaults.toml", CONF / name])
    assert cfg.spark.app_name == "visitseg"


def test_later_files_and_overrides_win(tmp_path):
    first = tmp_path / "a.toml"
    first.write_text('[model]\nk_max = 6\n[spark.conf]\n"spark.x" = "1"\n')
    second = tmp_path / "b.toml"
    second.write_text("[model]\nk_max = 7\n")
    cfg = load_config(
        [first, second],
        ["features.grain=user", "model.k_min=3", "events.session_gap_minutes=45", "spark.conf.spark.sql.y=2",
         'model.features=["hits", "pageviews"]', "input.date_from=2026-01-01"],
    )
    assert cfg.model.k_max == 7 and cfg.model.k_min == 3
    assert cfg.features.grain == "user"
    assert cfg.events.session_gap_minutes == 45.0
    assert cfg.spark.conf == {"spark.x": "1", "spark.sql.y": "2"}
    assert cfg.model.features == ("hits", "pageviews")
    assert cfg.input.date_from == "2026-01-01"


@pytest.mark.parametrize(
    "override, message",
    [
        ("model.k_maxx=3", "unknown key model.k_maxx; keys of \\[model\\]"),
        ("modle.k_max=3", "unknown section \\[modle\\]"),
        ("model.k_max=three", "model.k_max: must be an integer, got 'three'"),
        ("model.k_max=true", "model.k_max: must be an integer"),
        ("model.k_min=1", "model.k_min: must be >= 2, got 1"),
        ("model.k_max=1", "model.k_max: must be >= model.k_min"),
        ("features.grain=session", "features.grain: must be one of visit, user, got 'session'"),
        ("output.delta_writer=parquet", "output.delta_writer: must be one of auto, native, deltalake"),
        ("input.timezone=Mars/Olympus", "input.timezone: must be an IANA time zone"),
        ("input.date_from=2026/01/01", "input.date_from: must be a date written YYYY-MM-DD"),
        ("input.date_to=2026-02-30", "input.date_to: must be a date written YYYY-MM-DD"),
        ("events.session_gap_minutes=0", "events.session_gap_minutes: must be > 0, got 0.0"),
        ("events.session_gap_minutes=-5", "events.session_gap_minutes: must be > 0"),
        ("run.run_id=a/b", "run.run_id: must be 1-64 letters"),
        ("model.min_cluster_share=0.7", "model.min_cluster_share: must be >= 0 and < 0.5"),
        ("model.log1p_features=bogus", "model.log1p_features: \\['bogus'\\] are not in model.features"),
        ("spark.shuffle_partitions=-1", "spark.shuffle_partitions: must be >= 0"),
        ("noequals", "expected section.key=value"),
    ],
)
def test_bad_values_name_the_key_and_what_it_accepts(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config([], [override])


def test_end_must_be_after_start():
    with pytest.raises(ConfigError, match="input.date_to: must be after input.date_from"):
        load_config([], ["input.date_from=2026-03-01", "input.date_to=2026-03-01"])


def test_file_errors_name_the_file(tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text("[model\nk_max = 3")
    with pytest.raises(ConfigError, match="broken.toml: not valid TOML"):
        load_config([broken])
    with pytest.raises(ConfigError, match="missing.toml: not found"):
        load_config([tmp_path / "missing.toml"])
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("[output]\ntable = 'x'\n")
    with pytest.raises(ConfigError, match=r"unknown.toml: unknown key output.table"):
        load_config([unknown])


def test_config_is_frozen():
    cfg = Config()
    with pytest.raises(AttributeError):
        cfg.model.k_max = 3  # type: ignore[misc]
