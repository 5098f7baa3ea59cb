"""`visitseg score`: read → visits → features → saved model → assign → session_scores, then monitoring.

    score:               the visits of the input, scored with a saved model (no refit); a score replaces
                         that model's scores of the same days
    score --incremental: the same per micro-batch of new files, complete visits only (`incremental`)

Both go through `score_and_monitor`: the visits are assigned once, and the same assignment feeds the
scores, the segment KPIs per day, and the feature profiles and drift against the model's training run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from visitseg.core.config import Config
from visitseg.core.errors import ConfigError
from visitseg.core.spark import StageLog, session_conf
from visitseg.features.table import FeatureTable
from visitseg.model.assign import SCORES_CODEGEN, assigned_visits, score_visits
from visitseg.model.profiles import numeric_columns
from visitseg.model.saved_model import SavedModel, load_model, scoring_config
from visitseg.monitor.daily import scored_daily_rows, segment_stats
from visitseg.monitor.drift import Monitoring, Reference, monitor, reference_run
from visitseg.monitor.journeys import JOURNEY_TABLES, journeys
from visitseg.pipelines.features import built_features
from visitseg.storage import delta
from visitseg.storage.catalog import check_catalog, register_tables
from visitseg.storage.runlock import run_lock
from visitseg.storage.tables import DRIFT, FEATURE_PROFILES, KPIS_DAILY, SCHEMAS, SESSION_SCORES, KpiRow, newest_run, rows_frame, write_run_table

log = logging.getLogger(__name__)

# Writes the scores of the assigned visits of the given days; None when there is nothing to write.
WriteScores = Callable[[DataFrame, list[str]], "delta.WriteResult | None"]


@dataclass(frozen=True)
class Scored:
    """What one score wrote: the scores' commit (None: none was needed), their days, and the monitoring."""

    result: delta.WriteResult | None
    days: list[str]
    monitoring: Monitoring


@dataclass(frozen=True)
class ScoreSummary:
    model_run_id: str
    score_run_id: str
    visits: int
    days: list[str]
    result: delta.WriteResult
    monitoring: Monitoring
    edge_visits: int  # visits that may go on in a neighbouring file (`edge_visits`); 0 for GA360


def edge_visits(visits: DataFrame, gap_minutes: float) -> int:
    """How many visits start within the session gap after the input's first hit, or end within it before its
    last hit: a batch of one day's files may see only part of these, the rest being in the neighbouring
    day's files (GA4 exports and event logs cut files at midnight, not between visits). The visits that
    really cross are among them. `score --incremental` scores a visit only once it is complete."""
    start = F.unix_micros("visit_start_ts") / 1e6
    end = start + F.col("time_on_site_sec")
    first, last = visits.agg(F.min(start), F.max(end)).first()
    if first is None:
        return 0
    gap = gap_minutes * 60
    return visits.filter((start < first + gap) | (end > last - gap)).count()


def score_job(spark: SparkSession, cfg: Config, model: str) -> ScoreSummary:
    """Score the visits of `cfg.input` with a saved model (`DIR/models/<run_id>`, or `latest` in the output)
    into `session_scores`, replacing that model's scores of the same days. No refit."""
    stages = StageLog(spark)
    writer = delta.choose_writer(spark, cfg.output.delta_writer)
    check_catalog(spark, cfg.output.catalog_database)
    out, run_id = cfg.output.path, cfg.run.run_id
    path_of_model = model_path(spark, out, model)
    saved = load_model(path_of_model)
    reference = reference_run(spark, model_output(path_of_model), cfg.monitor.baseline_run_id, saved.run_id)
    check_score_tables(out)
    path = f"{out}/{SESSION_SCORES}"

    def replace_days(assigned: DataFrame, days: list[str]) -> delta.WriteResult:
        scores = score_visits(assigned, saved, run_id)
        return delta.replace_partition(spark, scores, path, {"model_run_id": saved.run_id, "visit_date": days}, writer)

    log.info("score: model of run %s (%d segments), its feature settings; scoring %s", saved.run_id, len(saved.segments), cfg.input.path)
    settings = scoring_config(cfg, saved.config)
    with run_lock(out, run_id), built_features(spark, settings, stages) as table:
        scored = score_and_monitor(spark, cfg, stages, writer, table, saved, reference, replace_days, run_id)
        at_edges = 0 if settings.input.format == "ga360" else edge_visits(table.df, settings.events.session_gap_minutes)
        if at_edges:
            log.warning(
                "score: %d of %d visits start or end within %g minutes of the input's first or last hit, so part of them may be in a "
                "neighbouring day's files; for daily scoring use `score --incremental`, which scores a visit once it is complete",
                at_edges, table.rows, settings.events.session_gap_minutes,
            )
        register_tables(spark, out, cfg.output.catalog_database)
    return ScoreSummary(saved.run_id, run_id, table.rows, scored.days, scored.result, scored.monitoring, at_edges)


