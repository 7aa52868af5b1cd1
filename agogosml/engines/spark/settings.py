"""The Spark job's settings: environment variables prefixed AGOGOSML_SPARK_.

The contract fields (schema, id, subject and time fields, record limit, PII policy and its
keys) mean what the input reader's do (AGOGOSML_READER_*), and the model fields what the
app's do (AGOGOSML_APP_*): the same values give the same events, ids and scores.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from agogosml.settings import LogLevel, check_contract_files, load_json_schema
from agogosml.streaming.kafka_settings import KafkaSettings

SPARK_VERSION = "4.2.0"
"""pyspark's version, pinned in pyproject.toml, and the Kafka connector's (tools/spark)."""

DEFAULT_JARS_DIR = Path.home() / ".cache" / "agogosml" / f"spark-{SPARK_VERSION}" / "jars"


class SparkJobSettings(KafkaSettings):
    model_config = SettingsConfigDict(env_prefix="AGOGOSML_SPARK_", extra="ignore",
                                      protected_namespaces=())

    log_level: LogLevel = "INFO"
    # Streams
    input_stream: str = "agogosml.input"
    output_stream: str = "agogosml.output"
    deadletter_stream: str = "agogosml.deadletter"
    starting_offsets: Literal["earliest", "latest"] = "earliest"
    """Where a query without a checkpoint starts; a restart always resumes from its
    checkpoint."""
    max_offsets_per_trigger: int = Field(default=50_000, ge=1)
    """The most records one micro-batch takes, across partitions: also the most a restart
    after a crash can replay."""
    trigger_interval_ms: int = Field(default=0, ge=0)
    """0: the next micro-batch starts as soon as the previous one ends."""
    checkpoint_location: str
    """Where the query keeps its offsets and commits (a path, or hdfs://, abfss://, s3a://
    on a cluster). Required: without it a restart could not resume."""
    # The reader's contract
    schema_path: Path | None = None
    max_record_bytes: int = Field(default=256 * 1024, gt=0)
    id_field: str | None = None
    subject_field: str | None = None
    time_field: str | None = None
    deadletter_max_original_bytes: int = Field(default=256 * 1024, ge=0)
    privacy_policy_path: Path | None = None
    privacy_keyring_path: Path | None = None
    subject_keys_url: SecretStr | None = None
    subject_keys_kek_path: Path | None = None
    # The app's model
    model_uri: str = "models:/demo@champion"
    mlflow_tracking_uri: str = "sqlite:///var/mlflow/mlflow.db"
    # Spark
    master: str | None = None
    """None: the master spark-submit was given (`--master k8s://...`), which is local[*]
    when the job is started with python itself."""
    app_name: str = "agogosml-spark"
    jars_dir: Path = DEFAULT_JARS_DIR
    """The Kafka connector's jars, resolved at install time (`make spark`); passed as
    spark.jars, so nothing is downloaded at run time. Empty: the jars are already on the
    classpath (the Spark image)."""
    partitions: int = Field(default=0, ge=0)
    """Repartition each micro-batch to this many tasks before scoring; 0: one task per
    Kafka partition (Spark's default)."""
    spark_conf: dict[str, str] = Field(default_factory=dict)
    """Any other Spark settings, as a JSON object (e.g. {"spark.executor.memory": "2g"})."""

    @model_validator(mode="after")
    def _check(self) -> SparkJobSettings:
        check_contract_files(self)
        if self.jars_dir != Path() and not self.jars_dir.is_dir():
            raise ValueError(f"jars_dir {self.jars_dir} is not a folder: run `make spark`, "
                             "or set it empty when the connector is on the classpath")
        streams = {self.input_stream, self.output_stream, self.deadletter_stream}
        if len(streams) != 3:
            raise ValueError("input_stream, output_stream and deadletter_stream must differ")
        return self

    def load_schema(self) -> dict[str, Any] | None:
        return load_json_schema(self.schema_path)
