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
Any other cluster is named by what sets it apart: the (at most two) model features whose centre lies
farthest from the overall mean, at least `DISTINCT_Z` standard deviations away, e.g. "High product
views, searches" or "Low engagement time"; "Typical visits" when no feature is that far.
Clusters that get the same name are told apart by a number in id order: "Researchers", "Researchers 2".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from visitseg.core.config import NamingConfig

DISTINCT_Z = 0.5
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
            names.append(descriptive_name(p.standardized))
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name} {seen[name]}")
    return unique


def descriptive_name(standardized: Mapping[str, float]) -> str:
    """"High a, b" / "Low a" from the features farthest from the mean (same direction as the farthest)."""
    ranked = sorted(standardized.items(), key=lambda item: (-abs(item[1]), item[0]))
    if not ranked or abs(ranked[0][1]) < DISTINCT_Z:
        return "Typical visits"
    sign = ranked[0][1] > 0
    chosen = [name for name, z in ranked[:2] if abs(z) >= DISTINCT_Z and (z > 0) == sign]
    return f"{'High' if sign else 'Low'} {', '.join(LABELS.get(name, name.replace('_', ' ')) for name in chosen)}"
