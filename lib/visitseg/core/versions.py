"""The Spark lines visitseg supports, and the one thing about Delta that differs between them.

visitseg runs on Spark 3.5 (Dataproc 2.2/2.3, EMR 7, Databricks 15.4 LTS) and 4.0–4.3 (Dataproc 3.x,
Databricks 17+) with the same code: public PySpark APIs only. What a user must pick per line is the
Delta Lake artifact, because each Delta line is built for one Spark line and one Scala version (Delta's
compatibility table, docs.delta.io/releases; delta-spark's own pyspark pins on PyPI). Spark 4.3 has no
Delta Lake release yet (delta-spark 4.4 stops at pyspark 4.2.0): there visitseg writes with the jar-free
writer only.
"""

from __future__ import annotations

import re

# Spark line → the Delta Lake package to put on `--packages` where the cluster does not provide Delta.
DELTA_PACKAGES = {
    (3, 5): "io.delta:delta-spark_2.12:3.3.3",  # Delta 3.3.x: Spark 3.5.3+, Scala 2.12 (Spark 3.5's default)
    (4, 0): "io.delta:delta-spark_2.13:4.0.1",  # Delta 4.0.x: Spark 4.0, Scala 2.13
    (4, 1): "io.delta:delta-spark_2.13:4.3.1",  # Delta 4.2–4.3: pyspark 4.0.1–4.1.1
    (4, 2): "io.delta:delta-spark_2.13:4.4.0",  # Delta 4.4.0: built against Spark 4.2.0
    (4, 3): None,  # no Delta Lake release for Spark 4.3 yet
}


class UnsupportedSparkError(RuntimeError):
    """A Spark version outside the supported lines."""


def spark_line(version: str) -> tuple[int, int]:
    """(major, minor) of a Spark version string such as "3.5.9" or "4.2.0-preview1"."""
    match = re.match(r"^(\d+)\.(\d+)", version)
    if not match:
        raise UnsupportedSparkError(f"cannot read a Spark version from {version!r}")
    return int(match.group(1)), int(match.group(2))


def delta_package(version: str) -> str | None:
    """The Delta Lake Maven coordinates for this Spark version; None where no Delta release supports it."""
    line = spark_line(version)
    if line not in DELTA_PACKAGES:
        lines = ", ".join(f"{major}.{minor}" for major, minor in DELTA_PACKAGES)
        raise UnsupportedSparkError(f"Spark {version} is not a line visitseg supports ({lines})")
    return DELTA_PACKAGES[line]
