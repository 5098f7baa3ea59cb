"""visitseg on the shared real exports (../shared/data/real, see its README).

Every expected value here is computed from the source files with pyarrow/pandas in the test itself,
never with visitseg's functions. The tests skip, saying why, where the folder is absent.
"""

from __future__ import annotations

import glob
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from pyspark.sql import functions as F
from support import make_config, spark4_only

from visitseg.storage import delta
from ga360_oracle import ga360_hits
import journeys_oracle
from visitseg.ingest import read_visits
from visitseg.pipelines.run import run_job
from visitseg.features.visits import visit_features

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
pytestmark = [
    pytest.mark.skipif(
        not REAL.is_dir(), reason=f"the shared real exports are not at {REAL} (they live beside the project checkout, see DEVELOPERS.md)"
    ),
    spark4_only(
        "the real exports' figures, about 4 min a line; the export-variant matrix built from the same files "
        "(tests/test_export_variants.py) runs on every line"
    ),
]
GA360 = REAL / "ga360"
GA4_WEEK = REAL / "ga4_week"


def local_pandas(df, columns):
    """A small result (one row per real session: a few thousand) as pandas, indexed by visit key."""
    return pd.DataFrame([r.asDict() for r in df.select("visit_key", *columns).collect()]).set_index("visit_key")


@pytest.fixture(scope="module")
def ga360_totals() -> pd.DataFrame:
    """GA's own session totals and the sums of the transaction hits, straight from the Parquet file."""
    rows = pq.read_table(GA360 / "ga_sessions_20170801.parquet", columns=["fullVisitorId", "visitId", "totals", "hits"]).to_pylist()
    records = []
    for r in rows:
        revenue_hits = [h["transaction"] for h in r["hits"] if h["transaction"] and h["transaction"]["transactionRevenue"] is not None]
        t = r["totals"]
        records.append({
            "visit_key": f"{r['fullVisitorId']}-{r['visitId']}",
            "pageviews": t["pageviews"] or 0,
            "hits": t["hits"] or 0,
            "transactions": t["transactions"] or 0,
            "transaction_revenue": (t["totalTransactionRevenue"] or 0) / 1e6,
            "is_bounce": (t["bounces"] or 0) == 1,
            "hit_revenue": sum(x["transactionRevenue"] for x in revenue_hits) / 1e6,
            "single_hit": len(r["hits"]) == 1,
        })
    return pd.DataFrame(records).set_index("visit_key")


def test_ga360_visits_equal_the_exports_own_totals(spark, ga360_totals):
    visits = local_pandas(read_visits(spark, make_config("ga360", str(GA360))), ["pageviews", "hits", "transactions", "transaction_revenue", "is_bounce"])
    assert len(visits) == len(ga360_totals) == 2556
    joined = ga360_totals.join(visits, rsuffix="_visitseg", how="inner")
    assert len(joined) == 2556
    for column in ("pageviews", "hits", "transactions", "is_bounce"):
        assert (joined[column] == joined[f"{column}_visitseg"]).all(), column
    np.testing.assert_allclose(joined["transaction_revenue_visitseg"], joined["transaction_revenue"], rtol=1e-12)
    # The README's day totals, from the same columns.
    assert (visits.pageviews.sum(), visits.hits.sum(), visits.transactions.sum(), visits.is_bounce.sum()) == (10939, 13233, 45, 1238)
    assert visits.transaction_revenue.sum() == pytest.approx(8890.00)


def test_ga360_hit_level_definitions_differ_from_totals_only_where_documented(spark, ga360_totals):
    """The canonical hit path (no totals) differs from GA's totals in the sessions the README names:
    2 sessions' revenue (a repeated transaction id with two revenues, GA's totals lower) and 7 sessions'
    bounce (two interaction hits yet totals.bounces = 1). Both counts come from the file."""
    hits_only = local_pandas(visit_features(ga360_hits(spark, make_config("ga360", str(GA360))), "t"), ["transactions", "transaction_revenue", "is_bounce"])
    joined = ga360_totals.join(hits_only, rsuffix="_hits")
    revenue_differs = ~np.isclose(joined.transaction_revenue_hits, joined.transaction_revenue)
    expected_revenue_differs = ~np.isclose(ga360_totals.hit_revenue, ga360_totals.transaction_revenue)
    assert revenue_differs.sum() == expected_revenue_differs.sum() == 2
    assert (joined.transactions_hits == joined.transactions).all()  # two records of one id count twice, as GA counts them
    bounce_differs = joined.is_bounce_hits != joined.is_bounce
    assert bounce_differs.sum() == (ga360_totals.single_hit != ga360_totals.is_bounce).sum() == 7


