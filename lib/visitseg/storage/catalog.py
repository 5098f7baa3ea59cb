"""The output tables by name, for BI: `output.catalog_database` registers every Delta table of the output
in the session's catalog as `<database>.<table>`, with two views of the newest run.

BI tools (Databricks SQL, Trino, Athena, the Spark Thrift server) find tables in a catalog, not folders.
The catalog is whatever the session has: Spark's Hive metastore (`spark.sql.catalogImplementation=hive`)
locally, Glue on EMR, Dataproc Metastore, Unity Catalog on Databricks (docs/operations.md says how to
point the session at each). The tables are external: the catalog stores their location, the data stays
where visitseg writes it, and the Delta log is the schema, so a table registered once sees every later
run. Registration comes after a job's last write: a job that fails registers nothing new.

Views (Spark SQL; recreated each time, so they follow the current layout):
* `latest_session_segments`: the labels of the newest visit-grain run, with each visit's channel,
  source, medium, device and country;
* `latest_segment_profiles`: the segments (`cluster_centers`) of the newest run.
"""

from __future__ import annotations

import logging
import re

from pyspark.sql import SparkSession

from visitseg.core.errors import ConfigError
from visitseg.core.spark import session_has_delta
from visitseg.storage import delta
from visitseg.storage.delta_log import table_uri
from visitseg.storage.tables import CENTERS, RUNS

log = logging.getLogger(__name__)

VISIT_ATTRIBUTES = ("channel", "source", "medium", "device", "country")


def check_catalog(spark: SparkSession, database: str) -> None:
    """Fail before a job works when it could not register its tables: the session needs Spark's Delta
    source to create Delta tables in its catalog."""
    if database and not session_has_delta(spark):
        raise ConfigError(
            f"output.catalog_database = {database!r}: registering tables needs Spark's Delta source in the session "
            f"(the Delta jars, as clusters have them; see docs/operations.md#tables-by-name), or leave it empty"
        )


def register_tables(spark: SparkSession, output: str, database: str) -> list[str]:
    """Register every Delta table under `output` as `database.<table>` (those already registered there stay;
    one registered at another location is an error), then (re)create the views. Returns the names."""
    if not database:
        return []
    check_catalog(spark, database)
    spark.sql(f"CREATE DATABASE IF NOT EXISTS `{database}`")
    names = delta.tables_under(output)
    for name in names:
        location = table_uri(f"{output}/{name}")
        if spark.catalog.tableExists(f"{database}.{name}"):
            registered = spark.sql(f"DESCRIBE DETAIL `{database}`.`{name}`").first()["location"]
            if _place(registered) != _place(location):
                raise ConfigError(
                    f"output.catalog_database: {database}.{name} is registered at {registered}, not at this output's "
                    f"{location}; use another database for this output, or drop that table"
                )
            continue
        spark.sql(f"CREATE TABLE `{database}`.`{name}` USING DELTA LOCATION '{location}'")
    views = _views(database, set(names))
    for view, query in views.items():
        spark.sql(f"CREATE OR REPLACE VIEW `{database}`.`{view}` AS {query}")
    log.info("catalog: %d tables and %d views in database %s", len(names), len(views), database)
    return names + list(views)


def _place(location: str) -> str:
    """A location as Spark and visitseg both write it: local paths without the file: scheme."""
    return re.sub(r"^file:(//)?", "", location).rstrip("/")


def _views(database: str, tables: set[str]) -> dict[str, str]:
    def newest(grain: str = "") -> str:
        where = f"WHERE grain = '{grain}' " if grain else ""
        return f"(SELECT run_id FROM `{database}`.`{RUNS}` {where}ORDER BY finished_at DESC, run_id DESC LIMIT 1)"

    views = {}
    if {"session_clusters", "visit_features", RUNS} <= tables:
        attributes = ", ".join(f"f.{a}" for a in VISIT_ATTRIBUTES)
        views["latest_session_segments"] = (
            f"SELECT c.visit_key, c.user_key, c.visit_date, c.cluster_id, c.segment, c.distance_to_centroid, c.margin, {attributes}, c.run_id "
            f"FROM `{database}`.`session_clusters` c JOIN `{database}`.`visit_features` f ON f.run_id = c.run_id AND f.visit_key = c.visit_key "
            f"WHERE c.run_id = {newest('visit')}"
        )
    if {CENTERS, RUNS} <= tables:
        views["latest_segment_profiles"] = f"SELECT * FROM `{database}`.`{CENTERS}` WHERE run_id = {newest()}"
    return views
