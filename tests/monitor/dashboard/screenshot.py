"""Writes the README's screenshot of the dashboard (docs/dashboard.png): the Live tab over
the realistic dataset, in the system Chromium.

    .venv/bin/python -m tests.monitor.dashboard.screenshot [output.png]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from tests.monitor.dashboard.data import StoreView, build_dataset, open_store
from tests.monitor.dashboard.harness import ROOT, chromium_executable, dashboard_app, open_page
from tests.servers import run_server


def main(output: Path) -> None:
    data = build_dataset(hostile=False)
    with tempfile.TemporaryDirectory() as folder, sync_playwright() as playwright:
        store = open_store(Path(folder) / "events.db", data)
        browser = playwright.chromium.launch(executable_path=chromium_executable())
        try:
            with run_server(dashboard_app(StoreView(store, hostile=False))) as url:
                opened = open_page(browser)
                opened.page.goto(f"{url}/")
                opened.page.wait_for_selector("body[data-live-refreshes]", timeout=15_000)
                opened.page.screenshot(path=output, full_page=True)
                opened.close()
        finally:
            browser.close()
            store.close()
    print(f"wrote {output}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "dashboard.png")
