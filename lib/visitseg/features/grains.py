"""What differs between segmenting visits and segmenting users: key, date, label table and profile."""

from __future__ import annotations

from dataclasses import dataclass

from visitseg.core.config_rules import DEFAULT_FEATURES, USER_DEFAULT_FEATURES


@dataclass(frozen=True)
class Grain:
    """Profile entries are SQL expressions over the feature table's columns."""

    key: str
    date_col: str
    labels_table: str
    count_col: str
    label_columns: tuple[str, ...]
    default_features: tuple[str, ...]
    profile: dict[str, str]


GRAINS = {
    "visit": Grain(
        key="visit_key",
        date_col="visit_date",
        labels_table="session_clusters",
        count_col="n_visits",
        label_columns=("visit_key", "user_key", "visit_date"),
        default_features=DEFAULT_FEATURES,
        profile={
            "conversion_rate": "CAST(transactions > 0 AS DOUBLE)",
            "revenue_per_visit": "transaction_revenue",
            "bounce_rate": "CAST(is_bounce AS DOUBLE)",
            "cart_rate": "CAST(cart_steps > 0 AS DOUBLE)",
            "pageviews": "pageviews",
            "time_on_site_sec": "time_on_site_sec",
        },
    ),
    "user": Grain(
        key="user_key",
        date_col="last_visit_date",
        labels_table="user_clusters",
        count_col="n_users",
        label_columns=("user_key", "last_visit_date"),
        default_features=USER_DEFAULT_FEATURES,
        profile={
            "conversion_rate": "CAST(transactions > 0 AS DOUBLE)",
            "revenue_per_visit": "revenue / sessions",
            "bounce_rate": "CAST(bounced_sessions = sessions AS DOUBLE)",  # every visit of the user bounced
            "cart_rate": "CAST(cart_steps > 0 AS DOUBLE)",
            "pageviews": "views_per_session",
            "time_on_site_sec": "time_on_site_sec / sessions",
        },
    ),
}
