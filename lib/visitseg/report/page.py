"""The run's report page: `DIR/reports/<run_id>/report.html`, one self-contained file for people.

What the page says is what the tables hold: `visitseg report` draws it for any past run from the Delta
tables alone (`runs`, `cluster_centers`, `k_diagnostics`, `segment_kpis_daily`, `drift`, the labels and
the journey tables), and `visitseg run` draws it from the same rows as it writes them (`ReportData.of`
orders both alike, so both give the same bytes), without reading eight small tables back (1.3 s less in
a fresh process). Only small results reach the driver: K centres, one row per K, days × K daily rows and
a few example keys per segment.

The page runs no script and asks for nothing: the charts are inline SVG (`charts`), the style is inline,
and a Content-Security-Policy forbids any request, so it opens offline and can be mailed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import math
import time
from dataclasses import dataclass
from typing import Any, Sequence

from pyspark.sql import SparkSession, Window
from pyspark.sql import functions as F

from visitseg.core.errors import ConfigError
from visitseg.features.grains import GRAINS
from visitseg.model.fit import Segmentation
from visitseg.monitor.drift import Monitoring
from visitseg.monitor.journeys import JourneyRows
from visitseg.report import charts
from visitseg.report.journeys import Journeys, card_lifts, journeys_section, load_journeys, selected
from visitseg.report.markup import amount, esc, facts_table, figure, label, money, num, pct, section, value_or, when
from visitseg.storage import delta
from visitseg.storage.files import write_text
from visitseg.storage.tables import DRIFT, RUN_ID, RunRecord, newest_run

log = logging.getLogger(__name__)

EXAMPLES_PER_SEGMENT = 3
DISTINGUISHING_FEATURES = 3
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


@dataclass(frozen=True)
class ReportData:
    """Everything the page shows: the run's rows of its tables, in the page's order (`of`)."""

    run: dict[str, Any]  # the `runs` row
    centres: list[dict[str, Any]]  # `cluster_centers` rows, cluster_id order
    diagnostics: list[dict[str, Any]]  # `k_diagnostics` rows, K order
    daily: list[dict[str, Any]]  # `segment_kpis_daily` rows, by day then cluster_id
    examples: dict[int, list[str]]  # cluster_id → the keys nearest its centre
    drift: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # `drift` rows of the run (none: no reference run)
    journeys: Journeys = dataclasses.field(default_factory=Journeys)

    @classmethod
    def of(cls, run: dict[str, Any], centres: Sequence[dict], diagnostics: Sequence[dict], daily: Sequence[dict], examples: dict[int, list[str]],
           drift: Sequence[dict], journeys: Journeys) -> "ReportData":
        """The page's data from a run's rows in any order, whether read back from the tables (`visitseg
        report`) or held by the run that wrote them: one ordering, so both give the same bytes."""
        return cls(
            run=run,
            centres=sorted(centres, key=lambda r: r["cluster_id"]),
            diagnostics=sorted(diagnostics, key=lambda r: r["k"]),
            daily=sorted(daily, key=lambda r: (r["visit_date"], r["cluster_id"])),
            examples=examples,
            drift=sorted(drift, key=lambda r: (r["kind"], r["name"], r["metric"])),
            journeys=journeys,
        )

    @property
    def days(self) -> list[dt.date]:
        return sorted({r["visit_date"] for r in self.daily})

    @property
    def noun(self) -> str:
        return "users" if self.run["grain"] == "user" else "visits"


def report_path(output: str, run_id: str) -> str:
    return f"{output}/reports/{run_id}/report.html"


def write_report(spark: SparkSession, output: str, run_id: str | None = None) -> str:
    """Read a run's tables (the newest run when run_id is None), render the page, return its path."""
    started = time.perf_counter()
    data = load_report_data(spark, output, run_id)
    return write_page(output, data, render(data), started)


