"""The dashboard served by a real FastAPI app on uvicorn over a real SQLite store, and a
real headless Chromium (the system's, driven by Playwright) to load it.

Browser tests ask for `chromium` (tests/conftest.py; directly or through `browser_page`):
it marks them `browser`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from tests.monitor.dashboard.data import Dataset, StoreView, build_dataset, open_store
from tests.monitor.dashboard.harness import (
    BrowserPage,
    dashboard_app,
    open_page,
)
from tests.servers import run_server

_screenshots: list[Path] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _screenshots:
        terminalreporter.write_line(f"dashboard screenshots: {_screenshots[0]}")


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return build_dataset(hostile=True)


@pytest.fixture(scope="module")
def dashboard_url(dataset: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The dashboard at the root of a real server, over the hostile dataset."""
    store = open_store(tmp_path_factory.mktemp("dashboard") / "events.db", dataset)
    try:
        with run_server(dashboard_app(StoreView(store, hostile=True))) as url:
            yield url
    finally:
        store.close()


@pytest.fixture(scope="session")
def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("dashboard-screenshots")
    _screenshots.append(folder)
    return folder


@pytest.fixture
def browser_page(chromium: Browser, screenshot_dir: Path,
                 request: pytest.FixtureRequest) -> Iterator[BrowserPage]:
    """A fresh browser context; its page is saved as a screenshot when the test ends."""
    opened = open_page(chromium)
    try:
        yield opened
        opened.page.screenshot(path=screenshot_dir / f"{request.node.name}.png", full_page=True)
    finally:
        opened.close()
