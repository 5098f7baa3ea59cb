"""The small pieces of HTML every section of the report page is written with: escaping and number formats."""

from __future__ import annotations

import datetime as dt
import html
import math
from typing import Any, Sequence

from visitseg.model.naming import LABELS


def section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{esc(title)}</h2>{body}</section>\n'


def facts_table(facts: Sequence[tuple[str, Any]]) -> str:
    rows = "".join(f'<tr><th scope="row">{esc(k)}</th><td>{esc(v)}</td></tr>' for k, v in facts)
    return f'<table class="facts">{rows}</table>'


def figure(svg: str, caption: str) -> str:
    labelled = svg.replace("<svg ", f'<svg role="img" aria-label="{esc(caption)}" ', 1)
    return f'<figure>{labelled}<figcaption>{esc(caption)}</figcaption></figure>'


def label(feature: str) -> str:
    return LABELS.get(feature, feature.replace("_", " "))


def esc(value: Any) -> str:
    return html.escape(str(value))


def value_or(value: Any, missing: float) -> float:
    return missing if value is None else float(value)


def pct(value: Any) -> str:
    return "–" if value is None else f"{float(value):.1%}"


def money(value: Any) -> str:
    return "–" if value is None else f"{float(value):,.2f}"


def num(value: Any, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{float(value):,.{digits}f}"


def amount(value: float) -> str:
    """A mean in original units: enough digits to compare, thousands separated."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"


def when(value: dt.datetime | None) -> str:
    """An instant in UTC. PySpark's collect() gives a timestamp as a naive datetime in the driver's own
    time zone (not the session's), which `astimezone` reads as such, its repeated autumn hour included."""
    return "–" if value is None else value.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
