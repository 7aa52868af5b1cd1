"""The pipeline hop's batch contract (envelope.py): what the app answers is what the
reader reads, position by position, and no answer can make the reader raise."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from agogosml.envelope import (
    BatchAnswer,
    BatchRequest,
    Event,
    ModelRef,
    Refusal,
    ScoredBatch,
    ScoredEvent,
    decode_batch,
    is_plain_scored_event,
)
from agogosml.errors import BadRequestError

IDS = ["a", "b", "a", "c"]  # ids may repeat within a batch


def test_an_answer_reads_back_as_it_was_written() -> None:
    answer = BatchAnswer(2, [Refusal(2, "a", "amount: not a number"), Refusal(3, "c", "nan")],
                         {"a": 1, "b": 0})
    assert BatchAnswer.from_json(orjson.loads(orjson.dumps(answer.to_json())), IDS) == answer


def test_refusals_without_positions_are_matched_by_id_first_come_first() -> None:
    read = BatchAnswer.from_json({"rejected": [{"id": "a", "reason": "x"},
                                               {"id": "a", "reason": "y"}]}, IDS)
    assert read is not None
    assert [(r.index, r.reason) for r in read.rejected] == [(0, "x"), (2, "y")]
    assert read.scored == 2


@pytest.mark.parametrize("answer", [
    None, [], "ok", {"rejected": {}}, {"rejected": ["a"]}, {"rejected": [{"index": 4}]},
    {"rejected": [{"index": True}]}, {"rejected": [{"id": "z"}]},
])
def test_an_answer_off_the_contract_is_none(answer: Any) -> None:
    assert BatchAnswer.from_json(answer, IDS) is None


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)


@given(answer=JSON | st.fixed_dictionaries({"rejected": st.lists(JSON, max_size=4)},
                                           optional={"predictions": JSON, "scored": JSON}))
def test_no_answer_makes_the_reader_raise(answer: Any) -> None:
    read = BatchAnswer.from_json(answer, IDS)
    assert read is None or all(0 <= r.index < len(IDS) for r in read.rejected)


def test_a_request_names_the_event_it_cannot_read() -> None:
    body = BatchRequest.encode([orjson.dumps({"id": "x", "time": 1, "payload": {}}),
                                orjson.dumps({"id": "y", "time": "soon", "payload": {}})])
    with pytest.raises(BadRequestError, match=r"events\[1\]"):
        BatchRequest.from_json(decode_batch(body))


def test_a_shadow_batch_carries_its_reference() -> None:
    document = BatchRequest.encode_json([{"id": "x", "time": 1, "payload": {}}], {"x": 1})
    request = BatchRequest.from_json(decode_batch(orjson.dumps(document)))
    assert request == BatchRequest([Event("x", 1, {})], {"x": 1})


@pytest.mark.parametrize("features", [{"amount": 12.5, "hour": 3, "channel": "pos",
                                      "card_present": True, "country": None}, {}, None])
def test_the_writer_gets_scored_events_it_writes_as_they_are(
        features: dict[str, Any] | None) -> None:
    event = ScoredEvent("x", 1, None, ModelRef("demo", "1"), 1, {"0": 0.5, "1": 0.5}, 2,
                        features)
    [item] = orjson.loads(orjson.dumps(ScoredBatch([event]).to_json()))["events"]
    assert item.get("features") == features
    assert ScoredEvent.canonical(item) is item
    assert ScoredEvent.canonical({**item, "extra": 1}) == item
    assert ScoredEvent.from_json(item) == event


SCALARS = st.none() | st.booleans() | st.integers(min_value=-2**65, max_value=2**65) \
    | st.floats() | st.text(max_size=5)


@given(features=st.dictionaries(st.text(max_size=8) | st.integers(), SCALARS | JSON,
                                max_size=6) | JSON)
def test_the_fast_check_of_features_agrees_with_the_full_one(features: Any) -> None:
    item = {"id": "x", "subject": None, "time": 1, "model": {"name": "m", "version": "1"},
            "prediction": 1, "scores": {"0": 0.5}, "scored_at": 2, "features": features}
    try:
        full: dict[str, Any] | None = ScoredEvent.from_json(item).to_json()
    except BadRequestError:
        full = None
    assert is_plain_scored_event(item) == (full is not None)
    assert full is None or full == item
