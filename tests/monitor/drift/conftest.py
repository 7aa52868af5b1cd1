"""A reference profile built as a training run builds it, from the demo data."""

from __future__ import annotations

import pytest

from agogosml.modelloop.profile import ReferenceProfile
from bench.drift import Model, reference


@pytest.fixture(scope="session")
def model() -> Model:
    return reference(rows=8_000, seed=7)


@pytest.fixture(scope="session")
def profile(model: Model) -> ReferenceProfile:
    return model.profile
