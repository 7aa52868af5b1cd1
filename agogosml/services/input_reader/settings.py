"""The input reader's settings: environment variables prefixed AGOGOSML_READER_."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from agogosml.errors import ConfigurationError
from agogosml.settings import ServiceSettings, Transport, TransportSettings


class ReaderSettings(ServiceSettings, TransportSettings):
    model_config = SettingsConfigDict(env_prefix="AGOGOSML_READER_", extra="ignore")

    port: int = Field(default=8002, ge=1, le=65535)
    source: Transport = "file"
    input_stream: str = "agogosml.input"
    deadletter_stream: str = "agogosml.deadletter"
    consumer_group: str = "agogosml-input-reader"
    app_url: str = "http://127.0.0.1:8000"
    schema_path: Path | None = None
    max_record_bytes: int = Field(default=256 * 1024, gt=0)
    id_field: str | None = None
    subject_field: str | None = None
    time_field: str | None = None
    batch_max_size: int = Field(default=500, ge=1, le=10_000)
    batch_linger_ms: float = Field(default=10.0, ge=0)
    max_in_flight: int = Field(default=4, ge=1, le=64)
    retry_initial_ms: float = Field(default=100.0, gt=0)
    retry_max_ms: float = Field(default=5_000.0, gt=0)
    request_timeout_s: float = Field(default=30.0, gt=0)
    drain_timeout_s: float = Field(default=20.0, ge=0)
    shadow_url: str | None = None
    """A preview app that scores a mirrored sample (its outputs go to a shadow destination)."""
    shadow_sample_ratio: float = Field(default=0.0, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _check(self) -> ReaderSettings:
        if self.retry_max_ms < self.retry_initial_ms:
            raise ValueError("retry_max_ms must not be below retry_initial_ms")
        if self.schema_path is not None and not self.schema_path.is_file():
            raise ValueError(f"schema_path {self.schema_path} is not a file")
        return self

    def load_schema(self) -> dict[str, Any] | None:
        if self.schema_path is None:
            return None
        try:
            schema = orjson.loads(self.schema_path.read_bytes())
        except orjson.JSONDecodeError as error:
            raise ConfigurationError(f"{self.schema_path} is not JSON: {error}") from None
        if not isinstance(schema, dict):
            raise ConfigurationError(f"{self.schema_path} does not hold a JSON Schema object")
        return schema
