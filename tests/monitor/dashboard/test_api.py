"""The dashboard's JSON API over a real server and store: the answers match the store, and
no query parameter, however hostile, gets past a 4xx that says why."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agogosml.monitor.dashboard.assets import CONTENT_SECURITY_POLICY
from agogosml.monitor.dashboard.params import MAX_WINDOWS
from tests.monitor.dashboard.data import CANARY, Dataset

EVENT_KEYS = {"event_id", "subject", "event_time_ms", "scored_at_ms", "model_name",
              "model_version", "prediction", "scores", "features"}
FUZZ = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def client(dashboard_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=dashboard_url, timeout=30) as client:
        yield client


def everything(dataset: Dataset) -> dict[str, int]:
    return {"start": 0, "end": dataset.now_ms + 60_000}


def test_events_page_through_one_version_with_their_inputs(
        client: httpx.Client, dataset: Dataset) -> None:
    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {**everything(dataset), "model_version": CANARY, "limit": 500}
        if cursor:
            params["cursor"] = cursor
        answer = client.get("/api/events", params=params).json()
        seen.extend(answer["events"])
        cursor = answer["cursor"]
        if cursor is None:
            break
    expected = sorted(dataset.of_version(CANARY), key=lambda e: (e.event_time_ms, e.event_id))
    assert [e["event_id"] for e in seen] == [e.event_id for e in expected]
    assert [e["features"] for e in seen] == [e.features for e in expected]


def test_events_filter_on_a_json_prediction(client: httpx.Client, dataset: Dataset) -> None:
    answer = client.get("/api/events", params={**everything(dataset), "prediction": '"fraud"',
                                               "limit": 500}).json()
    frauds = [e for e in dataset.events if e.prediction == "fraud"]
    assert 0 < len(answer["events"]) == len(frauds)


def test_counts_add_up_to_the_stored_events(client: httpx.Client, dataset: Dataset) -> None:
    day = {"start": dataset.now_ms - 25 * 3_600_000, "end": dataset.now_ms + 60_000}
    answer = client.get("/api/counts", params={**day, "window": 3_600_000})
    counts = answer.json()
    per_version = Counter[str]()
    for window in counts["windows"]:
        per_version[window["model_version"]] += window["count"]
    assert per_version == Counter(e.model_version for e in dataset.events)
    assert {p["prediction"]: p["count"] for p in counts["predictions"]} == dict(
        Counter(e.prediction for e in dataset.events))
    assert counts["other_predictions"] == 0


def test_firings_come_oldest_first(client: httpx.Client, dataset: Dataset) -> None:
    answer = client.get("/api/firings", params=everything(dataset)).json()
    assert [f["rule"] for f in answer["firings"]] == [
        f.rule for f in sorted(dataset.firings, key=lambda f: f.fired_at_ms)]
    assert answer["truncated"] is False


@pytest.mark.parametrize(("path", "params", "status", "reason"), [
    ("/api/events", {"start": 10, "end": 10}, 400, "must be after start"),
    ("/api/events", {"start": -1, "end": 10}, 422, "start"),
    ("/api/events", {"start": 0, "end": 2**63}, 422, "end"),
    ("/api/events", {"start": 0, "end": 10, "limit": 501}, 422, "limit"),
    ("/api/events", {"start": 0, "end": 10, "prediction": "fraud"}, 400, "JSON value"),
    ("/api/events", {"start": 0, "end": 10, "prediction": "null"}, 400, "null"),
    ("/api/events", {"start": 0, "end": 10, "cursor": "5"}, 400, "cursor"),
    ("/api/events", {"start": 0, "end": 10, "model_version": "4\x00"}, 400, "NUL"),
    ("/api/events", {"end": 10}, 422, "start"),
    ("/api/counts", {"start": 0, "end": 86_400_000, "window": 1}, 400,
     f"at most {MAX_WINDOWS}"),
    ("/api/counts", {"start": 0, "end": 10, "window": 0}, 422, "window"),
    ("/api/firings", {"start": 5, "end": 1}, 400, "must be after start"),
])
def test_hostile_parameters_get_a_reason(client: httpx.Client, path: str,
                                         params: dict[str, Any], status: int,
                                         reason: str) -> None:
    response = client.get(path, params=params)
    assert response.status_code == status
    body = response.json()
    assert body["type"] == "BadRequestError"
    assert reason in body["error"]


def test_page_and_files_carry_the_policy_and_nothing_else_is_served(
        client: httpx.Client) -> None:
    page = client.get("/")
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    script = client.get("/static/js/main.js")
    assert script.headers["content-type"].startswith("text/javascript")
    for name in ("/static/../conftest.py", "/static/%2e%2e/router.py", "/static/nope.js",
                 "/static/index.html"):
        assert client.get(name).status_code == 404


TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)  # httpx encodes UTF-8
NUMBER = st.one_of(st.integers(-(2**70), 2**70), st.integers(0, 2**53).map(str),
                   st.sampled_from(["1e3", "NaN", "-0", "0x10", " 5", ""]))
JSON_TEXT = st.one_of(TEXT, st.sampled_from(['"legit"', '"fraud"', "1", "1e400", "[1, 2]",
                                            '{"a": 1}', "null", "true", '"\\u0000"']))
CURSOR = st.one_of(TEXT, st.sampled_from(['[1, "tx-1", "3"]', '[1, "tx-1"]', '["a", 1, 2]',
                                         "[9007199254740993, \"a\", \"b\"]", "{}"]))


def query(**values: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=values)


def check_refusal(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    if response.status_code != 200:
        assert 400 <= response.status_code < 500
        body = response.json()
        assert set(body) == {"error", "type"}
        assert body["error"]


@FUZZ
@given(params=query(start=NUMBER, end=NUMBER, model_version=TEXT, prediction=JSON_TEXT,
                    limit=NUMBER, cursor=CURSOR))
def test_any_events_query_answers_events_or_a_reason(client: httpx.Client,
                                                    params: dict[str, Any]) -> None:
    response = client.get("/api/events", params=params)
    check_refusal(response)
    if response.status_code == 200:
        answer = response.json()
        assert set(answer) == {"events", "cursor"}
        assert all(set(event) == EVENT_KEYS for event in answer["events"])


@FUZZ
@given(params=query(start=NUMBER, end=NUMBER, window=NUMBER, model_version=TEXT))
def test_any_counts_query_answers_windows_or_a_reason(client: httpx.Client,
                                                     params: dict[str, Any]) -> None:
    response = client.get("/api/counts", params=params)
    check_refusal(response)
    if response.status_code == 200:
        answer = response.json()
        assert set(answer) == {"start_ms", "end_ms", "window_ms", "windows", "predictions",
                               "other_predictions"}
        assert len({w["window_start_ms"] for w in answer["windows"]}) <= MAX_WINDOWS


def test_performance_history_is_computed_per_window_from_the_labels(
        client: httpx.Client, dataset: Dataset) -> None:
    hour = 3_600_000
    start = (dataset.now_ms - 24 * hour) // hour * hour
    answer = client.get("/api/performance/history",
                        params={"start": start, "end": dataset.now_ms, "window": hour})
    assert answer.status_code == 200, answer.text
    history = answer.json()
    assert history["truncated"] is False
    labelled = {label.event_id: label.label for label in dataset.labels}
    expected: Counter[tuple[int, str]] = Counter(
        ((e.event_time_ms - start) // hour * hour + start, e.model_version)
        for e in dataset.events if e.event_id in labelled and e.event_time_ms >= start)
    assert {(p["window_start_ms"], p["model_version"]): p["labelled"]
            for p in history["points"]} == dict(expected)
    for point in history["points"]:
        for metric in ("accuracy", "precision", "recall", "roc_auc"):
            assert point[metric] is None or 0.0 <= point[metric] <= 1.0
    # The day of the champion at one event a minute: ROC AUC is defined in most hours and
    # above chance (its labels were drawn from its own scores).
    champion = [p["roc_auc"] for p in history["points"]
                if p["model_version"] != CANARY and p["roc_auc"] is not None]
    assert len(champion) >= 12
    assert sorted(champion)[len(champion) // 2] > 0.6


def test_performance_history_refuses_too_many_windows(client: httpx.Client,
                                                      dataset: Dataset) -> None:
    answer = client.get("/api/performance/history",
                        params={"start": 0, "end": dataset.now_ms, "window": 1})
    assert answer.status_code == 400
    assert "windows" in answer.json()["error"]
