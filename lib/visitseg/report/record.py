"""The run's record: the `runs` row (`storage.tables.RunRecord`) of a finished run, and the versions it ran with."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import platform

from pyspark.sql import SparkSession

from visitseg import __version__
from visitseg.core.config import Config
from visitseg.model.fit import Segmentation
from visitseg.storage.tables import RunRecord

PACKAGES = ("pyspark", "delta-spark", "deltalake", "pyarrow", "pandas", "numpy")

def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def run_record(
    spark: SparkSession, cfg: Config, started_at: dt.datetime, n_rows: int, seg: Segmentation, model_path: str, writer: str, drift_summary: str, stages: list[dict]
) -> RunRecord:
    """The `runs` row of a finished run: the model's facts, the configuration and the process's versions."""
    return RunRecord(
        run_id=cfg.run.run_id,
        started_at=started_at,
        finished_at=dt.datetime.now(dt.timezone.utc),
        input_format=cfg.input.format,
        input_path=cfg.input.path,
        grain=cfg.features.grain,
        method=seg.method,
        n_rows=n_rows,
        chosen_k=seg.k,
        k_reason=seg.reason,
        weak_structure=seg.weak_structure or None,
        comparison_json=json.dumps(seg.selection.comparison) if seg.selection.comparison else None,
        sweep_rows=seg.selection.sweep_rows,
        sweep_sampled=seg.selection.sampled,
        features=list(seg.features.kept),
        dropped_features=list(seg.features.dropped),
        model_path=model_path,
        delta_writer=writer,
        stages_json=json.dumps(stages),
        config_json=cfg.to_json(),
        spark_version=spark.version,
        python_version=platform.python_version(),
        visitseg_version=__version__,
        packages_json=json.dumps(package_versions(), sort_keys=True),
        drift_summary=drift_summary,
    )
