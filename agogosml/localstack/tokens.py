"""The pipeline token of a local stack: made fresh for each run, given to every service."""

from __future__ import annotations

import secrets
from pathlib import Path

from agogosml.services.registry import ENV_PREFIXES


def new_pipeline_token() -> str:
    return secrets.token_urlsafe(32)


def pipeline_token_env(token: str) -> dict[str, str]:
    """The variables that give all three services the same pipeline token."""
    return {f"{prefix}PIPELINE_TOKEN": token for prefix in ENV_PREFIXES}


def save_token(token: str, path: Path) -> None:
    """Readable by its owner only: for curl and for tools run next to the stack."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(token + "\n")