def write_page(output: str, data: ReportData, page: str, started: float) -> str:
    path = report_path(output, data.run[RUN_ID])
    write_text(path, page)
    log.info("report: %s, %.0f kB, %.1fs", path, len(page.encode()) / 1e3, time.perf_counter() - started)
    return path


def load_report_data(spark: SparkSession, output: str, run_id: str | None) -> ReportData:
    if run_id is None:
        newest = newest_run(spark, output)
        if newest is None:
            raise ConfigError(f"{output}/runs holds no run yet; run `visitseg run` into {output} first")
        rows = [newest]
    else:
        runs = delta.read_table(spark, f"{output}/runs")
        rows = runs.filter(F.col(RUN_ID) == run_id).collect()
        if not rows:
            known = sorted(r[RUN_ID] for r in runs.select(RUN_ID).collect())
            raise ConfigError(f"no run '{run_id}' in {output}/runs; the runs there are: {', '.join(known) or 'none'}")
    run = rows[0].asDict()
    grain = GRAINS[run["grain"]]

    def rows_of(name: str) -> list[dict[str, Any]]:
        return [r.asDict() for r in delta.read_table(spark, f"{output}/{name}").filter(F.col(RUN_ID) == run[RUN_ID]).collect()]

    return ReportData.of(
        run=run,
        centres=rows_of("cluster_centers"),
        diagnostics=rows_of("k_diagnostics"),
        daily=rows_of("segment_kpis_daily"),
        examples=nearest_examples(spark, f"{output}/{grain.labels_table}", run[RUN_ID], grain.key),
        drift=rows_of(DRIFT) if DRIFT in delta.tables_under(output) else [],
        journeys=load_journeys(spark, output, run[RUN_ID]),
    )


def run_report_data(record: RunRecord, seg: Segmentation, monitoring: Monitoring, journeys: JourneyRows | None, examples: dict[int, list[str]]) -> ReportData:
    """The page's data from the rows a run writes, without reading them back."""
    def rows(records: Sequence[Any]) -> list[dict[str, Any]]:
        return [dataclasses.asdict(r) for r in records]

    count_col = GRAINS[record.grain].count_col
    return ReportData.of(
        run=dataclasses.asdict(record),
        centres=[c.columns(count_col) for c in seg.centres],
        diagnostics=rows(seg.diagnostics),
        daily=rows(seg.kpis),
        examples=examples,
        drift=rows(monitoring.rows),
        journeys=selected(rows(journeys.transitions), rows(journeys.paths), rows(journeys.attributes)) if journeys else Journeys(),
    )


def nearest_examples(spark: SparkSession, labels_path: str, run_id: str, key: str) -> dict[int, list[str]]:
    """cluster_id → the keys nearest its centre in the run's rows of a labels table: the segment's most
    typical visits (for rules, no distance: key order). Small: EXAMPLES_PER_SEGMENT keys per segment."""
    labels = delta.read_table(spark, labels_path).filter(F.col(RUN_ID) == run_id)
    nearest = Window.partitionBy("cluster_id").orderBy(F.col("distance_to_centroid").asc_nulls_last(), F.col(key))
    examples: dict[int, list[str]] = {}
    for r in (
        labels.select("cluster_id", key, F.row_number().over(nearest).alias("rank"))
        .filter(F.col("rank") <= EXAMPLES_PER_SEGMENT)
        .orderBy("cluster_id", "rank")
        .collect()
    ):
        examples.setdefault(r["cluster_id"], []).append(r[key])
    return examples


# ---- rendering: plain functions of ReportData → HTML text ------------------------------------------


