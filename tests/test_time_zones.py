"""`visit_date` and every table mean the same whatever the machine's or the session's time zone: the same
run in a process with TZ and spark.sql.session.timeZone set to America/Los_Angeles writes the tables a
UTC process writes, and draws the same report, its times in UTC."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from deltalake import DeltaTable

from visitseg.ingest import sample_data

from support import spark4_only, started, succeeded

TABLES = {
    "visit_features": ["visit_key"],
    "session_clusters": ["visit_key"],
    "cluster_centers": ["cluster_id"],
    "segment_kpis_daily": ["visit_date", "cluster_id"],
    "cluster_mix_daily": ["visit_date", "cluster_id"],
    "segment_transitions": ["from_segment", "to_segment"],
    "paths_to_purchase": ["rank"],
    "segment_attributes": ["cluster_id", "attribute", "rank"],
}
# The report's sections drawn from those tables; the summary and data quality also hold each run's own times.
SAME_SECTIONS = ("segments", "profiles", "journeys", "k", "daily")
RUN = "import sys; from visitseg.cli import main; sys.exit(main(sys.argv[1:]))"


def run_in_zone(input_path: Path, fmt: str, output: Path, zone: str) -> subprocess.Popen:
    env = {**os.environ, "TZ": zone, "SPARK_LOCAL_IP": "127.0.0.1"}
    args = ["run", "--input-format", fmt, "--input", str(input_path), "--output", str(output), "--set", "run.run_id=tz",
            "--set", "model.k_min=3", "--set", "model.k_max=3", "--set", "spark.master=local[2]",
            "--set", f'spark.conf.spark.sql.session.timeZone="{zone}"', "--set", 'spark.conf.spark.ui.enabled="false"']
    return started([sys.executable, "-c", RUN, *args], output.parent / f"{output.name}.log", env=env)


def table(output: Path, name: str, keys: list[str]) -> pd.DataFrame:
    frame = DeltaTable(str(output / name)).to_pyarrow_table().to_pandas()
    return frame.sort_values(keys).reset_index(drop=True)


@spark4_only("the visit dates come from visitseg's own conversion of epoch instants, the same code on both lines; two fresh processes, ~55 s a line")
@pytest.mark.parametrize("fmt", ["events"])  # the one format whose dates come from instants (GA's carry their own date)
def test_a_los_angeles_process_writes_the_tables_a_utc_process_writes(spark, tmp_path, fmt):
    sample_data.write_sample(spark, fmt, str(tmp_path / "input"), 500, days=3, seed=11)
    runs = [run_in_zone(tmp_path / "input", fmt, tmp_path / zone, name) for zone, name in (("utc", "UTC"), ("la", "America/Los_Angeles"))]
    for process, zone in zip(runs, ("utc", "la")):
        succeeded(process, tmp_path / f"{zone}.log")
    for name, keys in TABLES.items():
        utc, la = table(tmp_path / "utc", name, keys), table(tmp_path / "la", name, keys)
        assert len(utc) > 0, name
        pd.testing.assert_frame_equal(utc, la, check_exact=False, rtol=1e-12, obj=name)
    pages = {zone: (tmp_path / zone / "reports" / "tz" / "report.html").read_text() for zone in ("utc", "la")}
    for anchor in SAME_SECTIONS:
        utc, la = (section(pages[zone], anchor) for zone in ("utc", "la"))
        assert utc == la, anchor
    # The page says when the Los Angeles run ran in UTC, as its `runs` row holds it (deltalake: UTC instants).
    started = DeltaTable(str(tmp_path / "la" / "runs")).to_pandas().started_at[0]
    assert f'{started.tz_convert("UTC"):%Y-%m-%d %H:%M:%S} UTC to' in section(pages["la"], "summary")


def section(page: str, anchor: str) -> str:
    return page.split(f'<section id="{anchor}">')[1].split("</section>")[0]
