"""The monitor's settings: environment variables prefixed AGOGOSML_MONITOR_."""

from __future__ import annotations

from pathlib import Path

from pydantic import AnyHttpUrl, Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from agogosml.settings import ServiceSettings, Transport, TransportSettings
from agogosml.web.auth import Credentials, OptionalToken, Token

SQLITE = "sqlite:///"
POSTGRES = ("postgresql://", "postgres://")


class MonitorStreamSettings(ServiceSettings, TransportSettings):
    """The monitor's streams: what `agogosml create-topics` needs."""

    model_config = SettingsConfigDict(env_prefix="AGOGOSML_MONITOR_", extra="ignore")

    port: int = Field(default=8005, ge=1, le=65535)
    source: Transport = "kafka"
    output_stream: str = "agogosml.output"
    """Scored events: the pipeline's output, read in the monitor's own consumer group."""
    labels_stream: str = "agogosml.labels"
    """Late ground truth: {"id": <event id>, "label": <value>} records."""


class MonitorSettings(MonitorStreamSettings):
    """The service: its streams, store, windows, tokens and trigger rules."""

    model_config = SettingsConfigDict(env_prefix="AGOGOSML_MONITOR_", extra="ignore")

    consumer_group: str = "agogosml-monitor"
    store_url: SecretStr = SecretStr("sqlite:///var/monitor/events.db")
    """sqlite:///<path> (embedded, the default) or postgresql://user:password@host/db."""
    retention_raw_s: int = Field(default=7 * 24 * 3600, ge=0)
    """Raw events older than this are folded into per-window rollups."""
    rollup_window_s: int = Field(default=60, ge=1)
    compact_every_s: float = Field(default=300.0, gt=0)
    tracking_uri: str = "sqlite:///var/mlflow/mlflow.db"
    """MLflow's store: where each model version's reference profile is found."""
    model_name: str = "demo"
    """The registered model a `rollback` rule moves the champion alias of."""
    gdpr_enabled: bool = False
    """Serve /v1/gdpr/lineage and /v1/gdpr/forget (API token) over the privacy store
    AGOGOSML_GDPR_* names (agogosml/privacy/settings.py); a forget purges this monitor's
    event store too."""
    drift_window_events: int = Field(default=1_000, ge=50, le=100_000)
    drift_arl0: float = Field(default=12_000.0, ge=100.0)
    """Expected events between false alarms of a version's online drift detector, as its
    thresholds are calibrated on the reference profile; a live stream is another sample, so
    about 10,000 are seen at the default (bench.drift)."""
    performance_window_s: float = Field(default=3600.0, gt=0)
    positive_class: str = Field(default="1", min_length=1, max_length=256)
    """The class live performance is computed for (labels and predictions compared by
    their class key: booleans "1"/"0", integers as digits, strings as they are)."""
    tick_s: float = Field(default=5.0, gt=0, le=300)
    """How often drift, performance and trigger rules are evaluated."""
    max_versions: int = Field(default=4, ge=1, le=50)
    api_token: Token
    """Required for POST /v1/labels and POST /v1/alerts (Alertmanager's receiver)."""
    api_token_secondary: OptionalToken = None
    rules_path: Path | None = None
    """Trigger rules (YAML); none: the monitor watches and shows, and acts on nothing."""
    retrain_url: AnyHttpUrl | None = None
    """The retrain server, for `retrain` rules that name no url of their own."""
    retrain_token: OptionalToken = None
    webhook_token: OptionalToken = None
    """Sent as a bearer token to the rules' webhooks, if set."""
    scrape_urls: dict[str, AnyHttpUrl] = Field(default_factory=dict)
    """Service name -> its /metrics URL (JSON), for dead letters and errors on the
    dashboard."""

    @field_validator("store_url")
    @classmethod
    def _known_store(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith((SQLITE, *POSTGRES)):
            raise ValueError("must start with sqlite:/// or postgresql://")
        return value

    def api_credentials(self) -> Credentials:
        return Credentials(self.api_token, self.api_token_secondary)