def render(data: ReportData) -> str:
    run = data.run
    title = f"visitseg run {run[RUN_ID]}"
    sections = [
        _summary(data),
        _cards(data),
        _heatmap(data),
        journeys_section(data.journeys, [c["segment"] for c in data.centres]),
        _k_diagnostics(data),
        _daily(data),
        _drift(data),
        _data_quality(data),
    ]
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title>
<style>{STYLE}</style>
</head>
<body>
<header><h1>{esc(title)}</h1><p class="sub">Behavioural segments of {esc(data.noun)}, written by visitseg {esc(run["visitseg_version"])} on Spark {esc(run["spark_version"])}</p></header>
<main>
{"".join(sections)}
</main>
</body>
</html>
"""


def _summary(data: ReportData) -> str:
    run = data.run
    days = data.days
    period = f"{days[0]} to {days[-1]} ({len(days):,} days)" if days else "no dated rows"
    weak = run["weak_structure"]
    warning = (
        f'<p class="warning" role="alert"><strong>Weak structure:</strong> {esc(weak)} '
        "Read the segments as a rough partition, not as distinct behaviours.</p>"
        if weak
        else ""
    )
    facts = [
        ("Input", f'{run["input_format"]}: {run["input_path"]}'),
        ("Period", period),
        (data.noun.capitalize(), f'{run["n_rows"]:,}'),
        ("Segments", f'K = {run["chosen_k"]} ({run["method"]})'),
        ("Why this K", run["k_reason"]),
        ("Run", f'{run[RUN_ID]}, {when(run["started_at"])} to {when(run["finished_at"])}'),
    ]
    return section("summary", "Summary", warning + facts_table(facts))


def _cards(data: ReportData) -> str:
    count_col = GRAINS[data.run["grain"]].count_col
    total = sum(c[count_col] for c in data.centres)
    cards = []
    for c in data.centres:
        examples = "".join(f"<li><code>{esc(key)}</code></li>" for key in data.examples.get(c["cluster_id"], []))
        distinct = "".join(
            f"<li><strong>{esc(label(f))}</strong>: {amount(seg)} vs {amount(overall)} overall "
            f"<span class=\"z\">({z:+.1f} sd)</span></li>"
            for f, seg, overall, z in _distinguishing(c, data.centres, count_col, total)
        )
        cards.append(
            f"""<article class="card" data-cluster-id="{c["cluster_id"]}" data-share="{c["share"]!r}" style="border-top-color:{charts.colour(c["cluster_id"])}">
<h3><span class="segment-name">{esc(c["segment"])}</span> <small>cluster {c["cluster_id"]}</small></h3>
<p class="share"><span class="share-value">{pct(c["share"])}</span> of {esc(data.noun)} ({c[count_col]:,})</p>
<dl>
<dt>Conversion</dt><dd>{pct(c["conversion_rate"])}</dd>
<dt>Revenue per visit</dt><dd>{money(c["revenue_per_visit"])}</dd>
<dt>Bounce rate</dt><dd>{pct(c["bounce_rate"])}</dd>
</dl>
<h4>Sets it apart</h4><ul class="distinct">{distinct}</ul>
{card_lifts(data.journeys, c["cluster_id"])}
<h4>Example {"users" if data.noun == "users" else "visit keys"}</h4><ul class="examples">{examples}</ul>
</article>"""
        )
    return f'<section id="segments"><h2>Segments</h2><div class="cards">{"".join(cards)}</div></section>\n'


def _distinguishing(centre: dict, centres: Sequence[dict], count_col: str, total: int) -> list[tuple[str, float, float, float]]:
    """The model features whose centre lies farthest from the mean, in standard deviations, with the
    segment's and the overall mean in original units (the overall mean weighs each segment by its size)."""
    z = centre["standardized"]
    top = sorted(centre["features"], key=lambda f: (-abs(z[f]), f))[:DISTINGUISHING_FEATURES]
    return [(f, centre[f], sum(c[f] * c[count_col] for c in centres) / total, z[f]) for f in top]


def _heatmap(data: ReportData) -> str:
    features = list(data.centres[0]["features"])
    names = [c["segment"] for c in data.centres]
    z = [[c["standardized"][f] for f in features] for c in data.centres]
    svg = charts.heatmap(names, [label(f) for f in features], z)
    return section("profiles", "Segment profiles", figure(svg, "Heatmap of each segment's centre per model feature, in standard deviations from the overall mean"))


