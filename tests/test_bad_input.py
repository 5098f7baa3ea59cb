"""The bad-input matrix: each hostile input or configuration a user can give `visitseg run` ends with exit
status 2, a named error whose message says what is wrong and how to fix it, and nothing committed — the
output holding an earlier good run keeps exactly its files (no new table version, no stray file)."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable, write_deltalake
from support import write_json_lines
from test_ga360 import SESSIONS

from visitseg.ingest import sample_data
from visitseg.cli import main

GOOD_VISITS = 240
EVENTS_HEADER = "timestamp,visitorid,event,itemid,transactionid\n"
MS_2026 = 1_790_000_000_000  # 2026-09-21 in epoch milliseconds


@dataclass(frozen=True)
class Case:
    fmt: str
    make_input: Callable[[Path, dict], str]  # (scratch folder, good sample paths) → --input
    error: str  # the exception type the CLI names
    message: str  # regex the message must match
    sets: tuple[str, ...] = ()
    output: Callable[[Path], Path] | None = None  # replaces the output folder (default: the good run's copy)
    extra_args: tuple[str, ...] = field(default=())


def events_csv(name: str, lines: list[str], header: str = EVENTS_HEADER) -> Callable[[Path, dict], str]:
    def make(tmp: Path, _good: dict) -> str:
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(header + "".join(line + "\n" for line in lines))
        return str(path)

    return make


def visits_of_events(ts_of: Callable[[int], int], n: int = 50) -> list[str]:
    """n visitors with a view, every other one adding to cart a minute later: two visit shapes."""
    return [f"{ts_of(i)},{i},view,1," + (f"\n{ts_of(i) + 60_000},{i},addtocart,1," if i % 2 else "") for i in range(n)]


def ga360_lines(name: str, sessions: list[dict]) -> Callable[[Path, dict], str]:
    return lambda tmp, _good: write_json_lines(tmp / name / "x.json", sessions)


def good_input(fmt: str) -> Callable[[Path, dict], str]:
    return lambda _tmp, good: good[fmt]


def corrupt_parquet(tmp: Path, good: dict) -> str:
    folder = tmp / "ga4_corrupt"
    shutil.copytree(good["ga4"], folder)
    (folder / "events_20261005.parquet").write_bytes(b"PAR1 this is not a parquet file")
    return str(folder)


def truncated_ndjson(tmp: Path, _good: dict) -> str:
    path = Path(write_json_lines(tmp / "ga360_cut" / "x.json", SESSIONS))
    text = path.read_text()
    path.write_text(text[: len(text) - 40])  # the last session cut mid-line
    return str(path.parent)


def mixed_formats(tmp: Path, good: dict) -> str:
    folder = tmp / "mixed"
    write_json_lines(folder / "a.json", SESSIONS)
    shutil.copy(next(Path(good["ga4"]).glob("*.parquet")), folder / "b.parquet")
    return str(folder)


def duplicate_files(tmp: Path, _good: dict) -> str:
    path = Path(write_json_lines(tmp / "dup" / "day1.json", SESSIONS))
    shutil.copy(path, path.with_name("day1 (copy).json"))
    return str(path.parent)


def no_hits_parquet(tmp: Path, _good: dict) -> str:
    folder = tmp / "nohits"
    rows = [{k: v for k, v in s.items() if k != "hits"} for s in SESSIONS]
    folder.mkdir()
    pq.write_table(pa.Table.from_pylist(rows), folder / "x.parquet")
    return str(folder)


def negative_revenue(tmp: Path, _good: dict) -> str:
    sessions = json.loads(json.dumps(SESSIONS))
    sessions[0]["hits"][3]["transaction"]["transactionRevenue"] = "-5000000"
    return write_json_lines(tmp / "neg" / "x.json", sessions)


def ga4_day_without_a_column(tmp: Path, good: dict) -> str:
    folder = tmp / "ga4_days"
    shutil.copytree(good["ga4"], folder)
    day = sorted(folder.glob("*.parquet"))[-1]
    pq.write_table(pq.read_table(day).drop(["ecommerce"]), day)
    return str(folder)


def a_file(tmp: Path) -> Path:
    path = tmp / "output.txt"
    path.write_text("not a folder")
    return path


def foreign_table(tmp: Path) -> Path:
    """An output whose `cluster_mix_daily` is another program's Delta table (written last but one)."""
    out = tmp / "shared_out"
    write_deltalake(str(out / "cluster_mix_daily"), pa.table({"day": ["2026-10-01"], "orders": [3]}))
    return out


def bad_toml(tmp: Path, _good: dict) -> str:
    (tmp / "bad.toml").write_text("[model\nk_max = 8\n")
    return _good["ga360"]


