"""Incremental scoring: `visitseg score --incremental --checkpoint PATH`.

Each invocation scores the input files that no earlier invocation of the same checkpoint has read, then
stops: Spark Structured Streaming's file source over the input folder with `Trigger.AvailableNow`, whose
offset log in the checkpoint remembers which files were read. A scheduler runs it daily (or hourly).

Only complete visits are scored. A visit is complete once the input has moved past it:
  * its last hit is at least `events.session_gap_minutes` (the inactivity gap, 30 minutes by default)
    before the newest hit read so far, and
  * its last hit's day is before the newest hit's day: a later day's hits have arrived, so its day's
    files have (a GA4 session that crosses midnight goes on in the next day's file).
The hits of every other visit wait in the Delta table `CHECKPOINT/<model>/pending` and join the next batch's hits;
the visits are then made whole again (GA4 hits are numbered anew, flat-log visits cut anew by the gap),
so a visit scored incrementally is built exactly as a batch `score` builds it. GA360 rows are sessions GA
has closed: each is scored as it arrives. A visit this model has scored already (a file delivered again,
or late hits of a finished GA4 visit) is not scored twice: it is skipped and counted in the log.

Each model has its own stream, `CHECKPOINT/<model run id>`: `--model latest` with one checkpoint folder
keeps working across retrains, the new model's first run scoring every file of the input (bound it with
`input.date_from`).

Exactly once. A micro-batch commits to two Delta tables, in this order: `session_scores` (the batch's
complete visits, appended) and `CHECKPOINT/<model>/pending` (replaced by the hits still waiting). Both commits
carry Delta's idempotent-writer transaction id: the app id of this checkpoint (made once, kept in
`visitseg_stream.json` beside it) and the batch id as its version. After a crash Spark replays the
unfinished batch with the same files (its offset log), the pending hits read are those before the batch
(its pending commit is the last one), and a table that already holds the batch's transaction is not
written again: every visit lands once. A rerun with no new files runs no batch and commits nothing.

Monitoring. Each batch's complete visits are profiled and compared with the model's run, as a batch
`score`'s are, under the run id `<score run id>-batch<N>` in `segment_kpis_daily`, `feature_profiles`
and `drift` (a replay rewrites the same partitions).
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass

import pyarrow.fs as pafs
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from visitseg.core.config import Config
from visitseg.core.errors import ConfigError
from visitseg.core.spark import StageLog, persisted
from visitseg.features.schemas import HIT_SCHEMA
from visitseg.features.table import FeatureTable
from visitseg.features.visits import valid_visits, validate_visits, visit_features
from visitseg.ingest import format_of
from visitseg.ingest.files import input_errors, read_stream
from visitseg.model.assign import score_visits
from visitseg.model.saved_model import SavedModel, load_model, scoring_config
from visitseg.monitor.drift import Monitoring, Reference, reference_run
from visitseg.pipelines.score import check_score_tables, model_output, model_path, score_and_monitor
from visitseg.storage import delta
from visitseg.storage.catalog import check_catalog, register_tables
from visitseg.storage.runlock import run_lock
from visitseg.storage.tables import SESSION_SCORES

log = logging.getLogger(__name__)

STREAM_FILE = "visitseg_stream.json"  # the checkpoint's identity: its app id, model, input and output
PENDING = "pending"  # CHECKPOINT/pending: hits of visits that may go on, partitioned by the stream's app id
STREAM_COLUMN = "stream"


@dataclass(frozen=True)
class BatchResult:
    batch_id: int
    files_rows: int  # raw rows the batch read (hits; sessions for GA360)
    scored: int  # visits appended to session_scores (0 when the batch had been committed already)
    waiting_hits: int  # hits held back for the next batch
    skipped_visits: int  # visits this model had scored already
    replayed: bool  # its scores had been committed before a crash: only the pending hits were written
    monitoring: Monitoring | None  # the profiles and drift of its complete visits (None: it had none)


@dataclass(frozen=True)
class IncrementalSummary:
    model_run_id: str
    score_run_id: str
    checkpoint: str
    batches: list[BatchResult]
    scores_path: str


def incremental_score_job(spark: SparkSession, cfg: Config, model: str, checkpoint: str) -> IncrementalSummary:
    """Score the complete visits of the input files new to `checkpoint` with a saved model (`score --model`)."""
    path_of_model = model_path(spark, cfg.output.path, model)
    saved = load_model(path_of_model)
    reference = reference_run(spark, model_output(path_of_model), cfg.monitor.baseline_run_id, saved.run_id)
    check_score_tables(cfg.output.path)
    check_catalog(spark, cfg.output.catalog_database)
    log.info("score --incremental: model of run %s (%d segments), new files of %s, checkpoint %s", saved.run_id, len(saved.segments), cfg.input.path, checkpoint)
    summary = score_incrementally(spark, scoring_config(cfg, saved.config), saved, checkpoint, StageLog(spark), reference)
    register_tables(spark, cfg.output.path, cfg.output.catalog_database)
    return summary


def score_incrementally(
    spark: SparkSession, cfg: Config, saved: SavedModel, checkpoint: str, stages: StageLog, reference: Reference
) -> IncrementalSummary:
    """Score the visits of the input files new to `checkpoint` with `saved` into `session_scores`.
    `cfg` is the scoring configuration (the training run's feature settings, `saved_model.scoring_config`);
    `reference` the run the batches are compared with (the model's, unless monitor.baseline_run_id)."""
    scores_path = f"{cfg.output.path}/{SESSION_SCORES}"
    writer = delta.choose_writer(spark, cfg.output.delta_writer)
    checkpoint = f"{checkpoint.rstrip('/')}/{saved.run_id}"  # each model its own stream: a retrain's reads every file once
    batches: list[BatchResult] = []
    failures: list[BaseException] = []
    stream = read_stream(spark, cfg.input, format_of(cfg.input.format).json_schema)  # checks the input first
    with run_lock(checkpoint, "incremental"):
        app_id = stream_app_id(checkpoint, cfg, saved)
        batch = _Batch(spark, cfg, saved, writer, app_id, scores_path, f"{checkpoint}/{PENDING}", stages, reference)

        def on_batch(raw: DataFrame, batch_id: int) -> None:
            try:
                batches.append(batch(raw, batch_id))
            except BaseException as exc:  # Spark wraps it in a StreamingQueryException; keep ours to raise
                failures.append(exc)
                raise

        query = (
            stream.writeStream.foreachBatch(on_batch)
            .trigger(availableNow=True)
            .option("checkpointLocation", f"{checkpoint}/stream")
            .queryName(f"visitseg-score-{saved.run_id}")
            .start()
        )
        try:
            query.awaitTermination()
        except Exception:
            if failures:
                raise failures[0] from None
            raise
    if not batches:
        log.info("score --incremental: no new files in %s since the last run; nothing committed", cfg.input.path)
    return IncrementalSummary(saved.run_id, cfg.run.run_id, checkpoint, batches, scores_path)


def stream_app_id(checkpoint: str, cfg: Config, saved: SavedModel) -> str:
    """The stream's app id, made at its first run. A stream belongs to one input and output: reusing its
    checkpoint for another would skip files the other never scored, so that is refused."""
    identity = {"model_run_id": saved.run_id, "input": cfg.input.path, "input_format": cfg.input.format, "output": cfg.output.path}
    fs, root = pafs.FileSystem.from_uri(delta.table_uri(checkpoint))
    path = f"{root}/{STREAM_FILE}"
    if fs.get_file_info(path).type == pafs.FileType.File:
        with fs.open_input_stream(path) as f:
            kept = json.loads(f.read())
        differs = {k: (kept.get(k), v) for k, v in identity.items() if kept.get(k) != v}
        if differs:
            detail = "; ".join(f"{k}: {old!r} there, {new!r} now" for k, (old, new) in differs.items())
            raise ConfigError(f"--checkpoint {checkpoint}: belongs to another stream ({detail}). Give each input and output its own checkpoint")
        return kept["app_id"]
    app_id = f"visitseg-{uuid.uuid4().hex}"
    fs.create_dir(root)
    with fs.open_output_stream(f"{path}.tmp") as f:
        f.write(json.dumps({"app_id": app_id, **identity}, indent=2).encode())
    fs.move(f"{path}.tmp", path)  # whole or absent, even if killed while writing
    return app_id


def complete_visits(hits: DataFrame, gap_seconds: float) -> DataFrame:
    """The visit keys of `hits` whose visits are complete (the rule in this module's docstring)."""
    newest = hits.agg(F.max("hit_ts").alias("_newest_ts"), F.max("visit_date").alias("_newest_day"))
    last = hits.groupBy("visit_key").agg(F.max("hit_ts").alias("_last_ts"), F.max("visit_date").alias("_last_day"))
    gap_micros = int(round(gap_seconds * 1_000_000))
    done = (F.unix_micros("_last_ts") + F.lit(gap_micros) <= F.unix_micros("_newest_ts")) & (F.col("_last_day") < F.col("_newest_day"))
    return last.crossJoin(newest).filter(done).select("visit_key")


class _Batch:
    """One micro-batch: raw rows → (pending + new hits →) visits → scores → the two commits."""

    def __init__(
        self, spark: SparkSession, cfg: Config, saved: SavedModel, writer: str, app_id: str, scores_path: str, pending_path: str,
        stages: StageLog, reference: Reference,
    ):
        self.spark, self.cfg, self.saved, self.writer = spark, cfg, saved, writer
        self.app_id, self.scores_path, self.pending_path, self.stages, self.reference = app_id, scores_path, pending_path, stages, reference
        self.format = format_of(cfg.input.format)

    def __call__(self, raw: DataFrame, batch_id: int) -> BatchResult:
        txn = delta.Txn(self.app_id, batch_id)
        scores_done = _holds(self.scores_path, txn)
        pending_done = not self.format.by_hits or _holds(self.pending_path, txn)
        if scores_done and pending_done:
            log.info("score --incremental: batch %d was committed before a crash; not written again", batch_id)
            return BatchResult(batch_id, 0, 0, 0, 0, True, None)
        with self.stages(f"incremental batch {batch_id}") as facts, persisted(raw, StorageLevel.DISK_ONLY) as raw:
            with input_errors(self.cfg.input.path):
                facts["rows_in"] = raw.count()
            if self.format.by_hits:
                with persisted(self._hits(raw, facts), StorageLevel.DISK_ONLY) as hits:
                    done = complete_visits(hits, self.cfg.events.session_gap_minutes * 60)
                    # Hits of no visit (a null key: no user or session id, a malformed date) are never held
                    # back: they go with the batch's visits, where validate_visits counts and excludes them.
                    in_no_visit = hits.filter(F.col("visit_key").isNull())
                    visits = visit_features(hits.join(done, "visit_key", "left_semi").unionByName(in_no_visit), self.cfg.run.run_id)
                    scored, skipped, monitoring = self._score(visits, txn, scores_done)
                    waiting = hits.join(done, "visit_key", "left_anti").filter(F.col("visit_key").isNotNull()).withColumn(STREAM_COLUMN, F.lit(self.app_id))
                    held = delta.replace_partition(self.spark, waiting, self.pending_path, {STREAM_COLUMN: self.app_id}, self.writer, txn).rows
            else:
                scored, skipped, monitoring = self._score(self.format.visits_from_raw(raw, self.cfg), txn, scores_done)
                held = 0
            facts.update(rows_out=scored, waiting_hits=held, skipped_visits=skipped)
        return BatchResult(batch_id, facts["rows_in"], scored, held, skipped, scores_done, monitoring)

    def _hits(self, raw: DataFrame, facts: dict) -> DataFrame:
        """The batch's hits joined by the hits held back from earlier batches, visits made whole again."""
        new = self.format.hits_from_raw(raw, self.cfg, facts)
        if delta.is_table(self.pending_path):
            held = delta.read_table(self.spark, self.pending_path).filter(F.col(STREAM_COLUMN) == self.app_id).select(*HIT_SCHEMA.names)
            new = held.unionByName(new)
        return self.format.cut_visits_again(new, self.cfg)

    def _score(self, visits: DataFrame, txn: delta.Txn, scores_done: bool) -> tuple[int, int, Monitoring | None]:
        """Append the scores of `visits` not scored by this model before (unless the batch's scores were
        committed before a crash), and monitor the visits as run `<score run id>-batch<N>` (a replayed
        batch rewrites the same partitions), as a batch score does; (visits scored, visits skipped, the monitoring)."""
        with persisted(visits, StorageLevel.DISK_ONLY) as visits:
            if visits.isEmpty():  # every visit still waiting (one day has arrived so far): nothing to commit
                return 0, 0, None
            rows = validate_visits(visits, self.cfg.input.max_invalid_fraction)["rows"]

            def append_fresh(assigned: DataFrame, days: list[str]) -> delta.WriteResult | None:
                if scores_done:
                    return None
                if delta.is_table(self.scores_path):
                    scored_before = (
                        delta.read_table(self.spark, self.scores_path)
                        .filter((F.col("model_run_id") == self.saved.run_id) & F.col("visit_date").isin(days))
                        .select("visit_key")
                    )
                    assigned = assigned.join(scored_before, "visit_key", "left_anti")
                scores = score_visits(assigned, self.saved, self.cfg.run.run_id)
                return delta.append(self.spark, scores, self.scores_path, {"model_run_id": self.saved.run_id, "visit_date": days}, self.writer, txn)

            table = FeatureTable("visit_features", valid_visits(visits), rows)
            monitor_run_id = f"{self.cfg.run.run_id}-batch{txn.version}"
            done = score_and_monitor(self.spark, self.cfg, self.stages, self.writer, table, self.saved, self.reference, append_fresh, monitor_run_id)
        scored = done.result.rows if done.result is not None else 0
        skipped = 0 if scores_done else rows - scored
        if skipped:
            log.warning("score --incremental: %d visits of batch %d were scored by model %s before (a file delivered again, or late "
                        "hits of a finished visit); not scored twice", skipped, txn.version, self.saved.run_id)
        return scored, skipped, done.monitoring


def _holds(path: str, txn: delta.Txn) -> bool:
    done = delta.committed_version(path, txn.app_id)
    return done is not None and done >= txn.version
