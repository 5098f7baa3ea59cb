"""Drift monitoring: `feature_profiles` and `drift`, from real runs into real Delta tables.

Two samples of one distribution must stay quiet; a planted shift of one behaviour (visit duration), and a
planted change of the segment mix (more buyers), must be flagged; `--fail-on-drift` exits 3 with every
table written. The metrics are checked against scipy's and against hand counts.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from deltalake import DeltaTable
from pyspark.sql import functions as F
from scipy.spatial.distance import jensenshannon
from support import one_k, spark4_only

from visitseg.monitor import drift
from visitseg.ingest import sample_data
from visitseg.model.profiles import column_measures, column_totals, sums_by_cluster_and_day
from visitseg.storage.tables import FeatureProfileRow
from visitseg.model.assign import RAW_CLUSTER
from visitseg.cli import main

N_VISITS = 1500
TIME_FEATURES = {"time_on_site_sec", "time_on_site_sec_per_pageview", "engagement_time_sec"}


def table(path: Path) -> pd.DataFrame:
    return DeltaTable(str(path)).to_pyarrow_table().to_pandas()


def rewrite(source: Path, target: Path, change) -> Path:
    """The JSON sessions of `source`, each passed through `change` (which returns a list of sessions)."""
    target.mkdir(parents=True)
    with (target / "sessions.json").open("w") as out:
        for name in sorted(source.glob("*.json")):
            for line in name.read_text().splitlines():
                for session in change(json.loads(line)):
                    out.write(json.dumps(session) + "\n")
    return target


def slower(session: dict) -> list[dict]:
    """Every hit three times later in its visit: longer visits, the same pages and purchases."""
    for hit in session["hits"]:
        hit["time"] = str(int(hit["time"]) * 3)
    return [session]


def more_buyers(session: dict) -> list[dict]:
    """Each buying session four more times (as other visits): the buyers' share of the mix grows."""
    if not (session.get("totals") or {}).get("transactions"):
        return [session]
    return [session, *({**session, "visitId": str(int(session["visitId"]) + n * 10**9)} for n in range(1, 5))]


