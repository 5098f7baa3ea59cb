"""Rule-based segments (`model.method = "rules"`): each visit's funnel depth and engagement, by thresholds.

The alternative to k-means where clustering is weak (the approach of the notebooks this product replaces):
deterministic segments that mean the same thing on every run and every site. First match wins, in funnel
order, so a visit is put at the deepest step it reached:

  5 "Buyers"               a transaction
  4 "Checkout abandoners"  a checkout, shipping-info or payment-info step, no transaction
  3 "Cart abandoners"      an add-to-cart, no later step
  0 "Bounced"              not engaged (`is_bounce`), no cart step
  2 "Product researchers"  product views + searches >= `rules.researcher_product_views`
  1 "Engaged browsers"     everything else: engaged, few product views

The number is the segment's cluster_id, fixed, so ids are comparable across runs and sites.
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

from visitseg.core.config import RulesConfig

RULE_SEGMENTS = ("Bounced", "Engaged browsers", "Product researchers", "Cart abandoners", "Checkout abandoners", "Buyers")


def rule_segment(cfg: RulesConfig) -> Column:
    """The index in RULE_SEGMENTS of each visit of the visit feature table."""
    c = F.col
    return (
        F.when(c("transactions") > 0, 5)
        .when(c("checkouts") + c("shipping_infos") + c("payment_infos") > 0, 4)
        .when(c("add_to_carts") > 0, 3)
        .when(c("is_bounce"), 0)
        .when(c("product_views") + c("searches") >= cfg.researcher_product_views, 2)
        .otherwise(1)
    )
