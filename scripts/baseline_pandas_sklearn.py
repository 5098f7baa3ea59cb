"""The single-node baseline: the seed notebook's pipeline (pandas + scikit-learn) on a GA360 Parquet export
or a flat event log (Retailrocket CSV layout).

Same steps as visitseg's default configuration, on one machine: hits → one row per visit (pandas
groupby; events are cut into visits by a 30-minute inactivity gap), the default features, log1p then a
z-clip at 5 std, StandardScaler, scikit-learn KMeans for K in 4..10, silhouette on a 10,000-row sample (as
notebooks do: it is quadratic), Davies–Bouldin and Calinski–Harabasz on all rows. No split-half
stability (notebooks do not compute it). The nested hits are flattened with pyarrow's vectorised list
kernels, so the baseline is as fast as pandas gets, not a strawman.

    python scripts/baseline_pandas_sklearn.py --input data/ga360_10m [--format events] [--k-min 4 --k-max 10] [--json out.json]

Prints seconds per stage and peak RSS, and the same as JSON on the last line (or into --json).
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pyarrow.dataset as ds
from sklearn.cluster import KMeans
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score
from sklearn.preprocessing import StandardScaler

FEATURES = [
    "pageviews", "unique_pages", "engagement_time_sec", "product_views", "searches", "cart_steps", "transactions",
    "transaction_revenue",
]
SESSION_GAP_MS = 30 * 60 * 1000


def read_ga360_hits(path: str) -> pd.DataFrame:
    table = ds.dataset(path, format="parquet").to_table(columns=["fullVisitorId", "visitId", "hits"])
    hits = table.column("hits").combine_chunks()
    parents = pc.list_parent_indices(hits)
    flat = pc.list_flatten(hits)
    visit_key = pc.binary_join_element_wise(table.column("fullVisitorId").cast("string"), table.column("visitId").cast("string"), "-")
    return pd.DataFrame(
        {
            "visit_key": pc.take(visit_key, parents).to_numpy(zero_copy_only=False),
            "time": pc.struct_field(flat, "time").to_numpy(zero_copy_only=False),
            "type": pc.struct_field(flat, "type").to_numpy(zero_copy_only=False),
            "page": pc.struct_field(pc.struct_field(flat, "page"), "pagePath").to_numpy(zero_copy_only=False),
            "action": pc.struct_field(pc.struct_field(flat, "eCommerceAction"), "action_type").to_numpy(zero_copy_only=False),
            "revenue": pc.struct_field(pc.struct_field(flat, "transaction"), "transactionRevenue").to_numpy(zero_copy_only=False),
        }
    )


def ga360_visits(hits: pd.DataFrame) -> pd.DataFrame:
    hits["is_page"] = hits["type"] == "PAGE"
    hits["page"] = hits["page"].where(hits["is_page"])
    hits["product_view"] = hits["action"] == "2"
    hits["cart_step"] = hits["action"].isin(["3", "5"])
    hits["is_transaction"] = hits["revenue"].notna()
    grouped = hits.groupby("visit_key", sort=False)
    return pd.DataFrame(
        {
            "pageviews": grouped["is_page"].sum(),
            "unique_pages": grouped["page"].nunique(),
            "engagement_time_sec": (grouped["time"].max() - grouped["time"].min()) / 1000.0,
            "product_views": grouped["product_view"].sum(),
            "searches": 0,
            "cart_steps": grouped["cart_step"].sum(),
            "transactions": grouped["is_transaction"].sum(),
            "transaction_revenue": grouped["revenue"].sum() / 1e6,
        }
    )


def read_events(path: str) -> pd.DataFrame:
    return ds.dataset(path, format="csv").to_table(columns=["timestamp", "visitorid", "event", "itemid", "transactionid"]).to_pandas()


def events_visits(events: pd.DataFrame) -> pd.DataFrame:
    events = events.sort_values(["visitorid", "timestamp"], kind="stable")
    new_visit = (events["visitorid"] != events["visitorid"].shift()) | (events["timestamp"].diff() > SESSION_GAP_MS)
    events["visit_n"] = new_visit.cumsum()
    events["view"] = events["event"] == "view"
    events["viewed_item"] = events["itemid"].where(events["view"])
    events["cart"] = events["event"] == "addtocart"
    events["txn"] = events["transactionid"].where(events["event"] == "transaction")
    grouped = events.groupby("visit_n", sort=False)
    return pd.DataFrame(
        {
            "pageviews": grouped["view"].sum(),
            "unique_pages": grouped["viewed_item"].nunique(),
            "engagement_time_sec": (grouped["timestamp"].max() - grouped["timestamp"].min()) / 1000.0,
            "product_views": grouped["view"].sum(),
            "searches": 0,
            "cart_steps": grouped["cart"].sum(),
            "transactions": grouped["txn"].nunique(),
            "transaction_revenue": 0.0,
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True)
    parser.add_argument("--format", choices=("ga360", "events"), default="ga360")
    parser.add_argument("--k-min", type=int, default=4)
    parser.add_argument("--k-max", type=int, default=10)
    parser.add_argument("--z", type=float, default=5.0)
    parser.add_argument("--silhouette-sample", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()

    seconds: dict[str, float] = {}
    started = t = time.perf_counter()
    hits = read_ga360_hits(args.input) if args.format == "ga360" else read_events(args.input)
    seconds["read"] = time.perf_counter() - t
    t = time.perf_counter()
    visits = (ga360_visits(hits) if args.format == "ga360" else events_visits(hits))[FEATURES].astype(float)
    n_hits, n_visits = len(hits), len(visits)
    del hits
    seconds["aggregate"] = time.perf_counter() - t
    t = time.perf_counter()
    logs = np.log1p(visits.clip(lower=0))
    mean, std = logs.mean(), logs.std(ddof=0)
    clipped = logs.clip(lower=mean - args.z * std, upper=mean + args.z * std, axis=1)
    X = StandardScaler().fit_transform(clipped.to_numpy())
    seconds["preprocess"] = time.perf_counter() - t
    t = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    sample = rng.choice(len(X), size=min(args.silhouette_sample, len(X)), replace=False)
    sweep = []
    for k in range(args.k_min, args.k_max + 1):
        labels = KMeans(n_clusters=k, random_state=args.seed, n_init=1).fit_predict(X)
        sweep.append(
            {
                "k": k,
                "silhouette_10k": float(silhouette_score(X[sample], labels[sample], metric="sqeuclidean")),
                "davies_bouldin": float(davies_bouldin_score(X, labels)),
                "calinski_harabasz": float(calinski_harabasz_score(X, labels)),
            }
        )
    seconds["sweep"] = time.perf_counter() - t
    seconds["total"] = time.perf_counter() - started
    figures = {
        "hits": n_hits,
        "visits": n_visits,
        "seconds": {k: round(v, 2) for k, v in seconds.items()},
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "sweep": sweep,
    }
    print_figures(figures, args.json)


def print_figures(figures: dict, json_path: str | None) -> None:
    """Seconds per stage (and peak RSS where measured), then the figures as JSON on the last line, which
    `benchmark.py` reads; also into `json_path` when given. Both baselines report this way."""
    for stage, value in figures["seconds"].items():
        print(f"{stage:<12} {value:>8.2f} s")
    if "peak_rss_mb" in figures:
        print(f"peak RSS     {figures['peak_rss_mb']:>8.1f} MB")
    if json_path:
        with open(json_path, "w") as f:
            json.dump(figures, f, indent=2)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