@pytest.fixture(scope="module")
def inputs(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("drift")
    for name, seed in (("a", 1), ("b", 2)):
        sample_data.write_sample(spark, "ga360", str(root / name), N_VISITS, days=4, seed=seed, file_format="json")
    rewrite(root / "b", root / "slower", slower)
    rewrite(root / "b", root / "more_buyers", more_buyers)
    return root


def run(root: Path, name: str, run_id: str, *extra: str) -> int:
    return main(["run", "--input-format", "ga360", "--input", str(root / name), "--output", str(root / "out"),
                 "--set", f"run.run_id={run_id}", "--set", "model.k_final=5", *one_k(5), *extra])  # drift is under test, not the sweep


def drift_of(root: Path, run_id: str) -> pd.DataFrame:
    rows = table(root / "out" / "drift")
    return rows[rows.run_id == run_id].set_index(["kind", "name", "metric"])


@spark4_only("drift compares profiles on the driver; every run on every line writes the profiles' Spark aggregations")
def test_drift_is_quiet_on_the_same_distribution_and_flags_planted_shifts(inputs, capsys):
    assert run(inputs, "a", "a") == 0
    assert "drift: no reference run" in capsys.readouterr().out
    profiles = table(inputs / "out" / "feature_profiles")
    assert set(profiles.run_id) == {"a"} and "drift" not in {p.name for p in (inputs / "out").iterdir()}
    pageviews = profiles.set_index("feature").loc["pageviews"]
    assert pageviews["count"] == N_VISITS and pageviews.nulls == 0 and len(pageviews.bin_counts) == len(pageviews.bin_edges) + 1
    visits = table(inputs / "out" / "visit_features")
    assert pageviews["mean"] == pytest.approx(visits.pageviews.mean(), rel=1e-12)
    assert sum(pageviews.bin_counts) == N_VISITS and list(pageviews.bin_edges) == sorted(set(pageviews.bin_edges))

    # Another draw of the same behaviours, compared with the previous run (the default reference): quiet.
    assert run(inputs, "b", "b") == 0
    same = drift_of(inputs, "b")
    assert set(same.reference_run_id) == {"a"} and not same.drifted.any(), same[same.drifted]
    assert len(same.loc["feature"]) == 2 * len(profiles[profiles.run_id == "a"])  # psi and js_distance per feature
    runs = table(inputs / "out" / "runs").set_index("run_id")
    assert runs.loc["b", "drift_summary"] == f"0 of {len(same)} metrics drifted against run a"

    # Visits three times as long: the time features drift, the counts do not; --fail-on-drift exits 3
    # after writing every table.
    assert run(inputs, "slower", "slower", "--set", "monitor.baseline_run_id=a", "--fail-on-drift") == 3
    assert "DriftDetected: --fail-on-drift" in capsys.readouterr().err
    shifted = drift_of(inputs, "slower").loc["feature"]
    flagged = set(shifted[shifted.drifted].index.get_level_values("name"))
    assert flagged and flagged <= TIME_FEATURES, flagged
    assert shifted.loc[("engagement_time_sec", "psi"), "value"] > 0.25
    assert not shifted.loc[[("pageviews", "psi"), ("transactions", "psi"), ("hits", "psi")]].drifted.any()
    runs = table(inputs / "out" / "runs").set_index("run_id")
    assert runs.loc["slower", "drift_summary"].startswith(f"{len(drift_of(inputs, 'slower').query('drifted'))} of ")
    # The run drew its page (with its drift rows) from the rows it wrote; `visitseg report` draws the same bytes from the tables.
    page = inputs / "out" / "reports" / "slower" / "report.html"
    written = page.read_bytes()
    assert b"engagement_time_sec" in written and main(["report", "--output", str(inputs / "out"), "--run-id", "slower"]) == 0
    assert page.read_bytes() == written

    # Four more copies of every buying visit: the mix moves towards the buyers.
    assert run(inputs, "more_buyers", "buyers", "--set", "monitor.baseline_run_id=a") == 0
    mix = drift_of(inputs, "buyers").loc["segment_mix"]
    buyers = [name for name in mix.index.get_level_values("name") if "Buyers" in name]
    assert buyers and mix.loc[(buyers[0], "share_change"), "drifted"] and mix.loc[(buyers[0], "share_change"), "value"] > 0.05
    assert mix.loc[("all segments", "total_variation"), "value"] == pytest.approx(
        0.5 * mix.xs("share_change", level="metric").value.abs().sum(), abs=1e-12
    )


def test_a_score_is_compared_with_its_models_training_run(inputs, capsys):
    """Scoring the slower visits with run a's model: its segment KPIs per day (the same counts as its
    scores), its profiles and drift against run a, exit 3 with --fail-on-drift and the scores written."""
    if not (inputs / "out" / "models" / "a").exists():
        assert run(inputs, "a", "a") == 0
    args = ["score", "--model", str(inputs / "out" / "models" / "a"), "--input-format", "ga360", "--input", str(inputs / "slower"),
            "--output", str(inputs / "out"), "--set", "run.run_id=score-slower", "--fail-on-drift"]
    assert main(args) == 3
    assert "DriftDetected" in capsys.readouterr().err
    scores = table(inputs / "out" / "session_scores")
    assert (scores.score_run_id == "score-slower").sum() == N_VISITS
    rows = drift_of(inputs, "score-slower")
    assert set(rows.reference_run_id) == {"a"} and set(rows.index.get_level_values("kind")) == {"feature", "segment_mix", "kpi"}
    kpis = table(inputs / "out" / "segment_kpis_daily")
    kpis = kpis[kpis.run_id == "score-slower"]
    assert kpis.n_visits.sum() == N_VISITS and np.allclose(kpis.groupby("visit_date").share.sum(), 1.0)
    same_segments = scores[scores.score_run_id == "score-slower"].groupby(["visit_date", "cluster_id"]).size()
    assert kpis.set_index(["visit_date", "cluster_id"]).n_visits.sort_index().to_dict() == same_segments.sort_index().to_dict()
    flagged = set(rows.loc["feature"].query("drifted").index.get_level_values("name"))
    assert flagged and flagged <= TIME_FEATURES, flagged
    assert set(table(inputs / "out" / "feature_profiles").run_id) >= {"a", "score-slower"}


def test_metrics_match_scipy_and_hand_counts(spark):
    reference, current = [50, 30, 20, 0], [25, 25, 25, 25]
    p, q = drift.smoothed(current), drift.smoothed(reference)
    assert drift.js_distance(current, reference) == pytest.approx(jensenshannon(p, q, base=2), abs=1e-12)
    assert drift.psi(current, reference) == pytest.approx(sum((a - b) * math.log(a / b) for a, b in zip(p, q)), abs=1e-12)
    assert math.isfinite(drift.psi(current, reference)) and drift.psi(reference, reference) == 0.0

    # Deciles of 1..10 plus ties: edges merge, the outer bins are open, nulls stay out of the bins.
    values = [1, 1, 1, 1, 1, 2, 3, 4, 100, None]
    df = spark.createDataFrame([(v,) for v in values], "x long")
    # The counts and sums a run's or score's (cluster, day) pass gives: here the null in a cluster of its own.
    grouped = df.select("x", F.when(F.col("x").isNull(), 1).otherwise(0).alias(RAW_CLUSTER), F.lit("2026-10-01").cast("date").alias("day"))
    totals = column_totals(sums_by_cluster_and_day(grouped, "day", column_measures(["x"]), 0, F.array()), ["x"])
    (profile,), in_reference = drift.profile_features(df, ["x"], {"x": FeatureProfileRow("a", "x", 0, 0, None, [], [0.5, 2.0, 50.0], [])}, len(values), totals, "b")
    assert (profile.count, profile.nulls, profile.mean) == (9, 1, pytest.approx(114 / 9))
    assert profile.bin_edges == sorted(set(profile.bin_edges)) and profile.bin_edges[0] == 1.0
    edges = [-math.inf, *profile.bin_edges, math.inf]
    assert profile.bin_counts == [sum(1 for v in values if v is not None and lo < v <= hi) for lo, hi in zip(edges, edges[1:])]
    assert in_reference == {"x": [0, 6, 2, 1]}  # (-inf, 0.5], (0.5, 2], (2, 50], (50, inf)
    assert np.isclose(sum(drift.smoothed(in_reference["x"])), 1.0)
