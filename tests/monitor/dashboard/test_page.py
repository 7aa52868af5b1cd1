"""The dashboard in a real headless Chromium, served by a real server over a real store:
what a person sees on it, and that data from the stream stays text."""

from __future__ import annotations

import json
from typing import Any

from tests.monitor.dashboard.data import (
    CANARY,
    CHAMPION,
    HOSTILE_CATEGORY,
    HOSTILE_FEATURE,
    HOSTILE_RULE,
    Dataset,
    drift_of,
)
from tests.monitor.dashboard.harness import BrowserPage

TIMEOUT_MS = 15_000


def open_live(browser_page: BrowserPage, url: str) -> None:
    browser_page.page.goto(f"{url}/")
    browser_page.page.wait_for_selector("body[data-live-refreshes]", timeout=TIMEOUT_MS)


def open_history(browser_page: BrowserPage, url: str, preset: str = "1h") -> None:
    page = browser_page.page
    page.goto(f"{url}/")
    page.click("[data-tab=history]")
    page.wait_for_selector("tr.event-row", timeout=TIMEOUT_MS)
    if preset != "1h":
        shown = page.locator("tr.event-row").first.element_handle()
        page.click(f"#range-presets button:text-is('{preset}')")
        shown.wait_for_element_state("hidden", timeout=TIMEOUT_MS)  # replaced by the new range
        page.wait_for_selector("tr.event-row", timeout=TIMEOUT_MS)


def as_shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def test_drift_panel_shows_every_feature_with_its_live_and_reference_bars(
        browser_page: BrowserPage, dashboard_url: str) -> None:
    open_live(browser_page, dashboard_url)
    shown = browser_page.page.evaluate("""() =>
      [...document.querySelectorAll('.version-drift')].map((section) => [
        section.dataset.version,
        [...section.querySelectorAll('.feature-card')].map((card) => ({
          name: card.querySelector('.feature-name').textContent,
          level: card.classList.contains('alarm') ? 'alarm' : 'calm',
          bins: [...card.querySelectorAll('svg.drift-plot title')].map((t) => t.textContent),
          live: card.querySelectorAll('svg.drift-plot rect.bar-live').length,
          reference: card.querySelectorAll('svg.drift-plot rect.bar-reference').length,
        }))])""")
    expected = {v["model_version"]: v["features"] for v in drift_of(hostile=True)}
    assert [version for version, _ in shown] == [CHAMPION, CANARY]
    for version, cards in shown:
        by_name = {card["name"]: card for card in cards}
        assert set(by_name) == {f["feature"] for f in expected[version]}
        for feature in expected[version]:
            card = by_name[feature["feature"]]
            assert card["live"] == card["reference"] == len(feature["bins"])
            assert card["level"] == ("alarm" if feature["detector_level"] >= 1 else "calm")
    # The canary's drifting amount is shown first, with its shares per bin on hover.
    canary_cards = dict(shown)[CANARY]
    assert canary_cards[0]["name"] == "amount"
    assert "(80, 160]: live 22.0%, reference 16.0%" in canary_cards[0]["bins"]


def test_live_panels_plot_throughput_predictions_and_performance(
        browser_page: BrowserPage, dashboard_url: str, dataset: Dataset) -> None:
    open_live(browser_page, dashboard_url)
    page = browser_page.page
    stored = page.locator(".tile", has_text="Stored").locator(".tile-value").text_content()
    assert stored == str(len(dataset.events))
    assert page.locator("#panel-throughput svg path.line").count() == 2  # one per version
    assert page.locator("#panel-throughput .legend").text_content() == "version 3version 4"
    assert set(page.locator("#panel-predictions svg text.label title").all_text_contents()) == {
        "legit", "fraud"}
    assert page.locator("#panel-dead-letters svg text.label title").first.text_content() == (
        "schema")
    for version in (CHAMPION, CANARY):
        card = page.locator(f".performance-card[data-version='{version}']")
        assert card.locator("circle.calibration-point").count() == 10
    assert page.locator(".metric-bars rect.metric-bar").count() == 8  # 4 metrics x 2 versions


def test_live_parts_refresh_and_nothing_loads_from_elsewhere(
        browser_page: BrowserPage, dashboard_url: str) -> None:
    open_live(browser_page, dashboard_url)
    page = browser_page.page
    page.wait_for_function("() => document.body.dataset.liveRefreshes >= 2",
                           timeout=TIMEOUT_MS)
    page.click("[data-tab=history]")
    page.wait_for_selector("tr.event-row", timeout=TIMEOUT_MS)
    assert browser_page.requests, "the page made no request"
    assert [u for u in browser_page.requests if not u.startswith(f"{dashboard_url}/")] == []
    assert sum("/api/live" in u for u in browser_page.requests) >= 2
    assert browser_page.errors == []


