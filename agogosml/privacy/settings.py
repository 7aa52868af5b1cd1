"""Where the privacy side keeps its state and finds its keys: environment variables prefixed
AGOGOSML_GDPR_, shared by `agogosml gdpr …`, the monitor's GDPR endpoints and training."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from agogosml.sqldb.urls import POSTGRES_URLS, SQLITE_URL

DEFAULT_STORE_URL = "sqlite:///var/privacy/privacy.db"


def _store_url(value: SecretStr | None) -> SecretStr | None:
    if value is not None and not value.get_secret_value().startswith(
            (SQLITE_URL, *POSTGRES_URLS)):
        raise ValueError("must start with sqlite:/// or postgresql://")
    return value


class GdprSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AGOGOSML_GDPR_", extra="ignore")

    store_url: SecretStr = SecretStr(DEFAULT_STORE_URL)
    """The privacy store: the lineage index, the forget journal and the subject keys
    (sqlite:///<path>, or postgresql://… in a cluster; it may be the monitor's database)."""
    event_store_url: SecretStr | None = None
    """The monitor's event store, purged of a forgotten subject's events."""
    tracking_uri: str = "sqlite:///var/mlflow/mlflow.db"
    artifacts: Path = Path("var/mlflow/artifacts")
    """Where a local MLflow store keeps new experiments' artifacts (`train --artifacts`)."""
    model_name: str = "demo"
    snapshots: list[Path] = Field(default_factory=list)
    """The training snapshots (CSV or JSON lines) a forgotten subject's rows are removed
    from; the first one is what the model is retrained on."""
    subject_column: str = "customer_id"
    shards: int = Field(default=0, ge=0, le=256)
    """Retrain as an ensemble of this many subject-hashed shards (0: one model)."""
    keyring_path: Path | None = None
    """The PII keyring (pseudonym key): for `agogosml gdpr pseudonym`."""
    kek_path: Path | None = None
    """The subject keys' key-encryption keyring (a Secret of its own)."""

    _urls = field_validator("store_url", "event_store_url")(_store_url)
