"""A real Spark standalone cluster on 127.0.0.1 (a master and two workers from the pyspark distribution),
the packaged job submitted to it with spark-submit --py-files, and its outputs compared with local mode.
The cluster is always stopped, also when the test fails."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pyspark
import pytest
from deltalake import DeltaTable

from visitseg import sample_data
from visitseg.cli import main

ROOT = Path(__file__).resolve().parents[1]
SPARK_HOME = Path(pyspark.__file__).parent
ARGS = ["--set", "run.run_id=cluster", "--set", "model.k_max=6", "--set", "spark.shuffle_partitions=2"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise TimeoutError(f"gave up waiting for {what}")


def alive_workers(ui_port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/json/", timeout=2) as response:
            return int(json.load(response)["aliveworkers"])
    except (OSError, ValueError):  # not listening yet, or the UI answered before the master was ready (empty body)
        return 0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """spark://127.0.0.1:<port> with two 1-core workers; torn down whatever happens."""
    work = tmp_path_factory.mktemp("standalone")
    env = {**os.environ, "SPARK_HOME": str(SPARK_HOME), "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_LOG_DIR": str(work)}
    port, ui = free_port(), free_port()
    spark_class = str(SPARK_HOME / "bin" / "spark-class")
    processes = []
    try:
        processes.append(subprocess.Popen(
            [spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port), "--webui-port", str(ui)],
            env=env, stdout=open(work / "master.log", "w"), stderr=subprocess.STDOUT,
        ))
        for i in range(2):
            processes.append(subprocess.Popen(
                [spark_class, "org.apache.spark.deploy.worker.Worker", f"spark://127.0.0.1:{port}", "--host", "127.0.0.1",
                 "--cores", "1", "--memory", "1g", "--webui-port", str(free_port()), "--work-dir", str(work / f"worker{i}")],
                env=env, stdout=open(work / f"worker{i}.log", "w"), stderr=subprocess.STDOUT,
            ))
        wait_for(lambda: alive_workers(ui) == 2, 120, "two workers to register with the master")
        yield f"spark://127.0.0.1:{port}", env
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def test_packaged_job_on_a_standalone_cluster_matches_local_mode(cluster, spark, tmp_path):
    master, env = cluster
    data = tmp_path / "ga360"
    sample_data.write_sample(spark, "ga360", str(data), 1200, days=5, seed=5, file_format="json")
    artifact = subprocess.run(["bash", str(ROOT / "scripts" / "package.sh"), str(tmp_path / "dist")], check=True,
                              capture_output=True, text=True).stdout.strip().splitlines()[-1]

    submit = subprocess.run(
        [str(SPARK_HOME / "bin" / "spark-submit"), "--master", master, "--py-files", artifact,
         "--conf", "spark.executor.memory=512m", "--conf", "spark.cores.max=2",
         str(ROOT / "jobs" / "segment_visits.py"), "--input-format", "ga360", "--input", str(data),
         "--output", str(tmp_path / "cluster"), *ARGS],
        env={**env, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable},
        capture_output=True, text=True, timeout=900, cwd=tmp_path,
    )
    assert submit.returncode == 0, submit.stderr[-5000:]
    assert "visitseg.zip" in submit.stderr  # the job ran from the packaged artifact
    assert f"master {master}" in submit.stderr
    assert main(["run", "--input-format", "ga360", "--input", str(data), "--output", str(tmp_path / "local"), *ARGS]) == 0

    def outputs(out):
        centers = DeltaTable(str(out / "cluster_centers")).to_pyarrow_table().to_pandas().sort_values("cluster_id")
        diag = DeltaTable(str(out / "k_diagnostics")).to_pyarrow_table().to_pandas().sort_values("k")
        return centers, diag

    (c_cluster, d_cluster), (c_local, d_local) = outputs(tmp_path / "cluster"), outputs(tmp_path / "local")
    assert c_cluster.n_visits.tolist() == c_local.n_visits.tolist()
    assert c_cluster.segment.tolist() == c_local.segment.tolist()
    assert d_cluster.chosen.tolist() == d_local.chosen.tolist()
    for metric in ("inertia", "silhouette", "davies_bouldin", "calinski_harabasz"):
        assert d_cluster[metric].tolist() == pytest.approx(d_local[metric].tolist(), rel=1e-3), metric
