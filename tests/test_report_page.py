"""The report page's parts on hand-built inputs: the daily tables' arithmetic and what the page says."""

from __future__ import annotations

import dataclasses

import datetime as dt
import json
import re

from chispa import assert_df_equality

from visitseg.model.profiles import DAY, MEAN_STANDARDISED, cluster_profiles, daily_rows
from visitseg.storage.tables import DAILY_KPIS, KpiRow, MixRow, rows_frame
from visitseg.report.journeys import Journeys
from visitseg.report.page import ReportData, render
from visitseg.model.assign import RAW_CLUSTER

D1, D2 = dt.date(2026, 3, 1), dt.date(2026, 3, 2)


def test_profiles_and_daily_rows_divide_the_same_sums():
    sums = lambda conv, count: {"sum:conversion_rate": conv, "count:conversion_rate": count}  # noqa: E731
    rows = [
        {RAW_CLUSTER: 7, DAY: D1, "n": 1, **sums(0.0, 1), "sum:revenue_per_visit": 0.0, "count:revenue_per_visit": 1,
         "sum:bounce_rate": 1.0, "count:bounce_rate": 1, f"sum:{MEAN_STANDARDISED}": [-1.0, 0.0]},
        {RAW_CLUSTER: 3, DAY: D1, "n": 2, **sums(1.0, 2), "sum:revenue_per_visit": 30.0, "count:revenue_per_visit": 2,
         "sum:bounce_rate": 0.0, "count:bounce_rate": 2, f"sum:{MEAN_STANDARDISED}": [2.0, 4.0]},
        {RAW_CLUSTER: 3, DAY: D2, "n": 1, **sums(1.0, 1), "sum:revenue_per_visit": 50.0, "count:revenue_per_visit": 1,
         "sum:bounce_rate": None, "count:bounce_rate": 0, f"sum:{MEAN_STANDARDISED}": [1.0, 2.0]},
    ]
    profiles = cluster_profiles(rows, DAILY_KPIS)
    assert profiles == {
        7: {"n": 1, "conversion_rate": 0.0, "revenue_per_visit": 0.0, "bounce_rate": 1.0, MEAN_STANDARDISED: [-1.0, 0.0]},
        3: {"n": 3, "conversion_rate": 2 / 3, "revenue_per_visit": 80 / 3, "bounce_rate": 0.0, MEAN_STANDARDISED: [1.0, 2.0]},
    }
    assert daily_rows(rows, {7: 0, 3: 1}, {0: "Bouncers", 1: "Buyers"}, "r") == [
        KpiRow(D1, 0, "Bouncers", 1, 1 / 3, 0.0, 0.0, 1.0, "r"),
        KpiRow(D1, 1, "Buyers", 2, 2 / 3, 0.5, 15.0, 0.0, "r"),
        KpiRow(D2, 1, "Buyers", 1, 1.0, 1.0, 50.0, None, "r"),  # no bounce flag that day: unknown, not 0
    ]


def test_the_mix_rows_are_the_kpi_rows_first_columns(spark):
    kpis = [KpiRow(D1, 1, "Buyers", 2, 1.0, 0.5, 15.0, 0.0, "r")]
    expected = spark.createDataFrame([(D1, 1, "Buyers", 2, 1.0, "r")], "visit_date date, cluster_id int, segment string, n_visits long, pct double, run_id string")
    assert_df_equality(rows_frame(spark, [k.mix() for k in kpis], MixRow), expected)
    assert rows_frame(spark, kpis, KpiRow).schema.simpleString() == (
        "struct<visit_date:date,cluster_id:int,segment:string,n_visits:bigint,share:double,conversion_rate:double,"
        "revenue_per_visit:double,bounce_rate:double,run_id:string>"
    )


def report_data(**run) -> ReportData:
    """Two segments over two days, as the tables would hold them."""
    centre = {"features": ["pageviews", "transactions"], "pageviews": 1.0, "transactions": 0.0}
    return ReportData(
        run={
            "run_id": "r1", "grain": "visit", "input_format": "ga4", "input_path": "/data/ga4", "n_rows": 12_345,
            "chosen_k": 2, "method": "kmeans", "k_reason": "k=2: the only K", "weak_structure": None,
            "started_at": dt.datetime(2026, 3, 3, 1, 0), "finished_at": dt.datetime(2026, 3, 3, 1, 5),
            "visitseg_version": "0.1.0", "spark_version": "4.2.0", "features": ["pageviews", "transactions"],
            "dropped_features": [], "sweep_rows": 12_345, "sweep_sampled": False, "delta_writer": "deltalake",
            "stages_json": json.dumps([{"stage": "aggregate visits", "rows_in": 98_765, "rows_out": 12_345, "seconds": 1.5}]),
            **run,
        },
        centres=[
            {**centre, "cluster_id": 0, "segment": "Bouncers <b>", "n_visits": 10_000, "share": 10_000 / 12_345, "conversion_rate": 0.0,
             "revenue_per_visit": 0.0, "bounce_rate": 0.9, "standardized": {"pageviews": -1.0, "transactions": -0.2}},
            {**centre, "cluster_id": 1, "segment": "Buyers", "n_visits": 2_345, "share": 2_345 / 12_345, "conversion_rate": 1.0,
             "revenue_per_visit": 1234.5, "bounce_rate": 0.0, "standardized": {"pageviews": 2.0, "transactions": 3.0},
             "pageviews": 20.0, "transactions": 1.0},
        ],
        diagnostics=[
            {"k": k, "inertia": 100.0 / k, "silhouette": 0.5, "davies_bouldin": 1.0, "calinski_harabasz": 10.0 * k,
             "stability": None, "max_cluster_share": 0.81}
            for k in (2, 3)
        ],
        daily=[
            {"visit_date": day, "cluster_id": i, "share": 0.5, "conversion_rate": float(i)} for day in (D1, D2) for i in (0, 1)
        ],
        examples={0: ["v1", "v2"], 1: ["v9"]},
    )


