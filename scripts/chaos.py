"""Crash and concurrency proof of `visitseg run`, as figures.

    python scripts/chaos.py --trials 20 --concurrent 2 4 --json chaos.json
    python scripts/chaos.py --writer native --trials 20 --json chaos-native.json

Every process writes through the chosen Delta writer (`output.delta_writer`): `deltalake` (the jar-free
writer of a laptop), or `native`, Spark's own Delta source as clusters run it, its session started with the
Delta jars of --delta-jars (by default the folder `scripts/fetch_delta_jars.sh` fills for this Spark line).

On one planted GA360 sample (generated once), into one output folder:

1. A complete run `chaos` (its wall time bounds the kill moments, its row counts are the truth).
2. --trials kill -9 trials: a run started and its whole process group (Python driver and JVM) killed with
   SIGKILL at a uniform random moment of a full run's wall time. Odd trials rerun `chaos`; even trials
   start a new run id, which never finishes. After each kill:
   - every Delta table under the output reads back completely (every file its log lists is read);
   - no run is half-visible: each run listed in `runs` has its partition in every table, its model and its
     JSON report;
   - no duplicate: in every run's feature and label partitions, one row per key.
3. A final rerun of `chaos`: exactly one copy (its rows equal the first run's, key for key).
4. --score-trials kill -9 trials of `visitseg score --model` (the final run's model), checked the same
   way (and no visit scored twice by one model), then a score to the end: every visit once, by it.
5. `visitseg vacuum --retain-hours 0 --force`, then orphans: files in a table folder that the table's
   current version does not list, plus leftover staging folders. Must be 0.
6. For each --concurrent N: N runs with different run ids started at once into the output. All must land
   (exit 0, listed in `runs`, every table holding their partition); the commit retries they logged are counted.
7. Two runs with the same run id started at once: one lands, the other exits 2 with RunInProgressError
   before writing anything, and the run's tables hold one copy.

Prints the figures and exits 1 if any check failed. `make test` kills a run and an incremental score
between two commits (tests/test_run_kill.py, tests/test_incremental.py); this script is the fuller trial, by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import unquote

import pyarrow.compute as pc
import pyspark
from deltalake import DeltaTable

from visitseg.ingest import sample_data

RUN_TABLES = ("visit_features", "session_clusters", "cluster_centers", "k_diagnostics", "cluster_mix_daily", "segment_kpis_daily")
KEYED = {"visit_features": "visit_key", "session_clusters": "visit_key"}
SCORES = "session_scores"  # partitioned by model_run_id: one row per visit and model
FAST = ("model.k_min=3", "model.k_max=3", "model.n_init=1", "model.refit_seeds=0")  # the writes are under test, not the K rule
ROOT = Path(__file__).resolve().parents[1]
SPARK_LINE = "4" if pyspark.__version__.startswith("4.") else "3.5"


@dataclass
class Figures:
    visits: int = 0
    full_run_seconds: float = 0.0
    kill_trials: int = 0
    killed_after_seconds: list[float] = field(default_factory=list)
    killed_runs_listed: int = 0  # killed new run ids that had got as far as their `runs` row
    unreadable_tables: int = 0
    half_visible_runs: int = 0
    duplicate_keys: int = 0
    final_copy_exact: bool = False
    score_kill_trials: int = 0
    score_final_exact: bool = False  # after the kills, a last score: every visit scored once, by it
    files_removed_by_vacuum: int = 0
    orphans_after_vacuum: int = 0
    concurrent: dict[str, dict] = field(default_factory=dict)
    same_run_id: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def visitseg(*args: str) -> list[str]:
    return [str(Path(sys.executable).parent / "visitseg"), *args]


def writer_settings(writer: str, jars_dir: Path) -> tuple[str, ...]:
    """The config overrides that make every process write through `writer`: the native one needs the
    session to start with the Delta jars (`spark.jars`, which also switches on Delta's extension)."""
    if writer == "deltalake":
        return ("output.delta_writer=deltalake",)
    jars = sorted(str(j) for j in jars_dir.glob("*.jar"))
    if not any(Path(j).name.startswith("delta-spark_") for j in jars):
        raise SystemExit(f"--writer native needs the Delta jars of Spark {SPARK_LINE}: none in {jars_dir} (run scripts/fetch_delta_jars.sh)")
    return ("output.delta_writer=native", f"spark.conf.spark.jars={json.dumps(','.join(jars))}")


WRITER: tuple[str, ...] = ()  # set once by main() from --writer


def set_args(*settings: str) -> list[str]:
    return [a for s in settings for a in ("--set", s)]


def start_run(sample: Path, out: Path, run_id: str, log: Path, *score_model: str) -> subprocess.Popen:
    """`visitseg run`, or with a model path `visitseg score --model` it, in a process group of its own."""
    sets = set_args(f"run.run_id={run_id}", *FAST, *WRITER)
    verb = ["score", "--model", *score_model] if score_model else ["run"]
    command = visitseg(*verb, "--input-format", "ga360", "--input", str(sample), "--output", str(out), *sets)
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"}
    # A session of its own, so that SIGKILL to the group takes the JVM child with the Python driver.
    return subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env, start_new_session=True)


