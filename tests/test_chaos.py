"""A small version of scripts/chaos.py through the jar-free writer, on the Spark 4 line: a kill -9 trial
at a random moment of a run and one of a score, and a same-run-id pair, each checked by the script
(tables read back, no half-visible run, no duplicate, one copy, no orphan). Concurrent runs of different
run ids race in tests/test_concurrency.py (four writers into one new table, per writer); `scripts/chaos.py`
runs them as processes.

The script's full trial through Spark's own Delta writer (`scripts/chaos.py --writer native`) passed on
both lines (docs/development.md), but costs 10-13 min a line here (each fresh process with the Delta jars
~1 min): more than CI's budget allows. `make test` kills through that writer on both lines in
tests/test_run_kill.py (a run) and tests/test_incremental.py (an incremental score).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from support import crash_trials

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "chaos.py"


SCOPE = ["--trials", "1", "--score-trials", "1", "--concurrent"]


@crash_trials
def test_kills_and_concurrent_runs_leave_consistent_tables(tmp_path):
    figures_path = tmp_path / "chaos.json"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--writer", "deltalake", *SCOPE, "--visits", "600", "--workdir", str(tmp_path / "w"), "--json", str(figures_path)],
        capture_output=True, text=True, timeout=1500,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    figures = json.loads(figures_path.read_text())
    assert figures["kill_trials"] == 1 and figures["problems"] == []
    assert (figures["unreadable_tables"], figures["half_visible_runs"], figures["duplicate_keys"], figures["orphans_after_vacuum"]) == (0, 0, 0, 0)
    assert figures["final_copy_exact"]
    assert figures["score_kill_trials"] == 1 and figures["score_final_exact"]
    assert figures["same_run_id"] == {"exit_codes": [0, 2], "refused_with_RunInProgressError": 1, "one_copy": True}