def test_page_says_the_run_in_formatted_numbers_and_escapes_names():
    page = render(report_data())
    assert "Bouncers &lt;b&gt;" in page and "<b>" not in page.split("<main>")[1]
    assert "12,345" in page and "98,765 hits → 12,345 visits" in page  # thousands separators
    assert "81.0%" in page and "19.0%" in page and "1,234.50" in page
    assert "2026-03-01 to 2026-03-02 (2 days)" in page
    assert "No reference run" in page and "Weak structure" not in page
    # Buyers are set apart by transactions first (|z| = 3), in original units against the size-weighted mean.
    assert re.search(r"<strong>transactions</strong>: 1\.00 vs 0\.19 overall <span class=\"z\">\(\+3\.0 sd\)", page)


def test_page_warns_of_weak_structure_and_asks_for_nothing_outside():
    page = render(report_data(weak_structure="no K keeps its largest segment under 60%"))
    assert 'role="alert"' in page and "no K keeps its largest segment under 60%" in page
    assert "<script" not in page
    assert not re.search(r"(src|href)=\"(?!data:|#)", page)  # no URL the browser would fetch
    assert "Content-Security-Policy" in page


def test_every_chart_has_a_title_axis_labels_and_a_text_alternative():
    page = render(report_data())
    svgs = re.findall(r"<svg .*?</svg>", page, flags=re.S)
    assert len(svgs) == 4
    for svg in svgs:
        assert 'role="img" aria-label="' in svg
    for text in ("K (number of segments)", "Model feature", "Segment", "Day", "Share of the day", "Conversion (share of visits)"):
        assert text in page, text


def test_the_drift_section_lists_the_metrics_above_their_thresholds_first():
    rows = [
        {"kind": "feature", "name": "pageviews", "metric": "psi", "value": 0.01, "threshold": 0.25, "drifted": False},
        {"kind": "segment_mix", "name": "1 Buyers", "metric": "share_change", "value": 0.08, "threshold": 0.05, "drifted": True},
    ]
    page = render(dataclasses.replace(report_data(drift_summary="1 of 2 metrics drifted against run r0: 1 Buyers share_change 0.080 > 0.05"), drift=rows))
    section = page.split('<section id="drift">')[1].split("</section>")[0]
    assert "1 of 2 metrics drifted against run r0" in section and "No reference run" not in section
    assert section.index("1 Buyers") < section.index("pageviews") and section.count(">above<") == 1


def test_the_data_quality_section_counts_the_input_rows_of_no_visit():
    stages = [{"stage": "aggregate visits", "rows_in": 30_137, "rows_out": 2_600, "invalid_input_rows": 602, "seconds": 1.5}]
    page = render(report_data(stages_json=json.dumps(stages)))
    quality = page[page.index('id="quality"'):]
    assert "Rows in no visit</th><td>602 (no user or session id" in quality


def test_the_journeys_section_draws_the_transitions_and_the_paths_and_cards_list_their_lifts():
    transitions = [
        {"from_segment": "(first visit)", "to_segment": "Bouncers <b>", "share": 0.75},
        {"from_segment": "(first visit)", "to_segment": "Buyers", "share": 0.25},
        {"from_segment": "Bouncers <b>", "to_segment": "Buyers", "share": 0.1},
        {"from_segment": "Bouncers <b>", "to_segment": "(no return)", "share": 0.9},
        {"from_segment": "Buyers", "to_segment": "(no return)", "share": 1.0},
    ]
    paths = [{"rank": 1, "path": "Bouncers <b> → Buyers", "users": 1_234, "share_of_buyers": 0.6, "median_days_to_purchase": 2.5}]
    lifts = [{"cluster_id": 1, "attribute": "source_medium", "value": "google / cpc", "segment_share": 0.4, "overall_share": 0.1, "lift": 4.0}]
    page = render(dataclasses.replace(report_data(), journeys=Journeys(transitions, paths, lifts)))
    journeys = page.split('<section id="journeys">')[1].split("</section>")[0]
    assert "Segment transitions" in journeys and "Next visit's segment" in journeys and ">90%<" in journeys
    assert "<td>Bouncers &lt;b&gt; → Buyers</td><td>1,234</td><td>60.0%</td><td>2.5</td>" in journeys
    cards = page.split('<section id="segments">')[1].split("</section>")[0].split('data-cluster-id="1"')
    assert "Brought by" not in cards[0] and "<strong>source / medium</strong> google / cpc: 40.0% vs 10.0% overall" in cards[1]
    assert "No journey tables" in render(report_data())
