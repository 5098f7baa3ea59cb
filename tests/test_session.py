"""The driver JVM a local run starts: visitseg's own options by default, the user's when spark.conf sets them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from support import spark4_only, succeeded, visitseg_process

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
    process = subprocess.run([sys.executable, "-c", SESSION, json.dumps(conf)], capture_output=True, text=True, timeout=300)
    assert process.returncode == 0, process.stderr[-3000:]
    assert process.stdout.strip().splitlines()[-1] == collector


def generate(output: Path, archives: Path) -> str:
    """A local `visitseg generate` with its own archive folder; its log (stdout and stderr)."""
    args = ["generate", "--format", "ga360", "--hits", "2000", "--days", "1", "--output", str(output),
            "--set", "spark.master=local[1]", "--set", f"spark.class_archives={archives}"]
    log = output.with_suffix(".log")
    return succeeded(visitseg_process(args, log), log)


@spark4_only("the archive is the JVM's own (one per line, named by its digest); the same Java runs both lines")
def test_a_local_command_writes_the_class_archive_at_its_end_and_the_next_one_starts_from_it(tmp_path):
    archives = tmp_path / "archives"
    generate(tmp_path / "one", archives)
    written = sorted(archives.iterdir())
    assert [p.suffix for p in written] == [".jsa"], written  # its final name only: no temporary file is left
    assert written[0].stat().st_size > 10 * 2**20  # thousands of Spark's classes
    second = generate(tmp_path / "two", archives)
    assert f"class archive: started from {written[0]}" in second
    assert "Unable to use shared archive" not in second  # the JVM took it
    assert sorted(archives.iterdir()) == written
