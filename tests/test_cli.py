"""The command line, in process: every format end to end, and bad input → named error, exit 2, nothing written."""

from __future__ import annotations

import json
import re

import pytest
from deltalake import DeltaTable
from support import spark4_only, write_json_lines
from test_ga360 import SESSIONS

from visitseg.ingest import sample_data
from visitseg.cli import main

N_VISITS = 240


@pytest.fixture(scope="module")
def samples(spark, tmp_path_factory):
    """Planted sample input in each format (as the generator writes it) with its planted labels."""
    root = tmp_path_factory.mktemp("samples")
    made = {}
    for fmt, file_format in (("ga360", "json"), ("ga4", "parquet"), ("events", "csv")):
        path = str(root / fmt)
        labels = sample_data.write_sample(spark, fmt, path, N_VISITS, days=5, seed=7, file_format=file_format)
        made[fmt] = (path, {r.visit_key for r in labels.collect()})
    return made


@pytest.mark.parametrize("fmt", ["ga360", "ga4", "events"])
def test_features_end_to_end_for_each_format(spark, samples, tmp_path, fmt, capsys):
    path, planted_keys = samples[fmt]
    out = tmp_path / "out"

    code = main(["features", "--input-format", fmt, "--input", path, "--output", str(out), "--set", "run.run_id=r1"])

    assert code == 0
    table = DeltaTable(str(out / "visit_features")).to_pyarrow_table()
    assert table.schema.names == [
        "visit_key", "user_key", "visit_date", "visit_start_ts", "channel", "source", "medium", "device", "country", "pageviews", "hits",
        "unique_pages", "time_on_site_sec", "transactions", "transaction_revenue", "time_on_site_sec_per_pageview", "hits_per_pageview",
        "searches", "product_views", "add_to_carts", "checkouts", "shipping_infos", "payment_infos", "cart_steps", "engagement_time_sec",
        "is_bounce", "run_id",
    ]
    assert set(table.column("visit_key").to_pylist()) == planted_keys  # one row per planted visit
    assert table.num_rows == N_VISITS
    assert set(table.column("run_id").to_pylist()) == {"r1"}
    assert f"visit_features: {N_VISITS} rows, run_id r1" in capsys.readouterr().out


def test_user_grain(spark, samples, tmp_path):
    path, _ = samples["ga360"]
    code = main(["features", "--input-format", "ga360", "--input", path, "--output", str(tmp_path), "--set", "features.grain=user"])
    assert code == 0
    table = DeltaTable(str(tmp_path / "user_features")).to_pyarrow_table()
    assert table.schema.names == [
        "user_key", "sessions", "total_views", "product_views", "add_to_carts", "searches", "cart_steps", "transactions", "revenue",
        "engagement_time_sec", "time_on_site_sec", "bounced_sessions", "views_per_session", "purchase_ratio", "active_days",
        "first_visit_date", "last_visit_date", "recency_days", "run_id",
    ]
    assert table.num_rows == N_VISITS // sample_data.VISITS_PER_USER
    assert sum(table.column("sessions").to_pylist()) == N_VISITS


def test_rerun_of_a_run_id_replaces_its_partition(spark, samples, tmp_path):
    path, _ = samples["events"]
    args = ["features", "--input-format", "events", "--input", path, "--output", str(tmp_path), "--set", "run.run_id=same"]
    assert main(args) == 0 and main(args) == 0
    table = DeltaTable(str(tmp_path / "visit_features"))
    assert table.version() == 1
    assert table.to_pyarrow_table().num_rows == N_VISITS