def test_events_browser_filters_by_version_and_expands_to_the_inputs(
        browser_page: BrowserPage, dashboard_url: str, dataset: Dataset) -> None:
    open_history(browser_page, dashboard_url)
    page = browser_page.page
    page.wait_for_selector("#filter-version option[value='4']", state="attached",
                           timeout=TIMEOUT_MS)
    page.select_option("#filter-version", CANARY)
    page.click("#events-filter button[type=submit]")
    page.wait_for_function("""() => {
        const rows = [...document.querySelectorAll('tr.event-row')];
        return rows.length > 0 && rows.every((row) => row.cells[3].textContent === '4');
    }""", timeout=TIMEOUT_MS)
    ids = [row.get_attribute("data-event-id") for row in page.locator("tr.event-row").all()]
    events = {e.event_id: e for e in dataset.events}
    assert len(ids) == 50  # a page; the hour holds more
    assert all(events[i].model_version == CANARY for i in ids if i)
    assert [events[i].event_time_ms for i in ids if i] == sorted(
        events[i].event_time_ms for i in ids if i)
    assert page.locator("#events-more").is_visible()

    first = events[ids[0] or ""]
    page.locator("tr.event-row").first.click()
    detail = page.locator("tr.event-detail").first
    detail.wait_for(state="visible", timeout=TIMEOUT_MS)
    names = detail.locator("dl.features dt").all_text_contents()
    values = detail.locator("dl.features dd").all_text_contents()
    assert dict(zip(names, values, strict=True)) == {
        name: as_shown(value) for name, value in first.features.items()}

    page.fill("#filter-prediction", "fraud")
    page.click("#events-filter button[type=submit]")
    page.wait_for_function("""() => {
        const rows = [...document.querySelectorAll('tr.event-row')];
        return rows.length > 0 && rows.every((row) => row.cells[4].textContent === 'fraud');
    }""", timeout=TIMEOUT_MS)
    for row in page.locator("tr.event-row").all():
        event = events[row.get_attribute("data-event-id") or ""]
        assert (event.model_version, event.prediction) == (CANARY, "fraud")


def test_trigger_log_lists_each_firing_with_rule_action_outcome_and_evidence(
        browser_page: BrowserPage, dashboard_url: str, dataset: Dataset) -> None:
    open_history(browser_page, dashboard_url, preset="24h")
    page = browser_page.page
    page.wait_for_selector(".firing-rule", timeout=TIMEOUT_MS)
    newest_first = sorted(dataset.firings, key=lambda f: f.fired_at_ms, reverse=True)
    assert page.locator(".firing-rule").all_text_contents() == [f.rule for f in newest_first]
    assert page.locator(".firing-action").all_text_contents() == [
        f.action for f in newest_first]
    failed = page.locator(".firing", has_text="MLflow unreachable")
    assert failed.locator(".firing-outcome.bad").count() == 1
    drift = page.locator(".firing", has_text="drift: amount psi > 0.2")
    drift.locator("summary").click()
    assert json.loads(drift.locator("pre.evidence").text_content() or "") == {
        "feature": "amount", "psi": 0.27, "model_version": CANARY}
    # Each firing also marks the throughput plot of the range.
    assert page.locator("#panel-history-counts line.marker").count() == len(dataset.firings)


def test_names_from_the_stream_render_as_text_and_run_nothing(
        browser_page: BrowserPage, dashboard_url: str) -> None:
    open_live(browser_page, dashboard_url)
    page = browser_page.page
    assert page.locator(".feature-name", has_text=HOSTILE_FEATURE).count() == 2
    assert any(title.startswith(f"{HOSTILE_CATEGORY}: live")
               for title in page.locator("svg.drift-plot title").all_text_contents())
    open_history(browser_page, dashboard_url)
    page.locator("tr.event-row").first.click()
    assert HOSTILE_FEATURE in page.locator("tr.event-detail dl.features dt").all_text_contents()
    assert page.locator(".firing-rule", has_text=HOSTILE_RULE).count() == 1
    injected = page.evaluate("""() => ({
        pwned: window.__pwned ?? null,
        violations: window.__violations,
        images: [...document.images].map((img) => img.getAttribute('src')),
        scripts: document.scripts.length,
        bold: document.querySelectorAll('b').length,
    })""")
    assert injected == {"pwned": None, "violations": [], "images": ["static/icon.svg"],
                        "scripts": 1, "bold": 0}
    assert browser_page.errors == []


def test_history_plots_roc_auc_per_version_from_the_labels(browser_page: BrowserPage,
                                                          dashboard_url: str) -> None:
    open_history(browser_page, dashboard_url, "24h")
    page = browser_page.page
    plot = page.locator("#panel-history-performance svg.line-chart")
    plot.wait_for(timeout=TIMEOUT_MS)
    assert plot.locator("path.line").count() == 2  # the champion and the canary
    assert page.locator("#panel-history-performance .legend").text_content() == (
        "version 3version 4")
    assert browser_page.errors == []
