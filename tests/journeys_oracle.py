"""The journey tables recomputed with pandas from the written `session_clusters` and `visit_features` rows:
an implementation independent of `visitseg.monitor.journeys`, for the tests to compare with exactly."""

from __future__ import annotations

import pandas as pd

FIRST, NO_RETURN, NOT_SET, OTHER, ARROW = "(first visit)", "(no return)", "(not set)", "(other)", " → "


def segmented(labels: pd.DataFrame, features: pd.DataFrame) -> pd.DataFrame:
    """Each visit with its segment, in each user's start order (ties by visit key, unknown starts last)."""
    visits = labels[["visit_key", "cluster_id", "segment"]].merge(features.drop(columns=["run_id"], errors="ignore"), on="visit_key")
    visits["start_s"] = visits.visit_start_ts.dt.floor("s")  # Spark's unix_seconds drops the fraction
    return visits.sort_values(["user_key", "visit_start_ts", "visit_key"], na_position="last").reset_index(drop=True)


def transitions(visits: pd.DataFrame) -> pd.DataFrame:
    v = visits[visits.user_key.notna()]
    by_user = v.groupby("user_key", sort=False)
    previous_start = by_user.start_s.shift(1)
    into = pd.DataFrame({
        "from_cluster_id": by_user.cluster_id.shift(1), "from_segment": by_user.segment.shift(1).fillna(FIRST),
        "to_cluster_id": v.cluster_id.astype(float), "to_segment": v.segment,
        "minutes": ((v.start_s - previous_start).dt.total_seconds() // 60), "converted": (v.transactions > 0).astype(float),
    })
    last = v[by_user.visit_key.shift(-1).isna()]
    after = pd.DataFrame({
        "from_cluster_id": last.cluster_id.astype(float), "from_segment": last.segment, "to_cluster_id": float("nan"), "to_segment": NO_RETURN,
        "minutes": float("nan"), "converted": float("nan"),
    })
    steps = pd.concat([into, after], ignore_index=True)
    pairs = steps.groupby(["from_segment", "to_segment"]).agg(
        from_cluster_id=("from_cluster_id", "first"), to_cluster_id=("to_cluster_id", "first"), transitions=("to_segment", "size"),
        median_minutes=("minutes", "median"), next_conversion_rate=("converted", "mean"),
    ).reset_index()
    pairs["share"] = pairs.transitions / pairs.groupby("from_segment").transitions.transform("sum")
    pairs["median_hours_between"] = pairs.median_minutes / 60
    columns = ["from_cluster_id", "from_segment", "to_cluster_id", "to_segment", "transitions", "share", "median_hours_between", "next_conversion_rate"]
    return pairs[columns].sort_values(["from_segment", "to_segment"]).reset_index(drop=True)


def paths_to_purchase(visits: pd.DataFrame, max_length: int) -> pd.DataFrame:
    v = visits[visits.user_key.notna()].copy()
    v["n"] = v.groupby("user_key", sort=False).cumcount() + 1
    bought = v[v.transactions > 0].groupby("user_key").n.min().rename("purchase_n")
    first_date = v[v.n == 1].set_index("user_key").visit_date.rename("first_date")
    v = v.join(bought, on="user_key", how="inner").join(first_date, on="user_key")
    v = v[(v.n <= v.purchase_n) & (v.n > v.purchase_n - max_length)].sort_values(["user_key", "n"])
    buyers = v.groupby("user_key")[["segment", "cluster_id", "purchase_n", "visit_date", "first_date"]].apply(lambda u: pd.Series({
        "segments": tuple(u.segment), "cluster_ids": tuple(int(c) for c in u.cluster_id), "earlier_visits": bool(u.purchase_n.iloc[0] > max_length),
        "days": (pd.Timestamp(u.visit_date.iloc[-1]) - pd.Timestamp(u.first_date.iloc[0])).days,
    }))
    paths = buyers.groupby(["segments", "cluster_ids", "earlier_visits"]).agg(users=("days", "size"), median_days_to_purchase=("days", "median")).reset_index()
    paths["path"] = [("…" + ARROW if earlier else "") + ARROW.join(s) for s, earlier in zip(paths.segments, paths.earlier_visits)]
    paths["share_of_buyers"] = paths.users / paths.users.sum()
    paths = paths.sort_values(["users", "path", "earlier_visits"], ascending=[False, True, True]).reset_index(drop=True)
    paths["rank"] = range(1, len(paths) + 1)
    paths["median_days_to_purchase"] = paths.median_days_to_purchase.astype(float)
    return paths[["rank", "path", "segments", "cluster_ids", "earlier_visits", "users", "share_of_buyers", "median_days_to_purchase"]]


def segment_attributes(visits: pd.DataFrame, top: int) -> pd.DataFrame:
    values = {
        "channel": visits.channel.fillna(NOT_SET),
        "source_medium": visits.source.fillna(NOT_SET) + " / " + visits.medium.fillna(NOT_SET),
        "device": visits.device.fillna(NOT_SET),
        "country": visits.country.fillna(NOT_SET),
    }
    rows = []
    for attribute, value in values.items():
        frame = pd.DataFrame({"cluster_id": visits.cluster_id, "segment": visits.segment, "value": value})
        overall = frame.value.value_counts()
        for (cluster_id, segment), seg in frame.groupby(["cluster_id", "segment"]):
            counts = seg.value.value_counts().rename_axis("value").reset_index(name="visits").sort_values(["visits", "value"], ascending=[False, True])
            kept, rest = counts.iloc[:top], counts.iloc[top:]
            buckets = [(value, int(n), int(overall[value]), rank) for rank, (value, n) in enumerate(zip(kept.value, kept.visits), start=1)]
            if len(rest):
                buckets.append((OTHER, int(rest.visits.sum()), int(overall[rest.value].sum()), top + 1))
            for value, n, n_all, rank in buckets:
                segment_share, overall_share = n / len(seg), n_all / len(frame)
                rows.append((int(cluster_id), segment, attribute, value, rank, n, segment_share, overall_share, segment_share / overall_share))
    columns = ["cluster_id", "segment", "attribute", "value", "rank", "visits", "segment_share", "overall_share", "lift"]
    return pd.DataFrame(rows, columns=columns).sort_values(["cluster_id", "attribute", "rank"]).reset_index(drop=True)


def assert_same(got: pd.DataFrame, expected: pd.DataFrame, order: list[str]) -> None:
    """A written table's rows (pandas) equal the oracle's, exactly (NaN for null)."""
    got = got[list(expected.columns)].sort_values(order).reset_index(drop=True)
    for column in ("segments", "cluster_ids"):
        if column in got:
            got[column] = [tuple(int(x) if column == "cluster_ids" else x for x in a) for a in got[column]]
    for column in ("from_cluster_id", "to_cluster_id"):
        if column in got:
            got[column] = got[column].astype(float)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False, check_exact=True)
