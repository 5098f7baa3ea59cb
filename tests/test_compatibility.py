"""An output and a model written by an older visitseg keep working with this one.

The older visitseg is the last release before the package was split into layers (OLD_RELEASE), taken
from this repository's history with `git archive` and run in a process of its own. This version then
scores with that run's model, retrains into the same output (its segment ids continue the old run's,
its drift is measured against it) and draws the old run's report page.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from deltalake import DeltaTable
from support import spark4_only

from visitseg.cli import main
from visitseg.ingest import sample_data

REPOSITORY = Path(__file__).resolve().parents[1]
OLD_RELEASE = "2e1b288"  # the flat package, before the layers (issue "A house a newcomer can read")
N_VISITS = 1200
K_RANGE = ["--set", "model.k_min=2", "--set", "model.k_max=6"]


def table(path: Path) -> pd.DataFrame:
    return DeltaTable(str(path)).to_pyarrow_table().to_pandas()


def old_package(root: Path) -> Path:
    """The OLD_RELEASE's `lib/` unpacked under root (skips where this clone lacks that commit)."""
    archive = subprocess.run(["git", "-C", str(REPOSITORY), "archive", OLD_RELEASE, "lib"], capture_output=True)
    if archive.returncode != 0:
        pytest.skip(f"commit {OLD_RELEASE} is not in this clone ({archive.stderr.decode().strip()}): no older visitseg to write an output with")
    tarfile.open(fileobj=io.BytesIO(archive.stdout)).extractall(root, filter="data")
    return root / "lib"


# One Spark line is enough: what is tested is the output's layout and the model's files, not Spark.
pytestmark = spark4_only("the output's layout and model files do not depend on the line")


@pytest.fixture(scope="module")
def old_output(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("compatibility")
    lib = old_package(root / "old")
    sample_data.write_sample(spark, "ga360", str(root / "input"), N_VISITS, days=5, seed=23, file_format="json")
    args = ["run", "--input-format", "ga360", "--input", str(root / "input"), "--output", str(root / "out"), "--set", "run.run_id=old", *K_RANGE]
    env = {**os.environ, "PYTHONPATH": str(lib)}
    code = "import sys, visitseg; assert visitseg.__file__.startswith(sys.argv[1]), visitseg.__file__; from visitseg.cli import main; sys.exit(main(sys.argv[2:]))"
    done = subprocess.run([sys.executable, "-c", code, str(lib), *args], env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert not (root / "out" / "runs").exists() or set(table(root / "out" / "runs").run_id) == {"old"}
    return root


def test_the_old_model_scores_with_this_version_as_it_labelled(old_output):
    out = old_output / "out"
    args = ["score", "--model", str(out / "models" / "old"), "--input-format", "ga360", "--input", str(old_output / "input"),
            "--output", str(out), "--set", "run.run_id=s-new"]
    assert main(args) == 0
    both = table(out / "session_scores").merge(table(out / "session_clusters"), on="visit_key", suffixes=("", "_old"), validate="one_to_one")
    assert len(both) == N_VISITS
    assert (both.cluster_id == both.cluster_id_old).all() and (both.segment == both.segment_old).all()
    assert np.allclose(both.distance_to_centroid, both.distance_to_centroid_old, rtol=0, atol=1e-12)


def test_a_retrain_continues_the_old_run_and_its_report_still_draws(old_output):
    out = old_output / "out"
    args = ["run", "--input-format", "ga360", "--input", str(old_output / "input"), "--output", str(out), "--set", "run.run_id=new", *K_RANGE]
    assert main(args) == 0
    runs = table(out / "runs")
    assert set(runs.run_id) == {"old", "new"}
    lineage = table(out / "cluster_lineage")
    assert set(lineage.previous_run_id) == {"old"} and lineage.previous_cluster_id.notna().all()  # the same visits: every cluster continues
    assert lineage.adjusted_rand_index.iloc[0] == pytest.approx(1.0)
    assert set(table(out / "drift").reference_run_id) == {"old"}
    assert main(["report", "--output", str(out), "--run-id", "old"]) == 0
    page = (out / "reports" / "old" / "report.html").read_text()
    old_segments = set(table(out / "cluster_centers").query("run_id == 'old'").segment)
    assert all(name in page for name in old_segments)
