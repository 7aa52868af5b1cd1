"""What the dashboard's tests and its screenshot script share: the app that serves the
router, the system Chromium, and a browser page that records what it fetched."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI
from playwright.sync_api import Browser, BrowserContext, Page, Request

from agogosml.monitor.dashboard import dashboard_router
from agogosml.monitor.view import MonitorView
from agogosml.web.errors import install_error_handlers

ROOT = Path(__file__).resolve().parents[3]
VIEWPORT = {"width": 1440, "height": 1000}

# Runs before the page's own scripts: collects what the page's CSP blocked, so a test sees
# any attempt to run injected markup even though the policy stopped it.
WATCH_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__violations.push(e.violatedDirective + " " + e.blockedURI));
"""


def dashboard_app(view: MonitorView) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(dashboard_router(view))
    return app


def chromium_executable() -> str:
    """The system Chromium, installed by scripts/fetch-chromium.sh if missing."""
    result = subprocess.run(["bash", str(ROOT / "scripts" / "fetch-chromium.sh")], check=True,
                            capture_output=True, text=True, timeout=900)
    [line] = [x for x in result.stdout.splitlines() if x.startswith("CHROMIUM=")]
    return line.removeprefix("CHROMIUM=")


@dataclass
class BrowserPage:
    context: BrowserContext
    page: Page
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    """Uncaught exceptions and console errors of the page."""

    def close(self) -> None:
        self.context.close()


def open_page(browser: Browser) -> BrowserPage:
    context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    context.add_init_script(WATCH_VIOLATIONS)
    opened = BrowserPage(context, context.new_page())

    def record(request: Request) -> None:
        opened.requests.append(request.url)

    context.on("request", record)
    opened.page.on("pageerror", lambda error: opened.errors.append(str(error)))
    opened.page.on("console", lambda message: opened.errors.append(message.text)
                   if message.type == "error" else None)
    return opened
