"""`visitseg run`: features → segmentation → every output table, the saved model and the run report.

Table order: features, labels, centres, diagnostics, daily mix and KPIs, then the model and the JSON report, and the
`runs` row last, so a run listed in `runs` has all its outputs. The report page is drawn from those tables
afterwards. Every table is partitioned by run_id and each write replaces that run's partition (a rerun of
a run_id leaves one copy of it).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass

from pyspark.sql import SparkSession

from visitseg import delta
from visitseg.config import Config
from visitseg.features import built_features, write_run_table
from visitseg.report import RUNS_SCHEMA, run_record, runs_frame, write_json
from visitseg.report_page import write_report
from visitseg.segment import GRAINS, Segmentation, segment
from visitseg.runlock import run_lock
from visitseg.spark import StageLog

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunSummary:
    record: dict
    segmentation: Segmentation
    tables: dict[str, str]  # table name → path
    report_path: str  # model_report.json
    page_path: str  # report.html


def run_job(spark: SparkSession, cfg: Config) -> RunSummary:
    """The whole job. Validation failures raise before anything is written; a live run of the same run id
    into the same output is refused (`runlock`)."""
    started_at = dt.datetime.now(dt.timezone.utc)
    stages = StageLog(spark)
    writer = delta.choose_writer(spark, cfg.output.delta_writer)  # fail before any work if it cannot run
    with run_lock(cfg.output.path, cfg.run.run_id), built_features(spark, cfg, stages) as table:
        seg = segment(spark, cfg, table, stages)
        out = cfg.output.path
        grain = GRAINS[cfg.features.grain]
        frames = {
            table.name: table.df,
            grain.labels_table: seg.labels,
            "cluster_centers": seg.centers,
            "k_diagnostics": seg.diagnostics,
            "cluster_mix_daily": seg.mix,
            "segment_kpis_daily": seg.kpis,
        }
        # Every target table's schema before the first write, so a clash leaves nothing written.
        delta.check_schemas({f"{out}/{name}": df.schema for name, df in frames.items()} | {f"{out}/runs": RUNS_SCHEMA})
        tables = {name: write_run_table(spark, cfg, stages, name, df).path for name, df in frames.items()}
        model_path = f"{out}/models/{cfg.run.run_id}"
        with stages("save model"):
            seg.model.write().overwrite().save(model_path)
        facts = {
            "n_rows": table.rows,
            "chosen_k": seg.k,
            "k_reason": seg.reason,
            "method": seg.method,
            "weak_structure": seg.weak_structure or None,
            "comparison_json": json.dumps(seg.comparison) if seg.comparison else None,
            "sweep_rows": seg.sweep_rows,
            "sweep_sampled": seg.sampled,
            "features": list(seg.features),
            "dropped_features": list(seg.dropped_features),
            "model_path": model_path,
            "delta_writer": writer,
        }
        record = run_record(spark, cfg, started_at, facts, stages.records)
        report_path = f"{out}/reports/{cfg.run.run_id}/model_report.json"
        write_json(
            report_path,
            {**record, "config": cfg.redacted(), "stages": stages.records, "tables": tables,
             "k_diagnostics": [r.__dict__ for r in seg.results], "clusters": seg.centres, "method_comparison": seg.comparison},
        )
        tables["runs"] = write_run_table(spark, cfg, stages, "runs", runs_frame(spark, record)).path
        page_path = write_report(spark, out, cfg.run.run_id)  # from the tables just written, like `visitseg report`
    return RunSummary(record, seg, tables, report_path, page_path)

