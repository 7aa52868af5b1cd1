"""Spark's Kafka source and sink options from the same typed Kafka settings as the services.

Spark's connector passes every `kafka.`-prefixed option to the Kafka client. Event Hubs
through its Kafka endpoint is SASL_SSL with PLAIN, the user `$ConnectionString` and the
connection string as the password, on port 9093 of the namespace; consumer groups are not
used by Spark (it keeps offsets in its checkpoint), so the Event Hub's consumer group plays
no part.
"""

from __future__ import annotations

from agogosml.streaming.kafka_settings import KafkaSettings, eventhubs_kafka_bootstrap

LOGIN_MODULES = {
    "PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule",
    "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule",
    "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule",
}


def _jaas(mechanism: str, username: str, password: str) -> str:
    def quoted(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    return (f"{LOGIN_MODULES[mechanism]} required username={quoted(username)} "
            f"password={quoted(password)};")


def kafka_options(settings: KafkaSettings) -> dict[str, str]:
    """The `kafka.*` options for spark.readStream.format("kafka") and for the sink. They
    hold the password: never log them."""
    if settings.kafka_eventhubs_connection_string is not None:
        secret = settings.kafka_eventhubs_connection_string.get_secret_value()
        return {
            "kafka.bootstrap.servers": eventhubs_kafka_bootstrap(secret),
            "kafka.security.protocol": "SASL_SSL",
            "kafka.sasl.mechanism": "PLAIN",
            "kafka.sasl.jaas.config": _jaas("PLAIN", "$ConnectionString", secret),
        }
    options = {
        "kafka.bootstrap.servers": settings.kafka_bootstrap_servers,
        "kafka.security.protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_sasl_mechanism is not None:
        assert settings.kafka_sasl_username is not None
        assert settings.kafka_sasl_password is not None
        options["kafka.sasl.mechanism"] = settings.kafka_sasl_mechanism
        options["kafka.sasl.jaas.config"] = _jaas(
            settings.kafka_sasl_mechanism, settings.kafka_sasl_username,
            settings.kafka_sasl_password.get_secret_value())
    return options
