"""The cloud helpers: each prints its commands with --dry-run; they must name the right artifact, Delta
source, Spark line and config. And the Spark-line facts of `versions` agree with the constraints files."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from visitseg.core.config import load_config
from visitseg.core.versions import DELTA_PACKAGES, UnsupportedSparkError, delta_package, spark_line

ROOT = Path(__file__).resolve().parents[1]


def dry_run(script: str, *args: str) -> list[list[str]]:
    """The commands a helper prints with --dry-run, each split as the shell would."""
    out = subprocess.run(["bash", f"scripts/{script}", "--dry-run", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [shlex.split(line) for line in out.splitlines()]


def pinned(line: str, package: str) -> str:
    text = (ROOT / "constraints" / f"spark-{line}.txt").read_text()
    return re.search(rf"^{re.escape(package)}==(\S+)$", text, re.M).group(1)


@pytest.mark.parametrize("image", ["2.3", "3.0"])
def test_dataproc_uses_the_delta_component_and_the_zip(image):
    create, submit = dry_run("submit_dataproc.sh", "--create", "--image", image, "seg", "europe-west1", "p.d.ga_sessions_*", "gs://b/out")
    assert create[:4] == ["gcloud", "dataproc", "clusters", "create"]
    assert f"--image-version={image}" in create and "--optional-components=DELTA" in create
    assert f"--properties=dataproc:pip.packages=deltalake=={pinned('4', 'deltalake')}" in create
    assert submit[:6] == ["gcloud", "dataproc", "jobs", "submit", "pyspark", "jobs/segment_visits.py"]
    assert "--py-files=dist/visitseg.zip" in submit and "--files=conf/dataproc.toml" in submit
    assert submit[submit.index("--") + 1:][:2] == ["--config", "dataproc.toml"]
    # The component provides Delta for the image's Spark and Scala; a --packages would risk a mismatch.
    assert not any("jars.packages" in word for word in create + submit)


def test_emr_enables_delta_python_311_and_submits_the_zip():
    *copies, create, step = dry_run("submit_emr.sh", "--create", "seg", "s3://b/visitseg", "s3://b/ga4/", "s3://b/out")
    assert [c[4] for c in copies] == ["s3://b/visitseg/visitseg.zip", "s3://b/visitseg/segment_visits.py", "s3://b/visitseg/emr.toml", "s3://b/visitseg/emr_bootstrap.sh"]
    assert create[create.index("--release-label") + 1] == "emr-7.13.0"
    assert "file://conf/emr-configurations.json" in create and "Path=s3://b/visitseg/emr_bootstrap.sh" in create
    configurations = {c["Classification"]: c for c in json.loads((ROOT / "conf" / "emr-configurations.json").read_text())}
    assert configurations["delta-defaults"]["Properties"] == {"delta.enabled": "true"}
    assert configurations["spark-env"]["Configurations"][0]["Properties"]["PYSPARK_PYTHON"] == "/usr/bin/python3.11"
    assert "python3.11" in (ROOT / "scripts" / "emr_bootstrap.sh").read_text()
    args = step[step.index("--steps") + 1]
    assert args.startswith("Type=Spark,") and "--py-files,s3://b/visitseg/visitseg.zip" in args and "--config,emr.toml" in args
    with pytest.raises(subprocess.CalledProcessError):
        dry_run("submit_emr.sh", "--release", "emr-6.15.0", "c", "s3://b", "in", "out")  # Spark 3.4: not supported


@pytest.mark.parametrize("runtime, spark_version", [("15.4", "15.4.x-scala2.12"), ("17.3", "17.3.x-scala2.13")])
def test_databricks_runs_on_the_runtimes_delta_with_deltalake_for_the_driver(runtime, spark_version):
    *copies, submit = dry_run("submit_databricks.sh", "--runtime", runtime, "dbfs:/visitseg", "dbfs:/ga4", "dbfs:/out")
    assert [c[5] for c in copies] == ["dbfs:/visitseg/visitseg.zip", "dbfs:/visitseg/segment_visits.py", "dbfs:/visitseg/databricks.toml"]
    task = json.loads(submit[submit.index("--json") + 1])["tasks"][0]
    assert task["new_cluster"]["spark_version"] == spark_version
    assert task["libraries"] == [{"pypi": {"package": f"deltalake=={pinned('4', 'deltalake')}"}}]
    parameters = task["spark_submit_task"]["parameters"]
    assert parameters[:2] == ["--py-files", "dbfs:/visitseg/visitseg.zip"] and "databricks.toml" in parameters


@pytest.mark.parametrize("name", ["dataproc", "emr", "databricks", "local"])
def test_every_cloud_config_file_loads(name):
    cfg = load_config([str(ROOT / "conf" / f"{name}.toml")], [])
    if name != "local":
        assert cfg.output.delta_writer == "native"  # the clusters have Delta: fail loudly if it is missing


def test_bad_image_is_refused_with_exit_2():
    result = subprocess.run(["bash", "scripts/submit_dataproc.sh", "--dry-run", "--image", "2.1", "c", "r", "i", "o"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 2 and "--image must be 2.3 (Spark 3.5) or 3.0 (Spark 4.1)" in result.stderr


def delta_jar_of_the_tests(line: str) -> str:
    """The Delta coordinates the suite runs Spark's Delta source with on a line (delta-jars/pom.xml's profile)."""
    pom = (ROOT / "delta-jars" / "pom.xml").read_text()
    profile = re.search(rf"<id>spark-{re.escape(line)}</id>\s*<properties>(.*?)</properties>", pom, re.S).group(1)
    artifact, version = (re.search(rf"<delta.{tag}>(.*?)</delta.{tag}>", profile).group(1) for tag in ("artifact", "version"))
    return f"io.delta:{artifact}:{version}"


def test_the_delta_package_advised_per_spark_line_is_the_one_the_tests_run_with():
    assert delta_package(pinned("3.5", "pyspark")) == delta_jar_of_the_tests("3.5") == "io.delta:delta-spark_2.12:3.3.3"
    assert delta_package(pinned("4", "pyspark")) == delta_jar_of_the_tests("4")
    assert spark_line("4.2.0-preview1") == (4, 2)
    assert all(package.startswith("io.delta:delta-spark_2.13:4.") for (major, _), package in DELTA_PACKAGES.items() if major == 4 and package)
    assert delta_package("4.3.0") is None  # no Delta release for Spark 4.3 yet: the jar-free writer only
    with pytest.raises(UnsupportedSparkError, match=r"Spark 3\.4\.1 is not a line visitseg supports \(3\.5, 4\.0, 4\.1, 4\.2, 4\.3\)"):
        delta_package("3.4.1")