@pytest.fixture(scope="module")
def ga4_sessions() -> pd.DataFrame:
    """Per GA4 session (user_pseudo_id-ga_session_id) of the week, from the Parquet files."""
    records = []
    for path in sorted(glob.glob(str(GA4_WEEK / "*.parquet"))):
        for r in pq.read_table(path, columns=["event_date", "event_name", "user_pseudo_id", "event_params"]).to_pylist():
            params = {p["key"]: p["value"] for p in r["event_params"]}
            engaged = params.get("session_engaged")
            records.append({
                "visit_key": f"{r['user_pseudo_id']}-{int(params['ga_session_id']['int_value'])}",
                "user": r["user_pseudo_id"],
                "event_date": r["event_date"],
                "event_name": r["event_name"],
                # "1" as a string, and on some events of this export as an integer.
                "engaged": engaged is not None and (engaged["string_value"] == "1" or engaged["int_value"] == 1),
                "engagement_ms": (params.get("engagement_time_msec") or {}).get("int_value") or 0,
            })
    events = pd.DataFrame(records)
    counts = pd.crosstab(events.visit_key, events.event_name)
    return pd.DataFrame({
        "purchases": counts["purchase"],
        "searches": counts["view_search_results"],
        "product_views": counts["view_item"],
        "add_to_carts": counts["add_to_cart"],
        "checkouts": counts["begin_checkout"],
        "shipping_infos": counts["add_shipping_info"],
        "payment_infos": counts["add_payment_info"],
        "is_bounce": ~events.groupby("visit_key").engaged.any(),
        "engagement_time_sec": events.groupby("visit_key").engagement_ms.sum() / 1000,
        "days": events.groupby("visit_key").event_date.nunique(),
        "first_day": events.groupby("visit_key").event_date.min(),
        "user": events.groupby("visit_key").user.first(),
    })


@pytest.fixture(scope="module")
def ga4_visits(spark) -> pd.DataFrame:
    columns = ["visit_date", "transactions", "searches", "product_views", "add_to_carts", "checkouts", "shipping_infos",
               "payment_infos", "is_bounce", "engagement_time_sec"]
    return local_pandas(read_visits(spark, make_config("ga4", str(GA4_WEEK))), columns)


def test_ga4_counts_every_purchase_whatever_its_transaction_id(ga4_sessions, ga4_visits):
    # All 224 purchase events of the week carry "(not set)" or a null id: each one is a transaction.
    assert ga4_sessions.purchases.sum() == 224 and (ga4_sessions.purchases > 0).sum() == 185
    joined = ga4_sessions.join(ga4_visits, how="inner", rsuffix="_visitseg")
    assert len(joined) == len(ga4_sessions) == len(ga4_visits)
    assert (joined.transactions == joined.purchases).all()


def test_ga4_funnel_bounce_and_engagement_time_per_session(ga4_sessions, ga4_visits):
    joined = ga4_sessions.join(ga4_visits, rsuffix="_visitseg")
    for column in ("searches", "product_views", "add_to_carts", "checkouts", "shipping_infos", "payment_infos", "is_bounce"):
        assert (joined[column] == joined[f"{column}_visitseg"]).all(), column
    np.testing.assert_allclose(joined.engagement_time_sec_visitseg, joined.engagement_time_sec, rtol=1e-12)
    # Not-engaged sessions, as GA4 defines a bounce (every session of this export carries the flag).
    assert joined.is_bounce.sum() == 3282


def test_ga4_sessions_across_midnight_are_one_visit_dated_by_their_first_day(ga4_sessions, ga4_visits):
    crossing = ga4_sessions[ga4_sessions.days > 1]
    assert len(crossing) == 36  # 20,161 session-days in the README's count, 20,125 sessions
    assert ga4_visits.index.is_unique
    dates = ga4_visits.loc[crossing.index, "visit_date"].map(lambda d: d.strftime("%Y%m%d"))
    assert (dates == crossing.first_day).all()


def segment_bars(spark, out: str, run_id: str, purchase_visits: int, cfg) -> None:
    """The issue's bars for one real input: >= 4 segments, none above 60% of visits (or users), the
    segments that convert at >= 4x the overall rate hold >= 90% of purchase visits (or buying users), and
    names true to the profile."""
    centres = delta.read_table(spark, f"{out}/cluster_centers").filter(F.col("run_id") == run_id).toPandas()
    assert len(centres) >= 4
    assert centres.share.max() <= 0.6
    n = centres.n_users if cfg.features.grain == "user" else centres.n_visits
    overall = (centres.conversion_rate * n).sum() / n.sum()
    buyers = (centres.conversion_rate * n).round().astype(int)
    assert buyers.sum() == purchase_visits
    assert buyers[centres.conversion_rate >= 4 * overall].sum() >= 0.9 * purchase_visits
    names = centres.segment.tolist()
    assert len(set(names)) == len(names) and not any(ch.isdigit() for name in names for ch in name), names
    naming = cfg.naming
    for c in centres.itertuples():
        if c.segment.startswith(("Buyers", "High-value buyers")):
            assert c.conversion_rate >= naming.buyer_conversion_rate, c
        if c.segment.startswith("Bouncers"):
            assert c.bounce_rate >= naming.bounce_rate, c
        if c.segment.startswith("Cart abandoners"):
            assert c.cart_rate >= naming.cart_rate and c.conversion_rate < naming.abandoner_max_conversion_rate, c
        if c.segment.startswith("Researchers"):
            assert c.conversion_rate < naming.abandoner_max_conversion_rate, c