def score_and_monitor(
    spark: SparkSession, cfg: Config, stages: StageLog, writer: str, visits: FeatureTable, saved: SavedModel, reference: Reference,
    write: WriteScores, monitor_run_id: str,
) -> Scored:
    """Assign the visits to the model's centres once; `write` their scores; then write the visits' segment
    KPIs per day, feature profiles and drift against `reference`, and their journeys, as run `monitor_run_id`."""
    out = cfg.output.path
    with stages("score") as facts:
        assigned = assigned_visits(visits.df, saved)
        # One pass grouped by (segment, day): the KPIs, the days whose partitions the write replaces, and
        # the feature columns' counts and sums for drift's profile.
        daily, totals = scored_daily_rows(assigned, numeric_columns(visits.df.schema), saved, monitor_run_id)
        days = sorted({str(row.visit_date) for row in daily})
        facts.update(rows_in=visits.rows, days=len(days))
    with stages(f"write {SESSION_SCORES}") as facts, session_conf(spark, SCORES_CODEGEN):
        result = write(assigned, days)
        if result is not None:
            facts.update(rows_out=result.rows, version=result.version)
    with stages("drift") as facts:
        monitoring = monitor(spark, visits.df, visits.rows, monitor_run_id, "visit_key", reference, segment_stats(daily, visits.rows), totals, cfg.monitor)
        facts.update(metrics=len(monitoring.rows), drifted=len(monitoring.drifted))
    with stages("journeys"):
        journey_rows = journeys(assigned, cfg, monitor_run_id, dict(saved.segments.values()))
    journey_tables = journey_rows.frames(spark) if journey_rows else {}
    for name, df in {KPIS_DAILY: rows_frame(spark, daily, KpiRow), **monitoring.frames(spark), **journey_tables}.items():
        write_run_table(spark, out, monitor_run_id, writer, stages, name, df)
    return Scored(result, days, monitoring)


def check_score_tables(output: str) -> None:
    """Before a score's first write: its tables, where they exist, have the schemas it writes."""
    delta.check_schemas({f"{output}/{name}": SCHEMAS[name] for name in (SESSION_SCORES, KPIS_DAILY, FEATURE_PROFILES, DRIFT, *JOURNEY_TABLES)})


def model_output(path: str) -> str:
    """The output folder a model was written to (DIR of DIR/models/<run_id>): its run's tables are there."""
    return path.rstrip("/").rsplit("/", 2)[0]


def model_path(spark: SparkSession, output: str, model: str) -> str:
    """`latest` is the model of the newest k-means run at visit grain in `output/runs` (the runs `score`
    can use); anything else is the model folder itself."""
    if model != "latest":
        return model.rstrip("/")
    newest = newest_run(spark, output, (F.col("method") == "kmeans") & (F.col("grain") == "visit"), ("model_path",))
    if newest is None:
        raise ConfigError(f"--model latest: {output}/runs holds no k-means run at visit grain; train one with `visitseg run --output {output}` first")
    return newest["model_path"]
