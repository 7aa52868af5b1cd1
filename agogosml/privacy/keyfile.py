"""New keyring files: `agogosml gdpr keygen`, and the local stack's keys on first run.

A keyring file holds key material: it is written readable by its owner only, and in a
cluster it belongs in a Secret (`kubectl create secret generic … --from-file=keyring.yaml`).
"""

from __future__ import annotations

import base64
import os
import secrets
from datetime import UTC, datetime
from pathlib import Path

import yaml

from agogosml.privacy.keys import KEY_BYTES


def period_key_id(moment: datetime | None = None) -> str:
    """The encryption key id of the month `moment` falls in ("2026-12"): records and dead
    letters without a subject are encrypted under their month's key, so destroying one key
    shreds one month."""
    return (moment or datetime.now(UTC)).strftime("%Y-%m")


def _new_key() -> str:
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")


def new_keyring_text() -> str:
    """A fresh keyring: a pseudonym key and this month's encryption key."""
    key_id = period_key_id()
    return yaml.safe_dump({"pseudonym_key": _new_key(),
                           "encryption_keys": {key_id: _new_key()},
                           "current_key_id": key_id}, sort_keys=False)


def ensure_keyring_file(path: Path) -> bool:
    """Writes a fresh keyring to `path` unless one is there (keys must outlive restarts:
    new keys would change every pseudonym). True if it wrote one."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(new_keyring_text())
    return True
