"""The report's journey parts: the transition heatmap, the top paths to purchase, and on each segment card
the visit attributes it over-represents (from `segment_transitions`, `paths_to_purchase`, `segment_attributes`).

A run without these tables (user grain, journeys.enabled = false, or a version before them) gets a
sentence that says so instead of the charts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from visitseg.monitor.journeys import FIRST_VISIT, NO_RETURN, OTHER
from visitseg.report import charts
from visitseg.report.markup import esc, figure, num, pct, section
from visitseg.storage import delta
from visitseg.storage.tables import ATTRIBUTES, PATHS, RUN_ID, TRANSITIONS

TOP_PATHS = 10
OVER_REPRESENTED_LIFT = 1.5  # a card lists an attribute value at least this much more common in the segment ...
OVER_REPRESENTED_VISITS = 30  # ... seen in at least this many of its visits
CARD_ATTRIBUTES = 4
ATTRIBUTE_LABELS = {"channel": "channel", "source_medium": "source / medium", "device": "device", "country": "country"}


@dataclass(frozen=True)
class Journeys:
    """The run's rows of the three journey tables (each empty when the table or the run's rows are missing)."""

    transitions: list[dict[str, Any]] = field(default_factory=list)
    paths: list[dict[str, Any]] = field(default_factory=list)  # the top TOP_PATHS
    attributes: list[dict[str, Any]] = field(default_factory=list)  # over-represented values only

    def lifts_of(self, cluster_id: int) -> list[dict[str, Any]]:
        return [r for r in self.attributes if r["cluster_id"] == cluster_id][:CARD_ATTRIBUTES]


def load_journeys(spark: SparkSession, output: str, run_id: str) -> Journeys:
    """The run's rows of the three tables, as `selected` for the page."""
    present = delta.tables_under(output)

    def rows(name: str, where=F.lit(True)) -> list[dict[str, Any]]:
        if name not in present:
            return []
        return [r.asDict() for r in delta.read_table(spark, f"{output}/{name}").filter((F.col(RUN_ID) == run_id) & where).collect()]

    return selected(rows(TRANSITIONS), rows(PATHS, F.col("rank") <= TOP_PATHS), rows(ATTRIBUTES))


def selected(transitions: Sequence[dict], paths: Sequence[dict], attributes: Sequence[dict]) -> Journeys:
    """Small results only: the K² + 2K transitions by from- and to-segment, the top TOP_PATHS paths, and
    each segment's over-represented attribute values, most lifted first; from the tables or the run's rows."""
    over = [r for r in attributes if r["lift"] >= OVER_REPRESENTED_LIFT and r["visits"] >= OVER_REPRESENTED_VISITS and r["value"] != OTHER]
    return Journeys(
        transitions=sorted(transitions, key=lambda r: (r["from_segment"], r["to_segment"])),
        paths=sorted((r for r in paths if r["rank"] <= TOP_PATHS), key=lambda r: r["rank"]),
        attributes=sorted(over, key=lambda r: (r["cluster_id"], -r["lift"], r["attribute"], r["value"])),
    )


def card_lifts(journeys: Journeys, cluster_id: int) -> str:
    """A card's list of the attribute values its segment over-represents."""
    lifts = journeys.lifts_of(cluster_id)
    if not lifts:
        return ""
    items = "".join(
        f'<li><strong>{esc(ATTRIBUTE_LABELS.get(r["attribute"], r["attribute"]))}</strong> {esc(r["value"])}: '
        f'{pct(r["segment_share"])} vs {pct(r["overall_share"])} overall <span class="z">(lift {r["lift"]:.1f})</span></li>'
        for r in lifts
    )
    return f'<h4>Brought by</h4><ul class="lifts">{items}</ul>'


def journeys_section(journeys: Journeys, segments: list[str]) -> str:
    """The transition heatmap (segments in cluster_id order, with the start and end rows) and the top paths."""
    if not journeys.transitions:
        return section("journeys", "Journeys", "<p>No journey tables for this run (user grain, journeys.enabled = false, or a run of a version before them).</p>")
    share = {(r["from_segment"], r["to_segment"]): r["share"] for r in journeys.transitions}
    sources, targets = [FIRST_VISIT, *segments], [*segments, NO_RETURN]
    matrix = [[share.get((a, b), math.nan) for b in targets] for a in sources]
    heatmap = figure(charts.transitions(sources, targets, matrix), "Share of each segment's visits followed by a visit of each segment, by the same user; the first row is where users start, the last column is no further visit")
    header = "<tr><th>Rank</th><th>Path to the first purchase</th><th>Buyers</th><th>Share of buyers</th><th>Median days to purchase</th></tr>"
    body = "".join(
        f'<tr><td>{r["rank"]}</td><td>{esc(r["path"])}</td><td>{r["users"]:,}</td><td>{pct(r["share_of_buyers"])}</td><td>{num(r["median_days_to_purchase"], 1)}</td></tr>'
        for r in journeys.paths
    )
    paths = f'<h3>Top paths to purchase</h3><table class="numbers">{header}{body}</table>' if journeys.paths else "<p>No user bought in this run's visits.</p>"
    return section("journeys", "Journeys", heatmap + paths)
