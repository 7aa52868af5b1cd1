"""Typed Kafka connection settings, shared by every service that talks to Kafka.

Azure Event Hubs exposes a Kafka endpoint: give its connection string and the
bootstrap address, SASL_SSL, PLAIN and the `$ConnectionString` user follow.
"""

from __future__ import annotations

import ssl
from typing import Any, Literal

from pydantic import SecretStr, model_validator
from pydantic_settings import BaseSettings

from agogosml.errors import ConfigurationError

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]

EVENTHUBS_KAFKA_PORT = 9093


def eventhubs_kafka_bootstrap(connection_string: str) -> str:
    """`Endpoint=sb://NS.servicebus.windows.net/;...` -> `NS.servicebus.windows.net:9093`."""
    parts = dict(
        item.split("=", 1) for item in connection_string.split(";") if "=" in item
    )
    endpoint = parts.get("Endpoint", "")
    if not endpoint.startswith("sb://"):
        raise ConfigurationError(
            "the Event Hubs connection string has no 'Endpoint=sb://...' part"
        )
    host = endpoint.removeprefix("sb://").rstrip("/")
    return f"{host}:{EVENTHUBS_KAFKA_PORT}"


class KafkaSettings(BaseSettings):
    """Fields mixed into each service's settings; they take that service's env prefix."""

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_security_protocol: SecurityProtocol = "PLAINTEXT"
    kafka_sasl_mechanism: SaslMechanism | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_eventhubs_connection_string: SecretStr | None = None
    """Use an Event Hubs namespace through its Kafka endpoint."""

    @model_validator(mode="after")
    def _check_sasl(self) -> KafkaSettings:
        if self.kafka_eventhubs_connection_string is not None:
            eventhubs_kafka_bootstrap(self.kafka_eventhubs_connection_string.get_secret_value())
            return self
        if self.kafka_security_protocol.startswith("SASL"):
            if self.kafka_sasl_mechanism is None:
                raise ValueError("kafka_sasl_mechanism is required with a SASL protocol")
            if self.kafka_sasl_username is None or self.kafka_sasl_password is None:
                raise ValueError("kafka_sasl_username and kafka_sasl_password are required")
        return self

    def kafka_client_options(self) -> dict[str, Any]:
        """Keyword arguments for aiokafka's consumer, producer and admin client."""
        if self.kafka_eventhubs_connection_string is not None:
            secret = self.kafka_eventhubs_connection_string.get_secret_value()
            return {
                "bootstrap_servers": eventhubs_kafka_bootstrap(secret),
                "security_protocol": "SASL_SSL",
                "sasl_mechanism": "PLAIN",
                "sasl_plain_username": "$ConnectionString",
                "sasl_plain_password": secret,
                "ssl_context": ssl.create_default_context(),
            }
        options: dict[str, Any] = {
            "bootstrap_servers": self.kafka_bootstrap_servers,
            "security_protocol": self.kafka_security_protocol,
        }
        if self.kafka_security_protocol in ("SSL", "SASL_SSL"):
            options["ssl_context"] = ssl.create_default_context()
        if self.kafka_sasl_mechanism is not None:
            assert self.kafka_sasl_password is not None
            options["sasl_mechanism"] = self.kafka_sasl_mechanism
            options["sasl_plain_username"] = self.kafka_sasl_username
            options["sasl_plain_password"] = self.kafka_sasl_password.get_secret_value()
        return options