def test_ga360_day_gives_actionable_segments_and_journeys(spark, tmp_path, ga360_totals):
    cfg = make_config("ga360", str(GA360), str(tmp_path))
    run_job(spark, cfg)
    segment_bars(spark, str(tmp_path), cfg.run.run_id, int((ga360_totals.transactions > 0).sum()), cfg)
    # The journeys, recomputed with pandas from the written tables, and counted from the file itself:
    # every session once as a "to", every visitor once from "(first visit)", every buyer on one path.
    read = lambda name: delta.read_table(spark, f"{tmp_path}/{name}").toPandas()  # noqa: E731
    visits = journeys_oracle.segmented(read("session_clusters"), read("visit_features"))
    transitions, paths = read("segment_transitions"), read("paths_to_purchase")
    journeys_oracle.assert_same(transitions, journeys_oracle.transitions(visits), ["from_segment", "to_segment"])
    journeys_oracle.assert_same(paths, journeys_oracle.paths_to_purchase(visits, cfg.journeys.max_path_length), ["rank"])
    journeys_oracle.assert_same(read("segment_attributes"), journeys_oracle.segment_attributes(visits, cfg.journeys.top_attributes), ["cluster_id", "attribute", "rank"])
    visitors = ga360_totals.index.str.split("-").str[0]
    assert transitions[transitions.to_segment != "(no return)"].transitions.sum() == len(ga360_totals) == 2556
    assert transitions[transitions.from_segment == "(first visit)"].transitions.sum() == visitors.nunique()
    assert paths.users.sum() == visitors[ga360_totals.transactions > 0].nunique()


def test_one_ga4_day_alone_gives_actionable_segments(spark, tmp_path, ga4_sessions):
    cfg = make_config("ga4", str(GA4_WEEK), str(tmp_path), input={"date_from": "2020-11-07", "date_to": "2020-11-08"})
    run_job(spark, cfg)
    purchase_visits = int(((ga4_sessions.purchases > 0) & (ga4_sessions.first_day == "20201107")).sum())
    segment_bars(spark, str(tmp_path), cfg.run.run_id, purchase_visits, cfg)


def test_ga4_week_at_user_grain_gives_actionable_segments(spark, tmp_path, ga4_sessions):
    cfg = make_config("ga4", str(GA4_WEEK), str(tmp_path), overrides=["features.grain=user"])
    run_job(spark, cfg)
    users = delta.read_table(spark, f"{tmp_path}/user_features").toPandas().set_index("user_key")
    per_user = ga4_sessions.groupby("user")
    assert len(users) == per_user.ngroups
    assert (users.transactions.sort_index() == per_user.purchases.sum().sort_index()).all()
    assert (users.searches.sort_index() == per_user.searches.sum().sort_index()).all()
    segment_bars(spark, str(tmp_path), cfg.run.run_id, int((per_user.purchases.sum() > 0).sum()), cfg)


def test_rules_on_the_ga360_day_follow_the_funnel_and_are_compared_with_kmeans(spark, tmp_path, ga360_totals):
    cfg = make_config("ga360", str(GA360), str(tmp_path), overrides=["model.method=rules"])
    run_job(spark, cfg)
    centres = delta.read_table(spark, f"{tmp_path}/cluster_centers").toPandas().set_index("segment")
    # Buyers: every session with a transaction in GA's totals, from the file.
    assert centres.loc["Buyers", "n_visits"] == (ga360_totals.transactions > 0).sum() == 43
    assert centres.loc["Buyers", "conversion_rate"] == 1.0 and centres.drop("Buyers").conversion_rate.max() == 0.0
    # Bounced: bounced sessions (GA's totals) that took no cart step — a subset of GA's 1,238 bounces.
    assert 0 < centres.loc["Bounced", "n_visits"] <= ga360_totals.is_bounce.sum()
    assert centres.loc["Bounced", "bounce_rate"] == 1.0
    assert centres.n_visits.sum() == 2556
    runs = delta.read_table(spark, f"{tmp_path}/runs").toPandas()
    assert runs.method[0] == "rules" and runs.chosen_k[0] == len(centres)
    comparison = json.loads(runs.comparison_json[0])
    assert set(comparison) == {"kmeans", "rules"}
    for figures in comparison.values():
        assert 0 < figures["mean_eta_squared"] <= 1 and figures["profile_shift"] >= 0
        assert set(figures["eta_squared"]) == set(json.loads(runs.config_json[0])["model"]["features"]) - {"searches"}  # constant on GA360
    assert comparison["rules"]["split_stability_ari"] == 1.0
