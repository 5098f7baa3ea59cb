"""A small version of scripts/chaos.py: kill -9 trials, two concurrent runs and a same-run-id pair, each
checked by the script (tables read back, no half-visible run, no duplicate, one copy, no orphan)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from support import crash_trials

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "chaos.py"


@crash_trials
def test_kills_and_concurrent_runs_leave_consistent_tables(tmp_path):
    figures_path = tmp_path / "chaos.json"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--trials", "2", "--score-trials", "1", "--concurrent", "2", "--visits", "600", "--workdir", str(tmp_path / "w"), "--json", str(figures_path)],
        capture_output=True, text=True, timeout=1200,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    figures = json.loads(figures_path.read_text())
    assert figures["kill_trials"] == 2 and figures["problems"] == []
    assert (figures["unreadable_tables"], figures["half_visible_runs"], figures["duplicate_keys"], figures["orphans_after_vacuum"]) == (0, 0, 0, 0)
    assert figures["final_copy_exact"] and figures["concurrent"]["2"]["landed"] == 2
    assert figures["score_kill_trials"] == 1 and figures["score_final_exact"]
    assert figures["same_run_id"] == {"exit_codes": [0, 2], "refused_with_RunInProgressError": 1, "one_copy": True}
