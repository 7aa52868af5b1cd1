"""The monitoring loop end to end, through `make run`'s own local stack (Kafka, MLflow, the
four services, the retrain server and the demo producer as real processes), with a drift
injected by the producer: the detector finds it, the rule fires once, the retrain runs
and its challenger is gated, late labels give live performance, and the dashboard, in a
real headless Chromium, shows the drift and the firing."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser

from tests.e2e.localstack import local_stack, wait_until
from tests.monitor.dashboard.harness import open_page

DRIFTED = "distance_from_home_km"
RETRAIN_OUTCOME = re.compile(r"ok \((registered v\d+|not registered)\)")
BROWSER_TIMEOUT_MS = 30_000


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[str]:
    with local_stack(tmp_path, AGOGOSML_DEMO_RATE="200", AGOGOSML_DEMO_DRIFT_AFTER="1500",
                     AGOGOSML_DEMO_DRIFT_SIGMAS="1.5", AGOGOSML_MONITOR_TICK_S="1") as ports:
        yield f"http://127.0.0.1:{ports['AGOGOSML_MONITOR_PORT']}"


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
