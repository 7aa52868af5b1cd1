"""The output writer's settings: environment variables prefixed AGOGOSML_WRITER_."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from agogosml.settings import (
    PipelineAuthSettings,
    ServiceSettings,
    Transport,
    TransportSettings,
)
from agogosml.web.bodies import DEFAULT_MAX_BATCH_EVENTS, DEFAULT_MAX_BODY_BYTES, MIB


class WriterStreamSettings(ServiceSettings, TransportSettings):
    """The writer's stream: what `agogosml create-topics` needs."""

    model_config = SettingsConfigDict(env_prefix="AGOGOSML_WRITER_", extra="ignore")

    port: int = Field(default=8001, ge=1, le=65535)
    sink: Transport = "file"
    output_stream: str = "agogosml.output"
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, ge=64 * 1024, le=1024 * MIB)
    """Larger request bodies are refused with 413 before they are read whole."""
    max_batch_events: int = Field(default=DEFAULT_MAX_BATCH_EVENTS, ge=1, le=1_000_000)
    """Scored events per request; more are refused with 413 before any is written."""


class WriterSettings(WriterStreamSettings, PipelineAuthSettings):
    """The service: its stream, and the tokens it accepts."""

    model_config = SettingsConfigDict(env_prefix="AGOGOSML_WRITER_", extra="ignore")
