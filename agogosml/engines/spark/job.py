"""The streaming query: Kafka in, the contract (agogosml.engines.spark.contract) in Spark's
Python workers through mapInPandas, Kafka out, offsets in the checkpoint.

Spark's Kafka source does not use consumer groups: the offsets of every micro-batch are
written to the checkpoint (`offsets/N`) before the batch runs, and the batch is marked done
(`commits/N`) only once the sink's producer has flushed it (acks=all). See the package's
docstring for what a restart replays.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from pathlib import Path

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming.query import StreamingQuery

from agogosml.engines.spark.contract import OUTPUT_SCHEMA, PartitionProcessor
from agogosml.engines.spark.errors import SparkJobError
from agogosml.engines.spark.kafka_options import kafka_options
from agogosml.engines.spark.settings import SparkJobSettings
from agogosml.errors import ConfigurationError
from agogosml.services.app.reload import alias_of

log = logging.getLogger(__name__)

SINK_OPTIONS = {"kafka.acks": "all", "kafka.enable.idempotence": "true"}
"""What the output writer's producer does: a record counts as written once every in-sync
replica has it, and a retried send is not stored twice."""
POLL_S = 1
"""How often the driver looks whether it was asked to stop while the query runs."""


def connector_jars(folder: Path) -> list[str]:
    """The jars `make spark` resolved; none when the folder is not set (the connector is on
    the classpath already: the Spark image)."""
    if folder == Path():
        return []
    jars = sorted(str(path) for path in folder.glob("*.jar"))
    if not any(Path(jar).name.startswith("spark-sql-kafka-0-10") for jar in jars):
        raise ConfigurationError(f"{folder} holds no spark-sql-kafka-0-10 jar: run `make spark`")
    return jars


def session(settings: SparkJobSettings) -> SparkSession:
    # Spark's local workers run `python3` from PATH unless told otherwise; this
    # interpreter is the one with agogosml and the model's libraries.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    # Progress bars (Spark's console one, MLflow's artifact downloads) are not logs.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    builder = (SparkSession.builder.appName(settings.app_name)
               .config("spark.ui.showConsoleProgress", "false"))
    if settings.master is not None:
        builder = builder.master(settings.master)
    jars = connector_jars(settings.jars_dir)
    if jars:
        builder = builder.config("spark.jars", ",".join(jars))
    for name, value in settings.spark_conf.items():
        builder = builder.config(name, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


def pinned(settings: SparkJobSettings) -> SparkJobSettings:
    """The settings with the model alias resolved to its version, once, on the driver: every
    worker then loads the same version, even if the alias moves while the job runs (the
    trio's app swaps versions on its own; a Spark job is restarted to follow the alias)."""
    target = alias_of(settings.model_uri)
    if target is None:
        return settings
    import mlflow

    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    mlflow.set_registry_uri(settings.mlflow_tracking_uri)
    try:
        version = MlflowClient().get_model_version_by_alias(*target).version
    except MlflowException as error:
        raise ConfigurationError(f"cannot resolve {settings.model_uri}: {error}") from None
    return settings.model_copy(update={"model_uri": f"models:/{target[0]}/{version}"})


def source(spark: SparkSession, settings: SparkJobSettings) -> DataFrame:
    frame = (spark.readStream.format("kafka")
             .options(**kafka_options(settings))
             .option("subscribe", settings.input_stream)
             .option("startingOffsets", settings.starting_offsets)
             .option("maxOffsetsPerTrigger", str(settings.max_offsets_per_trigger))
             .load()
             .select("key", "value", "topic", "partition", "offset",
                     F.unix_millis("timestamp").alias("timestamp_ms")))
    return frame.repartition(settings.partitions) if settings.partitions else frame


def start(spark: SparkSession, settings: SparkJobSettings) -> StreamingQuery:
    scored = source(spark, settings).mapInPandas(PartitionProcessor(settings), OUTPUT_SCHEMA)
    writer = (scored.writeStream.format("kafka")
              .queryName(settings.app_name)
              .options(**kafka_options(settings))
              .options(**SINK_OPTIONS)
              .option("checkpointLocation", settings.checkpoint_location)
              .outputMode("append"))
    if settings.trigger_interval_ms:
        writer = writer.trigger(processingTime=f"{settings.trigger_interval_ms} milliseconds")
    return writer.start()


def run(settings: SparkJobSettings, stop: threading.Event) -> None:
    """Run the query until it fails (SparkJobError) or `stop` is set; then stop it and
    Spark. A stop in the middle of a micro-batch leaves it to be replayed on restart."""
    settings = pinned(settings)
    spark = session(settings)
    try:
        query = start(spark, settings)
        log.info("query started", extra={"query": query.name, "id": str(query.id),
                                         "input": settings.input_stream,
                                         "output": settings.output_stream,
                                         "deadletter": settings.deadletter_stream,
                                         "model_uri": settings.model_uri})
        while query.isActive and not stop.is_set():
            query.awaitTermination(POLL_S)
        if query.isActive:
            query.stop()
            log.info("query stopped", extra={"query": query.name})
        failure = query.exception()
        if failure is not None:
            raise SparkJobError(f"the query stopped with an error: {failure}")
    finally:
        spark.stop()
