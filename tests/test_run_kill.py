"""kill -9 of `visitseg run`, per Delta writer: a run killed as soon as its first table is committed (its
labels, centres, diagnostics, daily tables, journeys, model and `runs` row are not) is invisible, every
table reads back, and the rerun, replacing that partition, lands exactly once.

Through Spark's own Delta writer (as clusters write) and the jar-free one, on the Spark 4 line: the
staging and the commit order are the driver's own code (on the 3.5 line the incremental kill trial goes
through Spark's Delta writer; support.CRASH_TRIALS_LINE). Kills at random moments of `run` and `score`,
the same run id twice at once, vacuum and orphans, and concurrent processes: `scripts/chaos.py --writer
native|deltalake`, by hand (docs/development.md); each fresh process costs 30-60 s here, more than CI's
budget allows for them."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from deltalake import DeltaTable

from support import NOT_CRASH_TRIALS_LINE, ON_CRASH_TRIALS_LINE, kill_when_logged, one_k, succeeded, visitseg_process, writer_overrides
from visitseg.ingest import sample_data

RUN_TABLES = ("visit_features", "session_clusters", "cluster_centers", "k_diagnostics", "cluster_mix_daily", "segment_kpis_daily", "segment_transitions")
FEATURES_COMMITTED = "stage write visit_features: done"


def table(out: Path, name: str) -> pd.DataFrame:
    return DeltaTable(str(out / name)).to_pyarrow_table().to_pandas()


@pytest.mark.parametrize("writer", ["native", "deltalake"])
def test_a_run_killed_between_its_commits_is_invisible_and_its_rerun_lands_once(spark, tmp_path, writer):
    if not ON_CRASH_TRIALS_LINE:
        pytest.skip(NOT_CRASH_TRIALS_LINE)
    overrides = writer_overrides(writer)
    sample_data.write_sample(spark, "ga360", str(tmp_path / "input"), 600, days=3, seed=9, file_format="json")
    out = tmp_path / "out"
    args = ["run", "--input-format", "ga360", "--input", str(tmp_path / "input"), "--output", str(out), "--set", "run.run_id=k", *one_k(3), *overrides]  # the writes are under test, not the K rule
    killed = visitseg_process(args, tmp_path / "killed.log")
    kill_when_logged(killed, tmp_path / "killed.log", FEATURES_COMMITTED)
    assert not (out / "runs").exists() and not (out / "models" / "k").exists()  # not listed: BI's views and `score --model latest` cannot see it
    committed = table(out, "visit_features")
    assert len(committed) > 0 and committed.visit_key.is_unique

    succeeded(visitseg_process(args, tmp_path / "rerun.log"), tmp_path / "rerun.log")
    runs = table(out, "runs")
    assert runs.run_id.tolist() == ["k"] and runs.delta_writer.tolist() == [writer]
    assert all(set(table(out, name).run_id) == {"k"} for name in RUN_TABLES)
    features, labels = table(out, "visit_features"), table(out, "session_clusters")
    assert features.visit_key.is_unique and labels.visit_key.is_unique
    assert set(features.visit_key) == set(labels.visit_key) == set(committed.visit_key)
