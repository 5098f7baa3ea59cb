"""A class-data archive for the driver JVM that a local run starts itself (the JDK's dynamic CDS archive).

A fresh JVM reads, parses and verifies Spark's classes from ~250 jars as it first meets them: at start-up
and again in each stage's first job. The JVM can write the classes it loaded to an archive when it exits
(`-XX:ArchiveClassesAtExit`) and map them from that file at its next start (`-XX:SharedArchiveFile`):
5.8 s less of a 77.7 s run of 1M GA360 hits on this project's 2-core machine (docs/performance.md). So
the first local `visitseg` command writes the archive, and later ones start from it.

Three rules keep it safe:
* An archive fits one JVM build, class path (its folders too: each virtualenv has its own) and heap mode
  only, so its name carries a digest of them.
  A JVM that finds it stale anyway says so in a warning and runs without it.
* Only a file that exists is passed: a JVM given a missing archive runs without the JDK's own one too.
* The JVM writes the archive at its exit, after the run: the command waits for that, then gives the
  file its final name (`publish`), so no run maps a half-written archive and two runs never write one
  file. A run killed before that leaves its temporary file; the next writer removes those over an hour old.
Under spark-submit, or with a running JVM, nothing here applies: the driver JVM is not visitseg's to start.
"""

from __future__ import annotations

import glob
import hashlib
import logging
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pyspark
from pyspark import SparkConf

log = logging.getLogger(__name__)

STALE_SECONDS = 3600  # a temporary archive this old belongs to a run that was killed
EXIT_WAIT_SECONDS = 120  # the JVM's exit, archive written (5-10 s seen for a 1M-hit run)
# The dump lists every class it skips (signed jars, old class versions) as a warning: hundreds of lines.
QUIET_DUMP = "-Xlog:cds=off -Xlog:cds+dynamic=off"


@dataclass(frozen=True)
class ClassArchive:
    path: Path  # the archive's final name
    exists: bool

    @property
    def pending(self) -> Path:
        """Where this process's JVM writes the archive at its exit, until `publish` renames it."""
        return self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")

    def java_options(self) -> str:
        """The JVM options that map the archive, or that write it at the JVM's exit (its folder made ready)."""
        if self.exists:
            return f"-XX:SharedArchiveFile={self.path}"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale(self.path.parent)
        return f"-XX:ArchiveClassesAtExit={self.pending} {QUIET_DUMP}"


def for_local_jvm(folder: str, conf: SparkConf) -> ClassArchive | None:
    """The archive of the JVM that `conf` would start, in `folder` ("" = none, or no java to be found)."""
    if not folder:
        return None
    java = _java()
    if java is None:
        return None
    spark_jars = Path(os.environ.get("SPARK_HOME") or os.path.dirname(pyspark.__file__)) / "jars"
    fits = [
        str(java), str(java.stat().st_size), str(java.stat().st_mtime_ns), pyspark.__version__, str(spark_jars.resolve()),
        *sorted(f"{jar.name}:{jar.stat().st_size}" for jar in spark_jars.glob("*.jar")),
        conf.get("spark.driver.extraClassPath", "") or "", conf.get("spark.driver.memory", "") or "",
    ]
    digest = hashlib.sha256("\n".join(fits).encode()).hexdigest()[:16]
    path = Path(folder).expanduser() / f"spark-{pyspark.__version__}-{digest}.jsa"
    return ClassArchive(path, path.is_file())


def publish(archive: ClassArchive, jvm: subprocess.Popen) -> None:
    """Let the stopped session's JVM exit (it exits when its stdin closes), which writes the archive, then
    give the archive its final name. Called after `SparkSession.stop()`."""
    started = time.perf_counter()
    if jvm.stdin is not None:
        jvm.stdin.close()
    try:
        jvm.wait(EXIT_WAIT_SECONDS)
    except subprocess.TimeoutExpired:
        log.warning("class archive: the JVM did not exit within %d s; no archive this time", EXIT_WAIT_SECONDS)
        return
    if not archive.pending.is_file() or archive.pending.stat().st_size == 0:
        log.warning("class archive: the JVM wrote none to %s; the next local run tries again", archive.pending)
        return
    os.replace(archive.pending, archive.path)
    log.info(
        "class archive: %s written (%.0f MB, %.1f s at the JVM's exit); later local runs start from it "
        "(spark.class_archives = \"\" turns this off)",
        archive.path, archive.path.stat().st_size / 2**20, time.perf_counter() - started,
    )


def _java() -> Path | None:
    """The java binary spark-submit runs: JAVA_HOME's, else the first on PATH."""
    home = os.environ.get("JAVA_HOME")
    found = os.path.join(home, "bin", "java") if home else shutil.which("java")
    return Path(found).resolve() if found and os.path.isfile(found) else None


def _remove_stale(folder: Path) -> None:
    for name in glob.glob(str(folder / "*.jsa.*.tmp")):
        try:
            if time.time() - os.path.getmtime(name) > STALE_SECONDS:
                os.remove(name)
        except OSError:  # another run removed it first
            pass
