"""The pipeline token of a local stack: made fresh for each run, given to every service."""

from __future__ import annotations

import secrets
from pathlib import Path

from agogosml.services.registry import SERVICES


def new_pipeline_token() -> str:
    return secrets.token_urlsafe(32)


def pipeline_token_env(token: str) -> dict[str, str]:
    """The variables that give every service the run's token: the pipeline token of the
    three pipeline services, and the monitor's API token (labels and alerts)."""
    return {service.auth_variable: token for service in SERVICES}


def save_token(token: str, path: Path) -> None:
    """Readable by its owner only: for curl and for tools run next to the stack."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(token + "\n")
