"""End-to-end benchmark of `visitseg run`, side by side with the two baselines, in one run.

Each repetition starts a fresh `visitseg run` process (new JVM, default configuration, `local[2]`
unless --master says otherwise), samples the RSS of the driver's Python process and of its JVM (in local
mode the JVM is both driver and executor) every 0.2 s from /proc, and reads the per-stage seconds from
the run's model_report.json. Medians over --runs repetitions are printed as a table and saved as JSON.

    python scripts/benchmark.py --input data/ga360_10m --runs 3 --baseline --json bench/10m.json

`--vs journeys.enabled=false` runs visitseg a second time in every round with those overrides and prints
what the difference costs (the journey tables, here).

`--baseline` runs, in turn with each visitseg run, the seed notebook's pipeline in pandas + scikit-learn
(`baseline_pandas_sklearn.py`) and the same job hand-written in Spark ML (`baseline_spark_ml.py`).

`--mode score` measures scoring instead: it trains once, then alternates `visitseg features` and
`visitseg score --model` on the same input (each a fresh process) and prints the medians, their ratio and
the median seconds of each logged stage of both.

    python scripts/benchmark.py --input data/ga360_10000000 --mode score --runs 3

Stage groups: read (planning the read, the adapter's eager checks), aggregate (hits → visits,
validation; includes the scan of the input), preprocess, sweep, final fit (final model, assignment,
profiles), monitoring (feature profiles, drift against the previous repetition, their two tables),
write (every other Delta table, the model and the report).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from visitseg.ingest import sample_data

ROOT = Path(__file__).resolve().parents[1]
GROUPS = {
    "read": ("read hits",),
    "aggregate": ("aggregate visits", "aggregate users"),
    "preprocess": ("preprocess",),
    "sweep": ("sweep",),
    "final fit": ("final model", "compare methods", "assign and profile"),
    "monitoring": ("drift", "write feature_profiles", "write drift"),
    "journeys": ("journeys", "write segment_transitions", "write paths_to_purchase", "write segment_attributes"),
    "write": ("write", "save model"),
}
# Tables a run's drift reads of its reference: each run after the first gets its predecessor's, so it
# profiles AND compares, as a scheduled run does (the model is not carried over, so lineage stays off).
REFERENCE_TABLES = ("feature_profiles", "cluster_centers", "runs")


def rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            direct = [int(p) for p in f.read().split()]
    except OSError:
        return []
    return direct + [c for d in direct for c in children(d)]


def is_jvm(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"java" in f.read().split(b"\0")[0]
    except OSError:
        return False


class PeakRss:
    """Samples the peak RSS of a process (the Python driver) and of its JVM descendants."""

    def __init__(self, pid: int) -> None:
        self.pid, self.python, self.jvm = pid, 0.0, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.python = max(self.python, rss_mb(self.pid))
            self.jvm = max(self.jvm, sum(rss_mb(c) for c in children(self.pid) if is_jvm(c)))
            time.sleep(0.2)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def visitseg_command(args: argparse.Namespace, verb: str, out: Path, run_id: str, *extra: str) -> list[str]:
    command = [
        str(Path(sys.executable).parent / "visitseg"), verb, *extra, "--input-format", args.format, "--input", args.input,
        "--output", str(out), "--set", f"run.run_id={run_id}", *[a for s in args.set for a in ("--set", s)],
    ]
    return command + (["--set", f"spark.master={args.master}"] if args.master else [])


def timed(args: argparse.Namespace, command: list[str], run_id: str) -> dict:
    """Run one visitseg process; its wall seconds and peak RSS (driver Python, JVM)."""
    started = time.perf_counter()
    log = open(Path(args.log_dir) / f"{run_id}.log", "w")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"})
    peak = PeakRss(process.pid)
    code = process.wait()
    peak.stop()
    if code != 0:
        raise SystemExit(f"visitseg {command[1]} failed (exit {code}); see {log.name}")
    stages = {m.group(1): float(m.group(2)) for m in STAGE_DONE.finditer(Path(log.name).read_text())}
    return {"wall_seconds": time.perf_counter() - started, "driver_python_rss_mb": peak.python, "jvm_rss_mb": peak.jvm, "stages": stages}


STAGE_DONE = re.compile(r"stage (.+?): done, .*?seconds ([0-9.]+)")  # visitseg.spark.StageLog's lines


def run_visitseg(args: argparse.Namespace, out: Path, run_id: str) -> dict:
    process = timed(args, visitseg_command(args, "run", out, run_id), run_id)
    report = json.loads((out / "reports" / run_id / "model_report.json").read_text())
    stages = {group: 0.0 for group in GROUPS}
    for record in report["stages"]:
        for group, prefixes in GROUPS.items():
            if record["stage"].startswith(prefixes):
                stages[group] += record["seconds"]
                break
    return {
        **process,
        "stages": stages,
        "rows": report["n_rows"],
        "hits": next(r.get("rows_in", 0) for r in report["stages"] if r["stage"] == "aggregate visits"),
        "chosen_k": report["chosen_k"],
    }


BASELINES = {"pandas": "baseline_pandas_sklearn.py", "spark_ml": "baseline_spark_ml.py"}


def run_baseline(args: argparse.Namespace, name: str) -> dict:
    started = time.perf_counter()
    master = ["--master", args.master] if name == "spark_ml" else []
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / BASELINES[name]), "--input", args.input, "--format", args.format, *master],
        capture_output=True, text=True, check=True, env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"},
    )
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    figures["wall_seconds"] = time.perf_counter() - started
    return figures


def median(values: list[float]) -> float:
    return statistics.median(values)


def each(runs: list[dict]) -> str:
    return ", ".join(f"{r['wall_seconds']:.1f}" for r in runs)


def score_mode(args: argparse.Namespace, work: Path) -> None:
    """`visitseg score` against `visitseg features` on the same input, alternating: the cost of scoring
    over building the features (issue target: at most +25%). The model is trained once, first."""
    trained = work / "trained"
    run_visitseg(args, trained, "train")
    model = str(trained / "models" / "train")
    features, scores = [], []
    for i in range(args.runs):
        out = work / f"features{i}"
        features.append(timed(args, visitseg_command(args, "features", out, f"features{i}"), f"features{i}"))
        shutil.rmtree(out, ignore_errors=True)
        scores.append(timed(args, visitseg_command(args, "score", trained, f"score{i}", "--model", model), f"score{i}"))
        print(f"round {i + 1}/{args.runs}: features {features[-1]['wall_seconds']:.1f} s, score {scores[-1]['wall_seconds']:.1f} s", file=sys.stderr)
    f, s = median([r["wall_seconds"] for r in features]), median([r["wall_seconds"] for r in scores])
    print(f"\n{args.input}: median of {args.runs} rounds, {args.master}, each a fresh process (JVM start included)")
    print(f"visitseg features  {f:>7.1f} s  ({each(features)})")
    print(f"visitseg score     {s:>7.1f} s  ({each(scores)})")
    print(f"score / features: {s / f:.2f}; peak RSS MB score: driver python {max(r['driver_python_rss_mb'] for r in scores):.0f}, "
          f"JVM {max(r['jvm_rss_mb'] for r in scores):.0f}")
    for name, runs in (("features", features), ("score", scores)):
        stages = {stage: median([r["stages"].get(stage, 0.0) for r in runs]) for stage in runs[0]["stages"]}
        outside = median([r["wall_seconds"] - sum(r["stages"].values()) for r in runs])
        print(f"{name} stages (median s): " + ", ".join(f"{stage} {seconds:.1f}" for stage, seconds in stages.items()) + f"; outside any stage (JVM start, model load, exit) {outside:.1f}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"input": args.input, "features": features, "score": scores, "ratio": s / f}, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True)
    parser.add_argument("--format", default="ga360", choices=("ga360", "ga4", "events"))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--mode", choices=("run", "score"), default="run", help="run: visitseg run (and the baseline); score: visitseg score against visitseg features")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--set", action="append", default=[], help="extra config overrides for visitseg run")
    parser.add_argument("--baseline", action="store_true", help="also run both baselines, pandas + scikit-learn and hand-written Spark ML (GA360 Parquet or events CSV)")
    parser.add_argument("--vs", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="also run visitseg with these overrides in every round (e.g. --vs journeys.enabled=false) and print what the difference costs")
    parser.add_argument("--json", help="save the figures here")
    parser.add_argument("--log-dir", default="bench/logs", help="each run's log goes here (kept)")
    args = parser.parse_args()
    if args.baseline and args.format == "ga4":
        parser.error("--baseline reads GA360 Parquet or an events CSV, not GA4")

    work = Path(tempfile.mkdtemp(prefix="visitseg-bench-"))
    Path(args.log_dir).mkdir(parents=True, exist_ok=True)
    if args.mode == "score":
        try:
            score_mode(args, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return
    runs, variants, baselines = [], [], {name: [] for name in BASELINES} if args.baseline else {}
    try:
        # Alternating, so both see the same warm or cold page cache and the same machine drift.
        for i in range(args.runs):
            out = work / f"out{i}"
            runs.append(run_visitseg(args, out, f"bench{i}"))
            print(f"visitseg run {i + 1}/{args.runs}: {runs[-1]['wall_seconds']:.1f} s", file=sys.stderr)
            for table in REFERENCE_TABLES:
                shutil.copytree(out / table, work / f"out{i + 1}" / table)
            shutil.rmtree(out, ignore_errors=True)
            if args.vs:
                variant_args = argparse.Namespace(**{**vars(args), "set": [*args.set, *args.vs]})
                variants.append(run_visitseg(variant_args, work / f"vs{i}", f"vs{i}"))
                print(f"visitseg run --set {' --set '.join(args.vs)} {i + 1}/{args.runs}: {variants[-1]['wall_seconds']:.1f} s", file=sys.stderr)
                shutil.rmtree(work / f"vs{i}", ignore_errors=True)
            for name, done in baselines.items():
                done.append(run_baseline(args, name))
                print(f"{name} baseline run {i + 1}/{args.runs}: {done[-1]['wall_seconds']:.1f} s", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    summary = {
        "input": args.input,
        "format": args.format,
        "master": args.master,
        "runs": args.runs,
        "hits": runs[0]["hits"],
        "visits": runs[0]["rows"],
        "chosen_k": [r["chosen_k"] for r in runs],
        # `visitseg generate` plants its behaviours and writes their labels beside the data.
        "planted_k": len(sample_data.SEGMENTS) if (Path(args.input) / "_planted").exists() else None,
        "visitseg": {
            "wall_seconds_median": median([r["wall_seconds"] for r in runs]),
            "wall_seconds_all": [round(r["wall_seconds"], 2) for r in runs],
            "stages_median": {g: median([r["stages"][g] for r in runs]) for g in GROUPS},
            "driver_python_rss_mb_max": max(r["driver_python_rss_mb"] for r in runs),
            "jvm_rss_mb_max": max(r["jvm_rss_mb"] for r in runs),
        },
    }
    for name, done in baselines.items():
        summary[name] = {
            "wall_seconds_median": median([b["wall_seconds"] for b in done]),
            "wall_seconds_all": [round(b["wall_seconds"], 2) for b in done],
            "stages_median": {s: median([b["seconds"][s] for b in done]) for s in done[0]["seconds"]},
            "chosen_k": [b.get("chosen_k") for b in done],
        }
        summary[f"ratio_visitseg_over_{name}"] = summary["visitseg"]["wall_seconds_median"] / summary[name]["wall_seconds_median"]
    if "pandas" in baselines:
        summary["pandas"]["peak_rss_mb_max"] = max(b["peak_rss_mb"] for b in baselines["pandas"])

    v = summary["visitseg"]
    print(f"\n{args.input}: {summary['hits']:,} hits, {summary['visits']:,} visits, median of {args.runs} runs, {args.master}")
    print(f"{'stage':<12} {'visitseg s':>11}" + "".join(f" {name + ' s':>11}" for name in baselines))
    for group in GROUPS:
        print(f"{group:<12} {v['stages_median'][group]:>11.1f}" + "".join(f" {summary[name]['stages_median'].get(group, float('nan')):>11.1f}" for name in baselines))
    print(f"{'end to end':<12} {v['wall_seconds_median']:>11.1f}" + "".join(f" {summary[name]['wall_seconds_median']:>11.1f}" for name in baselines))
    print(f"chosen K per run: {summary['chosen_k']}" + (f" (planted: {summary['planted_k']})" if summary["planted_k"] else "")
          + "".join(f"; {name}: {summary[name]['chosen_k']}" for name in baselines if name != "pandas"))
    print(f"peak RSS MB: visitseg driver python {v['driver_python_rss_mb_max']:.0f}, JVM {v['jvm_rss_mb_max']:.0f}", end="")
    print(f"; pandas baseline {summary['pandas']['peak_rss_mb_max']:.0f}" if "pandas" in summary else "")
    compared = runs[1:] or runs
    monitoring = median([r["stages"]["monitoring"] for r in compared])
    rest = median([r["wall_seconds"] - r["stages"]["monitoring"] for r in compared])
    print(f"monitoring (profiles + drift + their writes), runs with a reference: {monitoring:.1f} s = {monitoring / rest:.1%} on top of the rest of the run ({rest:.1f} s)")
    if variants:
        with_it, without = v["wall_seconds_median"], median([r["wall_seconds"] for r in variants])
        summary["vs"] = {"set": args.vs, "wall_seconds_median": without, "wall_seconds_all": [round(r["wall_seconds"], 2) for r in variants],
                         "stages_median": {g: median([r["stages"][g] for r in variants]) for g in GROUPS}}
        print(f"visitseg --set {' --set '.join(args.vs)}: {without:.1f} s ({each(variants)}) vs {with_it:.1f} s ({each(runs)}) by default: "
              f"the default costs {with_it - without:+.1f} s = {(with_it - without) / without:+.1%}; stage medians of that variant: "
              + ", ".join(f"{g} {summary['vs']['stages_median'][g]:.1f}" for g in GROUPS))
    for name in baselines:
        print(f"visitseg / {name} baseline wall time: {summary[f'ratio_visitseg_over_{name}']:.2f}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
