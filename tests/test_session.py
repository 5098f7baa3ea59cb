"""The driver JVM a local run starts: visitseg's own options by default, the user's when spark.conf sets them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

SESSION = """
import json, sys
from visitseg.core.config import SparkConfig
from visitseg.core.spark import build_session, driver_collector
spark = build_session(SparkConfig(master="local[1]", conf={"spark.ui.enabled": "false", **json.loads(sys.argv[1])}))
print(driver_collector(spark))
"""


@pytest.mark.parametrize(
    "conf, collector",
    [
        ({}, "PS MarkSweep, PS Scavenge"),  # spark.local_java_options' default, -XX:+UseParallelGC (the JVM's own default is G1)
        ({"spark.driver.extraJavaOptions": "-XX:+UseSerialGC"}, "Copy, MarkSweepCompact"),  # the user's options, alone
    ],
)
def test_the_driver_jvm_runs_the_local_java_options_unless_spark_conf_sets_its_own(conf, collector):
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"}
    process = subprocess.run([sys.executable, "-c", SESSION, json.dumps(conf)], env=env, capture_output=True, text=True, timeout=300)
    assert process.returncode == 0, process.stderr[-3000:]
    assert process.stdout.strip().splitlines()[-1] == collector


def generate(output, archives) -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", "import sys; from visitseg.cli import main; sys.exit(main(sys.argv[1:]))", "generate", "--format", "ga360",
               "--hits", "2000", "--days", "1", "--output", str(output), "--set", "spark.master=local[1]", "--set", f"spark.class_archives={archives}"]
    return subprocess.run(command, env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"}, capture_output=True, text=True, timeout=600)


def test_a_local_command_writes_the_class_archive_at_its_end_and_the_next_one_starts_from_it(tmp_path):
    archives = tmp_path / "archives"
    first = generate(tmp_path / "one", archives)
    assert first.returncode == 0, first.stderr[-3000:]
    written = sorted(archives.iterdir())
    assert [p.suffix for p in written] == [".jsa"], written  # its final name only: no temporary file is left
    assert written[0].stat().st_size > 10 * 2**20  # thousands of Spark's classes
    second = generate(tmp_path / "two", archives)
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"class archive: started from {written[0]}" in second.stderr
    assert "Unable to use shared archive" not in second.stdout + second.stderr  # the JVM took it
    assert sorted(archives.iterdir()) == written
