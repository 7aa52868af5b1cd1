"""The input reader's settings: environment variables prefixed AGOGOSML_READER_."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from agogosml.settings import (
    PipelineTokenSettings,
    ServiceSettings,
    Transport,
    TransportSettings,
    check_contract_files,
    load_json_schema,
)


class ReaderStreamSettings(ServiceSettings, TransportSettings):
    """The reader's streams and contract: all the CLI tools that act on its streams
    (produce-demo, replay-deadletters, tail, create-topics) need."""

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
    """The longest a batch waits to fill, and only while other batches are in flight: with
    none in flight, records are sent as soon as they are fetched."""
    max_in_flight: int = Field(default=4, ge=1, le=64)
    retry_initial_ms: float = Field(default=100.0, gt=0)
    retry_max_ms: float = Field(default=5_000.0, gt=0)
    request_timeout_s: float = Field(default=30.0, gt=0)
    drain_timeout_s: float = Field(default=20.0, ge=0)
    failure_budget: int = Field(default=3, ge=1, le=100)
    """Times the app may fail (500) on one batch before it is split to isolate the
    records that fail; outages (no answer, 503) do not count."""
    stall_ready_s: float = Field(default=60.0, gt=0)
    """Records waiting this long without a commit make /readyz answer 503 (`stalled`)."""
    stall_live_s: float = Field(default=300.0, gt=0)
    """...and this long make /healthz answer 503, so the pod is restarted."""
    deadletter_max_original_bytes: int = Field(default=256 * 1024, ge=0)
    """Originals above this keep only their first bytes in the dead letter (base64 adds
    a third: keep it well under the dead-letter topic's max.message.bytes)."""
    shadow_url: str | None = None
    """A preview app that scores a mirrored sample (its outputs go to a shadow destination)."""
    shadow_sample_ratio: float = Field(default=0.0, ge=0.0, le=1.0)
    privacy_policy_path: Path | None = None
    """The PII policy (YAML, agogosml/privacy/policy.py) applied to every record before it
    leaves the reader; without one, records pass as they came."""
    privacy_keyring_path: Path | None = None
    """The policy's keys (a mounted Secret, agogosml/privacy/keys.py); without one they come
    from AGOGOSML_PII_PSEUDONYM_KEY, AGOGOSML_PII_ENCRYPTION_KEYS and
    AGOGOSML_PII_CURRENT_KEY_ID."""
    subject_keys_url: SecretStr | None = None
    """The privacy store holding one data key per subject (sqlite:///<path> or
    postgresql://…): fields the policy encrypts, and dead letters, are then encrypted under
    their subject's key, which `agogosml gdpr forget` shreds. Without it, under the period
    key of the keyring."""
    subject_keys_kek_path: Path | None = None
    """The key-encryption keyring the subjects' keys are wrapped under (a Secret of its own);
    needed with subject_keys_url."""

    @model_validator(mode="after")
    def _check(self) -> ReaderStreamSettings:
        if self.retry_max_ms < self.retry_initial_ms:
            raise ValueError("retry_max_ms must not be below retry_initial_ms")
        if self.stall_live_s < self.stall_ready_s:
            raise ValueError("stall_live_s must not be below stall_ready_s")
        check_contract_files(self)
        return self

    def load_schema(self) -> dict[str, Any] | None:
        return load_json_schema(self.schema_path)


class ReaderSettings(ReaderStreamSettings, PipelineTokenSettings):
    """The service: its streams, and the token it sends to the app."""

    model_config = SettingsConfigDict(env_prefix="AGOGOSML_READER_", extra="ignore")
