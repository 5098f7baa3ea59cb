"""The Spark baseline: the seed notebook's pipeline as a Spark user would write it by hand, with Spark ML.

Hits → explode → groupBy visit → the seed's 8 features → log1p and a z-clip at 5 std → VectorAssembler
→ StandardScaler → Spark ML KMeans on all visits for K in 4..10, each scored with ClusteringEvaluator's
silhouette → the labels of the best-silhouette K written to Parquet. Written plainly, as the notebook
would be ported: the visits cached once, default Spark settings, no sampling, no stability fits, no
Delta. GA360 Parquet or a flat event log (Retailrocket CSV layout), like `baseline_pandas_sklearn.py`.

    python scripts/baseline_spark_ml.py --input data/ga360_10m [--format events] [--master local[2]]

Prints seconds per stage, and the same as JSON on the last line (or into --json).
"""

from __future__ import annotations

import argparse
import tempfile
import time

from pyspark.ml.clustering import KMeans
from pyspark.ml.evaluation import ClusteringEvaluator
from pyspark.ml.feature import StandardScaler, VectorAssembler
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from baseline_pandas_sklearn import FEATURES, SESSION_GAP_MS, print_figures  # the same features, gap and report


def ga360_visits(spark: SparkSession, path: str) -> DataFrame:
    hits = spark.read.parquet(path).select(F.concat_ws("-", "fullVisitorId", "visitId").alias("visit_key"), F.explode("hits").alias("h"))
    return hits.groupBy("visit_key").agg(
        F.sum(F.when(F.col("h.type") == "PAGE", 1).otherwise(0)).alias("pageviews"),
        F.countDistinct(F.when(F.col("h.type") == "PAGE", F.col("h.page.pagePath"))).alias("unique_pages"),
        ((F.max("h.time") - F.min("h.time")) / 1000.0).alias("engagement_time_sec"),
        F.sum(F.when(F.col("h.eCommerceAction.action_type") == "2", 1).otherwise(0)).alias("product_views"),
        F.lit(0).alias("searches"),
        F.sum(F.when(F.col("h.eCommerceAction.action_type").isin("3", "5"), 1).otherwise(0)).alias("cart_steps"),
        F.count("h.transaction.transactionRevenue").alias("transactions"),
        F.coalesce(F.sum("h.transaction.transactionRevenue") / 1e6, F.lit(0.0)).alias("transaction_revenue"),
    )


def events_visits(spark: SparkSession, path: str) -> DataFrame:
    events = spark.read.option("header", True).option("inferSchema", True).csv(path)
    by_visitor = Window.partitionBy("visitorid").orderBy("timestamp")
    new_visit = (F.col("timestamp") - F.lag("timestamp").over(by_visitor) > SESSION_GAP_MS).cast("int")
    numbered = events.withColumn("visit_n", F.sum(F.coalesce(new_visit, F.lit(1))).over(by_visitor))
    return numbered.groupBy("visitorid", "visit_n").agg(
        F.sum(F.when(F.col("event") == "view", 1).otherwise(0)).alias("pageviews"),
        F.countDistinct(F.when(F.col("event") == "view", F.col("itemid"))).alias("unique_pages"),
        ((F.max("timestamp") - F.min("timestamp")) / 1000.0).alias("engagement_time_sec"),
        F.sum(F.when(F.col("event") == "view", 1).otherwise(0)).alias("product_views"),
        F.lit(0).alias("searches"),
        F.sum(F.when(F.col("event") == "addtocart", 1).otherwise(0)).alias("cart_steps"),
        F.countDistinct(F.when(F.col("event") == "transaction", F.col("transactionid"))).alias("transactions"),
        F.lit(0.0).alias("transaction_revenue"),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True)
    parser.add_argument("--format", choices=("ga360", "events"), default="ga360")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--k-min", type=int, default=4)
    parser.add_argument("--k-max", type=int, default=10)
    parser.add_argument("--z", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()

    started = time.perf_counter()
    spark = SparkSession.builder.master(args.master).appName("baseline-spark-ml").getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    seconds = {"start": time.perf_counter() - started}
    t = time.perf_counter()
    visits = (ga360_visits(spark, args.input) if args.format == "ga360" else events_visits(spark, args.input)).cache()
    n_visits = visits.count()
    seconds["aggregate"] = time.perf_counter() - t

    t = time.perf_counter()
    logs = visits.select("*", *[F.log1p(F.greatest(F.col(c).cast("double"), F.lit(0.0))).alias(f"log_{c}") for c in FEATURES])
    moments = logs.agg(*[f(f"log_{c}").alias(f"{name}_{c}") for c in FEATURES for name, f in (("mean", F.mean), ("std", F.stddev_pop))]).first()
    clipped = logs.select("visit_key" if args.format == "ga360" else F.concat_ws("-", "visitorid", "visit_n").alias("visit_key"), *[
        F.least(F.greatest(F.col(f"log_{c}"), F.lit(moments[f"mean_{c}"] - args.z * moments[f"std_{c}"])), F.lit(moments[f"mean_{c}"] + args.z * moments[f"std_{c}"])).alias(c)
        for c in FEATURES
    ])
    assembled = VectorAssembler(inputCols=FEATURES, outputCol="raw").transform(clipped)
    scaled = StandardScaler(inputCol="raw", outputCol="features", withMean=True, withStd=True).fit(assembled).transform(assembled).select("visit_key", "features").cache()
    scaled.count()
    seconds["preprocess"] = time.perf_counter() - t

    t = time.perf_counter()
    evaluator = ClusteringEvaluator(distanceMeasure="squaredEuclidean")
    sweep, best = [], None
    for k in range(args.k_min, args.k_max + 1):
        model = KMeans(k=k, seed=args.seed).fit(scaled)
        silhouette = evaluator.evaluate(model.transform(scaled))
        sweep.append({"k": k, "silhouette": silhouette, "inertia": model.summary.trainingCost})
        if best is None or silhouette > best[1]:
            best = (model, silhouette, k)
    seconds["sweep"] = time.perf_counter() - t

    t = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        best[0].transform(scaled).select("visit_key", "prediction").write.mode("overwrite").parquet(out)
    seconds["write"] = time.perf_counter() - t
    spark.stop()
    seconds["total"] = time.perf_counter() - started
    figures = {"visits": n_visits, "chosen_k": best[2], "seconds": {k: round(v, 2) for k, v in seconds.items()}, "sweep": sweep}
    print_figures(figures, args.json)


if __name__ == "__main__":
    main()
