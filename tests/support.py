"""Small helpers shared by the tests."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any, Iterable

from visitseg.config import Config, load_config, with_values


def make_config(input_format: str = "", path: str = "", output: str = "", overrides: Iterable[str] = (), **sections: dict) -> Config:
    cfg = load_config([], overrides)
    base: dict[str, dict[str, Any]] = {"run": {"run_id": "test-run"}}
    if input_format:
        base["input"] = {"format": input_format, "path": path}
    if output:
        base["output"] = {"path": output}
    for name, values in sections.items():
        base[name] = {**base.get(name, {}), **values}
    return with_values(cfg, **base)


def write_json_lines(path: Path, records: list[dict]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return str(path)


def utc(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc)
