"""Export variants real properties produce, built by editing copies of the shared real exports with pyarrow:
each gives true numbers or a named error, never a silent zero. Expected values are computed from the
edited files with pyarrow and pandas, never with visitseg.

GA360: a `totals` without `totalTransactionRevenue` (JSON and Parquet alike, and one day of two).
GA4: consent mode's events without `user_pseudo_id`, events without `ga_session_id`, a malformed
`event_date`, with ANSI mode on and off.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from support import make_config
from visitseg.cli import main
from visitseg.core.spark import session_conf
from visitseg.features.visits import valid_visits, validate_visits
from visitseg.ingest import read_visits

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
pytestmark = pytest.mark.skipif(not REAL.is_dir(), reason=f"the shared real exports are not at {REAL} (they live beside the project checkout)")
GA360_DAY = REAL / "ga360" / "ga_sessions_20170801.parquet"
GA4_DAY = REAL / "ga4_week" / "events_20201101.parquet"


def without_total_revenue(table: pa.Table) -> pa.Table:
    """The GA360 sessions with `totals` lacking totalTransactionRevenue (its deprecated twin stays)."""
    totals = table.column("totals").combine_chunks()
    keep = [i for i, f in enumerate(totals.type) if f.name != "totalTransactionRevenue"]
    slim = pa.StructArray.from_arrays([totals.field(i) for i in keep], fields=[totals.type.field(i) for i in keep], mask=totals.is_null())
    return table.set_column(table.schema.get_field_index("totals"), "totals", slim)


def ga360_expected(table: pa.Table, revenue_field: str) -> pd.DataFrame:
    """Per session: GA's transactions and revenue, the revenue taken from `revenue_field` of `totals`."""
    rows = table.select(["fullVisitorId", "visitId", "totals"]).to_pylist()
    return pd.DataFrame([
        {"visit_key": f"{r['fullVisitorId']}-{r['visitId']}", "transactions": r["totals"]["transactions"] or 0,
         "transaction_revenue": (r["totals"].get(revenue_field) or 0) / 1e6}
        for r in rows
    ]).set_index("visit_key").sort_index()


def visits_of(spark, fmt: str, path: Path, columns=("transactions", "transaction_revenue")) -> pd.DataFrame:
    visits = read_visits(spark, make_config(fmt, str(path)))
    return pd.DataFrame([r.asDict() for r in visits.select("visit_key", *columns).collect()]).set_index("visit_key").sort_index()


@pytest.fixture(scope="module")
def ga360_day() -> pa.Table:
    return pq.read_table(GA360_DAY)


def test_ga360_json_without_total_revenue_takes_the_deprecated_total_not_zero(spark, tmp_path, ga360_day):
    slim = without_total_revenue(ga360_day)
    with open(tmp_path / "sessions.json", "w") as f:
        for row in slim.to_pylist():  # BigQuery's NDJSON writes INT64 as strings
            f.write(json.dumps(row, default=str) + "\n")
    expected = ga360_expected(ga360_day, "transactionRevenue")
    got = visits_of(spark, "ga360", tmp_path / "sessions.json")
    assert expected.transaction_revenue.sum() > 0 and (expected.transactions > 0).sum() == 43
    pd.testing.assert_frame_equal(got, expected, check_dtype=False, check_like=True)


def test_ga360_parquet_without_total_revenue_gives_what_json_gives(spark, tmp_path, ga360_day):
    pq.write_table(without_total_revenue(ga360_day), tmp_path / "sessions.parquet")
    got = visits_of(spark, "ga360", tmp_path / "sessions.parquet")
    pd.testing.assert_frame_equal(got, ga360_expected(ga360_day, "transactionRevenue"), check_dtype=False, check_like=True)


def test_ga360_days_whose_totals_differ_each_take_their_own_fields(spark, tmp_path, ga360_day):
    """Two files of one input: the first day's totals have totalTransactionRevenue, the second's lack it."""
    half = ga360_day.num_rows // 2
    (tmp_path / "days").mkdir()
    pq.write_table(ga360_day.slice(0, half), tmp_path / "days" / "ga_sessions_1.parquet")
    pq.write_table(without_total_revenue(ga360_day.slice(half)), tmp_path / "days" / "ga_sessions_2.parquet")
    expected = pd.concat([ga360_expected(ga360_day.slice(0, half), "totalTransactionRevenue"),
                          ga360_expected(ga360_day.slice(half), "transactionRevenue")]).sort_index()
    pd.testing.assert_frame_equal(visits_of(spark, "ga360", tmp_path / "days"), expected, check_dtype=False, check_like=True)


@pytest.fixture(scope="module")
def ga4_day() -> pa.Table:
    return pq.read_table(GA4_DAY)


