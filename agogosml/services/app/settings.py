"""The app's settings: environment variables prefixed AGOGOSML_APP_."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from agogosml.errors import ConfigurationError
from agogosml.settings import PipelineAuthSettings, ServiceSettings
from agogosml.web.auth import Credentials, OptionalToken
from agogosml.web.bodies import DEFAULT_MAX_BATCH_EVENTS, DEFAULT_MAX_BODY_BYTES, MIB


class AppSettings(ServiceSettings, PipelineAuthSettings):
    model_config = SettingsConfigDict(env_prefix="AGOGOSML_APP_", extra="ignore",
                                      protected_namespaces=())

    port: int = Field(default=8000, ge=1, le=65535)
    model_uri: str = "models:/demo@champion"
    mlflow_tracking_uri: str = "sqlite:///var/mlflow/mlflow.db"
    writer_url: str = "http://127.0.0.1:8001"
    shadow_writer_url: str | None = None
    """Where scores of mirrored (shadow) batches go; without it shadow batches are refused."""
    writer_timeout_s: float = Field(default=20.0, gt=0)
    max_predict_records: int = Field(default=10_000, ge=1, le=1_000_000)
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, ge=64 * 1024, le=1024 * MIB)
    """Larger request bodies are refused with 413 before they are read whole."""
    max_batch_events: int = Field(default=DEFAULT_MAX_BATCH_EVENTS, ge=1, le=1_000_000)
    """Events per /v1/batches request; more are refused with 413 before any is scored."""
    reload_interval_s: float = Field(default=10.0, ge=0)
    """How often to check a `models:/name@alias` URI for a new version (0: never)."""
    api_key: OptionalToken = None
    """When set, /predict and the OIP model routes take only `Authorization: Bearer <key>`."""
    api_key_secondary: OptionalToken = None
    """Also accepted, for rotating the API key."""

    def api_credentials(self) -> Credentials | None:
        if self.api_key is None:
            if self.api_key_secondary is not None:
                raise ConfigurationError("AGOGOSML_APP_API_KEY_SECONDARY is set without "
                                         "AGOGOSML_APP_API_KEY")
            return None
        return Credentials(self.api_key, self.api_key_secondary)
