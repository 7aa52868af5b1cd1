"""Loading a service's settings from the environment, failing fast with the variable's name."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

import orjson
from pydantic import SecretStr, ValidationError
from pydantic_settings import BaseSettings

from agogosml.errors import ConfigurationError
from agogosml.streaming.kafka_settings import KafkaSettings
from agogosml.web.auth import Credentials, OptionalToken, Token

SettingsT = TypeVar("SettingsT", bound=BaseSettings)

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
Transport = Literal["file", "kafka", "eventhubs"]


def load_json_schema(path: Path | None) -> dict[str, Any] | None:
    """The JSON Schema a contract setting names (None: no schema), refused with the path if
    it is not a JSON object."""
    if path is None:
        return None
    try:
        schema = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as error:
        raise ConfigurationError(f"{path} is not JSON: {error}") from None
    if not isinstance(schema, dict):
        raise ConfigurationError(f"{path} does not hold a JSON Schema object")
    return schema


def check_contract_files(settings: Any) -> None:
    """The checks the input contract's settings share (the reader's and the Spark job's):
    the subject-keys store and its key go together, and every file named exists."""
    if (settings.subject_keys_url is None) != (settings.subject_keys_kek_path is None):
        raise ValueError("subject_keys_url and subject_keys_kek_path go together")
    for name in ("schema_path", "privacy_policy_path", "privacy_keyring_path",
                 "subject_keys_kek_path"):
        path = getattr(settings, name)
        if path is not None and not path.is_file():
            raise ValueError(f"{name} {path} is not a file")


def load_settings(settings_class: type[SettingsT]) -> SettingsT:
    """Read settings from the environment; a bad value raises ConfigurationError naming
    the environment variable and what is wrong with it."""
    try:
        return settings_class()
    except ValidationError as error:
        prefix = str(settings_class.model_config.get("env_prefix", ""))
        problems = []
        for item in error.errors():
            field = ".".join(str(part) for part in item["loc"])
            variable = f"{prefix}{field}".upper() if field else f"{prefix}*"
            problems.append(f"{variable}: {item['msg']}")
        raise ConfigurationError("invalid settings: " + "; ".join(problems)) from None


class ServiceSettings(BaseSettings):
    """What every service has: where it listens and how much it logs."""

    host: str = "127.0.0.1"
    port: int
    log_level: LogLevel = "INFO"
    shutdown_timeout_s: float = 30.0


class TransportSettings(KafkaSettings):
    """How a service reaches its stream: JSON-lines files, Kafka, or Event Hubs natively."""

    eventhubs_connection_string: SecretStr | None = None
    eventhubs_checkpoint_blob_connection_string: SecretStr | None = None
    eventhubs_checkpoint_container: str = "agogosml-checkpoints"
    files_dir: Path = Path("var")


class PipelineTokenSettings(BaseSettings):
    """The bearer token a service sends on the pipeline hops it calls. Required: an
    unauthenticated pipeline would let anyone who reaches a service write to it."""

    pipeline_token: Token


class PipelineAuthSettings(PipelineTokenSettings):
    """...and checks on the hops it receives. The secondary token is accepted too, never
    sent: it holds the next token before a rotation switches over, or the previous one
    after it."""

    pipeline_token_secondary: OptionalToken = None

    def pipeline_credentials(self) -> Credentials:
        return Credentials(self.pipeline_token, self.pipeline_token_secondary)
