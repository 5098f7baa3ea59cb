"""Stable cluster ids and readable segment names from cluster profiles.

k-means numbers clusters arbitrarily, and the numbers change between retrains. visitseg renumbers them
by a business key — conversion rate, then mean pageviews, then mean time on site, then size, all
ascending — so cluster 0 is the least engaged and the last is the best converting, run after run.

Names follow the first rule that matches a cluster's profile (thresholds in `[naming]`):
  1. conversion rate >= buyer_conversion_rate → "Buyers"; when several clusters are buyers, those whose
     revenue per visit is >= high_value_revenue_ratio × the lowest buyer cluster's are "High-value buyers"
  2. bounce rate >= bounce_rate → "Bouncers"
  3. add-to-carts per visit >= cart_rate → "Cart abandoners"
  4. mean pageviews >= researcher_pageviews or mean time on site >= researcher_time_on_site_sec → "Researchers"
  5. otherwise "Browsers"
Clusters that get the same name are told apart by a number in id order: "Browsers", "Browsers 2".
"""

from __future__ import annotations

from dataclasses import dataclass

from visitseg.config import NamingConfig


@dataclass(frozen=True)
class Profile:
    raw_id: int  # k-means' own number
    n: int
    conversion_rate: float
    revenue_per_visit: float
    bounce_rate: float
    cart_rate: float
    pageviews: float
    time_on_site_sec: float


def stable_order(profiles: list[Profile]) -> list[Profile]:
    """Profiles in cluster_id order (index = cluster_id)."""
    return sorted(profiles, key=lambda p: (p.conversion_rate, p.pageviews, p.time_on_site_sec, p.n, p.raw_id))


def segment_names(ordered: list[Profile], cfg: NamingConfig) -> list[str]:
    buyers = [p for p in ordered if p.conversion_rate >= cfg.buyer_conversion_rate]
    lowest_buyer_revenue = min((p.revenue_per_visit for p in buyers), default=0.0)
    names = []
    for p in ordered:
        if p in buyers:
            high = len(buyers) > 1 and p.revenue_per_visit >= cfg.high_value_revenue_ratio * lowest_buyer_revenue
            names.append("High-value buyers" if high else "Buyers")
        elif p.bounce_rate >= cfg.bounce_rate:
            names.append("Bouncers")
        elif p.cart_rate >= cfg.cart_rate:
            names.append("Cart abandoners")
        elif p.pageviews >= cfg.researcher_pageviews or p.time_on_site_sec >= cfg.researcher_time_on_site_sec:
            names.append("Researchers")
        else:
            names.append("Browsers")
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name} {seen[name]}")
    return unique
