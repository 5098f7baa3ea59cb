"""Concurrent writers: one process per run id (the run lock), and retried Delta commits for runs with
different run ids racing into the same tables."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
from deltalake import DeltaTable
from deltalake.exceptions import CommitFailedError
from test_delta import write

from visitseg.storage import delta_log
from visitseg.core.errors import RunInProgressError
from visitseg.storage.runlock import LOCK_DIR, run_lock


def test_a_second_writer_of_one_run_id_is_refused_and_the_lock_leaves_nothing_behind(tmp_path):
    out = tmp_path / "out"
    with run_lock(str(out), "r1"):
        with run_lock(str(out), "r2"):  # another run id: no conflict
            pass
        with pytest.raises(RunInProgressError, match=rf"run r1 is being written to {out} by pid {os.getpid()} on .*delete {out}/{LOCK_DIR}/r1.lock"):
            with run_lock(str(out), "r1"):
                pass
        assert os.listdir(out / LOCK_DIR) == ["r1.lock"]
    assert not out.exists()  # the lock created the folder, and removed it again


def test_a_lock_left_by_a_killed_process_is_taken_over(tmp_path, caplog):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    (tmp_path / LOCK_DIR).mkdir()
    lock = tmp_path / LOCK_DIR / "r1.lock"
    lock.write_text(json.dumps({"host": os.uname().nodename, "pid": int(dead.stdout), "started_at": "2026-11-27T00:00:00+00:00"}))
    with run_lock(str(tmp_path), "r1"):
        assert json.loads(lock.read_text())["pid"] == os.getpid()
    assert "took over" in caplog.text and not lock.exists()


def test_a_lock_held_on_another_host_is_respected(tmp_path):
    (tmp_path / LOCK_DIR).mkdir()
    (tmp_path / LOCK_DIR / "r1.lock").write_text(json.dumps({"host": "elsewhere", "pid": 1, "started_at": "2026-11-27T00:00:00+00:00"}))
    with pytest.raises(RunInProgressError, match="by pid 1 on elsewhere"):
        with run_lock(str(tmp_path), "r1"):
            pass


def test_conflicts_are_retried_and_other_errors_are_not(monkeypatch):
    monkeypatch.setattr(delta_log, "FIRST_BACKOFF_SECONDS", 0.0)
    calls = []

    def flaky() -> int:
        calls.append(1)
        if len(calls) < 3:
            raise CommitFailedError("a concurrent transaction deleted data this operation read")
        return 7

    assert delta_log.with_retries(flaky, delta_log.deltalake_conflict, "t") == 7 and len(calls) == 3
    with pytest.raises(ValueError):
        delta_log.with_retries(lambda: (_ for _ in ()).throw(ValueError("bug")), delta_log.deltalake_conflict, "t")
    always = []
    with pytest.raises(CommitFailedError):
        delta_log.with_retries(lambda: always.append(1) or (_ for _ in ()).throw(CommitFailedError("x")), delta_log.deltalake_conflict, "t")
    assert len(always) == delta_log.COMMIT_ATTEMPTS


def test_four_runs_racing_into_a_new_table_all_land(spark, tmp_path, writer):
    """Four run ids commit to one table that does not exist yet: each partition lands whole, once."""
    path = tmp_path / "t"
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda i: write(spark, path, f"r{i}", 5 + i, writer=writer), range(4)))
    table = DeltaTable(str(path))
    runs = table.to_pyarrow_table().column("run_id").to_pylist()
    assert {f"r{i}": runs.count(f"r{i}") for i in range(4)} == {f"r{i}": 6 + i for i in range(4)}  # n rows + one null row
    assert table.version() == 3 and sum(r.rows for r in results) == sum(6 + i for i in range(4))
    assert sorted(r.version for r in results) == [0, 1, 2, 3]  # each result names its own commit
