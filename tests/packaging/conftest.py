"""What the chart tests share: Helm, built once, and every values file of the matrix
rendered once."""

from __future__ import annotations

import pytest

from tests.packaging.helm import MATRIX, Helm, Rendered, fetch_helm


@pytest.fixture(scope="session")
def helm() -> Helm:
    return Helm(fetch_helm())


@pytest.fixture(scope="session")
def rendered(helm: Helm) -> dict[str, Rendered]:
    return {name: helm.template([name]) for name in MATRIX}
