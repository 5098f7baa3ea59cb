"""The two jobs, as compositions of the same stages.

    run:   read → visits → features → fit (+ lineage) → assign → drift → tables → model → report
    score: read → visits → features → saved model   → assign → session_scores
    score --incremental: the same per micro-batch of new files, complete visits only (`incremental`)

`run` writes its tables in this order: features, labels, centres, diagnostics, daily mix and KPIs, lineage,
feature profiles and drift, then the model and the JSON report, and the `runs` row last, so a run listed
in `runs` has all its outputs.
The report page is drawn from those tables afterwards. Both jobs check every target table's schema before
the first write and hold the run lock of their run id (`runlock`) while they work.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
from dataclasses import dataclass

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from visitseg import delta
from visitseg.config import Config
from visitseg.daily import numeric_columns, scored_daily_rows
from visitseg.drift import Monitoring, SegmentStats, drift_frame, monitor, reference_run, segment_stats
from visitseg.errors import ConfigError
from visitseg.features import FeatureTable, built_features
from visitseg.fit import Segmentation, fit_segments
from visitseg.grains import GRAINS
from visitseg.incremental import IncrementalSummary, score_incrementally
from visitseg.lineage import previous_run
from visitseg.report import run_record, write_json
from visitseg.report_page import write_report
from visitseg.runlock import run_lock
from visitseg.scoring import SCORES_CODEGEN, SavedModel, assigned_visits, fitted_values, load_model, save_model, score_visits, scoring_config
from visitseg.spark import StageLog, session_conf
from visitseg.tables import CENTERS, DIAGNOSTICS, DRIFT, DRIFT_SCHEMA, FEATURE_PROFILES, MONITORING_SCHEMAS, KPIS_DAILY, KPIS_DAILY_SCHEMA, LINEAGE, MIX_DAILY, RUNS, RUNS_SCHEMA, SESSION_SCORES, SESSION_SCORES_SCHEMA, RunRecord, kpis_frame, newest_first, runs_frame, write_run_table

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunSummary:
    record: RunRecord
    segmentation: Segmentation
    tables: dict[str, str]  # table name → path
    report_path: str  # model_report.json
    page_path: str  # report.html
    monitoring: Monitoring


def run_job(spark: SparkSession, cfg: Config) -> RunSummary:
    """The whole training job. Validation failures raise before anything is written."""
    started_at = dt.datetime.now(dt.timezone.utc)
    stages = StageLog(spark)
    writer = delta.choose_writer(spark, cfg.output.delta_writer)  # fail before any work if it cannot run
    out, run_id = cfg.output.path, cfg.run.run_id
    with run_lock(out, run_id), built_features(spark, cfg, stages) as table:
        seg = fit_segments(spark, cfg, table, stages, previous_run(spark, cfg))
        with stages("drift") as facts:
            segments = {c["cluster_id"]: SegmentStats(c["segment"], c["share"], c["conversion_rate"]) for c in seg.centres}
            monitoring = monitor(spark, cfg, table.df, table.rows, reference_run(spark, cfg), segments, seg.column_totals)
            facts.update(metrics=len(monitoring.rows), drifted=len(monitoring.drifted))
        frames = {
            table.name: table.df,
            GRAINS[cfg.features.grain].labels_table: seg.labels,
            CENTERS: seg.centers,
            DIAGNOSTICS: seg.diagnostics,
            MIX_DAILY: seg.mix,
            KPIS_DAILY: seg.kpis,
            **({LINEAGE: seg.lineage} if seg.lineage is not None else {}),
            FEATURE_PROFILES: monitoring.profiles,
            **({DRIFT: drift_frame(spark, monitoring.rows)} if monitoring.rows else {}),
        }
        delta.check_schemas({f"{out}/{name}": df.schema for name, df in frames.items()} | {f"{out}/{RUNS}": RUNS_SCHEMA})
        tables = {name: write_run_table(spark, cfg, stages, name, df).path for name, df in frames.items()}
        model_path = f"{out}/models/{run_id}"
        with stages("save model"):
            save_model(model_path, SavedModel(run_id, cfg.features.grain, seg.method, seg.segments, cfg.redacted(), fitted_values(seg.model)), seg.model)
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
            "drift_summary": monitoring.summary,
        }
        record = run_record(spark, cfg, started_at, facts, stages.records)
        report_path = f"{out}/reports/{run_id}/model_report.json"
        write_json(
            report_path,
            {**dataclasses.asdict(record), "config": cfg.redacted(), "stages": stages.records, "tables": tables,
             "k_diagnostics": [r.__dict__ for r in seg.results], "clusters": seg.centres, "method_comparison": seg.comparison,
             "drift": [dict(zip(DRIFT_SCHEMA.names, r)) for r in monitoring.rows]},
        )
        tables[RUNS] = write_run_table(spark, cfg, stages, RUNS, runs_frame(spark, record)).path
        page_path = write_report(spark, out, run_id)  # from the tables just written, like `visitseg report`
    return RunSummary(record, seg, tables, report_path, page_path, monitoring)


@dataclass(frozen=True)
class ScoreSummary:
    model_run_id: str
    score_run_id: str
    visits: int
    days: list[str]
    result: delta.WriteResult
    monitoring: Monitoring


def score_job(spark: SparkSession, cfg: Config, model: str) -> ScoreSummary:
    """Score the visits of `cfg.input` with a saved model (`DIR/models/<run_id>`, or `latest` in the output)
    into `session_scores`, replacing that model's scores of the same days. No refit."""
    stages = StageLog(spark)
    writer = delta.choose_writer(spark, cfg.output.delta_writer)
    out, run_id = cfg.output.path, cfg.run.run_id
    path_of_model = model_path(spark, out, model)
    saved = load_model(path_of_model)
    log.info("score: model of run %s (%d segments), its feature settings; scoring %s", saved.run_id, len(saved.segments), cfg.input.path)
    with run_lock(out, run_id), built_features(spark, scoring_config(cfg, saved.config), stages) as table:
        return _score(spark, cfg, stages, writer, table, saved, path_of_model)