def _k_diagnostics(data: ReportData) -> str:
    k = data.run["chosen_k"]
    rows = data.diagnostics
    if not rows:
        return section("k", "K diagnostics", "<p>No K sweep was recorded for this run.</p>")
    svg = charts.k_diagnostics(rows, k)
    header = "<tr><th>K</th><th>inertia</th><th>silhouette</th><th>Davies–Bouldin</th><th>Calinski–Harabasz</th><th>stability</th><th>largest segment</th></tr>"
    body = "".join(
        f'<tr class="{"chosen" if r["k"] == k else ""}"><td>{r["k"]}{" (chosen)" if r["k"] == k else ""}</td>'
        f'<td>{num(r["inertia"], 0)}</td><td>{num(r["silhouette"], 3)}</td><td>{num(r["davies_bouldin"], 3)}</td>'
        f'<td>{num(r["calinski_harabasz"], 0)}</td><td>{num(r["stability"], 3)}</td><td>{pct(r["max_cluster_share"])}</td></tr>'
        for r in rows
    )
    caption = "Inertia, silhouette, Davies–Bouldin, Calinski–Harabasz and split-half stability for each K of the sweep"
    return section("k", "K diagnostics", figure(svg, caption) + f'<table class="numbers">{header}{body}</table>')


def _daily(data: ReportData) -> str:
    days = data.days
    if not days:
        return section("daily", "Daily mix", "<p>No rows in <code>segment_kpis_daily</code> for this run (runs of versions before the report page have none).</p>")
    ids = [c["cluster_id"] for c in data.centres]
    names = [c["segment"] for c in data.centres]
    cell = {(r["visit_date"], r["cluster_id"]): r for r in data.daily}

    def series(column: str, missing: float) -> list[list[float]]:
        return [[value_or(cell.get((d, i), {}).get(column), missing) for d in days] for i in ids]

    shares = charts.daily_shares(days, names, series("share", 0.0), data.noun)
    conversion = charts.daily_rates(days, names, series("conversion_rate", math.nan), "conversion", data.noun)
    return section(
        "daily",
        "Daily mix",
        figure(shares, f"Each segment's share of the day's {data.noun}, stacked")
        + figure(conversion, "Conversion rate of each segment per day"),
    )


def _drift(data: ReportData) -> str:
    """The run's `drift` rows against its reference: the metrics above their thresholds first."""
    summary = data.run.get("drift_summary") or "no reference run"
    if not data.drift:
        return section("drift", "Drift", f"<p>{esc(summary.capitalize())}: nothing is compared (the first run in an output, or a run of a version before drift monitoring).</p>")
    rows = sorted(data.drift, key=lambda r: (not r["drifted"], r["kind"], r["name"], r["metric"]))
    body = "".join(
        f'<tr><td>{esc(r["kind"])}</td><td>{esc(r["name"])}</td><td>{esc(r["metric"])}</td><td>{r["value"]:,.3f}</td>'
        f'<td>{r["threshold"]:,.3f}</td><td>{"above" if r["drifted"] else ""}</td></tr>'
        for r in rows
    )
    header = "<tr><th>Kind</th><th>Name</th><th>Metric</th><th>Value</th><th>Threshold</th><th>Drifted</th></tr>"
    return section(
        "drift",
        "Drift",
        f"<p>{esc(summary)}. PSI and Jensen–Shannon distance on the reference run's decile bins; share and conversion "
        f"changes per segment (see the README, Drift monitoring).</p>" + f'<table class="numbers">{header}{body}</table>',
    )


