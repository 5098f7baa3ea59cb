"""`visitseg run` end to end on generated GA360 and flat-event input: every table, read back and checked."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from deltalake import DeltaTable
from pyspark.ml import PipelineModel
from sklearn.metrics import adjusted_rand_score

from visitseg.storage import delta
from visitseg.ingest import sample_data
from visitseg.cli import main

sys.path.insert(0, str(Path(__file__).parents[1] / "scripts"))
from report_browser import browser_paths, inspect  # noqa: E402 (the project's own browser check)

import journeys_oracle as oracle  # noqa: E402
from support import spark4_only  # noqa: E402

N_VISITS = 1500
K_RANGE = ["--set", "model.k_min=2", "--set", "model.k_max=8"]
EVENTS_ON_SPARK4 = spark4_only("the planted K is checked on the GA360 sample on every line; the events reader in tests/test_events.py")
LABEL_COLUMNS = ["visit_key", "user_key", "visit_date", "cluster_id", "segment", "distance_to_centroid", "margin", "run_id"]
MIX_COLUMNS = ["visit_date", "cluster_id", "segment", "n_visits", "pct", "run_id"]
KPI_COLUMNS = ["visit_date", "cluster_id", "segment", "n_visits", "share", "conversion_rate", "revenue_per_visit", "bounce_rate", "run_id"]
# Written out here, not taken from the code's own schemas, so a dropped or renamed column fails.
COUNTS = ["pageviews", "hits", "unique_pages", "time_on_site_sec", "transactions", "transaction_revenue", "time_on_site_sec_per_pageview",
          "hits_per_pageview", "searches", "product_views", "add_to_carts", "checkouts", "shipping_infos", "payment_infos", "cart_steps",
          "engagement_time_sec"]
FEATURE_COLUMNS = ["visit_key", "user_key", "visit_date", "visit_start_ts", "channel", "source", "medium", "device", "country", *COUNTS, "is_bounce", "run_id"]
CENTRE_COLUMNS = ["run_id", "cluster_id", "segment", "n_visits", "share", "conversion_rate", "revenue_per_visit", "bounce_rate", "cart_rate",
                  *COUNTS, "standardized", "features"]
DIAGNOSTICS_COLUMNS = ["run_id", "k", "inertia", "silhouette", "silhouette_distance", "davies_bouldin", "calinski_harabasz", "min_cluster_share",
                       "max_cluster_share", "stability", "sweep_rows", "sampled", "fit_seconds", "chosen"]
RUNS_COLUMNS = ["run_id", "started_at", "finished_at", "input_format", "input_path", "grain", "method", "n_rows", "chosen_k", "k_reason",
                "weak_structure", "comparison_json", "sweep_rows", "sweep_sampled", "features", "dropped_features", "model_path", "delta_writer",
                "stages_json", "config_json", "spark_version", "python_version", "visitseg_version", "packages_json", "drift_summary"]


# Screenshots the browser test leaves for people to look at (CI may keep the folder).
ARTIFACTS = Path(__file__).parents[1] / "test-artifacts"


def table(path):
    return DeltaTable(str(path)).to_pyarrow_table().to_pandas()


@pytest.fixture(scope="module", params=[("ga360", "json"), pytest.param(("events", "csv"), marks=EVENTS_ON_SPARK4)], ids=["ga360", "events"])
def run(request, spark, tmp_path_factory):
    fmt, file_format = request.param
    root = tmp_path_factory.mktemp(fmt)
    planted = sample_data.write_sample(spark, fmt, str(root / "input"), N_VISITS, days=7, seed=11, file_format=file_format)
    args = ["run", "--input-format", fmt, "--input", str(root / "input"), "--output", str(root / "out"), "--set", "run.run_id=e2e", *K_RANGE]
    assert main(args) == 0
    first = {name: table(root / "out" / name) for name in ("session_clusters", "k_diagnostics", "cluster_centers", "segment_kpis_daily")}
    assert main(args) == 0  # the same run again: replaces its partitions
    return fmt, root / "out", planted.toPandas(), first


def test_automatic_k_finds_the_planted_segments(run):
    _, out, planted, _ = run
    diagnostics = table(out / "k_diagnostics")
    assert diagnostics.loc[diagnostics.chosen, "k"].tolist() == [len(sample_data.SEGMENTS)]
    labels = table(out / "session_clusters").merge(planted, on="visit_key", how="inner")
    assert len(labels) == N_VISITS
    assert adjusted_rand_score(labels.segment_y, labels.cluster_id) >= 0.9


def test_every_table_has_its_schema(run):
    _, out, _, _ = run
    assert list(table(out / "visit_features").columns) == FEATURE_COLUMNS
    assert list(table(out / "session_clusters").columns) == LABEL_COLUMNS
    assert list(table(out / "k_diagnostics").columns) == DIAGNOSTICS_COLUMNS
    assert list(table(out / "cluster_mix_daily").columns) == MIX_COLUMNS
    assert list(table(out / "segment_kpis_daily").columns) == KPI_COLUMNS
    assert list(table(out / "runs").columns) == RUNS_COLUMNS
    assert list(table(out / "cluster_centers").columns) == CENTRE_COLUMNS


def test_one_label_per_visit_shares_sum_to_one_and_centres_in_range(run):
    _, out, _, _ = run
    features, labels, centers = table(out / "visit_features"), table(out / "session_clusters"), table(out / "cluster_centers")
    assert len(labels) == labels.visit_key.nunique() == len(features) == N_VISITS
    assert set(labels.visit_key) == set(features.visit_key)
    assert centers.share.sum() == pytest.approx(1.0)
    assert centers.n_visits.sum() == N_VISITS
    assert sorted(centers.cluster_id) == list(range(len(centers)))
    for feature in centers.features.iloc[0]:
        assert centers[feature].between(features[feature].min(), features[feature].max()).all(), feature
    assert (labels.margin >= 0).all() and (labels.distance_to_centroid >= 0).all()
    mix = table(out / "cluster_mix_daily")
    assert mix.groupby("visit_date").pct.sum().tolist() == pytest.approx([1.0] * mix.visit_date.nunique())
    assert mix.n_visits.sum() == N_VISITS


def test_daily_tables_equal_pandas_over_the_written_labels_and_features(run):
    _, out, _, _ = run
    rows = table(out / "session_clusters").merge(table(out / "visit_features"), on="visit_key", suffixes=("", "_f"))
    rows = rows.assign(converted=(rows.transactions > 0).astype(float), bounced=rows.is_bounce.astype(float))
    expected = (
        rows.groupby(["visit_date", "cluster_id"])
        .agg(n_visits=("visit_key", "size"), conversion_rate=("converted", "mean"), revenue_per_visit=("transaction_revenue", "mean"), bounce_rate=("bounced", "mean"))
        .reset_index()
    )
    expected["share"] = expected.n_visits / expected.groupby("visit_date").n_visits.transform("sum")
    kpis = table(out / "segment_kpis_daily").sort_values(["visit_date", "cluster_id"]).reset_index(drop=True)
    mix = table(out / "cluster_mix_daily").sort_values(["visit_date", "cluster_id"]).reset_index(drop=True)
    assert kpis.n_visits.tolist() == mix.n_visits.tolist() == expected.n_visits.tolist()
    assert mix.pct.tolist() == kpis.share.tolist() == pytest.approx(expected.share.tolist())
    for kpi in ("conversion_rate", "revenue_per_visit", "bounce_rate"):
        assert kpis[kpi].tolist() == pytest.approx(expected[kpi].tolist()), kpi


def test_journey_tables_equal_pandas_over_the_written_labels_and_features(run):
    _, out, _, _ = run
    visits = oracle.segmented(table(out / "session_clusters"), table(out / "visit_features"))
    transitions, paths = oracle.transitions(visits), oracle.paths_to_purchase(visits, 4)
    assert transitions.transitions.sum() == 2 * N_VISITS - (N_VISITS - visits.user_key.nunique())  # visits + users: every visit from and to
    assert len(paths) > 1 and (transitions.from_segment != "(first visit)").sum() > len(transitions) / 2
    oracle.assert_same(table(out / "segment_transitions"), transitions, ["from_segment", "to_segment"])
    oracle.assert_same(table(out / "paths_to_purchase"), paths, ["rank"])
    oracle.assert_same(table(out / "segment_attributes"), oracle.segment_attributes(visits, 5), ["cluster_id", "attribute", "rank"])


def test_segments_are_named_from_their_profiles(run):
    fmt, out, _, _ = run
    names = table(out / "cluster_centers").sort_values("cluster_id").segment.tolist()
    assert names == ["Bouncers", "Browsers", "Cart abandoners", "Researchers", "Buyers"]


def test_rerun_leaves_one_copy_and_identical_results(run):
    _, out, _, first = run
    for name, before in first.items():
        after = table(out / name)
        assert len(after) == len(before), name
        assert DeltaTable(str(out / name)).version() == 1
    key = ["visit_key"]
    a, b = first["session_clusters"].sort_values(key), table(out / "session_clusters").sort_values(key)
    assert a.cluster_id.tolist() == b.cluster_id.tolist()
    assert a.distance_to_centroid.tolist() == b.distance_to_centroid.tolist()
    d1, d2 = first["k_diagnostics"].sort_values("k"), table(out / "k_diagnostics").sort_values("k")
    for metric in ("inertia", "silhouette", "davies_bouldin", "calinski_harabasz"):
        assert d1[metric].tolist() == d2[metric].tolist(), metric
    assert len(table(out / "runs")) == 1


def test_report_and_saved_model(run, spark):
    _, out, _, _ = run
    report = json.loads((out / "reports" / "e2e" / "model_report.json").read_text())
    runs = table(out / "runs")
    assert report["chosen_k"] == runs.chosen_k[0] == 5
    assert report["k_reason"] == runs.k_reason[0] and report["k_reason"].startswith("k=5: best for")
    assert [s["stage"] for s in report["stages"]][:2] == ["read hits", "aggregate visits"]
    assert len(report["clusters"]) == 5 and len(report["k_diagnostics"]) == 7
    model = PipelineModel.load(report["model_path"])
    scored = model.transform(delta.read_table(spark, str(out / "visit_features")))
    assert scored.select("prediction").distinct().count() == 5


def test_report_page_is_drawn_from_the_tables_alone(run, capsys):
    _, out, _, _ = run
    page = out / "reports" / "e2e" / "report.html"
    written = page.read_bytes()
    page.unlink()
    assert main(["report", "--output", str(out)]) == 0  # the newest run: e2e
    assert page.read_bytes() == written
    assert capsys.readouterr().out.strip() == f"report: {page}"


def test_report_of_an_unknown_run_is_a_named_error(run, capsys):
    _, out, _, _ = run
    assert main(["report", "--output", str(out), "--run-id", "nope"]) == 2
    assert "no run 'nope' in" in capsys.readouterr().err and not (out / "reports" / "nope").exists()


def test_report_page_in_a_real_browser(run):
    """Headless Chromium opens the page offline: no console error, no request leaving the machine, every
    chart drawn, the cards' names and shares are the cluster_centers table's, and it prints."""
    fmt, out, _, _ = run
    if browser_paths() is None:
        pytest.skip("no chromium + chromedriver on PATH (Debian packages chromium, chromium-driver; scripts/setup.sh installs them as root)")
    ARTIFACTS.mkdir(exist_ok=True)
    facts = inspect(out / "reports" / "e2e" / "report.html", ARTIFACTS / f"report-{fmt}.png", ARTIFACTS / f"report-{fmt}.pdf")
    assert facts["problems"] == []
    assert [c["level"] for c in facts["console"]] == []
    assert {url.split(":")[0] for url in facts["requests"]} <= {"file", "data"}
    assert len(facts["charts"]) == 5 and all(c["shapes"] > 10 for c in facts["charts"])
    assert facts["sections"] == ["Summary", "Segments", "Segment profiles", "Journeys", "K diagnostics", "Daily mix", "Drift", "Data quality"]
    centers = table(out / "cluster_centers").sort_values("cluster_id")
    assert [(s["cluster_id"], s["name"], s["share"]) for s in facts["segments"]] == list(zip(centers.cluster_id, centers.segment, centers.share))
    assert [s["share_text"] for s in facts["segments"]] == [f"{share:.1%}" for share in centers.share]
    assert facts["size_bytes"] < 5_000_000
    assert (ARTIFACTS / f"report-{fmt}.png").stat().st_size > 10_000
    assert 2 <= facts["pdf_pages"] <= 12  # printed: a few A4 landscape pages, not one per card or a cut-off page
