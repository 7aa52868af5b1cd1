"""The client environment `make clients` builds for the clients that cannot share the dev
lock (kserve): a virtual environment outside the clone, under ~/.cache/agogosml, named by
the hash of requirements/clients.txt exactly as the Makefile names it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

CLIENTS_LOCK = Path(__file__).parents[1] / "requirements" / "clients.txt"


def clients_venv() -> Path:
    """Where `make clients` puts the environment for the current clients.txt."""
    digest = hashlib.sha1(CLIENTS_LOCK.read_bytes(), usedforsecurity=False).hexdigest()
    return Path.home() / ".cache" / "agogosml" / f"clients-{digest[:12]}"


def clients_python() -> Path:
    """The client environment's interpreter; fails the test when it was never built (tests
    install nothing themselves)."""
    venv = clients_venv()
    if not (venv / ".complete").is_file():
        pytest.fail(f"no client environment at {venv}: run `make clients`")
    return venv / "bin" / "python"
