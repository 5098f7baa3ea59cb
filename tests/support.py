"""Small helpers shared by the tests."""

from __future__ import annotations

import datetime as dt
import glob
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterable

import pyspark
import pytest

from visitseg.core.config import Config, load_config, with_values


def make_config(input_format: str = "", path: str = "", output: str = "", overrides: Iterable[str] = (), **sections: dict) -> Config:
    cfg = load_config([], overrides)
    base: dict[str, dict[str, Any]] = {"run": {"run_id": "test-run"}}
    if input_format:
        base["input"] = {"format": input_format, "path": path}
    if output:
        base["output"] = {"path": output}
    for name, values in sections.items():
        base[name] = {**base.get(name, {}), **values}
    return with_values(cfg, **base)


def one_k(k: int) -> list[str]:
    """`--set` arguments for a sweep of K = k alone: for tests whose subject is not the K rule."""
    return ["--set", f"model.k_min={k}", "--set", f"model.k_max={k}"]


def write_json_lines(path: Path, records: list[dict]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return str(path)


def utc(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc)


CRASH_TRIALS_LINE = "4"
# The kill -9 trials start fresh JVMs (2-4 minutes a test under CI's load; CI's budget is 45 minutes for
# both lines). What most of them prove is the driver's own code, the same on every Spark line: the run
# lock, the staging folder, the order of the commits. So they run on one line, and each other line keeps
# the one trial whose outcome goes through that line's Delta jars: the incremental score's kill through
# Spark's own Delta writer, whose replay rests on Delta's transaction ids. `scripts/chaos.py` runs them all.
NOT_CRASH_TRIALS_LINE = (
    f"kill -9 trials run on the Spark {CRASH_TRIALS_LINE} line only (the run lock, staging and commit order they prove do not depend "
    f"on the line); on every line the incremental score's kill trial runs through Spark's own Delta writer; "
    f"run scripts/chaos.py --writer native|deltalake for more"
)


# Spark's native Delta writer: `scripts/fetch_delta_jars.sh` (run by `make test` through scripts/setup.sh)
# fetches the Delta jars of the line with Maven; the test session starts with them (conftest.py).
SPARK_LINE = "4" if pyspark.__version__.startswith("4.") else "3.5"
ON_CRASH_TRIALS_LINE = SPARK_LINE == CRASH_TRIALS_LINE
DELTA_JARS_DIR = Path(__file__).resolve().parents[1] / ".cache" / "delta-jars" / f"spark-{SPARK_LINE}"


# Tests of a minute or more whose subject does not depend on the Spark line (visitseg's own driver code, the
# output's layout, the real exports' figures) run on the Spark 4 line only, for CI's 45-minute budget. Each
# says why; the Spark and Delta calls they make run on the 3.5 line in the in-session tests.
def spark4_only(why: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(SPARK_LINE != "4", reason=f"runs on the Spark 4 line only, for CI's 45-minute budget: {why}")


def delta_jars() -> list[str]:
    return sorted(glob.glob(str(DELTA_JARS_DIR / "*.jar"))) if glob.glob(str(DELTA_JARS_DIR / "delta-spark_*.jar")) else []


NO_DELTA_JARS = (
    f"Spark's Delta source is not on this session's classpath: no Delta jars for Spark {SPARK_LINE} in {DELTA_JARS_DIR} "
    f"(scripts/fetch_delta_jars.sh fetches them with Maven; where Maven cannot, see maven.log there)"
)


def writer_overrides(writer: str) -> list[str]:
    """`--set` arguments that make a `visitseg` process write through `writer`; native starts its session
    with this line's Delta jars. Skips the test where they are missing."""
    if writer == "deltalake":
        return ["--set", "output.delta_writer=deltalake"]
    if not delta_jars():
        pytest.skip(NO_DELTA_JARS)
    return ["--set", "output.delta_writer=native", "--set", f"spark.conf.spark.jars={json.dumps(','.join(delta_jars()))}"]


def started(command: list[str], log: Path, **popen) -> subprocess.Popen:
    """A process whose output goes to `log` (a pipe would fill and stall it while others run): the tests
    that need several fresh JVMs start them together, since each spends most of its time waiting."""
    with log.open("w") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, text=True, **popen)


def succeeded(process: subprocess.Popen, log: Path, timeout: float = 900) -> str:
    """Wait for `process`; its log, or a failure that quotes the log's end."""
    try:
        code = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    text = log.read_text()
    assert code == 0, f"{process.args[:4]} exited {code}: {text[-5000:]}"
    return text


def visitseg_process(args: list[str], log: Path) -> subprocess.Popen:
    """`visitseg ARGS` in a process group of its own (so SIGKILL to the group takes its JVM too), output to `log`."""
    return started([str(Path(sys.executable).parent / "visitseg"), *args], log, start_new_session=True)


def kill_when_logged(process: subprocess.Popen, log: Path, line: str, timeout: float = 600) -> None:
    """SIGKILL to the process group (Python driver and JVM) as soon as `line` is in its log."""
    deadline = time.monotonic() + timeout
    while line not in log.read_text():
        assert process.poll() is None, f"ended (exit {process.returncode}) before logging {line!r}: {log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"no {line!r} after {timeout} s"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