def bad_session_inputs(tmp_path):
    """Each bad input as (name, args builder, expected message)."""
    negative = json.loads(json.dumps(SESSIONS))
    negative[0]["hits"][3]["transaction"]["transactionRevenue"] = "-5000000"
    return {
        "missing column": (write_json_lines(tmp_path / "a" / "x.json", SESSIONS), [], "hits is missing"),
        "duplicate visit keys": (write_json_lines(tmp_path / "b" / "x.json", SESSIONS + SESSIONS[:1]), [], "occur more than once, e.g. 111-1001"),
        "negative revenue": (write_json_lines(tmp_path / "c" / "x.json", negative), [], "1 rows with negative transaction_revenue \\(e.g. 111-1001\\)"),
        "empty after date filter": (write_json_lines(tmp_path / "d" / "x.json", SESSIONS), ["input.date_from=2030-01-01"], "no rows"),
        "impossible config": (write_json_lines(tmp_path / "e" / "x.json", SESSIONS), ["input.date_from=2026-10-02", "input.date_to=2026-10-01"], "must be after input.date_from"),
        "no such input": (str(tmp_path / "nothing" / "x.json"), [], "no such file or folder"),
    }


@pytest.mark.parametrize(
    "case",
    ["missing column", "duplicate visit keys", "negative revenue", "empty after date filter", "impossible config",
     "no such input"],
)
def test_bad_input_is_a_named_error_with_exit_2_and_leaves_tables_untouched(spark, samples, tmp_path, capsys, case):
    out = tmp_path / "out"
    good, _ = samples["ga360"]
    assert main(["features", "--input-format", "ga360", "--input", good, "--output", str(out), "--set", "run.run_id=r1"]) == 0
    before = DeltaTable(str(out / "visit_features")).to_pyarrow_table()
    capsys.readouterr()

    cases = bad_session_inputs(tmp_path)
    path, overrides, message = cases[case]
    if case == "missing column":  # a Parquet export whose sessions lack the nested hits
        spark.read.json(path).drop("hits").write.parquet(str(tmp_path / "nohits"))
        path = str(tmp_path / "nohits")
    sets = [arg for o in ["run.run_id=r1", *overrides] for arg in ("--set", o)]
    code = main(["features", "--input-format", "ga360", "--input", path, "--output", str(out), *sets])

    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("visitseg: error: ")
    assert re.search(message, err), err
    after = DeltaTable(str(out / "visit_features"))
    assert after.version() == 0
    assert after.to_pyarrow_table().equals(before)


def test_unknown_format_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["features", "--input-format", "csv", "--input", "x", "--output", "y"])
    assert exc.value.code == 2
    assert "invalid choice: 'csv'" in capsys.readouterr().err


def test_generate_writes_the_requested_size_and_planted_labels(spark, tmp_path, capsys):
    out = tmp_path / "events"
    code = main(["generate", "--format", "events", "--hits", "4000", "--days", "3", "--seed", "9", "--output", str(out)])
    assert code == 0
    planted = spark.read.parquet(str(out / "_planted"))
    assert planted.count() == sample_data.visits_for_hits(4000)
    events = spark.read.option("header", True).csv(str(out))
    assert abs(events.count() - 4000) < 600  # the mix averages MEAN_HITS_PER_VISIT hits (events lack checkouts)
    assert "planted labels in" in capsys.readouterr().out


@spark4_only("`demo` is `run` on the bundled sample, which tests/test_run.py runs on every line")
def test_demo_runs_the_whole_job_on_its_sample_and_prints_the_segments(spark, tmp_path, capsys):
    """`make demo`, the README's first command: the sample hits, then everything `run` does, drift
    check included (its `--fail-on-drift` flag once went missing from `demo` and crashed its last line)."""
    from visitseg.cli import DEMO_VISITS

    assert main(["demo", "--output", str(tmp_path / "demo"), "--set", "run.run_id=demo"]) == 0
    out = capsys.readouterr().out
    assert f"run demo: {DEMO_VISITS:,} rows, K = " in out
    assert "report: " in out and "report.html" in out
    runs = DeltaTable(str(tmp_path / "demo" / "runs")).to_pyarrow_table().to_pylist()
    assert [(r["run_id"], r["n_rows"]) for r in runs] == [("demo", DEMO_VISITS)]
