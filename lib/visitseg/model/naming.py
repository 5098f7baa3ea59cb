"""Stable cluster ids and segment names that are true to the cluster profiles.

k-means numbers clusters arbitrarily, and the numbers change between retrains. visitseg renumbers them
by a business key — conversion rate, then mean pageviews, then mean time on site, then size, all
ascending — so cluster 0 is the least engaged and the last is the best converting, run after run.

An archetype name is given only where the profile meets its thresholds (`[naming]`), first match wins:
  1. conversion rate >= buyer_conversion_rate → "Buyers"; when several clusters are buyers, those whose
     revenue per visit is >= high_value_revenue_ratio × the lowest buyer cluster's are "High-value buyers"
  2. bounce rate >= bounce_rate → "Bouncers"
  3. share of visits with a cart step >= cart_rate and conversion rate < abandoner_max_conversion_rate
     → "Cart abandoners"
  4. conversion rate < abandoner_max_conversion_rate and (mean pageviews >= researcher_pageviews or mean
     time on site >= researcher_time_on_site_sec) → "Researchers"
  5. conversion rate < abandoner_max_conversion_rate, bounce rate < browser_max_bounce_rate and mean
     pageviews >= browser_pageviews → "Browsers"
Any other cluster is named by what sets it apart from the mean: the (at most two) model features whose
centre lies at least `distinct_z` standard deviations away, e.g. "High product views, searches" or "Low
engagement time"; else the farthest feature at least `average_z` away, e.g. "Below-average engagement
time"; "Average visits" only when every feature is nearer than that.

Clusters that get the same name are told apart by what separates them, never by a number: the feature
whose centres differ most between them (in standard deviations) splits them at their mean, "higher" and
"lower", and again within a side that still holds several, e.g. "Browsers (higher page views)" and
"Browsers (lower page views)". On a retrain a continued cluster keeps its name (`lineage`); a new
cluster whose name a continued one holds is told apart from it the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

from visitseg.core.config import NamingConfig

# How a feature reads in a name; other features read as their column name with spaces.
LABELS = {
    "pageviews": "page views",
    "engagement_time_sec": "engagement time",
    "time_on_site_sec": "time on site",
    "transaction_revenue": "revenue",
    "cart_steps": "cart steps",
    "unique_pages": "unique pages",
    "product_views": "product views",
}


@dataclass(frozen=True)
class Profile:
    raw_id: int  # k-means' own number
    n: int
    conversion_rate: float
    revenue_per_visit: float
    bounce_rate: float
    cart_rate: float  # share of visits (users) with a cart step
    pageviews: float
    time_on_site_sec: float
    standardized: Mapping[str, float] = field(default_factory=dict)  # the centre, in standard deviations from the mean


def stable_order(profiles: list[Profile]) -> list[Profile]:
    """Profiles in cluster_id order (index = cluster_id)."""
    return sorted(profiles, key=lambda p: (p.conversion_rate, p.pageviews, p.time_on_site_sec, p.n, p.raw_id))


def segment_names(ordered: list[Profile], cfg: NamingConfig) -> list[str]:
    buyers = [p for p in ordered if p.conversion_rate >= cfg.buyer_conversion_rate]
    lowest_buyer_revenue = min((p.revenue_per_visit for p in buyers), default=0.0)
    names = []
    for p in ordered:
        low_conversion = p.conversion_rate < cfg.abandoner_max_conversion_rate
        if p in buyers:
            high = len(buyers) > 1 and p.revenue_per_visit >= cfg.high_value_revenue_ratio * lowest_buyer_revenue
            names.append("High-value buyers" if high else "Buyers")
        elif p.bounce_rate >= cfg.bounce_rate:
            names.append("Bouncers")
        elif p.cart_rate >= cfg.cart_rate and low_conversion:
            names.append("Cart abandoners")
        elif low_conversion and (p.pageviews >= cfg.researcher_pageviews or p.time_on_site_sec >= cfg.researcher_time_on_site_sec):
            names.append("Researchers")
        elif low_conversion and p.bounce_rate < cfg.browser_max_bounce_rate and p.pageviews >= cfg.browser_pageviews:
            names.append("Browsers")
        else:
            names.append(descriptive_name(p.standardized, cfg))
    return told_apart(names, [p.standardized for p in ordered])


def told_apart(names: list[str], centres: Sequence[Mapping[str, float]]) -> list[str]:
    """`names` with each name that several clusters share qualified by what separates those clusters."""
    unique = list(names)
    for name in sorted(set(names)):
        members = [i for i, n in enumerate(names) if n == name]
        if len(members) > 1:
            for i, words in _split(members, centres).items():
                unique[i] = f"{name} ({', '.join(words)})"
    return unique


def _split(members: list[int], centres: Sequence[Mapping[str, float]]) -> dict[int, list[str]]:
    """Qualifiers of each member: split at the mean of the feature whose centres spread the most, recursively."""
    if len(members) == 1:
        return {members[0]: []}
    features = sorted(set.intersection(*(set(centres[i]) for i in members)))
    spread = {f: max(centres[i][f] for i in members) - min(centres[i][f] for i in members) for f in features}
    widest = min(features, key=lambda f: (-spread[f], f), default=None)
    if widest is None or spread[widest] == 0:  # identical centres (not k-means output): letters, never numbers
        return {i: [chr(ord("A") + n)] for n, i in enumerate(members)}
    mean = sum(centres[i][widest] for i in members) / len(members)
    label = LABELS.get(widest, widest.replace("_", " "))
    higher = [i for i in members if centres[i][widest] > mean]
    lower = [i for i in members if centres[i][widest] <= mean]
    qualified = {}
    for side, word in ((higher, "higher"), (lower, "lower")):
        qualified.update({i: [f"{word} {label}", *rest] for i, rest in _split(side, centres).items()})
    return qualified


def descriptive_name(standardized: Mapping[str, float], cfg: NamingConfig) -> str:
    """"High a, b" / "Low a" from the features farthest from the mean (same direction as the farthest),
    "Above-average a" / "Below-average a" when the farthest is only a little away, else "Average visits"."""
    ranked = sorted(standardized.items(), key=lambda item: (-abs(item[1]), item[0]))
    if not ranked or abs(ranked[0][1]) < cfg.average_z:
        return "Average visits"
    name, z = ranked[0]
    if abs(z) < cfg.distinct_z:
        return f"{'Above' if z > 0 else 'Below'}-average {LABELS.get(name, name.replace('_', ' '))}"
    chosen = [f for f, v in ranked[:2] if abs(v) >= cfg.distinct_z and (v > 0) == (z > 0)]
    return f"{'High' if z > 0 else 'Low'} {', '.join(LABELS.get(f, f.replace('_', ' ')) for f in chosen)}"
