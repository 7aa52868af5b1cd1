"""The Spark job's settings and Kafka options: the same connection settings as the reader give
the Kafka client the same connection (Event Hubs through its Kafka endpoint included), and
what the job cannot run with is refused at start."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from agogosml.engines.spark.job import connector_jars
from agogosml.engines.spark.kafka_options import kafka_options
from agogosml.engines.spark.settings import SparkJobSettings
from agogosml.errors import ConfigurationError

CONNECTION = ("Endpoint=sb://agogo.servicebus.windows.net/;SharedAccessKeyName=send;"
              "SharedAccessKey=c2VjcmV0\"key")


def settings(**values: object) -> SparkJobSettings:
    return SparkJobSettings(checkpoint_location="var/spark/checkpoint", jars_dir=Path(),
                            **values)  # type: ignore[arg-type]


def test_event_hubs_goes_through_its_kafka_endpoint_as_the_reader_does() -> None:
    options = kafka_options(settings(
        kafka_eventhubs_connection_string=SecretStr(CONNECTION)))
    assert options["kafka.bootstrap.servers"] == "agogo.servicebus.windows.net:9093"
    assert options["kafka.security.protocol"] == "SASL_SSL"
    assert options["kafka.sasl.mechanism"] == "PLAIN"
    jaas = options["kafka.sasl.jaas.config"]
    assert jaas.startswith("org.apache.kafka.common.security.plain.PlainLoginModule required ")
    assert 'username="$ConnectionString"' in jaas
    assert 'SharedAccessKey=c2VjcmV0\\"key"' in jaas, "a quote in the secret stays inside it"
    assert jaas.endswith(";")


def test_sasl_scram_and_plaintext() -> None:
    scram = kafka_options(settings(kafka_security_protocol="SASL_SSL",
                                   kafka_sasl_mechanism="SCRAM-SHA-512",
                                   kafka_sasl_username="agogosml",
                                   kafka_sasl_password=SecretStr("pw")))
    assert scram["kafka.sasl.jaas.config"] == (
        'org.apache.kafka.common.security.scram.ScramLoginModule required '
        'username="agogosml" password="pw";')
    plain = kafka_options(settings(kafka_bootstrap_servers="kafka:9092"))
    assert plain == {"kafka.bootstrap.servers": "kafka:9092",
                     "kafka.security.protocol": "PLAINTEXT"}


def test_a_checkpoint_is_required() -> None:
    with pytest.raises(ValidationError, match="checkpoint_location"):
        SparkJobSettings(jars_dir=Path())


@pytest.mark.parametrize(("values", "problem"), [
    ({"output_stream": "agogosml.input"}, "must differ"),
    ({"schema_path": Path("/nonexistent.json")}, "is not a file"),
    ({"subject_keys_url": SecretStr("sqlite:///k.db")}, "go together"),
])
def test_settings_the_job_cannot_run_with_are_refused(values: dict[str, object],
                                                      problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        settings(**values)


def test_the_connector_must_be_where_the_settings_say(tmp_path: Path) -> None:
    assert connector_jars(Path()) == [], "empty: on the classpath already (the image)"
    with pytest.raises(ConfigurationError, match="make spark"):
        connector_jars(tmp_path)
    (tmp_path / "spark-sql-kafka-0-10_2.13-4.2.0.jar").touch()
    (tmp_path / "kafka-clients-3.9.2.jar").touch()
    assert [Path(jar).name for jar in connector_jars(tmp_path)] == [
        "kafka-clients-3.9.2.jar", "spark-sql-kafka-0-10_2.13-4.2.0.jar"]
    with pytest.raises(ValidationError, match="make spark"):
        SparkJobSettings(checkpoint_location="c", jars_dir=tmp_path / "missing")