def _data_quality(data: ReportData) -> str:
    run = data.run
    stages = json.loads(run["stages_json"] or "[]")
    read = next((s for s in stages if s["stage"] == "aggregate visits"), {})
    dropped = list(run["dropped_features"] or [])
    facts = [
        ("Rows read", f'{read["rows_in"]:,} hits → {read["rows_out"]:,} visits' if "rows_in" in read else "not recorded"),
        ("Rows in no visit", f'{read.get("invalid_input_rows", 0):,} (no user or session id, or a malformed date or time: excluded, up to input.max_invalid_fraction)'),
        ("Rows not read", "rows outside the date window, and GA360 sessions without hits"),
        ("Features dropped", f'{", ".join(dropped)} (constant on the training data)' if dropped else "none"),
        ("Model features", ", ".join(run["features"] or [])),
        ("Sweep", f'{run["sweep_rows"]:,} rows{" (a deterministic sample)" if run["sweep_sampled"] else ""}'),
        ("Delta writer", run["delta_writer"]),
    ]
    guardrails = (
        "<tr><th>Guardrail</th><th>Rows failing</th></tr>"
        + "".join(
            f"<tr><td>{esc(check)}</td><td>0</td></tr>"
            for check in ("null visit or user keys", "repeated keys (one row per visit)", "negative counts, times or revenue")
        )
    )
    stage_rows = "".join(
        f'<tr><td>{esc(s["stage"])}</td><td>{num(s.get("rows_in"), 0)}</td><td>{num(s.get("rows_out"), 0)}</td><td>{s["seconds"]:,.1f}</td></tr>'
        for s in stages
    )
    return section(
        "quality",
        "Data quality",
        facts_table(facts)
        + f"<h3>Guardrails</h3><p>A run stops with a named error, writing nothing, when any of these finds a row.</p>"
        f'<table class="numbers">{guardrails}</table>'
        f'<h3>Stages</h3><table class="numbers"><tr><th>Stage</th><th>Rows in</th><th>Rows out</th><th>Seconds</th></tr>{stage_rows}</table>',
    )


STYLE = """
:root { --ink: #1f2328; --muted: #57606a; --line: #d0d7de; --warn: #9a3412; --warn-bg: #fff7ed; }
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: var(--ink); margin: 0 auto; max-width: 1200px; padding: 24px; line-height: 1.45; }
h1 { margin: 0 0 4px; font-size: 1.6rem; } h2 { border-bottom: 1px solid var(--line); padding-bottom: 4px; margin-top: 32px; }
h3 small { color: var(--muted); font-weight: normal; font-size: 0.8rem; } h4 { margin: 10px 0 4px; font-size: 0.9rem; }
.sub { color: var(--muted); margin: 0; }
.warning { background: var(--warn-bg); border-left: 4px solid var(--warn); padding: 8px 12px; color: var(--warn); }
table { border-collapse: collapse; margin: 8px 0; font-variant-numeric: tabular-nums; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 10px; text-align: left; vertical-align: top; }
table.numbers td:not(:first-child) { text-align: right; }
tr.chosen { font-weight: bold; background: #f6f8fa; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(215px, 1fr)); gap: 14px; }
.card { border: 1px solid var(--line); border-top: 6px solid; border-radius: 6px; padding: 10px 14px; break-inside: avoid; }
.card h3 { margin: 0 0 4px; font-size: 1.1rem; }
.share { margin: 0 0 6px; } .share-value { font-size: 1.4rem; font-weight: bold; }
dl { display: grid; grid-template-columns: auto 1fr; gap: 2px 12px; margin: 0; } dt { color: var(--muted); } dd { margin: 0; text-align: right; }
ul { margin: 0; padding-left: 18px; } .z { color: var(--muted); } code { font-size: 0.8rem; word-break: break-all; }
figure { margin: 12px 0; break-inside: avoid; } figure svg { max-width: 100%; height: auto; }
figcaption { color: var(--muted); font-size: 0.85rem; }
@media print {
  @page { size: A4 landscape; margin: 12mm; }
  body { max-width: none; padding: 0; font-size: 10pt; }
  section { break-before: auto; } h2 { break-after: avoid; }
  .cards { grid-template-columns: repeat(4, 1fr); gap: 8px; } .card { padding: 6px 8px; }
  figure svg { max-height: 150mm; width: auto; }
}
"""
