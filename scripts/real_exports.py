"""What visitseg gives on the shared real exports (../shared/data/real): one `visitseg run` per input —
the GA360 day, the GA4 week and each GA4 day alone — in one Spark session, printed as the figures the
README's "Segments on real data" section quotes.

    python scripts/real_exports.py [--real ../shared/data/real] [--output out/real] [--set model.k_max=8 ...]
    python scripts/real_exports.py --set features.grain=user     # the same at user grain (users, buying users)

Per input: visits, purchase visits, chosen K and why, the stability and silhouette of that K, whether
the structure is weak, the share of purchase visits inside segments converting at >= 4x the overall
rate, each segment's name, share, conversion rate and bounce rate, and its journeys (the top
transitions, paths to purchase and over-represented attributes).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
from pathlib import Path

from pyspark.sql import functions as F

from visitseg.storage import delta
from visitseg.core.config import SparkConfig, load_config, with_values
from visitseg.monitor.journeys import NO_RETURN, OTHER
from visitseg.pipelines.run import run_job
from visitseg.report.journeys import OVER_REPRESENTED_LIFT, OVER_REPRESENTED_VISITS
from visitseg.features.grains import GRAINS
from visitseg.core.spark import build_session

ROOT = Path(__file__).resolve().parents[1]
GA4_DAYS = ("2020-11-01", "2020-11-02", "2020-11-04", "2020-11-05", "2020-11-06", "2020-11-07")
BUYER_LIFT = 4.0


def inputs(real: Path) -> list[tuple[str, str, str, dict]]:
    """(name, format, path, input window) of every real input."""
    day = dt.timedelta(days=1)
    runs = [("ga360-20170801", "ga360", str(real / "ga360"), {}), ("ga4-week", "ga4", str(real / "ga4_week"), {})]
    for d in GA4_DAYS:
        start = dt.date.fromisoformat(d)
        runs.append((f"ga4-{d}", "ga4", str(real / "ga4_week"), {"date_from": d, "date_to": (start + day).isoformat()}))
    return runs


def buyer_concentration(spark, out: str, run_id: str, grain_name: str) -> tuple[int, float]:
    """(purchase visits — or buying users — and the share of them inside segments converting at
    >= BUYER_LIFT x the overall rate)."""
    grain = GRAINS[grain_name]
    labels = delta.read_table(spark, f"{out}/{grain.labels_table}").filter(F.col("run_id") == run_id)
    features = delta.read_table(spark, f"{out}/{grain_name}_features").filter(F.col("run_id") == run_id)
    per_cluster = (
        labels.join(features.select(grain.key, (F.col("transactions") > 0).cast("int").alias("bought")), grain.key)
        .groupBy("cluster_id")
        .agg(F.count(F.lit(1)).alias("n"), F.sum("bought").alias("buyers"))
        .collect()
    )
    n, buyers = sum(r["n"] for r in per_cluster), sum(r["buyers"] for r in per_cluster)
    if not buyers:
        return 0, float("nan")
    overall = buyers / n
    return buyers, sum(r["buyers"] for r in per_cluster if r["buyers"] / r["n"] >= BUYER_LIFT * overall) / buyers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--real", default=str(ROOT.parent / "shared" / "data" / "real"))
    parser.add_argument("--output", default=str(ROOT / "out" / "real"))
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    parser.add_argument("--only", action="append", default=[], help="run only these inputs (by name)")
    args = parser.parse_args()
    logging.basicConfig(level="WARNING", format="%(levelname)s %(name)s: %(message)s")
    spark = build_session(SparkConfig(master="local[2]", shuffle_partitions=4, conf={"spark.ui.enabled": "false"}))
    spark.sparkContext.setLogLevel("ERROR")
    base = load_config([], args.overrides)
    for name, fmt, path, window in inputs(Path(args.real)):
        if args.only and name not in args.only:
            continue
        out = f"{args.output}/{name}"
        cfg = with_values(base, run={"run_id": name}, input={"format": fmt, "path": path, **window}, output={"path": out})
        summary = run_job(spark, cfg)
        seg = summary.segmentation
        chosen = next(r for r in seg.selection.results if r.k == seg.selection.k)
        unit = "visits" if cfg.features.grain == "visit" else "users"
        buyers, concentration = buyer_concentration(spark, out, name, cfg.features.grain)
        print(f"\n## {name}: {summary.record.n_rows:,} {unit}, {buyers:,} with a purchase")
        print(f"K = {seg.k}, stability {chosen.stability:.3f}, silhouette {chosen.silhouette:.3f}; "
              f"purchasing {unit} in segments converting >= {BUYER_LIFT:g}x overall: {concentration:.1%}")
        print(f"why: {seg.reason}")
        if seg.weak_structure:
            print(f"WARNING: {seg.weak_structure}")
        print("stability per K: " + ", ".join(f"{r.k}: {r.stability:.2f}" for r in seg.selection.results))
        for method, f in (seg.selection.comparison or {}).items():
            print(f"{method:>6}: {f['segments']} segments, mean eta² {f['mean_eta_squared']:.3f}, "
                  f"split stability {f['split_stability_ari']:.3f}, profile shift {f['profile_shift']:.3f} sd")
        views = "pageviews" if cfg.features.grain == "visit" else "views_per_session"
        print(f"| {'segment':<32} | {'share':>6} | {'conversion':>10} | {'bounce':>6} | {'cart':>6} | {views:>9} |")
        for c in seg.centres:
            mean_views = c.means[views] if views in c.means else c.means["total_views"] / c.means["sessions"]
            print(f"| {c.segment:<32} | {c.share:>6.1%} | {c.conversion_rate:>10.1%} | {c.bounce_rate:>6.1%} | "
                  f"{c.cart_rate:>6.1%} | {mean_views:>9.1f} |")
        if cfg.features.grain == "visit" and cfg.journeys.enabled:
            print_journeys(spark, out, name)
    spark.stop()


def print_journeys(spark, out: str, run_id: str) -> None:
    """The README's Journeys figures: the top transitions between segments, the top paths to a first
    purchase, and each segment's most over-represented attribute values (small tables, read whole)."""
    def rows(name: str, order):
        return delta.read_table(spark, f"{out}/{name}").filter(F.col("run_id") == run_id).orderBy(*order).collect()

    transitions = rows("segment_transitions", [F.desc("transitions"), "from_segment", "to_segment"])
    print("top transitions between visits (share of the from-segment's visits; median hours; next visit's conversion):")
    for r in [r for r in transitions if r.from_cluster_id is not None and r.to_cluster_id is not None][:6]:
        print(f"  {r.from_segment} → {r.to_segment}: {r.transitions:,} ({r.share:.1%}), {r.median_hours_between:.1f} h, {r.next_conversion_rate:.1%}")
    returns = [r for r in transitions if r.to_segment == NO_RETURN and r.from_cluster_id is not None]
    print("  came back after a visit: " + ", ".join(f"{r.from_segment} {1 - r.share:.1%}" for r in returns))
    print("top paths to the first purchase:")
    for r in rows("paths_to_purchase", ["rank"])[:5]:
        print(f"  {r.rank}. {r.path}: {r.users:,} buyers ({r.share_of_buyers:.1%}), median {r.median_days_to_purchase:g} days")
    lifted = rows("segment_attributes", ["cluster_id", F.desc("lift")])
    print(f"each segment's most over-represented attribute values (lift >= {OVER_REPRESENTED_LIFT:g}, >= {OVER_REPRESENTED_VISITS} visits):")
    for segment in dict.fromkeys(r.segment for r in lifted):
        top = [r for r in lifted if r.segment == segment and r.value != OTHER and r.lift >= OVER_REPRESENTED_LIFT and r.visits >= OVER_REPRESENTED_VISITS][:3]
        print(f"  {segment}: " + ("; ".join(f"{r.attribute} {r.value} {r.segment_share:.0%} vs {r.overall_share:.0%} (lift {r.lift:.1f})" for r in top) or "none"))


if __name__ == "__main__":
    main()
