"""Driver-built tables (KPIs, profiles, drift, run records) handed to Spark as Arrow data hold exactly the
values Spark's own `createDataFrame` of the same rows holds: nulls, NaN, 64-bit integers, dates, UTC
instants, arrays and maps, on both Spark lines."""

from __future__ import annotations

import datetime as dt
import math

from chispa import assert_df_equality
from pyspark.sql import types as T

from visitseg.core.spark import local_frame

SCHEMA = T.StructType(
    [
        T.StructField("day", T.DateType()),
        T.StructField("cluster_id", T.IntegerType()),
        T.StructField("n", T.LongType()),
        T.StructField("name", T.StringType()),
        T.StructField("share", T.DoubleType()),
        T.StructField("drifted", T.BooleanType()),
        T.StructField("edges", T.ArrayType(T.DoubleType())),
        T.StructField("counts", T.ArrayType(T.LongType())),
        T.StructField("at", T.TimestampType()),
        T.StructField("standardized", T.MapType(T.StringType(), T.DoubleType())),
    ]
)
ROWS = [
    (dt.date(2026, 10, 1), 3, 2**62 + 1, "Käufer ✓", 0.1, True, [1.5, None], [1, 2], dt.datetime(2026, 11, 27, 10, 0, 0, 123456, tzinfo=dt.timezone.utc), {"pageviews": -0.25}),
    (None, None, None, None, None, None, None, [], None, None),
    (dt.date(2026, 10, 2), -1, 0, "", 2.5, False, [], None, dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc), {}),
]


def test_local_rows_equal_spark_createdataframe_of_the_same_rows(spark):
    assert_df_equality(local_frame(spark, ROWS, SCHEMA), spark.createDataFrame(ROWS, SCHEMA))


def test_nan_stays_nan_and_mappings_are_rows(spark):
    """Spark 3.5 reads NaN of pandas as null: such rows take the exact path."""
    rows = [{**dict(zip(SCHEMA.names, ROWS[2])), "share": math.nan, "edges": [math.nan]}]
    got = local_frame(spark, rows, SCHEMA).collect()
    assert math.isnan(got[0]["share"]) and math.isnan(got[0]["edges"][0]) and got[0]["n"] == 0


def test_no_rows_give_an_empty_frame_of_the_schema(spark):
    empty = local_frame(spark, [], SCHEMA)
    assert empty.schema == SCHEMA and empty.count() == 0


def test_the_session_settings_are_restored(spark):
    before = spark.conf.get("spark.sql.execution.arrow.pyspark.enabled", None)
    local_frame(spark, ROWS, SCHEMA)
    assert spark.conf.get("spark.sql.execution.arrow.pyspark.enabled", None) == before
