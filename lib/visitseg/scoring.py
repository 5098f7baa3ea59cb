"""Assigning rows to centres with distance and margin — what Spark ML's KMeansModel does not return.

For each row: the nearest centre, the Euclidean distance to it (standardised units) and the margin to the
second-nearest centre (small margin = a borderline row). Built-in array functions only: no Python UDF.
Ties go to the lower centre index, as in KMeansModel.predict.
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
    x = F.col("_x")
    candidates = F.array(
        *[F.struct(F.sqrt(squared_distance(x, centre)).alias("d"), F.lit(i).alias("i")) for i, centre in enumerate(centres)]
    )
    return (
        df.withColumn("_x", vector_to_array(F.col(FEATURES)))
        .withColumn("_ranked", F.array_sort(candidates))
        .withColumn(RAW_CLUSTER, F.col("_ranked")[0]["i"])
        .withColumn("distance_to_centroid", F.col("_ranked")[0]["d"])
        .withColumn("margin", F.col("_ranked")[1]["d"] - F.col("_ranked")[0]["d"])
        .drop("_x", "_ranked")
    )
