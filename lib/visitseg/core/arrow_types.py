"""Spark SQL types ↔ Arrow types, with public APIs only (the Delta log speaks Arrow through `deltalake`).

PySpark has converters, but in the private `pyspark.sql.pandas.types`, and their signatures differ
between Spark lines (`to_arrow_schema(schema, timezone=…)` exists on 4.x only; 3.5 takes no timezone),
so visitseg keeps its own. The types are those a visitseg table can hold. Timestamps are UTC instants
(Arrow `timestamp[us, tz=UTC]`, Delta `timestamp`), as Spark stores them; an Arrow timestamp without a
time zone reads back as a Spark TIMESTAMP too, as Delta's own reader does by default.
"""

from __future__ import annotations

import pyarrow as pa
from pyspark.sql import types as T

SIMPLE_TO_ARROW = {
    T.StringType: pa.string(),
    T.LongType: pa.int64(),
    T.IntegerType: pa.int32(),
    T.ShortType: pa.int16(),
    T.ByteType: pa.int8(),
    T.DoubleType: pa.float64(),
    T.FloatType: pa.float32(),
    T.BooleanType: pa.bool_(),
    T.DateType: pa.date32(),
    T.TimestampType: pa.timestamp("us", tz="UTC"),
    T.BinaryType: pa.binary(),
}


class UnsupportedTypeError(TypeError):
    """A column type visitseg's Delta tables do not hold."""


def to_arrow_type(data_type: T.DataType) -> pa.DataType:
    for spark_type, arrow in SIMPLE_TO_ARROW.items():
        if type(data_type) is spark_type:
            return arrow
    if isinstance(data_type, T.DecimalType):
        return pa.decimal128(data_type.precision, data_type.scale)
    if isinstance(data_type, T.ArrayType):
        return pa.list_(pa.field("element", to_arrow_type(data_type.elementType), nullable=data_type.containsNull))
    if isinstance(data_type, T.MapType):
        return pa.map_(to_arrow_type(data_type.keyType), pa.field("value", to_arrow_type(data_type.valueType), nullable=data_type.valueContainsNull))
    if isinstance(data_type, T.StructType):
        return pa.struct([pa.field(f.name, to_arrow_type(f.dataType), nullable=f.nullable) for f in data_type.fields])
    raise UnsupportedTypeError(f"no Arrow type for Spark type {data_type.simpleString()}")


def to_arrow_schema(schema: T.StructType) -> pa.Schema:
    return pa.schema([pa.field(f.name, to_arrow_type(f.dataType), nullable=f.nullable) for f in schema.fields])


def from_arrow_type(data_type: pa.DataType) -> T.DataType:
    if pa.types.is_string(data_type) or pa.types.is_large_string(data_type):
        return T.StringType()
    if pa.types.is_binary(data_type) or pa.types.is_large_binary(data_type):
        return T.BinaryType()
    if pa.types.is_timestamp(data_type):
        return T.TimestampType()
    if pa.types.is_decimal(data_type):
        return T.DecimalType(data_type.precision, data_type.scale)
    if pa.types.is_list(data_type) or pa.types.is_large_list(data_type):
        return T.ArrayType(from_arrow_type(data_type.value_type), containsNull=data_type.value_field.nullable)
    if pa.types.is_map(data_type):
        return T.MapType(from_arrow_type(data_type.key_type), from_arrow_type(data_type.item_type), valueContainsNull=data_type.item_field.nullable)
    if pa.types.is_struct(data_type):
        return T.StructType([T.StructField(f.name, from_arrow_type(f.type), f.nullable) for f in data_type])
    for spark_type, arrow in SIMPLE_TO_ARROW.items():
        if data_type == arrow:
            return spark_type()
    raise UnsupportedTypeError(f"no Spark type for Arrow type {data_type}")


def from_arrow_schema(schema: pa.Schema) -> T.StructType:
    return T.StructType([T.StructField(f.name, from_arrow_type(f.type), f.nullable) for f in schema])
