"""The output writer's settings: environment variables prefixed AGOGOSML_WRITER_."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from agogosml.settings import ServiceSettings, Transport, TransportSettings


class WriterSettings(ServiceSettings, TransportSettings):
    model_config = SettingsConfigDict(env_prefix="AGOGOSML_WRITER_", extra="ignore")

    port: int = Field(default=8001, ge=1, le=65535)
    sink: Transport = "file"
    output_stream: str = "agogosml.output"
