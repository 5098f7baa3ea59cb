"""Spark ↔ Arrow schema conversion (public APIs only, the same on Spark 3.5 and 4.x)."""

import pyarrow as pa
import pytest
from pyspark.sql import types as T

from visitseg.core.arrow_types import UnsupportedTypeError, from_arrow_schema, to_arrow_schema

SPARK = T.StructType(
    [
        T.StructField("s", T.StringType(), False),
        T.StructField("l", T.LongType()),
        T.StructField("i", T.IntegerType()),
        T.StructField("h", T.ShortType()),
        T.StructField("b", T.ByteType()),
        T.StructField("d", T.DoubleType()),
        T.StructField("f", T.FloatType()),
        T.StructField("flag", T.BooleanType()),
        T.StructField("day", T.DateType()),
        T.StructField("ts", T.TimestampType()),
        T.StructField("bytes", T.BinaryType()),
        T.StructField("money", T.DecimalType(18, 2)),
        T.StructField("names", T.ArrayType(T.StringType(), containsNull=False)),
        T.StructField("weights", T.MapType(T.StringType(), T.DoubleType())),
        T.StructField("nested", T.StructType([T.StructField("k", T.IntegerType(), False), T.StructField("xs", T.ArrayType(T.DoubleType()))])),
    ]
)
ARROW = pa.schema(
    [
        pa.field("s", pa.string(), nullable=False),
        pa.field("l", pa.int64()),
        pa.field("i", pa.int32()),
        pa.field("h", pa.int16()),
        pa.field("b", pa.int8()),
        pa.field("d", pa.float64()),
        pa.field("f", pa.float32()),
        pa.field("flag", pa.bool_()),
        pa.field("day", pa.date32()),
        pa.field("ts", pa.timestamp("us", tz="UTC")),
        pa.field("bytes", pa.binary()),
        pa.field("money", pa.decimal128(18, 2)),
        pa.field("names", pa.list_(pa.field("element", pa.string(), nullable=False))),
        pa.field("weights", pa.map_(pa.string(), pa.float64())),
        pa.field("nested", pa.struct([pa.field("k", pa.int32(), nullable=False), pa.field("xs", pa.list_(pa.float64()))])),
    ]
)


def test_spark_schema_to_arrow_and_back():
    assert to_arrow_schema(SPARK).equals(ARROW)
    assert from_arrow_schema(ARROW) == SPARK


def test_arrow_variants_read_back_as_the_spark_type():
    variants = pa.schema([pa.field("s", pa.large_string()), pa.field("ts", pa.timestamp("us")), pa.field("xs", pa.large_list(pa.int64()))])
    assert from_arrow_schema(variants) == T.StructType(
        [T.StructField("s", T.StringType()), T.StructField("ts", T.TimestampType()), T.StructField("xs", T.ArrayType(T.LongType()))]
    )


def test_a_type_without_a_counterpart_is_named():
    with pytest.raises(UnsupportedTypeError, match="interval"):
        to_arrow_schema(T.StructType([T.StructField("gap", T.DayTimeIntervalType())]))
    with pytest.raises(UnsupportedTypeError, match="time64"):
        from_arrow_schema(pa.schema([pa.field("t", pa.time64("us"))]))
