"""Command line: `visitseg features | run | score | report | vacuum | demo | generate` (entry point of the console script and of jobs/*.py).

`main` parses arguments, loads the configuration, builds the session and calls one command function;
the command functions take `(spark, cfg, args)` so tests can inject both. Errors a user can cause
(`VisitsegError`) print one paragraph and exit with status 2; anything else is a bug and shows its traceback.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import sys
from typing import Callable, Sequence

from pyspark.sql import SparkSession

from visitseg import __version__
from visitseg.storage import delta
from visitseg.ingest import sample_data
from visitseg.core.config import Config, load_config, with_values
from visitseg.core.config_rules import INPUT_FORMATS
from visitseg.core.errors import ConfigError, DriftDetected, VisitsegError
from visitseg.core.redact import mask_logs
from visitseg.pipelines.features import built_features
from visitseg.monitor.drift import Monitoring
from visitseg.pipelines.incremental import IncrementalSummary, incremental_score_job
from visitseg.pipelines.run import RunSummary, run_job
from visitseg.pipelines.score import ScoreSummary, score_job
from visitseg.report.page import write_report
from visitseg.storage.retention import drop_runs
from visitseg.storage.runlock import run_lock
from visitseg.core.spark import StageLog, command_session
from visitseg.storage.tables import write_run_table

log = logging.getLogger("visitseg")

DEMO_VISITS = 3000
DEMO_DAYS = 14


def _fail_on_drift(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fail-on-drift", action="store_true", help="exit with status 3, after writing everything, when a drift metric is above its threshold")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", required=True, metavar="DIR", help="folder (or URI) the Delta tables go under")
    parser.add_argument("--config", action="append", default=[], metavar="FILE", help="TOML config file; repeatable, later files win")
    parser.add_argument("--set", action="append", default=[], dest="overrides", metavar="SECTION.KEY=VALUE", help="override one config key; repeatable")


def _input(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input-format", required=True, choices=INPUT_FORMATS, help="export format of the hits")
    parser.add_argument("--input", required=True, metavar="PATH", help="file, folder or glob of the hits (bigquery: project.dataset.table)")


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="visitseg", description="Behavioural segments of e-commerce visits, as Delta tables.")
    parser.add_argument("--version", action="version", version=f"visitseg {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    features = commands.add_parser("features", help="hits → the visit (or user) feature table DIR/visit_features")
    _input(features)
    _common(features)
    run = commands.add_parser("run", help="the whole job: features, K sweep, final model and every output table")
    _input(run)
    _common(run)
    _fail_on_drift(run)
    score = commands.add_parser("score", help="score visits with a saved model into DIR/session_scores (no refit)")
    score.add_argument("--model", required=True, metavar="DIR|latest", help="DIR/models/<run_id> of a training run, or `latest`: the newest run's model in --output")
    score.add_argument("--incremental", action="store_true", help="score only the input files no earlier run of --checkpoint has read, complete visits only")
    score.add_argument("--checkpoint", metavar="PATH", help="with --incremental: the folder that remembers the files read and the hits held back")
    _fail_on_drift(score)
    _input(score)
    _common(score)
    report = commands.add_parser("report", help="draw the report page DIR/reports/<run_id>/report.html of a run from its Delta tables")
    report.add_argument("--run-id", default=None, metavar="ID", help="default: the newest run in DIR/runs")
    _common(report)
    vacuum = commands.add_parser("vacuum", help="delete files no table version in the retention window references, in every table under DIR")
    _common(vacuum)
    vacuum.add_argument("--retain-hours", type=int, default=delta.SAFE_RETENTION_HOURS, metavar="H", help="default: %(default)s (7 days, as Delta's VACUUM)")
    vacuum.add_argument("--force", action="store_true", help="allow --retain-hours below 168: only when no job reads or writes DIR")
    vacuum.add_argument("--dry-run", action="store_true", help="count the files (and runs), delete nothing")
    vacuum.add_argument("--drop-runs-before", type=_moment, metavar="WHEN",
                        help="first drop the runs started before WHEN (ISO date or date-time, UTC unless it says) from every table; "
                             "output.keep_runs = N also drops all but the newest N")
    demo = commands.add_parser("demo", help="generate the bundled sample hits and run the whole job on them")
    _common(demo)
    _fail_on_drift(demo)  # the demo ends as `run` does, drift check included
    generate = commands.add_parser("generate", help="write planted sample hits of any size, in parallel on Spark")
    generate.add_argument("--format", required=True, choices=INPUT_FORMATS, dest="sample_format")
    generate.add_argument("--hits", required=True, type=_positive_int, help="about this many hits (visits = hits / %.1f)" % sample_data.MEAN_HITS_PER_VISIT)
    generate.add_argument("--days", type=_positive_int, default=28)
    generate.add_argument("--seed", type=int, default=None, help="default: run.seed")
    generate.add_argument("--file-format", choices=("parquet", "json", "csv"), default=None, help="default: csv for events, parquet otherwise")
    generate.add_argument("--output", required=True, metavar="PATH")
    generate.add_argument("--config", action="append", default=[], metavar="FILE")
    generate.add_argument("--set", action="append", default=[], dest="overrides", metavar="SECTION.KEY=VALUE")
    return parser


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def _moment(text: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date or date-time: {text!r} (e.g. 2026-11-01 or 2026-11-01T06:00:00+00:00)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def resolve_config(args: argparse.Namespace) -> Config:
    cfg = load_config(args.config, args.overrides)
    sections: dict[str, dict] = {"output": {"path": args.output.rstrip("/")}}
    if getattr(args, "input_format", None):
        sections["input"] = {"format": args.input_format, "path": args.input}
    check_output(sections["output"]["path"])
    if not cfg.run.run_id:
        sections["run"] = {"run_id": dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")}
    return with_values(cfg, **sections)


def check_output(path: str) -> None:
    """A local --output must be a folder visitseg can write (remote URIs are checked by their writer)."""
    if "://" in path:
        return
    if os.path.isfile(path):
        raise ConfigError(f"--output {path}: is a file, not a folder; give a folder for the Delta tables")
    existing = path
    while existing and not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.access(existing or ".", os.W_OK | os.X_OK):
        raise ConfigError(f"--output {path}: {existing or '.'} is not writable by this user; choose another folder or fix its permissions")


def command_features(spark: SparkSession, cfg: Config, args: argparse.Namespace) -> None:
    stages = StageLog(spark)
    writer = delta.choose_writer(spark, cfg.output.delta_writer)  # fail before any work if the writer cannot run
    with run_lock(cfg.output.path, cfg.run.run_id), built_features(spark, cfg, stages) as table:
        result = write_run_table(spark, cfg.output.path, cfg.run.run_id, writer, stages, table.name, table.df)
    print(f"{table.name}: {result.rows:,} rows, run_id {cfg.run.run_id}, Delta version {result.version} at {result.path}")


def command_run(spark: SparkSession, cfg: Config, args: argparse.Namespace) -> None:
    summary = run_job(spark, cfg)
    print(describe_run(summary))
    check_drift(summary.monitoring, args, cfg)


def check_drift(monitoring: Monitoring, args: argparse.Namespace, cfg: Config) -> None:
    if args.fail_on_drift and monitoring.drifted:
        raise DriftDetected(
            f"--fail-on-drift: {monitoring.summary}. Every table is written (see {cfg.output.path}/drift); "
            f"thresholds are under [monitor]"
        )


def describe_run(summary: RunSummary) -> str:
    """What a person wants after a run: where the tables are, the chosen K and why, and the segments."""
    record, seg = summary.record, summary.segmentation
    lines = [
        f"run {record.run_id}: {record.n_rows:,} rows, K = {seg.k}",
        f"  why: {seg.reason}",
        *([f"  WARNING: {seg.weak_structure}"] if seg.weak_structure else []),
        f"  drift: {summary.monitoring.summary}",
        "  segments:",
        f"    {'id':>3}  {'segment':<20} {'size':>9} {'share':>7} {'conversion':>11} {'revenue/visit':>14}",
    ]
    for c in seg.centres:
        lines.append(
            f"    {c.cluster_id:>3}  {c.segment:<20} {c.size:>9,} {c.share:>7.1%} "
            f"{c.conversion_rate:>11.1%} {c.revenue_per_visit:>14.2f}"
        )
    lines.append("  tables (Delta):")
    lines += [f"    {name:<18} {path}" for name, path in summary.tables.items()]
    lines.append(f"  model:  {record.model_path}")
    lines.append(f"  report: {summary.page_path}")
    lines.append(f"          {summary.report_path}")
    return "\n".join(lines)


def command_score(spark: SparkSession, cfg: Config, args: argparse.Namespace) -> None:
    if bool(args.incremental) != bool(args.checkpoint):
        raise ConfigError("score: --incremental and --checkpoint PATH go together (the checkpoint remembers which files were scored)")
    if args.incremental:
        summary = incremental_score_job(spark, cfg, args.model, args.checkpoint)
        print(describe_incremental(summary))
        for batch in summary.batches:
            if batch.monitoring is not None:
                check_drift(batch.monitoring, args, cfg)
    else:
        summary = score_job(spark, cfg, args.model)
        print(describe_score(summary))
        check_drift(summary.monitoring, args, cfg)


def describe_incremental(summary: IncrementalSummary) -> str:
    lines = [f"score {summary.score_run_id} --incremental, model of run {summary.model_run_id}, checkpoint {summary.checkpoint}:"]
    if not summary.batches:
        lines.append("  no new input files since the last run: nothing committed")
    for b in summary.batches:
        replayed = " (a replay: its scores were committed before a crash)" if b.replayed else ""
        lines.append(
            f"  batch {b.batch_id}: {b.files_rows:,} new rows, {b.scored:,} visits scored, {b.waiting_hits:,} hits of unfinished visits held back"
            + (f", {b.skipped_visits:,} visits scored before skipped" if b.skipped_visits else "") + replayed
            + (f"\n    drift: {b.monitoring.summary}" if b.monitoring is not None else "")
        )
    lines.append(f"  session_scores: {summary.scores_path}")
    return "\n".join(lines)


def describe_score(summary: ScoreSummary) -> str:
    days = f"{summary.days[0]} to {summary.days[-1]}" if len(summary.days) > 1 else summary.days[0]
    return (
        f"score {summary.score_run_id}: {summary.visits:,} visits of {len(summary.days)} days ({days}) scored with the model of run "
        f"{summary.model_run_id}\n  session_scores: Delta version {summary.result.version}, {summary.result.rows:,} rows at {summary.result.path}"
        f"\n  drift: {summary.monitoring.summary}"
        + (f"\n  {summary.edge_visits:,} visits start or end within the session gap of the input's first or last hit: they may go on in a "
           f"neighbouring day's files (for daily scoring use --incremental; docs/scoring.md)" if summary.edge_visits else "")
    )


def command_report(spark: SparkSession, cfg: Config, args: argparse.Namespace) -> None:
    print(f"report: {write_report(spark, cfg.output.path, args.run_id)}")


def command_vacuum(spark: SparkSession, cfg: Config, args: argparse.Namespace) -> None:
    out = cfg.output.path
    tables = delta.tables_under(out)
    if not tables:
        raise ConfigError(f"vacuum: no Delta table under {out}; give the --output folder of a run")
    if args.drop_runs_before or cfg.output.keep_runs:
        dropped = drop_runs(spark, out, args.drop_runs_before, cfg.output.keep_runs, args.dry_run, cfg.output.delta_writer)
        print(f"runs {'to drop' if args.dry_run else 'dropped'}: {', '.join(dropped) or 'none'}")
    results = [delta.vacuum(spark, f"{out}/{name}", args.retain_hours, args.force, args.dry_run, cfg.output.delta_writer) for name in tables]
    verb = "would remove" if args.dry_run else "removed"
    for r in results:
        print(f"{r.path}: {verb} {r.removed:,} files")
    print(f"vacuum: {verb} {sum(r.removed for r in results):,} files in {len(results)} tables (retention {args.retain_hours} h)")


def command_demo(spark: SparkSession, cfg: Config, args: argparse.Namespace) -> None:
    sample = f"{cfg.output.path}/sample/ga360"
    log.info("demo: writing %d sample GA360 sessions over %d days to %s", DEMO_VISITS, DEMO_DAYS, sample)
    sample_data.write_sample(spark, "ga360", sample, DEMO_VISITS, DEMO_DAYS, cfg.run.seed, file_format="json")
    demo_cfg = with_values(cfg, input={"format": "ga360", "path": sample, "file_format": "json"})
    command_run(spark, demo_cfg, args)


def command_generate(spark: SparkSession, cfg: Config, args: argparse.Namespace) -> None:
    n_visits = sample_data.visits_for_hits(args.hits)
    file_format = args.file_format or ("csv" if args.sample_format == "events" else "parquet")
    seed = cfg.run.seed if args.seed is None else args.seed
    log.info("generate: %s, about %d hits = %d visits over %d days, seed %d → %s", args.sample_format, args.hits, n_visits, args.days, seed, args.output)
    sample_data.write_sample(spark, args.sample_format, args.output, n_visits, args.days, seed, file_format)
    print(f"wrote {n_visits:,} planted visits (about {args.hits:,} hits) as {args.sample_format} {file_format} to {args.output}; planted labels in {args.output}/_planted")


COMMANDS: dict[str, Callable[[SparkSession, Config, argparse.Namespace], None]] = {
    "features": command_features,
    "run": command_run,
    "score": command_score,
    "report": command_report,
    "vacuum": command_vacuum,
    "demo": command_demo,
    "generate": command_generate,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("VISITSEG_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        cfg = resolve_config(args)
        mask_logs(cfg.secrets())  # before the first line that could carry one
        log.info("visitseg %s (from %s) %s, config: %s", __version__, os.path.dirname(__file__), args.command, cfg.to_json())
        with command_session(cfg.spark) as spark:
            COMMANDS[args.command](spark, cfg, args)
    except VisitsegError as exc:
        print(f"visitseg: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0
