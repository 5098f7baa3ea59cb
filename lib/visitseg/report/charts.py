"""The run report's charts, drawn with matplotlib as inline SVG.

Why static SVG from matplotlib (README: "The run report"): the page must open offline, run no script and
stay small enough to mail. SVG text stays text (searchable, selectable, sharp in print) and a chart is a
few tens of kilobytes; plotly, the interactive alternative, inlines its 4.8 MB plotly.min.js (plotly 7.1)
into every page for hover tooltips the cards and tables already give in numbers.

Accessibility: Paul Tol's "muted" qualitative colours (told apart under the common colour-vision
deficiencies) in cluster_id order, so a segment has one colour on every chart; a blue–red diverging map
for the heatmap with the value written in every cell; every chart has a title and axis labels.
"""

from __future__ import annotations

import datetime as dt
import io
import math
from typing import Callable, Sequence

import matplotlib

matplotlib.use("Agg")  # no display: the charts only ever go to SVG text

from matplotlib.figure import Figure  # noqa: E402 (after the backend is chosen)
from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter  # noqa: E402

PALETTE = ("#332288", "#88CCEE", "#44AA99", "#117733", "#999933", "#DDCC77", "#CC6677", "#882255", "#AA4499", "#DDDDDD")
LINE_STYLES = ("-", "--", ":", "-.")  # past ten segments, colours repeat with another line style
HEATMAP_COLOURS = "RdBu_r"
STYLE = {
    "svg.fonttype": "none",  # text as <text>, in the page's own sans-serif font: no font file inlined
    "font.family": "sans-serif",
    "font.size": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titleweight": "bold",
}
# (column of k_diagnostics, panel title): each panel says which direction is better.
K_METRICS = (
    ("inertia", "Inertia (lower = tighter)"),
    ("silhouette", "Silhouette (higher = better)"),
    ("davies_bouldin", "Davies–Bouldin (lower = better)"),
    ("calinski_harabasz", "Calinski–Harabasz (higher = better)"),
    ("stability", "Split-half stability, ARI (higher = better)"),
)
CHOSEN_COLOUR = "#CC3311"


def colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def line_style(i: int) -> str:
    return LINE_STYLES[(i // len(PALETTE)) % len(LINE_STYLES)]


def k_diagnostics(rows: Sequence[dict], chosen_k: int) -> str:
    """One panel per metric over K, the chosen K marked by a dashed line and a star."""
    ks = [r["k"] for r in rows]

    def draw(fig: Figure) -> None:
        axes = fig.subplots(2, 3).flatten()
        for ax, (column, title) in zip(axes, K_METRICS):
            values = [_number(r[column]) for r in rows]
            ax.plot(ks, values, marker="o", color=PALETTE[0])
            ax.axvline(chosen_k, linestyle="--", color=CHOSEN_COLOUR, linewidth=1)
            chosen = [v for k, v in zip(ks, values) if k == chosen_k]
            if chosen:
                ax.plot([chosen_k], chosen, marker="*", markersize=14, color=CHOSEN_COLOUR, linestyle="none")
            ax.set_title(title, fontsize=10)
            ax.set_xlabel("K (number of segments)")
            ax.set_ylabel(column.replace("_", " "))
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.yaxis.set_major_formatter(FuncFormatter(_short_number))
        axes[-1].axis("off")
        axes[-1].text(0.0, 0.6, f"Dashed line and star:\nthe chosen K = {chosen_k}", fontsize=11, color=CHOSEN_COLOUR)
        fig.suptitle("K diagnostics: how well each number of segments separates the data", fontweight="bold")

    return _render("k-diagnostics", (11, 6), draw)


def heatmap(segments: Sequence[str], features: Sequence[str], z: Sequence[Sequence[float]]) -> str:
    """Segments × features (as labelled) in standard deviations from the overall mean (the model's units)."""
    limit = max([1.0, *[abs(v) for row in z for v in row]])

    def draw(fig: Figure) -> None:
        ax = fig.subplots()
        mesh = ax.pcolormesh(z, cmap=HEATMAP_COLOURS, vmin=-limit, vmax=limit, edgecolors="white", linewidth=1)
        for i, row in enumerate(z):
            for j, value in enumerate(row):
                ink = "white" if abs(value) > 0.6 * limit else "black"
                ax.text(j + 0.5, i + 0.5, f"{value:+.1f}", ha="center", va="center", fontsize=9, color=ink)
        ax.set_xticks([j + 0.5 for j in range(len(features))], features, rotation=30, ha="right")
        ax.set_yticks([i + 0.5 for i in range(len(segments))], segments)
        ax.invert_yaxis()  # cluster 0 on top, as in the cards
        ax.set_xlabel("Model feature")
        ax.set_ylabel("Segment")
        ax.set_title("Segment profiles: each segment's centre, in standard deviations from the mean")
        fig.colorbar(mesh, ax=ax, label="standard deviations from the overall mean")

    return _render("heatmap", (max(7.0, 1.1 * len(features) + 3.5), 0.45 * len(segments) + 2.6), draw)


def daily_shares(days: Sequence[dt.date], segments: Sequence[str], shares: Sequence[Sequence[float]], noun: str) -> str:
    """Stacked shares of each day's visits (a stacked bar when there is a single day: an area needs two)."""

    def draw(fig: Figure) -> None:
        ax = fig.subplots()
        colours = [colour(i) for i in range(len(segments))]
        if len(days) > 1:
            ax.stackplot(days, shares, labels=segments, colors=colours)
            ax.set_xlim(days[0], days[-1])
        else:
            bottom = 0.0
            for name, share, c in zip(segments, shares, colours):
                ax.bar([0], [share[0]], bottom=bottom, label=name, color=c, width=0.4)
                bottom += share[0]
            ax.set_xticks([0], [str(days[0])])
            ax.set_xlim(-1, 1)
        ax.set_ylim(0, 1)
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_ylabel(f"Share of the day's {noun}")
        ax.set_title(f"Segment mix per day (share of {noun})")
        _daily_axes(fig, ax)

    return _render("daily-shares", (11, 4.2), draw)


def daily_rates(days: Sequence[dt.date], segments: Sequence[str], rates: Sequence[Sequence[float]], what: str, noun: str) -> str:
    """One line per segment of a per-day rate (NaN where the segment had no visits that day)."""

    def draw(fig: Figure) -> None:
        ax = fig.subplots()
        for i, (name, values) in enumerate(zip(segments, rates)):
            ax.plot(days, values, marker="o", markersize=4, label=name, color=colour(i), linestyle=line_style(i), clip_on=False)
        if len(days) == 1:  # one day: centre it rather than let the date axis span years
            ax.set_xlim(days[0] - dt.timedelta(days=1), days[0] + dt.timedelta(days=1))
            ax.set_xticks([days[0]])
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_ylim(bottom=0)
        ax.set_ylabel(f"{what.capitalize()} (share of {noun})")
        ax.set_title(f"{what.capitalize()} per segment per day")
        _daily_axes(fig, ax)

    return _render("daily-rates", (11, 4.2), draw)


def _daily_axes(fig: Figure, ax) -> None:
    ax.set_xlabel("Day")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, title="Segment")
    fig.autofmt_xdate()


def _number(value) -> float:
    return float("nan") if value is None else float(value)


def _short_number(value: float, _position) -> str:
    """Axis numbers readable at a glance: 12,300 → 12.3k, 4,560,000 → 4.56M."""
    magnitude = abs(value)
    if magnitude >= 1e6:
        return f"{value / 1e6:.3g}M"
    if magnitude >= 1e4:
        return f"{value / 1e3:.3g}k"
    return f"{value:,.0f}" if math.isclose(value, round(value)) else f"{value:.3g}"


def _render(name: str, size: tuple[float, float], draw: Callable[[Figure], None]) -> str:
    """Draw a figure in the report's style and return it as an <svg> element to inline: no XML prolog,
    ids salted by the chart's name so the charts of one page never share one, and no date, so the same
    tables give the same bytes."""
    buffer = io.StringIO()
    with matplotlib.rc_context({**STYLE, "svg.hashsalt": name}):
        fig = Figure(figsize=size)
        draw(fig)
        fig.tight_layout()
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def transitions(sources: Sequence[str], targets: Sequence[str], shares: Sequence[Sequence[float]]) -> str:
    """From-segment × to-segment, the share of the from-segment's next visits (rows sum to one; NaN: none)."""

    def draw(fig: Figure) -> None:
        ax = fig.subplots()
        mesh = ax.pcolormesh(shares, cmap="Blues", vmin=0.0, vmax=1.0, edgecolors="white", linewidth=1)
        for i, row in enumerate(shares):
            for j, value in enumerate(row):
                if not math.isnan(value):
                    ax.text(j + 0.5, i + 0.5, f"{value:.0%}", ha="center", va="center", fontsize=9, color="white" if value > 0.6 else "black")
        ax.set_xticks([j + 0.5 for j in range(len(targets))], targets, rotation=30, ha="right")
        ax.set_yticks([i + 0.5 for i in range(len(sources))], sources)
        ax.invert_yaxis()
        ax.set_xlabel("Next visit's segment")
        ax.set_ylabel("Visit's segment")
        ax.set_title("Segment transitions: where each segment's visitors go next")
        fig.colorbar(mesh, ax=ax, label="share of the segment's next visits")

    return _render("transitions", (max(7.0, 1.0 * len(targets) + 4.0), 0.45 * len(sources) + 2.8), draw)