CASES = {
    # input files
    "input does not exist": Case("ga360", lambda tmp, _: str(tmp / "nowhere"), "EmptyInputError", r"no such file or folder; check the --input path"),
    "empty events file": Case("events", events_csv("empty.csv", [], header=""), "InputSchemaError", r"timestamp is missing; visitorid is missing"),
    "header-only events file": Case("events", events_csv("header.csv", []), "EmptyInputError", r"events input: no rows"),
    "junk timestamps": Case("events", events_csv("junk.csv", ["yesterday,1,view,1,"]), "DataQualityError", r"null ts_ms .*Fix or drop"),
    "null visitor": Case("events", events_csv("novisitor.csv", [f"{MS_2026},,view,1,"]), "DataQualityError", r"null user_key"),
    "unknown event values": Case("events", events_csv("vocab.csv", [f"{MS_2026 + i * 60_000},{i % 7},{'VIEW' if i % 3 else 'click'},1," for i in range(60)]), "DataQualityError", r"60 of 60 events \(100\.0%\) have an event value no funnel step maps \(e\.g\. 'VIEW' \(40\), 'click' \(20\)\)"),
    "timestamps in seconds": Case("events", events_csv("seconds.csv", visits_of_events(lambda i: (MS_2026 + i * 3_600_000) // 1000)), "DataQualityError", r"before 2000-01-01 .*set events.timestamp_unit = s"),
    "timestamps in microseconds": Case("events", events_csv("micros.csv", visits_of_events(lambda i: (MS_2026 + i * 3_600_000) * 1000)), "DataQualityError", r"in the future .*set events.timestamp_unit = us"),
    "timestamps in the future": Case("events", events_csv("future.csv", visits_of_events(lambda i: 4_102_444_800_000 + i)), "DataQualityError", r"timestamps in the future"),
    "too few distinct visits for k_min": Case("events", events_csv("same.csv", visits_of_events(lambda i: MS_2026 + i * 3_600_000)), "EmptyInputError", r"distinct feature vectors cannot be split into 4 clusters"),
    "corrupt parquet file": Case("ga4", corrupt_parquet, "InputSchemaError", r"input file \S*events_20261005\.parquet: cannot be read"),
    "truncated ndjson": Case("ga360", truncated_ndjson, "InputSchemaError", r"input file \S*x\.json: cannot be read"),
    "mixed file formats": Case("ga360", mixed_formats, "ConfigError", r"mixes file formats \(b\.parquet \(parquet\), a\.json \(json\)\)|mixes file formats \(a\.json \(json\), b\.parquet \(parquet\)\)"),
    "duplicate input files": Case("ga360", duplicate_files, "GrainError", r"occur more than once"),
    "missing nested column": Case("ga360", no_hits_parquet, "InputSchemaError", r"hits is missing"),
    "a day lacking a column the others have": Case("ga4", ga4_day_without_a_column, "InputSchemaError", r"input file \S+\.parquet: lacks column\(s\) ecommerce"),
    "NaN revenue": Case("events", events_csv("nan.csv", [f"{MS_2026},1,transaction,1,t1,NaN"], header=EVENTS_HEADER.strip() + ",revenue\n"), "DataQualityError", r"non-finite revenue", sets=("events.revenue_col=revenue",)),
    "infinite revenue": Case("events", events_csv("inf.csv", [f"{MS_2026},1,transaction,1,t1,Infinity"], header=EVENTS_HEADER.strip() + ",revenue\n"), "DataQualityError", r"non-finite revenue", sets=("events.revenue_col=revenue",)),
    "negative revenue": Case("ga360", negative_revenue, "DataQualityError", r"negative transaction_revenue"),
    "date window with no data": Case("ga360", good_input("ga360"), "EmptyInputError", r"no rows", sets=("input.date_from=2031-01-01",)),
    # configuration
    "path traversal in run id": Case("ga360", good_input("ga360"), "ConfigError", r"run.run_id", sets=("run.run_id=../../etc",)),
    "k_min above k_max": Case("ga360", good_input("ga360"), "ConfigError", r"k_min", sets=("model.k_min=9", "model.k_max=5")),
    "date_to before date_from": Case("ga360", good_input("ga360"), "ConfigError", r"must be after input.date_from", sets=("input.date_from=2026-10-02", "input.date_to=2026-10-01")),
    "unknown config key": Case("ga360", good_input("ga360"), "ConfigError", r"unknown key model.kmax", sets=("model.kmax=5",)),
    "unknown file format": Case("ga360", good_input("ga360"), "ConfigError", r"input.file_format", sets=("input.file_format=xml",)),
    "wrong value type": Case("ga360", good_input("ga360"), "ConfigError", r"model.k_max", sets=("model.k_max=many",)),
    "unknown timestamp unit": Case("events", good_input("events"), "ConfigError", r"events.timestamp_unit", sets=("events.timestamp_unit=minutes",)),
    "config file not TOML": Case("ga360", bad_toml, "ConfigError", r"not valid TOML", extra_args=("--config", "{tmp}/bad.toml")),
    # output
    "output holds another program's table": Case("ga360", good_input("ga360"), "DeltaTableError", r"cluster_mix_daily: the data's schema differs", output=foreign_table),
    "output is a file": Case("ga360", good_input("ga360"), "ConfigError", r"is a file, not a folder", output=a_file),
}


@pytest.fixture(scope="module")
def good(spark, tmp_path_factory):
    """Good sample inputs per format, and an output holding one good run (copied for each case)."""
    root = tmp_path_factory.mktemp("bad_input")
    paths = {}
    for fmt, file_format in (("ga360", "json"), ("ga4", "parquet"), ("events", "csv")):
        paths[fmt] = str(root / fmt)
        sample_data.write_sample(spark, fmt, paths[fmt], GOOD_VISITS, days=5, seed=7, file_format=file_format)
    out = root / "out"
    args = ["run", "--input-format", "ga360", "--input", paths["ga360"], "--output", str(out), "--set", "run.run_id=good", "--set", "model.k_min=2", "--set", "model.k_max=4"]
    assert main(args) == 0
    return paths, out


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")} if folder.is_dir() else {}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_a_named_error_and_commits_nothing(spark, good, tmp_path, capsys, name):
    case = CASES[name]
    spark.catalog.clearCache()
    paths, good_out = good
    out = tmp_path / "out"
    shutil.copytree(good_out, out)
    if case.output is not None:
        out = case.output(tmp_path)
    before = snapshot(out)
    capsys.readouterr()

    input_path = case.make_input(tmp_path, paths)
    sets = [arg for s in ("run.run_id=bad", *case.sets) for arg in ("--set", s)]
    if not any(s.startswith(("model.k_min", "model.k_max")) for s in case.sets) and name != "too few distinct visits for k_min":
        sets += ["--set", "model.k_min=2", "--set", "model.k_max=4"]
    extra = [a.format(tmp=tmp_path) for a in case.extra_args]
    code = main(["run", "--input-format", case.fmt, "--input", input_path, "--output", str(out), *sets, *extra])

    err = capsys.readouterr().err
    first_line = err.splitlines()[0] if err else ""
    assert code == 2, err
    assert first_line.startswith(f"visitseg: error: {case.error}: "), err
    assert re.search(case.message, first_line), first_line
    assert snapshot(out) == before
    assert not (tmp_path / "bad").exists() and os.path.exists(out)
    assert spark._jsparkSession.sharedState().cacheManager().isEmpty(), "the failed run left cached tables behind"


def test_the_matrix_covers_enough_cases():
    assert len(CASES) >= 30


def test_unicode_and_very_long_ids_are_kept_as_they_are(spark, tmp_path):
    """Not bad input: ids in any script and of any length are keys like any other."""
    sessions = json.loads(json.dumps(SESSIONS))
    visitor = "ユーザー-🙂-ß-" + "x" * 5000
    sessions[0]["fullVisitorId"] = visitor
    path = write_json_lines(tmp_path / "in" / "x.json", sessions)
    assert main(["features", "--input-format", "ga360", "--input", path, "--output", str(tmp_path / "out"), "--set", "run.run_id=u"]) == 0
    table = DeltaTable(str(tmp_path / "out" / "visit_features")).to_pyarrow_table()
    assert f"{visitor}-{sessions[0]['visitId']}" in table.column("visit_key").to_pylist()
    assert visitor in table.column("user_key").to_pylist() and table.num_rows == len(SESSIONS)


def test_a_few_unmapped_events_are_ignored_with_a_warning_and_counted_in_runs(spark, tmp_path, caplog):
    lines = visits_of_events(lambda i: MS_2026 + i * 3_600_000, n=150) + [f"{MS_2026},3,wishlist,9,"]
    path = events_csv("few.csv", lines)(tmp_path, {})
    out = tmp_path / "out"
    args = ["run", "--input-format", "events", "--input", path, "--output", str(out), "--set", "run.run_id=few",
            "--set", "model.k_min=2", "--set", "model.k_max=2", "--set", "input.max_invalid_fraction=0.01"]
    with caplog.at_level(logging.WARNING, logger="visitseg"):
        assert main(args) == 0
    assert "1 of 226 events (0.4%) have an event value no funnel step maps (e.g. 'wishlist' (1))" in caplog.text
    features = DeltaTable(str(out / "visit_features")).to_pyarrow_table()
    assert sum(features.column("hits").to_pylist()) == 226 and sum(features.column("pageviews").to_pylist()) == 150  # kept as a plain hit
    stages = json.loads(DeltaTable(str(out / "runs")).to_pyarrow_table().column("stages_json")[0].as_py())
    read = next(s for s in stages if s["stage"] == "read hits")
    assert (read["unmapped_events"], read["unmapped_examples"]) == (1, "'wishlist' (1)")
