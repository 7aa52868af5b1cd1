"""Session-wide real components: a Kafka broker on free ports and MLflow on SQLite with
the demo model registered.

Every test is marked by the real components it uses, from the fixtures it asks for
(`kafka`, `mlflow`, `k8s`, `postgres`), and `slow` when it runs whole processes or long fuzzing:
`make test-fast` runs what needs none of them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pytest
from playwright.sync_api import Browser, sync_playwright

from agogosml.demo.train import TrainedDemo, train_and_register
from agogosml.localstack.broker import KafkaBroker
from tests.k8s.kube import KUBE_FIXTURES
from tests.monitor.dashboard.harness import chromium_executable

pytest_plugins = ["tests.k8s.fixtures"]

COMPONENT_FIXTURES = {
    "kafka": frozenset({"kafka", "own_kafka"}),
    "mlflow": frozenset({"mlflow_registry", "tracking"}),
    "k8s": KUBE_FIXTURES,
    "postgres": frozenset({"postgres_server"}),
    "browser": frozenset({"chromium"}),
}
SLOW_FOLDERS = ("e2e", "localstack", "demo")
"""Folders whose tests start whole processes (services, brokers, the local stack)."""
SLOW_FILES = frozenset({"test_service_envs.py", "test_gate_prometheus.py",
                        "test_retrain_server.py", "test_fuzz_http.py",
                        "test_false_alarms.py"})
"""Files that build environments, start servers or fuzz at length."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    tests = Path(__file__).parent
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        for marker, fixtures in COMPONENT_FIXTURES.items():
            if used & fixtures:
                item.add_marker(marker)
        relative = item.path.relative_to(tests)
        if relative.parts[0] in SLOW_FOLDERS or item.path.name in SLOW_FILES:
            item.add_marker("slow")


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """The system's headless Chromium (installed by scripts/fetch-chromium.sh if missing),
    driven by Playwright; never a downloaded browser. Module-scoped: Playwright's sync API
    runs an event loop on this thread while it is open, which asyncio tests of later
    modules could not start theirs under."""
    executable = chromium_executable()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    broker = KafkaBroker(tmp_path_factory.mktemp("kafka"))
    broker.start()
    yield broker
    broker.stop()


@dataclass(frozen=True)
class Registry:
    tracking_uri: str
    demo: TrainedDemo

    @property
    def model_uri(self) -> str:
        return f"models:/{self.demo.model_name}@champion"


@pytest.fixture(scope="session")
def mlflow_registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    root = tmp_path_factory.mktemp("mlflow")
    tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
    demo = train_and_register(tracking_uri, root / "artifacts", rows=5_000)
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    return Registry(tracking_uri, demo)


@pytest.fixture
def own_mlflow_uris() -> Iterator[None]:
    """For a test that points MLflow's process-wide client at a store of its own: the
    session registry's URIs are put back afterwards, so later tests still find it."""
    before = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    yield
    mlflow.set_tracking_uri(before[0])
    mlflow.set_registry_uri(before[1])


@pytest.fixture
def topic_prefix() -> str:
    """Each test gets its own topics on the shared broker."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def schema_path() -> Path:
    return Path(__file__).parent.parent / "agogosml" / "demo" / "transaction.schema.json"
