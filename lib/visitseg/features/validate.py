"""Guardrails at the boundaries: required columns and types, key grain, non-negative measures.

Each check raises a named error whose message carries counts and a few sample keys, so the user can
find the offending rows. Checks run before anything is written, so a failed run leaves tables untouched.
Only counts and at most `SAMPLE_KEYS` keys reach the driver.
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from visitseg.core.errors import DataQualityError, EmptyInputError, GrainError, InputSchemaError

SAMPLE_KEYS = 5

# Type families a required column may have. "integer" admits strings because BigQuery's JSON export
# writes INT64 values as strings; the adapters cast them.
KINDS: dict[str, tuple[type, ...]] = {
    "string": (T.StringType,),
    "integer": (T.IntegerType, T.LongType, T.ShortType, T.ByteType, T.StringType, T.DecimalType),
    "number": (T.IntegerType, T.LongType, T.ShortType, T.ByteType, T.FloatType, T.DoubleType, T.DecimalType, T.StringType),
    "id": (T.StringType, T.IntegerType, T.LongType),
    "boolean": (T.BooleanType,),
    "array": (T.ArrayType,),
    "struct": (T.StructType,),
}


def require_columns(df: DataFrame, required: Mapping[str, str], what: str) -> None:
    """Fail unless every dotted path (arrays are stepped through) exists with a type of the named kind."""
    problems = []
    for path, kind in required.items():
        found = field_type(df.schema, path)
        if found is None:
            problems.append(f"{path} is missing")
        elif not isinstance(found, KINDS[kind]):
            problems.append(f"{path} has type {found.simpleString()}, expected {kind}")
    if problems:
        raise InputSchemaError(
            f"{what}: the input does not have the expected columns: {'; '.join(problems)}. "
            f"Check --input-format and the column mapping in the config; the README lists each format's columns."
        )


def field_type(schema: T.DataType, path: str) -> T.DataType | None:
    """The type at a dotted path, stepping through arrays of structs; None when absent."""
    current = schema
    for part in path.split("."):
        while isinstance(current, T.ArrayType):
            current = current.elementType
        if not isinstance(current, T.StructType) or part not in current.names:
            return None
        current = current[part].dataType
    return current


def check_unique_keys(df: DataFrame, keys: Sequence[str], what: str) -> None:
    """Fail when any key combination occurs more than once (the table's grain is broken)."""
    duplicates = df.groupBy(*keys).count().filter(F.col("count") > 1)
    sample = duplicates.limit(SAMPLE_KEYS).collect()
    if sample:
        n = duplicates.count()
        shown = ", ".join(_key_text(row, keys) for row in sample)
        raise GrainError(
            f"{what}: {n:,} keys ({', '.join(keys)}) occur more than once, e.g. {shown}. "
            f"The table must hold one row per key: remove duplicate rows from the input, or fix the join that multiplies them."
        )


def check_rows(
    df: DataFrame,
    keys: Sequence[str],
    not_null: Iterable[str],
    non_negative: Iterable[str],
    what: str,
    sums: Iterable[str] = (),
    checks: Mapping[str, Column] | None = None,
    counted: Mapping[str, Column] | None = None,
) -> dict[str, int]:
    """One pass: fail on null values in `not_null`, negative values in `non_negative`, or rows meeting one
    of `checks` (description → condition, e.g. "timestamps before 2000 (…)": ts < …).

    Returns {"rows": row count, <column>: total for each of `sums`, <name>: rows meeting each of
    `counted` (name → condition; counted, not failed)} from the same pass.
    """
    counted = dict(counted or {})
    sums = list(sums)
    not_null, non_negative = list(not_null), list(non_negative)
    conditions = {f"null {c}": F.col(c).isNull() for c in not_null}
    conditions.update({f"negative {c}": F.col(c) < 0 for c in non_negative})
    conditions.update(checks or {})
    counts = df.agg(
        F.count(F.lit(1)).alias("rows"),
        *[F.count(F.when(cond, 1)).alias(name) for name, cond in conditions.items()],
        *[F.sum(c).alias(f"sum {c}") for c in sums],
        *[F.count(F.when(cond, 1)).alias(f"counted {name}") for name, cond in counted.items()],
    ).first()
    if counts is None or counts["rows"] == 0:
        raise EmptyInputError(
            f"{what}: no rows. Check --input and the date window (input.date_from inclusive, input.date_to exclusive)."
        )
    failed = {name: counts[name] for name in conditions if counts[name]}
    if failed:
        details = []
        for name, n in failed.items():
            sample = df.filter(conditions[name]).select(*keys).limit(SAMPLE_KEYS).collect()
            details.append(f"{n:,} rows with {name} (e.g. {', '.join(_key_text(r, keys) for r in sample)})")
        raise DataQualityError(f"{what}: {'; '.join(details)}. Fix or drop these rows in the input and rerun.")
    return {
        "rows": int(counts["rows"]),
        **{c: int(counts[f"sum {c}"] or 0) for c in sums},
        **{name: int(counts[f"counted {name}"]) for name in counted},
    }


def _key_text(row, keys: Sequence[str]) -> str:
    return "/".join(str(row[k]) for k in keys)
