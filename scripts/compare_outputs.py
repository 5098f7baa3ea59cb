"""Compare the outputs of two visitseg versions on the same inputs: same K, same labels, same diagnostics.

    python scripts/compare_outputs.py OLD_ROOT NEW_ROOT [--tolerance 1e-9]

Each root holds one output folder per input (as `scripts/real_exports.py --output ROOT` writes them). For
every folder in both, the newest run of each is compared: `runs.chosen_k`, every `session_clusters` row
(visit_key → cluster_id, segment; distances and margins to the tolerance), every `k_diagnostics` figure,
and every `cluster_centers` number. Read with deltalake and pandas, independently of visitseg. Exits 1 when
anything differs, and prints what.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from deltalake import DeltaTable

TABLES = {
    "session_clusters": (["visit_key"], ["cluster_id", "segment"], ["distance_to_centroid", "margin"]),
    "k_diagnostics": (["k"], ["chosen", "sweep_rows", "sampled"], ["inertia", "silhouette", "davies_bouldin", "calinski_harabasz", "min_cluster_share", "max_cluster_share", "stability"]),
    "cluster_centers": (["cluster_id"], ["segment", "n_visits"], ["share", "conversion_rate", "revenue_per_visit", "bounce_rate", "cart_rate", "pageviews", "engagement_time_sec"]),
    "segment_kpis_daily": (["visit_date", "cluster_id"], ["segment", "n_visits"], ["share", "conversion_rate", "revenue_per_visit", "bounce_rate"]),
}


def newest_run(out: Path) -> pd.Series:
    runs = DeltaTable(str(out / "runs")).to_pandas()
    return runs.sort_values(["finished_at", "run_id"]).iloc[-1]


def table(out: Path, name: str, run_id: str) -> pd.DataFrame:
    df = DeltaTable(str(out / name)).to_pandas()
    return df[df.run_id == run_id]


def differences(old: Path, new: Path, tolerance: float) -> list[str]:
    found = []
    old_run, new_run = newest_run(old), newest_run(new)
    if old_run.chosen_k != new_run.chosen_k:
        found.append(f"chosen K {old_run.chosen_k} → {new_run.chosen_k}")
    for name, (keys, exact, close) in TABLES.items():
        a = table(old, name, old_run.run_id).set_index(keys).sort_index()
        b = table(new, name, new_run.run_id).set_index(keys).sort_index()
        if not a.index.equals(b.index):
            found.append(f"{name}: keys differ ({len(a)} → {len(b)} rows)")
            continue
        for column in exact:
            unequal = (a[column] != b[column]).sum()
            if unequal:
                found.append(f"{name}.{column}: {unequal} of {len(a)} rows differ")
        for column in close:
            x, y = a[column].to_numpy(dtype=float), b[column].to_numpy(dtype=float)
            if not np.allclose(x, y, rtol=tolerance, atol=tolerance, equal_nan=True):
                found.append(f"{name}.{column}: largest difference {np.nanmax(np.abs(x - y)):.3g}")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("--tolerance", type=float, default=1e-9)
    args = parser.parse_args()
    names = sorted(p.name for p in args.old.iterdir() if (args.new / p.name / "runs").is_dir())
    failed = False
    for name in names:
        found = differences(args.old / name, args.new / name, args.tolerance)
        run = newest_run(args.new / name)
        labels = len(table(args.new / name, "session_clusters", run.run_id))
        print(f"{name}: K {run.chosen_k}, {labels:,} labels: " + ("identical" if not found else "; ".join(found)))
        failed |= bool(found)
    return 1 if failed or not names else 0


if __name__ == "__main__":
    sys.exit(main())