def finish(process: subprocess.Popen) -> int:
    return process.wait()


def kill(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def check_output(out: Path, figures: Figures, when: str) -> dict[str, dict[str, int]]:
    """Read every table back; check runs' completeness and key uniqueness. Returns {table: {run_id: rows}}."""
    rows: dict[str, dict[str, int]] = {}
    tables = sorted(p.name for p in out.iterdir() if (p / "_delta_log").is_dir())
    for name in tables:
        try:
            table = DeltaTable(str(out / name)).to_pyarrow_table()
        except Exception as exc:  # the figure this script exists to measure
            figures.unreadable_tables += 1
            figures.problems.append(f"{when}: {name} unreadable: {str(exc).splitlines()[0]}")
            continue
        if name == SCORES:
            extra = table.num_rows - len(set(zip(table.column("model_run_id").to_pylist(), table.column("visit_key").to_pylist())))
            rows[name] = {"rows": table.num_rows}
            if extra:
                figures.duplicate_keys += extra
                figures.problems.append(f"{when}: {name}: {extra} visits scored twice by one model")
            continue
        counts = table.group_by("run_id").aggregate([("run_id", "count")]).to_pylist()
        rows[name] = {r["run_id"]: r["run_id_count"] for r in counts}
        if name in KEYED:
            distinct = table.group_by("run_id").aggregate([(KEYED[name], "count_distinct")]).to_pylist()
            for r in distinct:
                extra = rows[name][r["run_id"]] - r[f"{KEYED[name]}_count_distinct"]
                if extra:
                    figures.duplicate_keys += extra
                    figures.problems.append(f"{when}: {name} run {r['run_id']}: {extra} duplicate keys")
    listed = DeltaTable(str(out / "runs")).to_pyarrow_table().column("run_id").to_pylist() if "runs" in rows else []
    for run_id in listed:
        missing = [t for t in RUN_TABLES if not rows.get(t, {}).get(run_id)]
        missing += [p for p in (f"models/{run_id}", f"reports/{run_id}/model_report.json") if not (out / p).exists()]
        if missing:
            figures.half_visible_runs += 1
            figures.problems.append(f"{when}: run {run_id} is listed in runs but lacks {missing}")
    if len(listed) != len(set(listed)):
        figures.problems.append(f"{when}: runs lists a run id twice: {sorted(listed)}")
    return rows


def orphans(out: Path) -> list[str]:
    """Data files no current table version lists, and staging leftovers. A Hadoop checksum sidecar
    (`.NAME.crc`, written beside each file by Spark on a local disk) belongs to its file: an orphan only
    when that file is not listed."""
    found = []
    for table_dir in (p for p in out.iterdir() if (p / "_delta_log").is_dir()):
        listed = {os.path.normpath(unquote(f.removeprefix("file://"))) for f in DeltaTable(str(table_dir)).file_uris()}
        for path in table_dir.rglob("*"):
            if not path.is_file() or "_delta_log" in path.parts:
                continue
            owner = path.with_name(path.name[1:-len(".crc")]) if path.name.startswith(".") and path.name.endswith(".crc") else path
            if os.path.normpath(owner) not in listed:
                found.append(str(path.relative_to(out)))
    return found


def key_set(out: Path, table: str, run_id: str) -> list[str]:
    data = DeltaTable(str(out / table)).to_pyarrow_table(filters=[("run_id", "=", run_id)])
    return sorted(pc.cast(data.column(KEYED[table]), "string").to_pylist())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=20, help="kill -9 trials (default %(default)s)")
    parser.add_argument("--score-trials", type=int, default=10, help="kill -9 trials of visitseg score (default %(default)s)")
    parser.add_argument("--concurrent", type=int, nargs="*", default=[2, 4], help="sizes of the concurrent batches (default 2 4)")
    parser.add_argument("--no-same-run-id", dest="same_run_id", action="store_false",
                        help="skip step 7 (the run lock refuses the second run before it writes anything, whatever the writer)")
    parser.add_argument("--visits", type=int, default=2000, help="planted visits in the sample (default %(default)s)")
    parser.add_argument("--seed", type=int, default=1, help="of the kill moments (default %(default)s)")
    parser.add_argument("--workdir", help="keep the sample, output and logs here (default: a temporary folder)")
    parser.add_argument("--json", help="also write the figures here")
    parser.add_argument("--writer", choices=("deltalake", "native"), default="deltalake", help="the Delta writer of every process (default %(default)s)")
    parser.add_argument("--delta-jars", type=Path, default=ROOT / ".cache" / "delta-jars" / f"spark-{SPARK_LINE}",
                        help="the Delta jars of --writer native (default: %(default)s)")
    args = parser.parse_args()
    global WRITER
    WRITER = writer_settings(args.writer, args.delta_jars)
    rng = random.Random(args.seed)
    figures = Figures()
    with tempfile.TemporaryDirectory(prefix="visitseg-chaos-") as tmp:
        work = Path(args.workdir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        sample, out, logs = work / "sample", work / "out", work / "logs"
        logs.mkdir(exist_ok=True)
        hits = int(args.visits * sample_data.MEAN_HITS_PER_VISIT)
        subprocess.run(visitseg("generate", "--format", "ga360", "--hits", str(hits), "--days", "7",
                                "--file-format", "json", "--output", str(sample)), check=True, capture_output=True)

        started = time.perf_counter()
        if finish(start_run(sample, out, "chaos", logs / "first.log")) != 0:
            print(f"the first run failed: see {logs / 'first.log'}", file=sys.stderr)
            return 1
        figures.full_run_seconds = round(time.perf_counter() - started, 1)
        first = check_output(out, figures, "first run")
        figures.visits = first["visit_features"]["chaos"]
        truth = {t: key_set(out, t, "chaos") for t in KEYED}
        print(f"first run: {figures.visits:,} visits in {figures.full_run_seconds} s", file=sys.stderr)

        for trial in range(1, args.trials + 1):
            run_id = "chaos" if trial % 2 else f"killed{trial}"
            moment = rng.uniform(0.5, figures.full_run_seconds)
            process = start_run(sample, out, run_id, logs / f"trial{trial}.log")
            time.sleep(moment)
            finished = process.poll() is not None
            kill(process)
            figures.kill_trials += 1
            figures.killed_after_seconds.append(round(moment, 1))
            rows = check_output(out, figures, f"trial {trial} ({run_id}, killed after {moment:.1f} s)")
            if run_id != "chaos" and run_id in rows.get("runs", {}):
                figures.killed_runs_listed += 1
            print(f"trial {trial:>2}: {run_id:<9} killed after {moment:5.1f} s{' (had finished)' if finished else ''}; "
                  f"{len(rows)} tables read back, problems so far {len(figures.problems)}", file=sys.stderr)

        if finish(start_run(sample, out, "chaos", logs / "final.log")) != 0:
            figures.problems.append(f"the final rerun failed: see {logs / 'final.log'}")
        else:
            check_output(out, figures, "final rerun")
            figures.final_copy_exact = all(key_set(out, t, "chaos") == keys for t, keys in truth.items())
            if not figures.final_copy_exact:
                figures.problems.append("the final rerun's keys differ from the first run's")

        # kill -9 trials of `visitseg score` with the final model, then one score to the end.
        model = str(out / "models" / "chaos")
        started = time.perf_counter()
        if finish(start_run(sample, out, "score0", logs / "score0.log", model)) != 0:
            figures.problems.append(f"the first score failed: see {logs / 'score0.log'}")
        score_seconds = time.perf_counter() - started
        for trial in range(1, args.score_trials + 1):
            moment = rng.uniform(0.5, score_seconds)
            process = start_run(sample, out, f"score{trial}", logs / f"score{trial}.log", model)
            time.sleep(moment)
            kill(process)
            figures.score_kill_trials += 1
            check_output(out, figures, f"score trial {trial} (killed after {moment:.1f} s)")
            print(f"score trial {trial:>2}: killed after {moment:5.1f} s; problems so far {len(figures.problems)}", file=sys.stderr)
        if finish(start_run(sample, out, "scorefinal", logs / "scorefinal.log", model)) != 0:
            figures.problems.append(f"the final score failed: see {logs / 'scorefinal.log'}")
        else:
            check_output(out, figures, "final score")
            scores = DeltaTable(str(out / SCORES)).to_pyarrow_table()
            figures.score_final_exact = (
                sorted(pc.cast(scores.column("visit_key"), "string").to_pylist()) == truth["session_clusters"]
                and set(scores.column("score_run_id").to_pylist()) == {"scorefinal"}
            )
            if not figures.score_final_exact:
                figures.problems.append("after the final score, session_scores does not hold each visit once, scored by it")

        vacuum = subprocess.run(visitseg("vacuum", "--output", str(out), "--retain-hours", "0", "--force", *set_args(*WRITER)), capture_output=True, text=True)
        if vacuum.returncode != 0:
            figures.problems.append(f"vacuum failed: {vacuum.stderr.strip().splitlines()[-1:]}")
        figures.files_removed_by_vacuum = sum(int(line.split("removed ")[1].split()[0].replace(",", "")) for line in vacuum.stdout.splitlines() if line.startswith("vacuum:"))
        left = orphans(out)
        figures.orphans_after_vacuum = len(left)
        if left:
            figures.problems.append(f"orphans after vacuum: {left[:5]}")

        for n in args.concurrent:
            run_ids = [f"c{n}x{j}" for j in range(n)]
            started = time.perf_counter()
            processes = [start_run(sample, out, r, logs / f"{r}.log") for r in run_ids]
            codes = [finish(p) for p in processes]
            rows = check_output(out, figures, f"{n} concurrent runs")
            landed = [r for r in run_ids if r in rows.get("runs", {}) and all(rows.get(t, {}).get(r) for t in RUN_TABLES)]
            retries = sum((logs / f"{r}.log").read_text().count("met a concurrent writer") for r in run_ids)
            figures.concurrent[str(n)] = {"exit_codes": codes, "landed": len(landed), "commit_retries": retries,
                                          "seconds": round(time.perf_counter() - started, 1)}
            if len(landed) != n or any(codes):
                figures.problems.append(f"{n} concurrent runs: {len(landed)} landed, exit codes {codes}")

        if args.same_run_id:
            processes = [start_run(sample, out, "same", logs / f"same{j}.log") for j in range(2)]
            codes = [finish(p) for p in processes]
            refused = [j for j in range(2) if "RunInProgressError" in (logs / f"same{j}.log").read_text()]
            rows = check_output(out, figures, "same run id")
            one_copy = rows.get("visit_features", {}).get("same") == figures.visits and key_set(out, "session_clusters", "same") == truth["session_clusters"]
            figures.same_run_id = {"exit_codes": sorted(codes), "refused_with_RunInProgressError": len(refused), "one_copy": one_copy}
            if sorted(codes) != [0, 2] or len(refused) != 1 or not one_copy:
                figures.problems.append(f"same run id: exit codes {codes}, refused {refused}, one copy {one_copy}")

    report = asdict(figures)
    print(f"writer {args.writer}, Spark {pyspark.__version__}; visits {figures.visits:,}; full run {figures.full_run_seconds} s")
    print(f"kill -9 trials {figures.kill_trials} (at {min(figures.killed_after_seconds, default=0)}–{max(figures.killed_after_seconds, default=0)} s): "
          f"unreadable tables {figures.unreadable_tables}, half-visible runs {figures.half_visible_runs}, duplicate keys {figures.duplicate_keys}, "
          f"killed new runs that had landed {figures.killed_runs_listed}")
    print(f"score: kill -9 trials {figures.score_kill_trials}; final score holds each visit once {figures.score_final_exact}")
    print(f"final rerun: one exact copy {figures.final_copy_exact}; vacuum removed {figures.files_removed_by_vacuum} files; orphans after vacuum {figures.orphans_after_vacuum}")
    for n, c in figures.concurrent.items():
        print(f"{n} concurrent runs: {c['landed']} of {n} landed, exit codes {c['exit_codes']}, commit retries {c['commit_retries']}, {c['seconds']} s")
    if args.same_run_id:
        print(f"same run id twice at once: exit codes {figures.same_run_id.get('exit_codes')}, refused {figures.same_run_id.get('refused_with_RunInProgressError')}, one copy {figures.same_run_id.get('one_copy')}")
    print(f"problems: {len(figures.problems)}")
    for problem in figures.problems:
        print(f"  {problem}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 1 if figures.problems else 0


if __name__ == "__main__":
    sys.exit(main())
