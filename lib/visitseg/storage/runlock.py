"""One writer per run id and output: a lock file `DIR/_visitseg_locks/<run_id>.lock`.

Each table replaces its run's partition in its own Delta transaction, so two processes writing the same
run id into one output at once would interleave (features of one, labels of the other): a mix of both.
Runs with different run ids need no lock (Delta serialises their commits; see `delta_log._commit`).

The lock is a file created with O_CREAT|O_EXCL, which the operating system grants to one process only,
holding the holder's host, pid and start time. A lock left by a killed process (kill -9, a lost machine)
is taken over when its pid is dead on this host; a holder on another host cannot be checked, so the error
names the file to delete. Object stores (s3://, gs://, abfss://) have no exclusive create that every
store honours: there the scheduler must not start one run id twice (Airflow: max_active_runs = 1), and
visitseg logs that it runs without a lock.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import socket
import time
import uuid
from typing import Iterator

from visitseg.core.errors import RunInProgressError

log = logging.getLogger(__name__)

LOCK_DIR = "_visitseg_locks"  # leading underscore: not a table, ignored by `delta.tables_under` and readers
UNWRITTEN_GRACE_SECONDS = 10  # an empty lock file younger than this may be a holder between create and write


@contextlib.contextmanager
def run_lock(output: str, run_id: str) -> Iterator[None]:
    """Hold the lock of `run_id` in `output` for the `with` block; raise RunInProgressError when a live
    process holds it. Folders the lock created are removed again, so a failed run leaves nothing behind."""
    if "://" in output:
        log.info("run lock: %s is not a local folder, so no lock; never start run %s twice at once", output, run_id)
        yield
        return
    folder = os.path.join(output, LOCK_DIR)
    created = [d for d in (output, folder) if not os.path.isdir(d)]
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{run_id}.lock")
    mine = json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "started_at": dt.datetime.now(dt.timezone.utc).isoformat()})
    try:
        _acquire(path, mine, output, run_id)
        try:
            yield
        finally:
            if _read(path) == mine:
                os.remove(path)
    finally:
        for d in reversed(created):
            with contextlib.suppress(OSError):  # not empty: another run's lock or tables live there
                os.rmdir(d)


def _acquire(path: str, mine: str, output: str, run_id: str) -> None:
    while True:
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _read(path)
            if holder is None:
                continue  # released between our create and our read
            if _is_stale(path, holder):
                _take_over(path, holder)
                continue
            facts = json.loads(holder)
            raise RunInProgressError(
                f"run {run_id} is being written to {output} by pid {facts['pid']} on {facts['host']} (since {facts['started_at']}); "
                f"two writers of one run id would mix their tables. Wait for it to end, or give this run another run.run_id. "
                f"If that process is gone (its machine was lost), delete {path}"
            ) from None
        with os.fdopen(fd, "w") as f:
            f.write(mine)
        return


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return None


def _is_stale(path: str, holder: str) -> bool:
    """The holder is dead: its pid is gone on this host, or it died between creating and writing the file."""
    if not holder:
        with contextlib.suppress(FileNotFoundError):
            return time.time() - os.path.getmtime(path) > UNWRITTEN_GRACE_SECONDS
        return False
    facts = json.loads(holder)
    if facts["host"] != socket.gethostname():
        return False
    try:
        os.kill(facts["pid"], 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, owned by another user
        return False
    return False


def _take_over(path: str, holder: str) -> None:
    """Move the stale lock aside (a rename succeeds for one process only). If what moved is not the stale
    lock we judged — a racing process took it over first — put it back and let the loop look again."""
    aside = f"{path}.{uuid.uuid4().hex}"
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return
    moved = _read(aside)
    if moved != holder:
        with contextlib.suppress(FileExistsError):
            os.link(aside, path)  # never over a lock created meanwhile
    else:
        log.warning("run lock: took over %s, left by a process that is gone: %s", path, holder or "(empty)")
    os.remove(aside)