def without_param(table: pa.Table, rows: np.ndarray, key: str) -> pa.Table:
    """The events, `rows` of them stripped of the event parameter `key`."""
    params = table.column("event_params").to_pylist()
    for i in rows:
        params[i] = [p for p in params[i] if p["key"] != key]
    return table.set_column(table.schema.get_field_index("event_params"), "event_params", pa.array(params, table.schema.field("event_params").type))


def with_nulls(table: pa.Table, rows: np.ndarray, column: str) -> pa.Table:
    mask = np.zeros(table.num_rows, dtype=bool)
    mask[rows] = True
    values = pc.if_else(pa.array(mask), pa.nulls(table.num_rows, table.schema.field(column).type), table.column(column))
    return table.set_column(table.schema.get_field_index(column), column, values)


def ga4_expected_sessions(table: pa.Table) -> pd.Series:
    """Events per (user_pseudo_id, ga_session_id) session, only events with both: GA4's sessions."""
    rows = table.select(["user_pseudo_id", "event_params", "event_date"]).to_pylist()
    keys = []
    for r in rows:
        session = next((p["value"]["int_value"] for p in r["event_params"] if p["key"] == "ga_session_id"), None)
        valid_day = isinstance(r["event_date"], str) and len(r["event_date"]) == 8 and r["event_date"].isdigit()
        keys.append(f"{r['user_pseudo_id']}-{session}" if r["user_pseudo_id"] is not None and session is not None and valid_day else None)
    return pd.Series(keys).dropna().value_counts().sort_index()


@pytest.fixture(scope="module")
def consent_mode_day(ga4_day, tmp_path_factory) -> tuple[Path, int, pd.Series]:
    """The day with 1% of events stripped of ga_session_id and another 1% of user_pseudo_id (disjoint)."""
    rng = np.random.default_rng(7)
    picked = rng.choice(ga4_day.num_rows, size=2 * (ga4_day.num_rows // 100), replace=False)
    no_session, no_user = picked[: len(picked) // 2], picked[len(picked) // 2:]
    edited = with_nulls(without_param(ga4_day, no_session, "ga_session_id"), no_user, "user_pseudo_id")
    path = tmp_path_factory.mktemp("consent") / "events_20201101.parquet"
    pq.write_table(edited, path)
    return path, len(picked), ga4_expected_sessions(edited)


def test_ga4_events_without_a_user_or_session_are_counted_and_form_no_visit(spark, consent_mode_day):
    path, invalid, sessions = consent_mode_day
    visits = read_visits(spark, make_config("ga4", str(path)))
    counts = validate_visits(visits, max_invalid_fraction=0.05)
    assert counts == {"rows": len(sessions), "hits": int(sessions.sum()), "invalid_hits": invalid}
    got = pd.Series({r.visit_key: r.hits for r in valid_visits(visits).select("visit_key", "hits").collect()}).sort_index()
    pd.testing.assert_series_equal(got, sessions, check_names=False, check_dtype=False)
    assert all(r.user_key is not None for r in valid_visits(visits).select("user_key").collect())  # no visit keyed by a session id alone


def test_ga4_invalid_events_are_recorded_by_the_run_and_bounded(spark, consent_mode_day, tmp_path, capsys):
    path, invalid, sessions = consent_mode_day
    out = tmp_path / "out"
    args = ["features", "--input-format", "ga4", "--input", str(path), "--output", str(out)]
    assert main([*args, "--set", "run.run_id=r1", "--set", "input.max_invalid_fraction=0.05"]) == 0
    assert len(DeltaTable(str(out / "visit_features")).to_pyarrow_table()) == len(sessions)
    assert main([*args, "--set", "run.run_id=r2"]) == 2  # 2% of the events, above the default bound of 1%
    assert "DataQualityError" in capsys.readouterr().err
    assert set(DeltaTable(str(out / "visit_features")).to_pyarrow_table().column("run_id").to_pylist()) == {"r1"}


@pytest.mark.parametrize("ansi", ["true", "false"])
def test_a_malformed_event_date_is_an_invalid_row_with_ansi_on_or_off(spark, ga4_day, tmp_path, ansi):
    dates = ga4_day.column("event_date").to_pylist()
    dates[5] = "2020-11-01"  # not YYYYMMDD
    edited = ga4_day.set_column(ga4_day.schema.get_field_index("event_date"), "event_date", pa.array(dates))
    pq.write_table(edited, tmp_path / "events.parquet")
    sessions = ga4_expected_sessions(edited)
    with session_conf(spark, {"spark.sql.ansi.enabled": ansi}):
        visits = read_visits(spark, make_config("ga4", str(tmp_path / "events.parquet")))
        counts = validate_visits(visits, max_invalid_fraction=0.01)
        days = {r.visit_date for r in valid_visits(visits).select("visit_date").distinct().collect()}
    assert counts["invalid_hits"] == 1 and counts["rows"] == len(sessions)
    assert None not in days
