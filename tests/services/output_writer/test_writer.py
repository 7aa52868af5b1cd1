"""The output writer's contract over real HTTP: 2xx only after the sink confirmed, 503 when
it did not (so the chain retries), 400 for a record the sink can never take (so the
reader dead-letters instead of retrying forever)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from agogosml.envelope import ScoredEvent, is_plain_scored_event
from agogosml.errors import AgogosmlError, BadRequestError, RecordTooLargeError, SinkError
from agogosml.services.output_writer.service import create_app, to_record
from agogosml.streaming.base import OutRecord
from tests.servers import PIPELINE, PIPELINE_AUTH, run_server


class ScriptedSink:
    def __init__(self, failure: AgogosmlError | None = None) -> None:
        self.failure = failure
        self.written: list[OutRecord] = []

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def is_ready(self) -> bool:
        return self.failure is None

    async def send(self, records: Sequence[OutRecord]) -> None:
        if self.failure is not None:
            raise self.failure
        self.written.extend(records)


FEATURES = {"amount": 12.5, "hour": 3, "channel": "online", "card_present": False,
            "country": None}


def scored(event_id: str, **changes: Any) -> dict[str, Any]:
    return {"id": event_id, "time": 1_700_000_000_000, "subject": None,
            "model": {"name": "demo", "version": "1"}, "prediction": 1,
            "scores": {"0": 0.25, "1": 0.75}, "scored_at": 1_700_000_000_100,
            "features": FEATURES, **changes}


def without(item: dict[str, Any], name: str) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k != name}


BATCH = {"events": [scored("a"), scored("b", prediction=0)]}


@pytest.mark.parametrize(("failure", "status"), [
    (None, 200),
    (SinkError("Kafka did not acknowledge the batch"), 503),
    (RecordTooLargeError("a record is larger than the topic accepts"), 400),
])
def test_the_writer_answers_after_the_sink(failure: AgogosmlError | None, status: int) -> None:
    sink = ScriptedSink(failure)
    with run_server(create_app(sink, CollectorRegistry(), PIPELINE)) as url:
        response = httpx.post(f"{url}/v1/batches", headers=PIPELINE_AUTH,
                              content=orjson.dumps(BATCH), timeout=10)
        ready = httpx.get(f"{url}/readyz").status_code
    assert response.status_code == status
    if failure is None:
        assert [(r.key, orjson.loads(r.value)["id"]) for r in sink.written] == [
            (b"a", "a"), (b"b", "b")], "one record per event, keyed by its id"
        assert ready == 200
    else:
        assert str(failure) in response.json()["error"]
        assert ready == 503


@pytest.fixture(scope="module")
def writer() -> Iterator[tuple[str, ScriptedSink]]:
    sink = ScriptedSink()
    app = create_app(sink, CollectorRegistry(), PIPELINE, max_body_bytes=4096, max_batch_events=3)
    with run_server(app) as url:
        yield url, sink


def test_records_hold_exactly_the_documented_shape(writer: tuple[str, ScriptedSink]) -> None:
    url, sink = writer
    extra = scored("shape", payload={"name": "Ada"}, prediction=[1, "x", None])
    response = httpx.post(f"{url}/v1/batches", headers=PIPELINE_AUTH,
                          content=orjson.dumps({"events": [extra]}), timeout=10)
    assert response.status_code == 200, response.text
    record = orjson.loads(sink.written[-1].value)
    assert record == {k: v for k, v in extra.items() if k != "payload"}


def nested(field: str, depth: int) -> bytes:
    """A scored event whose `field` is a list nested `depth` deep: more than orjson writes."""
    return orjson.dumps(scored("x", **{field: "@"})).replace(
        b'"@"', b"[" * depth + b"1" + b"]" * depth)


BAD_EVENTS: dict[str, tuple[Any, str]] = {
    "not an object": ([1], "must be a JSON object"),
    "no id": (without(scored("x"), "id"), "missing the field 'id'"),
    "empty id": (scored(""), "non-empty string"),
    "time beyond int64": (scored("x", time=2**63), "64-bit integers"),
    "time as a float": (scored("x", time=1.5), "64-bit integers"),
    "time as a bool": (scored("x", time=True), "64-bit integers"),
    "scored_at missing": (without(scored("x"), "scored_at"), "'scored_at'"),
    "subject a number": (scored("x", subject=5), "'subject'"),
    "model without version": (scored("x", model={"name": "demo"}), "'model'"),
    "nested prediction": (scored("x", prediction=[[1]]), "flat list"),
    "object prediction": (scored("x", prediction={"a": 1}), "JSON scalar"),
    "prediction beyond int64": (scored("x", prediction=2**64 - 1), "JSON scalar"),
    "score not a number": (scored("x", scores={"1": "high"}), "finite number"),
    "score a bool": (scored("x", scores={"1": True}), "finite number"),
    "scores a list": (scored("x", scores=[0.5]), "'scores'"),
    "features a list": (scored("x", features=[12.5]), "'features' must be an object"),
    "features null": (scored("x", features=None), "'features' must be an object"),
    "features a string": (scored("x", features="amount=12.5"), "'features' must be an object"),
    "feature an object": (scored("x", features={"amount": {"value": 1}}),
                          "feature 'amount' must be a JSON scalar"),
    "feature a list": (scored("x", features={"tags": [1, 2]}), "feature 'tags'"),
    "feature beyond int64": (scored("x", features={"hour": 2**63}), "feature 'hour'"),
    "feature nested 300 deep": (nested("features", 300), "'features' must be an object"),
    "prediction nested 300 deep": (nested("prediction", 300), "flat list"),
    "an unknown field nested 1,000 deep": (nested("extra", 1_000), ""),
}


@pytest.mark.parametrize("case", list(BAD_EVENTS))
def test_malformed_scored_events_are_refused_with_a_reason(
        writer: tuple[str, ScriptedSink], case: str) -> None:
    url, sink = writer
    event, fragment = BAD_EVENTS[case]
    before = len(sink.written)
    raw = event if isinstance(event, bytes) else orjson.dumps(event)
    body = b'{"events": [' + orjson.dumps(scored("fine")) + b", " + raw + b"]}"
    response = httpx.post(f"{url}/v1/batches", headers=PIPELINE_AUTH, content=body, timeout=10)
    if case == "an unknown field nested 1,000 deep":
        assert response.status_code == 200, "unknown fields are dropped, however deep"
        return
    assert response.status_code == 400, response.text
    assert response.json()["error"].startswith("events[1]: ")
    assert fragment in response.json()["error"]
    assert len(sink.written) == before, "a batch is written whole or not at all"


@pytest.mark.parametrize("body", [
    b"[" * 1_025 + b"]" * 1_025,
    b'{"events": [' + b"[" * 2_000 + b"]" * 2_000 + b"]}",
    b'{"events": [{"id": "x", "time": NaN}]}',
    b'{"events": [{"id": "x", "time": 1e999}]}',
    b'{"events": [{"id": "\\ud800"}]}',
])
def test_unreadable_json_is_a_bad_request(writer: tuple[str, ScriptedSink], body: bytes) -> None:
    url, _ = writer
    response = httpx.post(f"{url}/v1/batches", headers=PIPELINE_AUTH, content=body, timeout=10)
    assert response.status_code == 400, response.text


def test_oversized_requests_are_refused_before_they_are_read(
        writer: tuple[str, ScriptedSink]) -> None:
    url, sink = writer
    before = len(sink.written)
    big = orjson.dumps({"events": [scored("x", subject="s" * 5_000)]})
    declared = httpx.post(f"{url}/v1/batches", headers=PIPELINE_AUTH, content=big, timeout=10)
    chunked = httpx.post(f"{url}/v1/batches", headers=PIPELINE_AUTH,
                         content=iter([big[:2_000], big[2_000:]]), timeout=10)
    many = httpx.post(f"{url}/v1/batches", headers=PIPELINE_AUTH, timeout=10, content=orjson.dumps(
        {"events": [scored(str(n)) for n in range(4)]}))
    for response in (declared, chunked, many):
        assert response.status_code == 413, response.text
    assert "4096 bytes" in declared.json()["error"]
    assert "4096 bytes" in chunked.json()["error"]
    assert "at most 3" in many.json()["error"]
    assert len(sink.written) == before
    assert httpx.get(f"{url}/healthz").status_code == 200


def test_events_from_producers_before_features_are_written_without_them(
        writer: tuple[str, ScriptedSink]) -> None:
    url, sink = writer
    old, new = without(scored("old"), "features"), scored("new")
    response = httpx.post(f"{url}/v1/batches", headers=PIPELINE_AUTH,
                          content=orjson.dumps({"events": [old, new]}), timeout=10)
    assert response.status_code == 200, response.text
    assert [orjson.loads(r.value) for r in sink.written[-2:]] == [old, new]


def test_malformed_features_refuse_the_batch_and_lose_no_other_event(
        writer: tuple[str, ScriptedSink]) -> None:
    """The writer writes a batch whole or not at all, and its 400 names the event: the
    sender keeps every event of the batch (the reader dead-letters them with the reason),
    and nothing of it reaches the topic half-written or with its features stripped."""
    url, sink = writer
    before = len(sink.written)
    good = [scored("g1"), without(scored("g2"), "features")]
    bad = scored("bad", features={"amount": [12.5]})
    refused = httpx.post(f"{url}/v1/batches", headers=PIPELINE_AUTH,
                         content=orjson.dumps({"events": [good[0], bad, good[1]]}), timeout=10)
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"] == "events[1]: feature 'amount' must be a JSON scalar"
    assert len(sink.written) == before
    again = httpx.post(f"{url}/v1/batches", headers=PIPELINE_AUTH,
                       content=orjson.dumps({"events": good}), timeout=10)
    assert again.status_code == 200, again.text
    assert [orjson.loads(r.value) for r in sink.written[before:]] == good


PLAIN = {"id": "e1", "subject": None, "time": 1, "model": {"name": "m", "version": "1"},
         "prediction": 1, "scores": {"0": 0.25, "1": 0.75}, "scored_at": 2,
         "features": {"amount": 1.5, "hour": 3, "channel": "pos", "card_present": True,
                      "country": None}}
PLAIN_BEFORE_FEATURES = without(PLAIN, "features")


@pytest.mark.parametrize("item", [
    PLAIN,
    PLAIN_BEFORE_FEATURES,
    dict(PLAIN, extra="dropped"),
    dict(PLAIN, scores={"0": 1}),
    without(PLAIN, "subject"),
    dict(PLAIN, prediction=[1, "a"]),
    dict(PLAIN, features={}),
])
def test_the_fast_path_writes_what_the_full_check_would(item: dict[str, Any]) -> None:
    full = ScoredEvent.from_json(item).to_json()
    assert orjson.loads(to_record(0, item).value) == full
    assert is_plain_scored_event(item) == (item in (PLAIN, PLAIN_BEFORE_FEATURES)
                                           or item["features"] == {})


@pytest.mark.parametrize("item", [dict(PLAIN, scores={"0": float("nan")}),
                                  dict(PLAIN, time=2**63), dict(PLAIN, id=""),
                                  dict(PLAIN, model={"name": "m", "version": 1}),
                                  dict(PLAIN, features={"amount": float("nan")}),
                                  dict(PLAIN, features={"amount": float("-inf")}),
                                  dict(PLAIN, features={"hour": -2**63 - 1}),
                                  dict(PLAIN, features={1: 1.5}),
                                  dict(PLAIN, features={"amount": (1.5,)}),
                                  dict(PLAIN, features=None)])
def test_the_fast_path_lets_nothing_bad_through(item: dict[str, Any]) -> None:
    with pytest.raises(BadRequestError):
        to_record(0, item)


FEATURE_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2**64, max_value=2**64)
    | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                               max_size=3),
    max_leaves=8)
FEATURE_OBJECTS = st.dictionaries(st.text(max_size=12), FEATURE_VALUES, max_size=10)


def json_scalar(value: Any) -> bool:
    """What a consumer can read back as a JSON scalar: no NaN, no integer beyond int64."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return -2**63 <= value < 2**63
    return value is None or isinstance(value, bool | str)


@given(features=FEATURE_OBJECTS | FEATURE_VALUES)
def test_features_are_written_exactly_as_sent_or_refused_with_a_reason(features: Any) -> None:
    """Whatever a producer puts under "features", the writer either writes it unchanged
    beside the rest of the event, or refuses the event naming what is wrong."""
    item = dict(PLAIN, features=features)
    if not isinstance(features, dict) or not all(map(json_scalar, features.values())):
        with pytest.raises(BadRequestError, match=r"^events\[7\]: .*feature"):
            to_record(7, item)
        return
    assert orjson.loads(to_record(7, item).value) == item
