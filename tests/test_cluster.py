"""A real Spark standalone cluster on 127.0.0.1 (a master and two workers from the pyspark distribution),
the packaged job submitted to it with spark-submit --py-files (and, where this line's Delta jars were
fetched, --jars: the job writes through Spark's own Delta source, as on Dataproc or EMR, its executors
in JVMs of their own), and its outputs compared with local mode
on 1, 2 and 4 cores: the same input, configuration and seed must give the same chosen K, the same label
for every visit, and k_diagnostics equal to 1e-6 relative, whatever the cluster's shape.
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

from visitseg.ingest import sample_data
from visitseg.cli import main

from support import delta_jars, spark4_only, started, succeeded

ROOT = Path(__file__).resolve().parents[1]
# The 3.5 line's Delta jars write through Spark's own writer in local mode (test_delta, test_incremental).
pytestmark = spark4_only("the standalone-cluster test, 250-316 s a line")
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

    # Local mode on 1 and 4 cores (each needs a JVM of its own) runs beside the cluster's job: all three spend
    # most of their time waiting on short jobs, and the comparison does not depend on how they overlap.
    local = {
        cores: started([sys.executable, "-c", "import sys; from visitseg.cli import main; sys.exit(main())", "run", "--input-format", "ga360",
                        "--input", str(data), "--output", str(tmp_path / f"local{cores}"), *ARGS, "--set", f"spark.master=local[{cores}]"],
                       tmp_path / f"local{cores}.log", env=env, cwd=tmp_path)
        for cores in (1, 4)
    }
    native = ["--jars", ",".join(delta_jars())] if delta_jars() else []
    submit = subprocess.run(
        [str(SPARK_HOME / "bin" / "spark-submit"), "--master", master, "--py-files", artifact, *native,
         "--conf", "spark.executor.memory=512m", "--conf", "spark.cores.max=2",
         str(ROOT / "jobs" / "segment_visits.py"), "--input-format", "ga360", "--input", str(data),
         "--output", str(tmp_path / "cluster"), *ARGS],
        env={**env, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable},
        capture_output=True, text=True, timeout=900, cwd=tmp_path,
    )
    assert submit.returncode == 0, submit.stderr[-5000:]
    assert "visitseg.zip" in submit.stderr  # the job ran from the packaged artifact
    assert f"master {master}" in submit.stderr
    written_by = DeltaTable(str(tmp_path / "cluster" / "runs")).to_pyarrow_table().column("delta_writer").to_pylist()
    assert written_by == ["native" if native else "deltalake"]
    assert main(["run", "--input-format", "ga360", "--input", str(data), "--output", str(tmp_path / "local2"), *ARGS]) == 0
    for cores, process in local.items():
        succeeded(process, tmp_path / f"local{cores}.log")

    def outputs(out):
        labels = DeltaTable(str(out / "session_clusters")).to_pyarrow_table().to_pandas().set_index("visit_key").sort_index()
        centers = DeltaTable(str(out / "cluster_centers")).to_pyarrow_table().to_pandas().sort_values("cluster_id")
        diag = DeltaTable(str(out / "k_diagnostics")).to_pyarrow_table().to_pandas().sort_values("k")
        return labels, centers, diag

    reference = outputs(tmp_path / "cluster")
    assert len(reference[0]) == 1200
    for name in ("local1", "local2", "local4"):
        labels, centers, diag = outputs(tmp_path / name)
        assert labels.cluster_id.equals(reference[0].cluster_id), name
        assert centers.n_visits.tolist() == reference[1].n_visits.tolist(), name
        assert centers.segment.tolist() == reference[1].segment.tolist(), name
        assert diag.chosen.tolist() == reference[2].chosen.tolist(), name
        for metric in ("inertia", "silhouette", "davies_bouldin", "calinski_harabasz", "stability"):
            assert diag[metric].tolist() == pytest.approx(reference[2][metric].tolist(), rel=1e-6), (name, metric)
