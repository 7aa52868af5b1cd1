"""The monitoring loop end to end, through `make run`'s own local stack (Kafka, MLflow, the
four services, the retrain server and the demo producer as real processes), with a drift
injected by the producer: the detector finds it, the rule fires once, the retrain runs
and its challenger is gated, late labels give live performance, and the dashboard, in a
real headless Chromium, shows the drift and the firing."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser

from agogosml.localstack.broker import free_port
from agogosml.services.registry import SERVICES
from tests.monitor.dashboard.harness import open_page

DRIFTED = "distance_from_home_km"
RETRAIN_OUTCOME = re.compile(r"ok \((registered v\d+|not registered)\)")
BROWSER_TIMEOUT_MS = 30_000


class LocalStack:
    """`agogosml local-stack` in its own process group, its output collected."""

    def __init__(self, var: Path, env: dict[str, str]) -> None:
        self.output: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "agogosml.cli", "local-stack"], env=env, cwd=var,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)

    def wait_running(self, timeout_s: float) -> None:
        wait_until(lambda: any("agogosml is running" in line for line in self.output)
                   or self.process.poll() is not None, timeout_s, "the stack to start")
        assert self.process.poll() is None, "".join(self.output[-40:])

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(90)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self._reader.join(10)
        assert self.process.stdout is not None
        self.process.stdout.close()


def wait_until(condition: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)  # polling the stack until the condition holds


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[str]:
    ports = {service.port_variable: str(free_port()) for service in SERVICES}
    env = {**os.environ, **ports,
           "AGOGOSML_VAR_DIR": str(tmp_path / "var"),
           "AGOGOSML_KAFKA_PORT": str(free_port()),
           "AGOGOSML_KAFKA_CONTROLLER_PORT": str(free_port()),
           "AGOGOSML_RETRAIN_PORT": str(free_port()),
           "AGOGOSML_DEMO_RATE": "200",
           "AGOGOSML_DEMO_DRIFT_AFTER": "1500",
           "AGOGOSML_DEMO_DRIFT_SIGMAS": "1.5",
           "AGOGOSML_MONITOR_TICK_S": "1"}
    local = LocalStack(tmp_path, env)
    try:
        local.wait_running(240)
        yield f"http://127.0.0.1:{ports['AGOGOSML_MONITOR_PORT']}"
    finally:
        local.stop()


def get(url: str) -> Any:
    answer = httpx.get(url, timeout=30)
    answer.raise_for_status()
    return answer.json()


def drift_firings(monitor: str) -> list[dict[str, Any]]:
    firings = get(f"{monitor}/api/firings?start=0&end={2**52}")["firings"]
    return [f for f in firings if f["rule"] == "drift-retrain"]


def drifted_feature(monitor: str) -> dict[str, Any] | None:
    for version in get(f"{monitor}/api/drift"):
        for feature in version["features"]:
            # The window has drifted (not only an early false alarm of the detector).
            if feature["feature"] == DRIFTED and feature["alarms"] > 0 and feature["psi"] > 0.2:
                return dict(feature)
    return None


def test_an_injected_drift_is_found_acted_on_once_and_shown(stack: str,
                                                             chromium: Browser) -> None:
    monitor = stack
    feature = wait_until(lambda: drifted_feature(monitor), 180, f"{DRIFTED} to drift")
    assert feature["pvalue"] < 0.01
    [firing] = wait_until(lambda: drift_firings(monitor), 300, "the retrain rule to fire")
    assert RETRAIN_OUTCOME.fullmatch(firing["outcome"]), firing
    assert firing["action"] == "retrain"
    assert firing["evidence"]["metric"] == "drift_alarms_total"

    performance = wait_until(
        lambda: [v for v in get(f"{monitor}/api/performance")
                 if v["labelled"] >= 200 and v["roc_auc"] is not None],
        120, "live performance from late labels")
    assert 0.5 < performance[0]["roc_auc"] <= 1.0

    opened = open_page(chromium)
    try:
        page = opened.page
        page.goto(f"{monitor}/")
        card = page.locator(".feature-card", has=page.locator(".feature-name",
                                                               has_text=DRIFTED))
        card.first.wait_for(timeout=BROWSER_TIMEOUT_MS)
        assert card.first.locator("svg.drift-plot rect.bar-reference").count() > 0
        page.click("[data-tab=history]")
        page.wait_for_selector(".firing-rule", timeout=BROWSER_TIMEOUT_MS)
        assert page.locator(".firing-rule").all_text_contents() == ["drift-retrain"]
        assert opened.errors == []
    finally:
        opened.close()
    # Ticks went on evaluating the rule meanwhile: still one firing, its cool-down holds.
    assert len(drift_firings(monitor)) == 1
