"""Assigning rows to centres with distance and margin — what Spark ML's KMeansModel does not return.

For each row: the nearest centre, the Euclidean distance to it (standardised units) and the margin to the
second-nearest centre (small margin = a borderline row). Built-in column functions only: no Python UDF.
Ties go to the lower centre index, as in KMeansModel.predict. (Sorting an array of (distance, index)
structs per row was 6x slower than sorting plain doubles and picking the index separately.)
"""

from __future__ import annotations

import numpy as np
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from visitseg.metrics import squared_distance
from visitseg.preprocess import FEATURES

RAW_CLUSTER = "raw_cluster"


def with_nearest_centre(df: DataFrame, centres: np.ndarray) -> DataFrame:
    """Adds raw_cluster (index into `centres`), distance_to_centroid and margin; needs the `features` vector."""
    names = [f"_d{i}" for i in range(len(centres))]
    distances = [F.expr(f"sqrt({squared_distance('_x', centre)})").alias(name) for name, centre in zip(names, centres)]
    nearest = F.least(*[F.col(n) for n in names])
    second = F.array_sort(F.array(*[F.col(n) for n in names]))[1]
    return (
        df.withColumn("_x", vector_to_array(F.col(FEATURES)))
        .select("*", *distances)
        .withColumn(RAW_CLUSTER, F.coalesce(*[F.when(F.col(n) == nearest, F.lit(i)) for i, n in enumerate(names)]))
        .withColumn("distance_to_centroid", nearest)
        .withColumn("margin", second - nearest)
        .drop("_x", *names)
    )
