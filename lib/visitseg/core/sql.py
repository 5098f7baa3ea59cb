"""SQL text and Column helpers shared by the layers: exact double literals, sums of many terms.

Wide expressions (K centres × d features) are built as SQL text and parsed once by the JVM: building them
from Column operators costs a Py4J round trip per operator.
"""

from __future__ import annotations

from typing import Iterable, Sequence

from pyspark.sql import Column


def double(value: float) -> str:
    """A SQL double literal that parses back to exactly `value` (repr round-trips; a bare 0.1 would be a
    DECIMAL), whatever the session's ANSI and decimal settings, infinities included."""
    return f"CAST('{float(value)!r}' AS DOUBLE)"


def sql_sum(terms: Iterable[str]) -> str:
    """SQL text of the sum of terms, a chain of + evaluated left to right."""
    return " + ".join(f"({t})" for t in terms)


def squared_distance(array: str, centre: Sequence[float]) -> str:
    """SQL text of ‖array − centre‖² for an array column named `array` and a constant centre."""
    return sql_sum(f"POWER({array}[{i}] - {double(c)}, 2)" for i, c in enumerate(centre))


def sum_of(terms: Iterable[Column]) -> Column:
    """The sum of a few columns (a chain of +, which Spark compiles to one expression)."""
    terms = list(terms)
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total