def _score(spark: SparkSession, cfg: Config, stages: StageLog, writer: str, table: FeatureTable, saved: SavedModel, path_of_model: str) -> ScoreSummary:
    """The rest of `score_job`, once the visits are built and the model loaded."""
    out, run_id = cfg.output.path, cfg.run.run_id
    with stages("score") as facts:
        assigned = assigned_visits(table.df, saved)
        scores = score_visits(assigned, saved, run_id)
        # The segment KPIs of the scored visits per day, as a run writes them: one pass grouped by
        # (segment, day), which also gives the days whose partitions the write replaces and the
        # feature columns' counts and sums for drift's profile.
        daily, totals = scored_daily_rows(assigned, numeric_columns(table.df.schema), saved, run_id)
        days = sorted({str(row[0]) for row in daily})
        facts.update(rows_in=table.rows, days=len(days))
    path = f"{out}/{SESSION_SCORES}"
    delta.check_schemas({path: scores.schema, f"{out}/{KPIS_DAILY}": KPIS_DAILY_SCHEMA, **{f"{out}/{name}": schema for name, schema in MONITORING_SCHEMAS.items()}})
    with stages(f"write {SESSION_SCORES}") as facts, session_conf(spark, SCORES_CODEGEN):
        result = delta.replace_partition(spark, scores, path, {"model_run_id": saved.run_id, "visit_date": days}, writer)
        facts.update(rows_out=result.rows, version=result.version)
    with stages("drift") as facts:
        segments = segment_stats(daily, table.rows)
        # The reference of a score is its model's training run: "are today's visits like those the model learnt?"
        monitoring = monitor(spark, cfg, table.df, table.rows, cfg.monitor.baseline_run_id or saved.run_id, segments, totals, model_output(path_of_model))
        facts.update(metrics=len(monitoring.rows), drifted=len(monitoring.drifted))
    write_run_table(spark, cfg, stages, KPIS_DAILY, kpis_frame(spark, daily))
    write_run_table(spark, cfg, stages, FEATURE_PROFILES, monitoring.profiles)
    if monitoring.rows:
        write_run_table(spark, cfg, stages, DRIFT, drift_frame(spark, monitoring.rows))
    return ScoreSummary(saved.run_id, run_id, table.rows, days, result, monitoring)


def incremental_score_job(spark: SparkSession, cfg: Config, model: str, checkpoint: str) -> IncrementalSummary:
    """Score the complete visits of the input files new to `checkpoint` (see `visitseg.incremental`)."""
    path_of_model = model_path(spark, cfg.output.path, model)
    saved = load_model(path_of_model)
    delta.check_schemas({f"{cfg.output.path}/{SESSION_SCORES}": SESSION_SCORES_SCHEMA})
    log.info("score --incremental: model of run %s (%d segments), new files of %s, checkpoint %s", saved.run_id, len(saved.segments), cfg.input.path, checkpoint)
    return score_incrementally(spark, scoring_config(cfg, saved.config), saved, checkpoint, StageLog(spark), model_output(path_of_model))


def model_output(path: str) -> str:
    """The output folder a model was written to (DIR of DIR/models/<run_id>): its run's tables are there."""
    return path.rstrip("/").rsplit("/", 2)[0]


def model_path(spark: SparkSession, output: str, model: str) -> str:
    """`latest` is the model of the newest k-means visit run in `output/runs` (the runs `score` can use);
    anything else is the model folder itself."""
    if model != "latest":
        return model.rstrip("/")
    newest = []
    if RUNS in delta.tables_under(output):
        scorable = delta.read_table(spark, f"{output}/{RUNS}").filter((F.col("method") == "kmeans") & (F.col("grain") == "visit"))
        newest = newest_first(scorable).select("model_path").limit(1).collect()
    if not newest:
        raise ConfigError(f"--model latest: {output}/runs holds no k-means run at visit grain; train one with `visitseg run --output {output}` first")
    return newest[0]["model_path"]
